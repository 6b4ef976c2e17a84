// KL-divergence mode of llama-perplexity: per-token comparison against a base record (f32 arithmetic as the
// reference), the running sums, the per-chunk line and the three final statistics blocks, printed with the same
// formats, the same f32 percentile interpolation and the same "count > 10" / "count < 100" rules.
// Mirrors ik_llama.cpp examples/perplexity/perplexity.cpp (kl_divergence(), log_softmax(..., kld)) @ 8337e4cd3.
import { sprintf } from "../ui/printf.js";
import type { BaseRecord } from "./kld-file.js";

const f = Math.fround;

/** What one scored position contributes. */
export interface KldToken {
    nll: number;
    nllBase: number;
    kld: number;
    pDiff: number;
    sameTop: boolean;
}

/** log_softmax(n_vocab, logits, base_log_prob, tok, kld): the model under test vs the stored base record. */
export function kldToken(logits: Float32Array, base: BaseRecord, tok: number): KldToken {
    let maxLogit = logits[0]!;
    let imax = 0;
    for (let i = 1; i < logits.length; i++) {
        if (logits[i]! > maxLogit) {
            maxLogit = logits[i]!;
            imax = i;
        }
    }
    let sumExp = 0;
    for (let i = 0; i < logits.length; i++) sumExp += f(Math.exp(f(logits[i]! - maxLogit)));
    const logSumExp = f(Math.log(sumExp));
    const { scale, minLogProb, q } = base;
    const nll = f(f(maxLogit + logSumExp) - logits[tok]!);
    const nllBase = f(-f(f(scale * q[tok]!) + minLogProb));
    const top = f(maxLogit + logSumExp);
    let sum = 0;
    let imaxBase = -1;
    let pMax = 0;
    for (let i = 0; i < logits.length; i++) {
        const pLogBase = f(f(scale * q[i]!) + minLogProb);
        if (i === 0 || pLogBase > pMax) {
            pMax = pLogBase;
            imaxBase = i;
        }
        if (pLogBase > -16) sum += f(f(Math.exp(pLogBase)) * f(f(pLogBase - logits[i]!) + top));
    }
    const pDiff = f(f(Math.exp(-nll)) - f(Math.exp(-nllBase)));
    return { nll, nllBase, kld: sum, pDiff, sameTop: imax === imaxBase };
}

export function meanAndUncertainty(sum: number, sum2: number, count: number): [number, number] {
    if (count < 1) return [0, 0];
    const m = sum / count;
    const df = sum2 / count - m * m;
    return [m, df > 0 && count > 10 ? Math.sqrt(df / (count - 1)) : 0];
}

function covariance(suma: number, sumb: number, sumab: number, count: number): number {
    if (count < 10) return 0;
    return (sumab / count - (suma / count) * (sumb / count)) / (count - 1);
}

/** kl_divergence_result plus the per-token KLD and Δp lists kept for percentiles. */
export class KldAccumulator {
    sumNll = 0;
    sumNll2 = 0;
    sumNllBase = 0;
    sumNllBase2 = 0;
    sumNllNllBase = 0;
    sumKld = 0;
    sumKld2 = 0;
    sumPDiff = 0;
    sumPDiff2 = 0;
    sumPDiff4 = 0;
    maxPDiff = 0;
    nSameTop = 0;
    count = 0;
    readonly kldValues: number[] = [];
    readonly pDiffValues: number[] = [];

    add(t: KldToken): void {
        this.sumNll += t.nll;
        this.sumNll2 += f(t.nll * t.nll);
        this.sumNllBase += t.nllBase;
        this.sumNllBase2 += f(t.nllBase * t.nllBase);
        this.sumNllNllBase += f(t.nll * t.nllBase);
        this.sumKld += t.kld;
        this.sumKld2 += t.kld * t.kld;
        this.count++;
        if (t.sameTop) this.nSameTop++;
        const d2 = f(t.pDiff * t.pDiff);
        this.sumPDiff += t.pDiff;
        this.sumPDiff2 += d2;
        this.sumPDiff4 += d2 * d2;
        this.maxPDiff = Math.max(this.maxPDiff, Math.abs(t.pDiff));
        this.kldValues.push(f(t.kld));
        this.pDiffValues.push(t.pDiff);
    }

