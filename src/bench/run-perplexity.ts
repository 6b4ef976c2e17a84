// The `ikl perplexity` driver: tokenizes the text, runs the chunk plan of perplexity.ts on the engine and writes
// the reference's lines. Plain runs call ctx.score once per group of chunks (the log-probs are computed in Rust;
// logits never cross). The two KL-divergence modes need full distributions, so only they decode with logits:
// n_ctx/2 − 1 rows × n_vocab f32 per chunk cross the boundary (255 × 129k × 4 B ≈ 130 MB per chunk for c=512 on a
// DeepSeek vocabulary), which makes those runs slower than plain perplexity. Mirrors ik_llama.cpp
// examples/perplexity/perplexity.cpp (perplexity(), kl_divergence()) @ 8337e4cd3.
import { readFileSync, writeFileSync } from "node:fs";
import { Context, Model } from "../engine/index.js";
import type { MoeEngineOptions } from "../options/context.js";
import { IklError } from "../engine/errors.js";
import { paddedCtx } from "../engine/generate.js";
import { sprintf } from "../ui/printf.js";
import { interrupted, isCancelled } from "../ui/sigint.js";
import { KLD_CHUNK_HEADER, KldAccumulator, kldToken } from "./kld.js";
import { readBaseHeader, readBaseRecord, recordsPresent, scoredPerChunk, writeBaseFile, quantizeLogits, type BaseRecord } from "./kld-file.js";
import { etaLine, finalLines, NllAccumulator, perplexityPlan, PplPlanError, pplEstimate, progressItem, progressLineType1 } from "./perplexity.js";

export interface PerplexityOptions {
    model: string;
    file: string | undefined;
    nCtx: number;
    nBatch: number;
    nUbatch: number;
    nChunks: number;
    threads: number | undefined;
    threadsBatch: number | undefined;
    runTimeRepack?: boolean; // -rtr
    placement?: Record<string, string>; // tensor name → CUDA device (engine/placement.ts); absent = CPU
    typeK: string;
    typeV: string;
    flashAttn: "on" | "off" | "auto";
    /** MoE context options (fused MoE, -ser, -ger); absent = the engine defaults. */
    moe?: MoeEngineOptions;
    kldBase: string | undefined;
    kld: boolean;
    outputType: 0 | 1;
    json: boolean;
    out: (s: string) => void;
    log: (s: string) => void;
    /** Ctrl-C: stop after the chunk in flight and print the estimate over the chunks completed. */
    signal?: AbortSignal;
}

const FN = "perplexity";

function cancelledToUndefined(e: unknown): undefined {
    if (isCancelled(e)) return undefined;
    throw e;
}

async function open(o: PerplexityOptions, nCtx: number, nBatch: number): Promise<{ model: Model; ctx: Context }> {
    const model = await Model.open(o.model, { threads: o.threads, runTimeRepack: o.runTimeRepack, placement: o.placement });
    const ctx = await Context.create(model, {
        nCtx: paddedCtx(nCtx, o.flashAttn !== "off"), nBatch, nUbatch: Math.min(o.nUbatch, nBatch), threads: o.threads,
        threadsBatch: o.threadsBatch, typeK: o.typeK, typeV: o.typeV, flashAttn: o.flashAttn, ...o.moe
    });
    o.log(`${ctx.kvSizeLine}\n`);
    return { model, ctx };
}

function seqBatch(tokens: ArrayLike<number>, starts: number[], len: number, pos0: number, bos: number | null): { tokens: Uint32Array; pos: Int32Array; seq: Int32Array } {
    const n = starts.length * len;
    const b = { tokens: new Uint32Array(n), pos: new Int32Array(n), seq: new Int32Array(n) };
    starts.forEach((start, s) => {
        for (let k = 0; k < len; k++) {
            b.tokens[s * len + k] = tokens[start + k]!;
            b.pos[s * len + k] = pos0 + k;
            b.seq[s * len + k] = s;
        }
        if (pos0 === 0 && bos !== null) b.tokens[s * len] = bos; // each chunk starts with BOS, as the reference
    });
    return b;
}

