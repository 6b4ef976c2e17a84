// Chat templates: the GGUF's `tokenizer.chat_template` (or --chat-template NAME|JINJA / --chat-template-file)
// rendered with @huggingface/jinja, as llama.cpp's --jinja path does. A template that fails to parse or render is
// an IklError naming the template source; there is never a silent fallback to another format.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";
import { IklError } from "../errors.js";

export interface ChatMessage {
    role: "system" | "user" | "assistant";
    content: string;
}

/** A few built-in templates (llama.cpp names), for models without one or to override theirs. */
export const BUILTIN_TEMPLATES: Record<string, string> = {
    chatml: "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    llama3: "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
};

export class ChatTemplate {
    private readonly tpl: Template;

    constructor(readonly source: string, readonly origin: string) {
        try {
            this.tpl = new Template(source);
        } catch (e) {
            throw new IklError("IKL_E_TEMPLATE", `chat template (${origin}) does not parse: ${(e as Error).message}`);
        }
    }

    /** Resolve --chat-template-file, then --chat-template (name or Jinja text), then the model's template. */
    static resolve(opts: { file?: string | undefined; nameOrText?: string | undefined; modelTemplate: string | null }): ChatTemplate {
        if (opts.file !== undefined) {
            let text: string;
            try {
                text = readFileSync(opts.file, "utf8");
            } catch (e) {
                throw new IklError("IKL_E_IO", `${opts.file}: cannot read chat template: ${(e as Error).message}`);
            }
            return new ChatTemplate(text, `file ${opts.file}`);
        }
        if (opts.nameOrText !== undefined) {
            const builtin = BUILTIN_TEMPLATES[opts.nameOrText];
            if (builtin !== undefined) return new ChatTemplate(builtin, `built-in ${opts.nameOrText}`);
            if (!opts.nameOrText.includes("{")) {
                throw new IklError("IKL_E_USAGE", `unknown chat template '${opts.nameOrText}' (built-in: ${Object.keys(BUILTIN_TEMPLATES).join(", ")}; or pass Jinja text)`);
            }
            return new ChatTemplate(opts.nameOrText, "--chat-template text");
        }
        if (opts.modelTemplate === null) {
            throw new IklError("IKL_E_TEMPLATE", "the model has no tokenizer.chat_template; pass --chat-template NAME or --chat-template-file FILE");
        }
        return new ChatTemplate(opts.modelTemplate, "model tokenizer.chat_template");
    }

    render(messages: ChatMessage[], vars: { bos_token: string; eos_token: string; add_generation_prompt: boolean }): string {
        try {
            return this.tpl.render({ messages, ...vars });
        } catch (e) {
            throw new IklError("IKL_E_TEMPLATE", `chat template (${this.origin}) failed to render: ${(e as Error).message}`);
        }
    }
}
