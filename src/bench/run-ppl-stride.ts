// `ikl perplexity --ppl-stride S`: the reference's strided perplexity (perplexity_v2 in ik_llama.cpp
// examples/perplexity/perplexity.cpp @ 8337e4cd3), reproduced so its numbers compare:
// - the context grows by S/2: n_ctx = max(1, ⌊b/c⌋)·c + S/2, padded like every context; a "chunk" is that whole
//   (padded) context, and chunk i starts at token i·S, so consecutive chunks overlap by n_ctx − S tokens;
// - each chunk is evaluated from an empty cache in batches of min(b, n_ctx) at positions 0…n_ctx−1, with the
//   tokens as they are (the reference means to put BOS first but swaps it in only after decoding, so it
//   evaluates the raw tokens; we do the same, or the numbers would not compare);
// - the last S positions of the chunk are scored: positions n_ctx−S−1 … n_ctx−2 predict the next token;
// - stdout: `[i]ppl,` per chunk (or `%8d  %.4f` lines with --ppl-output-type 1), then a newline; the reference
//   prints no final-estimate line in this mode and neither do we (the last running value is the result).
// Differences on purpose: too little text or a stride ≥ n_ctx is an error (exit 1) instead of a silent PPL of 0 or
// out-of-range reads.
import { readFileSync } from "node:fs";
import { Context, Model } from "../engine/index.js";
import { IklError } from "../engine/errors.js";
import { paddedCtx } from "../engine/generate.js";
import { sprintf } from "../ui/printf.js";
import { etaLine } from "./perplexity.js";
import type { PerplexityOptions } from "./run-perplexity.js";

const FN = "perplexity_v2";

export async function runStridedPerplexity(o: PerplexityOptions, stride: number): Promise<void> {
    if (o.kld || o.kldBase !== undefined) throw new IklError("IKL_E_USAGE", "--ppl-stride cannot be combined with --kl-divergence or --kl-divergence-base");
    if (o.file === undefined) throw new IklError("IKL_E_USAGE", "no evaluation text given; pass -f FILE");
    let text: string;
    try {
        text = readFileSync(o.file, "utf8").replace(/\n$/, "");
    } catch (e) {
        throw new IklError("IKL_E_IO", `${o.file}: cannot read: ${(e as Error).message}`);
    }
    const nSeq = Math.max(1, Math.floor(o.nBatch / o.nCtx));
    const asked = nSeq * o.nCtx;
    const nBatch = Math.min(o.nBatch, asked);
    o.log(`Will perform strided perplexity calculation -> adjusting context size from ${asked} to ${asked + Math.floor(stride / 2)}\n`);
    const nCtx = paddedCtx(asked + Math.floor(stride / 2), o.flashAttn !== "off");
    if (stride >= nCtx) throw new IklError("IKL_E_INVALID", `--ppl-stride ${stride} must be smaller than the context (${nCtx})`);
    const model = await Model.open(o.model, { threads: o.threads, runTimeRepack: o.runTimeRepack, placement: o.placement });
    const ctx = await Context.create(model, {
        nCtx, nBatch, nUbatch: Math.min(o.nUbatch, nBatch), threads: o.threads, threadsBatch: o.threadsBatch,
        typeK: o.typeK, typeV: o.typeV, flashAttn: o.flashAttn, ...o.moe
    });
    o.log(`${FN}: tokenizing the input ..\n`);
    const tokens = model.tokenize(text, true, false);
    if (tokens.length < 2 * nCtx) {
        throw new IklError("IKL_E_INVALID", `you need at least ${2 * nCtx} tokens to evaluate perplexity with a context of ${nCtx}; the text tokenizes to only ${tokens.length}`);
    }
    o.log(`${FN}: have ${tokens.length} tokens. Calculation chunk = ${nCtx}\n`);
    const nChunkMax = Math.floor((tokens.length - nCtx + stride - 1) / stride);
    const nChunk = o.nChunks < 0 ? nChunkMax : Math.min(o.nChunks, nChunkMax);
    o.log(`${FN}: calculating perplexity over ${nChunk} chunks, batch_size=${nBatch}\n`);
    let nll = 0;
    let count = 0;
    const running: number[] = [];
    for (let i = 0; i < nChunk; i++) {
        const start = i * stride;
        const t0 = performance.now();
        ctx.kvClear();
        for (let b0 = 0; b0 < nCtx; b0 += nBatch) {
            const size = Math.min(nBatch, nCtx - b0);
            const batch = { tokens: tokens.slice(start + b0, start + b0 + size), pos: new Int32Array(size), seq: new Int32Array(size) };
            const targets = new Int32Array(size).fill(-1);
            for (let k = 0; k < size; k++) {
                const j = b0 + k;
                batch.pos[k] = j;
                if (j >= nCtx - stride - 1 && j < nCtx - 1) targets[k] = tokens[start + j + 1]!;
            }
            const lp = await ctx.score(batch, targets);
            for (let k = 0; k < size; k++) {
                if (targets[k]! < 0) continue;
                nll -= lp[k]!;
                count++;
            }
        }
        if (i === 0) o.log(etaLine(FN, (performance.now() - t0) / 1000, nChunk, 1));
        const ppl = Math.exp(nll / count);
        running.push(ppl);
        if (!o.json) o.out(o.outputType === 0 ? sprintf("[%d]%.4f,", i + 1, ppl) : sprintf("%8d  %.4f\n", i * stride, ppl));
    }
    if (o.json) {
        o.out(`${JSON.stringify({ n_ctx: nCtx, ppl_stride: stride, n_chunk: nChunk, n_tokens: count, ppl: running.at(-1) ?? null, chunks: running })}\n`);
    } else {
        o.out("\n");
    }
}