    /** "%4d" + PPL, ln ratio, KLD, Δp RMS, same top, each "value ± error". */
    chunkLine(k: number): string {
        const logPpl = meanAndUncertainty(this.sumNll, this.sumNll2, this.count);
        const ppl = Math.exp(logPpl[0]);
        let s = sprintf("%4d", k) + sprintf("    %9.4lf ± %9.4lf", ppl, ppl * logPpl[1]);
        const base = meanAndUncertainty(this.sumNllBase, this.sumNllBase2, this.count);
        const cov = covariance(this.sumNll, this.sumNllBase, this.sumNllNllBase, this.count);
        const ratioUnc = Math.sqrt(logPpl[1] * logPpl[1] + base[1] * base[1] - 2.0 * cov);
        s += sprintf("    %10.5lf ± %10.5lf", logPpl[0] - base[0], ratioUnc);
        const kl = meanAndUncertainty(this.sumKld, this.sumKld2, this.count);
        s += sprintf("    %10.5lf ± %10.5lf", kl[0], kl[1]);
        const mse = meanAndUncertainty(this.sumPDiff2, this.sumPDiff4, this.count);
        const rms = Math.sqrt(mse[0]);
        s += sprintf("    %6.3lf ± %6.3lf %%", 100.0 * rms, 100.0 * ((0.5 / rms) * mse[1]));
        const top = (1 * this.nSameTop) / this.count;
        s += sprintf("    %6.3lf ± %6.3lf %%", 100.0 * top, 100.0 * Math.sqrt((top * (1 - top)) / (this.count - 1)));
        return `${s}\n`;
    }