/** Plain perplexity, or --kl-divergence-base FILE alone (also writes the base file). */
export async function runPerplexity(o: PerplexityOptions): Promise<void> {
    if (o.kld) return runKld(o);
    if (o.file === undefined) throw new IklError("IKL_E_USAGE", "no evaluation text given; pass -f FILE");
    let text: string;
    try {
        text = readFileSync(o.file, "utf8").replace(/\n$/, ""); // common.cpp drops one trailing newline of -f
    } catch (e) {
        throw new IklError("IKL_E_IO", `${o.file}: cannot read: ${(e as Error).message}`);
    }
    const nSeq = Math.max(1, Math.floor(o.nBatch / o.nCtx));
    const { model, ctx } = await open(o, nSeq * o.nCtx, Math.min(o.nBatch, nSeq * o.nCtx));
    const addBos = model.meta.addBos;
    const bos = addBos ? model.meta.bos : null;
    o.log(`${FN}: tokenizing the input ..\n`);
    const t0 = performance.now();
    const tokens = model.tokenize(text, true, false);
    o.log(sprintf("%s: tokenization took %g ms\n", FN, performance.now() - t0));
    let plan;
    try {
        plan = perplexityPlan({ nTokens: tokens.length, nCtx: o.nCtx, nBatch: o.nBatch, nChunks: o.nChunks, addBos });
    } catch (e) {
        if (e instanceof PplPlanError) throw new IklError("IKL_E_INVALID", `${e.message} (tokenizer produced ${tokens.length})`);
        throw e;
    }
    o.log(`${FN}: calculating perplexity over ${plan.nChunk} chunks, n_ctx=${o.nCtx}, batch_size=${plan.nBatch}, n_seq=${plan.nSeq}\n`);
    const nVocab = model.meta.nVocab;
    const writeBase = o.kldBase !== undefined;
    const records: BaseRecord[] = [];
    const acc = new NllAccumulator();
    const perChunk: number[] = [];
    let done = 0;
    const stopped = (): boolean => o.signal?.aborted === true; // a function: TS would keep a narrowed property
    for (const g of plan.groups) {
        if (stopped()) break;
        const tStart = performance.now();
        ctx.kvClear();
        // per sequence, log-probs of the scored positions first … n_ctx−2 (their targets are the next tokens)
        const nll: number[][] = Array.from({ length: g.nSeq }, () => []);
        for (const b of g.batches) {
            const batch = seqBatch(tokens, b.seqStarts, b.size, b.pos, bos);
            const rows: number[] = [];
            const targets = new Int32Array(batch.tokens.length).fill(-1);
            b.seqStarts.forEach((start, s) => {
                for (let k = 0; k < b.size; k++) {
                    const p = b.pos + k;
                    if (p < plan.first || p >= o.nCtx - 1) continue;
                    rows.push(s * b.size + k);
                    targets[s * b.size + k] = tokens[start + k + 1]!;
                }
            });
            if (writeBase) {
                const r = await ctx.decode({ ...batch, outRows: Int32Array.from(rows), wantLogits: true, signal: o.signal }).catch(cancelledToUndefined);
                if (r === undefined) break;
                rows.forEach((row, i) => {
                    const q = quantizeLogits(r.logits!.subarray(i * nVocab, (i + 1) * nVocab), targets[row]!);
                    nll[Math.floor(row / b.size)]!.push(q.nll);
                    records.push(q.record);
                });
            } else {
                const lp = await ctx.score(batch, targets, o.signal).catch(cancelledToUndefined);
                if (lp === undefined) break;
                for (const row of rows) nll[Math.floor(row / b.size)]!.push(-lp[row]!);
            }
        }
        if (stopped()) break; // the group in flight is incomplete: not counted
        if (g.chunk === 0) o.log(etaLine(FN, (performance.now() - tStart) / 1000, plan.nChunk, plan.nSeq));
        done += g.nSeq;
        nll.forEach((vals, s) => {
            for (const v of vals) acc.add(v);
            const k = g.chunk + s;
            perChunk.push(acc.ppl());
            if (!o.json) o.out(o.outputType === 0 ? progressItem(k + 1, acc) : progressLineType1(k * o.nCtx, acc));
        });
    }
    if (stopped()) {
        // Ctrl-C: the estimate over the chunks completed (the count says how many), no base file
        if (done > 0 && !o.json) o.out(finalLines(done, o.nCtx, acc));
        if (done > 0 && o.json) o.out(`${JSON.stringify({ n_ctx: o.nCtx, n_chunk: done, n_tokens: acc.count, ppl: pplEstimate(acc).ppl, ppl_uncertainty: pplEstimate(acc).uncertainty ?? null, chunks: perChunk, interrupted: true })}\n`);
        throw interrupted("perplexity");
    }
    if (writeBase) {
        const header = { nCtx: o.nCtx, nVocab, nChunk: plan.nChunk, tokens: Int32Array.from(tokens.subarray(0, plan.nChunk * o.nCtx)) };
        writeFileSync(o.kldBase!, writeBaseFile(header, records));
        o.log(`${FN}: wrote ${records.length} log-prob records to ${o.kldBase}\n`);
    }
    if (o.json) {
        const e = pplEstimate(acc);
        o.out(`${JSON.stringify({ n_ctx: o.nCtx, n_chunk: plan.nChunk, n_tokens: acc.count, ppl: e.ppl, ppl_uncertainty: e.uncertainty ?? null, chunks: perChunk })}\n`);
    } else {
        o.out(finalLines(plan.nChunk, o.nCtx, acc));
    }
}

