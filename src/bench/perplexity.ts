// llama-perplexity as pure functions: the chunk plan (which tokens each decode call gets, which rows are scored),
// the running/final PPL lines and their uncertainty, and the per-token NLL from logits. KL-divergence statistics are
// in kld.ts and the base-file format in kld-file.ts. Mirrors ik_llama.cpp examples/perplexity/perplexity.cpp
// (perplexity(), main()'s n_ctx/n_batch rules) @ 8337e4cd3.
import { sprintf } from "../ui/printf.js";

export interface PplConfig {
    nTokens: number;
    /** -c: chunk length. */
    nCtx: number;
    /** -b as given (default 2048). */
    nBatch: number;
    /** --chunks; < 0 = all. */
    nChunks: number;
    addBos: boolean;
}

export interface PplBatch {
    /** Position of the first token of this call inside each chunk (j · n_batch). */
    pos: number;
    size: number;
    /** One entry per sequence (chunk) in this call: index of its first token in the token stream. */
    seqStarts: number[];
    /** Outputs requested: positions ≥ first. */
    nOutputs: number;
}

export interface PplGroup {
    /** 0-based index of the first chunk of this group; chunks [first, first + nSeq). */
    chunk: number;
    nSeq: number;
    batches: PplBatch[];
}

export interface PplPlan {
    nChunk: number;
    nSeq: number;
    /** The context main() creates: nSeq · nCtx. */
    kvSize: number;
    /** The n_batch actually used: min(b, kvSize). */
    nBatch: number;
    numBatches: number;
    /** n_ctx/2: logits start here; tokens first+1 … n_ctx−1 are scored. */
    first: number;
    scoredPerChunk: number;
    groups: PplGroup[];
}

export class PplPlanError extends Error {}

/** main() + perplexity(): n_seq = max(1, b/c), ctx = n_seq·c, b = min(b, ctx); needs ≥ 2·c tokens. */
export function perplexityPlan(c: PplConfig): PplPlan {
    const nCtx = c.nCtx;
    const nSeq = Math.max(1, Math.floor(c.nBatch / nCtx));
    const kvSize = nSeq * nCtx;
    const nBatch = Math.min(c.nBatch, kvSize);
    if (c.nTokens < 2 * nCtx) {
        throw new PplPlanError(`you need at least ${2 * nCtx} tokens to evaluate perplexity with a context of ${nCtx}`);
    }
    if (!(nBatch < nCtx || nBatch % nCtx === 0)) throw new PplPlanError(`n_batch ${nBatch} must be < n_ctx or a multiple of it`);
    const max = Math.floor(c.nTokens / nCtx);
    const nChunk = c.nChunks < 0 ? max : Math.min(c.nChunks, max);
    const numBatches = Math.ceil(nCtx / nBatch);
    const first = Math.floor(nCtx / 2);
    const groups: PplGroup[] = [];
    for (let i = 0; i < nChunk; i += nSeq) {
        const start = i * nCtx;
        const n = Math.min(nSeq, nChunk - i);
        const batches: PplBatch[] = [];
        for (let j = 0; j < numBatches; j++) {
            const batchStart = start + j * nBatch;
            const size = Math.min(start + nCtx - batchStart, nBatch);
            const pos = j * nBatch;
            const outs = Math.max(0, pos + size - Math.max(pos, first));
            batches.push({
                pos, size,
                seqStarts: Array.from({ length: n }, (_, s) => batchStart + s * nCtx),
                nOutputs: outs * n
            });
        }
        groups.push({ chunk: i, nSeq: n, batches });
    }
    return { nChunk, nSeq, kvSize, nBatch, numBatches, first, scoredPerChunk: nCtx - first - 1, groups };
}

/** Running sums as the reference keeps them (double). */
export class NllAccumulator {
    nll = 0;
    nll2 = 0;
    count = 0;

    add(v: number): void {
        this.nll += v;
        this.nll2 += v * v;
        this.count++;
    }

    ppl(): number {
        return Math.exp(this.nll / this.count);
    }
}

/** `[k]%.4lf,` after chunk k (1-based); the line has no newline until the run ends. */
export function progressItem(k: number, acc: NllAccumulator): string {
    return sprintf("[%d]%.4lf,", k, acc.ppl());
}

/** --ppl-output-type 1: "%8d  %.4lf  %4lf  %4lf\n" (start token, PPL, mean NLL, its standard error). */
export function progressLineType1(startToken: number, acc: NllAccumulator): string {
    const av = acc.nll / acc.count;
    let av2 = acc.nll2 / acc.count - av * av;
    if (av2 > 0) av2 = Math.sqrt(av2 / (acc.count - 1));
    return sprintf("%8d  %.4lf  %4lf  %4lf\n", startToken, acc.ppl(), av, av2);
}

export interface PplEstimate {
    ppl: number;
    /** PPL · sqrt(var/(N−1)); undefined when the variance is not positive. */
    uncertainty: number | undefined;
}

/** mean = Σnll/N, var = Σnll²/N − mean², PPL = exp(mean), ± PPL·sqrt(var/(N−1)). */
export function pplEstimate(acc: NllAccumulator): PplEstimate {
    const nll = acc.nll / acc.count;
    let nll2 = acc.nll2 / acc.count;
    const ppl = Math.exp(nll);
    nll2 -= nll * nll;
    return { ppl, uncertainty: nll2 > 0 ? Math.sqrt(nll2 / (acc.count - 1)) * ppl : undefined };
}

/** The "\n" that ends the progress line, then the final line. */
export function finalLines(nChunk: number, nCtx: number, acc: NllAccumulator): string {
    const e = pplEstimate(acc);
    if (e.uncertainty === undefined) return "\nUnexpected negative standard deviation of log(prob)\n";
    return sprintf("\nFinal estimate: PPL over %d chunks for n_ctx=%d = %.4lf +/- %.5lf\n", nChunk, nCtx, e.ppl, e.uncertainty);
}

/** Whole stdout of a plain run from per-token NLLs grouped by chunk (n_ctx − first − 1 values each). */
export function formatPerplexityRun(nCtx: number, chunks: readonly (readonly number[])[], outputType: 0 | 1 = 0): string {
    const acc = new NllAccumulator();
    let s = "";
    chunks.forEach((nlls, i) => {
        for (const v of nlls) acc.add(v);
        s += outputType === 0 ? progressItem(i + 1, acc) : progressLineType1(i * nCtx, acc);
    });
    return s + finalLines(chunks.length, nCtx, acc);
}

/** −log softmax(logits)[tok] the way log_softmax() does it: f32 max, double Σexpf(x − max). */
export function tokenNll(logits: Float32Array, tok: number): number {
    let max = logits[0] ?? 0;
    for (let i = 1; i < logits.length; i++) max = Math.max(max, logits[i]!);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.fround(Math.exp(Math.fround(logits[i]! - max)));
    return -(Math.fround(logits[tok]! - max) - Math.log(sum));
}

/** "perplexity: 2.47 seconds per pass - ETA 5.80 minutes" (stderr; hours when ≥ 1 h). */
export function etaLine(fn: string, secondsPerPass: number, nChunk: number, nSeq: number): string {
    const t = Math.fround(secondsPerPass);
    let total = Math.trunc(Math.fround(Math.fround(t * nChunk) / nSeq));
    let s = sprintf("%s: %.2f seconds per pass - ETA ", fn, t);
    if (total >= 3600) {
        s += sprintf("%d hours ", Math.floor(total / 3600));
        total %= 3600;
    }
    return s + sprintf("%.2f minutes\n", total / 60.0);
}