    /** The final blocks; "" when fewer than 100 values (the reference prints nothing then). */
    finalReport(): string {
        if (this.count < 100) return "";
        const kv = Float32Array.from(this.kldValues).sort();
        const pv = Float32Array.from(this.pDiffValues).sort();
        const lines: string[] = ["====== Perplexity statistics ======"];
        const logPpl = meanAndUncertainty(this.sumNll, this.sumNll2, this.count);
        const ppl = Math.exp(logPpl[0]);
        const pplUnc = ppl * logPpl[1];
        lines.push(sprintf("Mean PPL(Q)                   : %10.6lf ± %10.6lf", ppl, pplUnc));
        const logBase = meanAndUncertainty(this.sumNllBase, this.sumNllBase2, this.count);
        const pplBase = Math.exp(logBase[0]);
        const pplBaseUnc = pplBase * logBase[1];
        lines.push(sprintf("Mean PPL(base)                : %10.6lf ± %10.6lf", pplBase, pplBaseUnc));
        const cov = covariance(this.sumNll, this.sumNllBase, this.sumNllNllBase, this.count);
        lines.push(sprintf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%", (100.0 * cov) / (logPpl[1] * logBase[1])));
        const ratio = logPpl[0] - logBase[0];
        const ratioUnc = Math.sqrt(logPpl[1] * logPpl[1] + logBase[1] * logBase[1] - 2.0 * cov);
        lines.push(sprintf("Mean ln(PPL(Q)/PPL(base))     : %10.6lf ± %10.6lf", ratio, ratioUnc));
        const r = Math.exp(ratio);
        lines.push(sprintf("Mean PPL(Q)/PPL(base)         : %10.6lf ± %10.6lf", r, r * ratioUnc));
        const pplCov = ppl * pplBase * cov;
        const diffUnc = Math.sqrt(pplUnc * pplUnc + pplBaseUnc * pplBaseUnc - 2.0 * pplCov);
        lines.push(sprintf("Mean PPL(Q)-PPL(base)         : %10.6lf ± %10.6lf", ppl - pplBase, diffUnc), "");

        lines.push("====== KL divergence statistics ======");
        const kl = meanAndUncertainty(this.sumKld, this.sumKld2, this.count);
        lines.push(sprintf("Mean    KLD: %10.6lf ± %10.6lf", kl[0], kl[1]));
        lines.push(sprintf("Maximum KLD: %10.6f", kv[kv.length - 1]!));
        for (const [label, q] of [["99.9%", 0.999], ["99.0%", 0.99], ["95.0%", 0.95], ["90.0%", 0.9]] as const) {
            lines.push(sprintf("%s   KLD: %10.6f", label, percentile(kv, q)));
        }
        lines.push(sprintf("Median  KLD: %10.6f", median(kv)));
        for (const [label, q] of [["10.0%", 0.1], [" 5.0%", 0.05], [" 1.0%", 0.01], [" 0.1%", 0.001]] as const) {
            lines.push(sprintf("%s   KLD: %10.6f", label, percentile(kv, q)));
        }
        lines.push(sprintf("Minimum KLD: %10.6f", kv[0]!), "");

        lines.push("====== Token probability statistics ======");
        const pd = meanAndUncertainty(this.sumPDiff, this.sumPDiff2, this.count);
        lines.push(sprintf("Mean    Δp: %6.3lf ± %5.3lf %%", 100.0 * pd[0], 100.0 * pd[1]));
        lines.push(sprintf("Maximum Δp: %6.3lf%%", 100.0 * pv[pv.length - 1]!));
        for (const [label, q] of [["99.9%", 0.999], ["99.0%", 0.99], ["95.0%", 0.95], ["90.0%", 0.9], ["75.0%", 0.75]] as const) {
            lines.push(sprintf("%s   Δp: %6.3lf%%", label, 100.0 * percentile(pv, q)));
        }
        lines.push(sprintf("Median  Δp: %6.3lf%%", 100.0 * median(pv)));
        for (const [label, q] of [["25.0%", 0.25], ["10.0%", 0.1], [" 5.0%", 0.05], [" 1.0%", 0.01], [" 0.1%", 0.001]] as const) {
            lines.push(sprintf("%s   Δp: %6.3lf%%", label, 100.0 * percentile(pv, q)));
        }
        lines.push(sprintf("Minimum Δp: %6.3lf%%", 100.0 * pv[0]!));
        const mse = meanAndUncertainty(this.sumPDiff2, this.sumPDiff4, this.count);
        const rms = Math.sqrt(mse[0]);
        lines.push(sprintf("RMS Δp    : %6.3lf ± %5.3lf %%", 100.0 * rms, 100.0 * ((0.5 / rms) * mse[1])));
        const top = (1.0 * this.nSameTop) / this.count;
        lines.push(sprintf("Same top p: %6.3lf ± %5.3lf %%", 100.0 * top, 100.0 * Math.sqrt((top * (1.0 - top)) / (this.count - 1))));
        return `${lines.join("\n")}\n`;
    }
}

/** Printed once before the first chunk line (after the ETA line on stderr). */
export const KLD_CHUNK_HEADER =
    "\nchunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n";

/** Linear interpolation at fraction·(N−1) in f32, as the reference's lambda (values sorted ascending). */
export function percentile(values: Float32Array | readonly number[], fraction: number): number {
    const fr = f(fraction);
    if (fr <= 0) return values[0]!;
    if (fr >= 1) return values[values.length - 1]!;
    let p = f(fr * (values.length - 1));
    const ip = Math.trunc(p);
    p = f(p - ip);
    const a = values[ip]!;
    const b = values[Math.min(ip + 1, values.length - 1)]!;
    return f(f(f(1 - p) * a) + f(p * b));
}

/** Mean of the two middle values (f32) for an even count. */
export function median(values: Float32Array | readonly number[]): number {
    const n = values.length;
    return n % 2 === 0 ? f(0.5 * f(values[n / 2]! + values[n / 2 - 1]!)) : values[Math.floor(n / 2)]!;
}

/** Full stdout of a KLD run from per-chunk token lists. */
export function formatKldRun(chunks: readonly (readonly KldToken[])[]): string {
    const acc = new KldAccumulator();
    let s = KLD_CHUNK_HEADER;
    chunks.forEach((toks, i) => {
        for (const t of toks) acc.add(t);
        s += acc.chunkLine(i + 1);
    });
    return `${s}\n${acc.finalReport()}`;
}