/** --kl-divergence --kl-divergence-base FILE: re-evaluates the stored tokens and compares distributions. */
async function runKld(o: PerplexityOptions): Promise<void> {
    if (o.kldBase === undefined) throw new IklError("IKL_E_USAGE", "--kl-divergence needs --kl-divergence-base FILE (written by a run without --kl-divergence)");
    let buf: Buffer;
    try {
        buf = readFileSync(o.kldBase);
    } catch (e) {
        throw new IklError("IKL_E_IO", `${o.kldBase}: cannot read: ${(e as Error).message}`);
    }
    let h;
    try {
        h = readBaseHeader(buf);
    } catch (e) {
        throw new IklError("IKL_E_INVALID", `${o.kldBase}: ${(e as Error).message}`);
    }
    if (h.nCtx !== o.nCtx) o.log(`${FN}: using n_ctx=${h.nCtx} from the base file (given -c ${o.nCtx})\n`);
    const nCtx = h.nCtx;
    const nBatch = Math.min(o.nBatch, nCtx);
    const { model, ctx } = await open(o, nCtx, nBatch);
    if (model.meta.nVocab !== h.nVocab) throw new IklError("IKL_E_INVALID", `${o.kldBase}: n_vocab ${h.nVocab} in the base file, ${model.meta.nVocab} in the model`);
    const nChunk = Math.min(o.nChunks < 0 ? h.nChunk : o.nChunks, h.nChunk, Math.floor(recordsPresent(buf, h) / scoredPerChunk(nCtx)));
    const bos = model.meta.addBos ? model.meta.bos : null;
    const first = Math.floor(nCtx / 2);
    const acc = new KldAccumulator();
    o.log(`${FN}: calculating KL divergence over ${nChunk} chunks, n_ctx=${nCtx}, batch_size=${nBatch}\n`);
    if (!o.json) o.out(KLD_CHUNK_HEADER);
    let rec = 0;
    for (let i = 0; i < nChunk; i++) {
        const tStart = performance.now();
        ctx.kvClear();
        for (let pos = 0; pos < nCtx; pos += nBatch) {
            const size = Math.min(nBatch, nCtx - pos);
            const batch = seqBatch(h.tokens, [i * nCtx + pos], size, pos, bos);
            const rows: number[] = [];
            for (let k = 0; k < size; k++) if (pos + k >= first && pos + k < nCtx - 1) rows.push(k);
            if (rows.length === 0) {
                await ctx.decode({ ...batch, outRows: new Int32Array(0) });
                continue;
            }
            const r = await ctx.decode({ ...batch, outRows: Int32Array.from(rows), wantLogits: true });
            rows.forEach((k, j) => {
                const logits = r.logits!.subarray(j * h.nVocab, (j + 1) * h.nVocab);
                acc.add(kldToken(logits, readBaseRecord(buf, h, rec++), h.tokens[i * nCtx + pos + k + 1]!));
            });
        }
        if (i === 0) o.log(etaLine("kl_divergence", (performance.now() - tStart) / 1000, nChunk, 1));
        if (!o.json) o.out(acc.chunkLine(i + 1));
    }
    if (o.json) {
        o.out(`${JSON.stringify({ n_ctx: nCtx, n_chunk: nChunk, n_tokens: acc.count, mean_kld: acc.sumKld / acc.count, max_kld: Math.max(...acc.kldValues), same_top: acc.nSameTop / acc.count })}\n`);
    } else {
        o.out(`\n${acc.finalReport()}`);
    }
}
