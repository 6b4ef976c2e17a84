// `ikl run -cnv`: read user turns from stdin line by line, render the whole conversation with the chat template,
// and let Session.feed() reuse the KV prefix so each turn decodes only its new tokens. `/exit` or EOF ends.
import { createInterface } from "node:readline";
import type { Session } from "../generate.js";
import type { Sampler } from "../model.js";
import { ChatTemplate, type ChatMessage } from "./template.js";

export interface ChatOptions {
    nPredict: number;
    systemPrompt: string | undefined;
    chatTemplate: string | undefined;
    chatTemplateFile: string | undefined;
}

/** Returns true when interrupted by Ctrl-C. */
export async function chatLoop(session: Session, sampler: Sampler, o: ChatOptions, signal: AbortSignal, write: (b: Uint8Array) => void): Promise<boolean> {
    const model = session.model;
    const tpl = ChatTemplate.resolve({ file: o.chatTemplateFile, nameOrText: o.chatTemplate, modelTemplate: model.meta.chatTemplate });
    process.stderr.write(`chat template: ${tpl.origin}\n`);
    const piece = (id: number | null): string => (id === null ? "" : Buffer.from(model.tokenToPiece(id, true)).toString("utf8"));
    const vars = { bos_token: piece(model.meta.bos), eos_token: piece(model.meta.eos), add_generation_prompt: true };
    const messages: ChatMessage[] = o.systemPrompt === undefined ? [] : [{ role: "system", content: o.systemPrompt }];
    const rl = createInterface({ input: process.stdin, terminal: false });
    const lines = rl[Symbol.asyncIterator]();
    const enc = new TextEncoder();
    try {
        for (;;) {
            write(enc.encode("\n> "));
            const next = await Promise.race([lines.next(), new Promise<IteratorResult<string>>((r) => signal.addEventListener("abort", () => r({ done: true, value: undefined }), { once: true }))]);
            if (signal.aborted) return true;
            if (next.done === true || next.value.trim() === "/exit") return false;
            messages.push({ role: "user", content: next.value });
            const tokens = model.tokenize(tpl.render(messages, vars), false, true);
            if (tokens.length >= session.ctx.nCtx - 4) {
                process.stderr.write(`conversation is too long (${tokens.length} tokens, max ${session.ctx.nCtx - 4}); ending\n`);
                return false;
            }
            const first = await session.feed(tokens, sampler, signal);
            if (first === undefined) return true;
            const { reason, tokens: out } = await session.generate(first, sampler, o.nPredict, signal, write);
            messages.push({ role: "assistant", content: Buffer.from(model.detokenize(Uint32Array.from(out))).toString("utf8") });
            if (reason === "interrupted") return true;
            if (reason === "context") {
                process.stderr.write(`\ncontext full (n_ctx = ${session.ctx.nCtx}); ending the conversation\n`);
                return false;
            }
        }
    } finally {
        rl.close();
    }
}
