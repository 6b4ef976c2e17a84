// sweep-bench as pure functions: the step plan (which N_KV rows, what is decoded where, which cache ranges are
// dropped), the per-row arithmetic in f32 as the reference does it, and the markdown table / JSONL lines.
// The driver that runs the plan on the engine lives elsewhere. Mirrors ik_llama.cpp
// examples/sweep-bench/sweep-bench.cpp @ 8337e4cd3 (non-checkpoint path; recurrent models checkpoint instead).
import { sprintf } from "../ui/printf.js";

export interface SweepConfig {
    nKvMax: number;
    nBatch: number;
    nUbatch: number;
    /** -n; <= 0 means ub/4. */
    nPredict: number;
    /** -nrep: repetitions of the first measured row only. */
    nrep: number;
    /** --sweep-stride: measure every N-th row. */
    stride: number;
    warmup: boolean;
    warmupBatch: boolean;
}

/** One decode call: tokens at positions [pos, pos+n), logits requested for the last only (pp) or every one (tg). */
export interface DecodeOp {
    op: "decode";
    pos: number;
    n: number;
    logits: "last" | "all" | "none";
    random: boolean;
}
/** llama_kv_cache_seq_rm(ctx, 0, from, -1) or a full clear (from = 0, clear = true). */
export interface DropOp {
    op: "drop";
    from: number;
    clear?: boolean;
}
export interface TimerOp {
    op: "timer";
    what: "tg-start" | "tg-end" | "pp-start" | "pp-end";
}
export type SweepOp = DecodeOp | DropOp | TimerOp;

export interface SweepRow {
    nKv: number;
    measure: boolean;
    nrep: number;
    ops: SweepOp[];
}

export interface SweepPlan {
    pp: number;
    tg: number;
    warmup: SweepOp[];
    rows: SweepRow[];
}

/** Splits n tokens at pos into decode calls of at most `chunk` tokens (decode_helper); logits flag per call. */
function chunked(pos: number, n: number, chunk: number, logits: "last" | "all"): DecodeOp[] {
    const ops: DecodeOp[] = [];
    for (let i = 0; i < n; i += chunk) {
        const m = Math.min(chunk, n - i);
        const last = i + m === n;
        ops.push({ op: "decode", pos: pos + i, n: m, logits: logits === "all" ? "all" : last ? "last" : "none", random: true });
    }
    return ops;
}

export function sweepPlan(c: SweepConfig): SweepPlan {
    const pp = c.nUbatch;
    const tg = c.nPredict > 0 ? c.nPredict : Math.floor(c.nUbatch / 4);
    const nrepAll = Math.max(1, c.nrep);
    const stride = Math.max(1, c.stride);
    const warmup: SweepOp[] = [];
    if (c.warmup) warmup.push({ op: "decode", pos: 0, n: 1, logits: "none", random: false });
    if (c.warmupBatch) {
        warmup.push({ op: "drop", from: c.nUbatch });
        warmup.push(...chunked(0, c.nUbatch, c.nUbatch, "last").map((o) => ({ ...o, logits: "none" as const })));
    }
    warmup.push({ op: "drop", from: 0, clear: true });
    const rows: SweepRow[] = [];
    let iLoop = 0;
    for (let nKv = 0; nKv < c.nKvMax; nKv += c.nUbatch) {
        const measure = iLoop % stride === 0;
        const nrep = measure && iLoop < 1 ? nrepAll : 1;
        const ops: SweepOp[] = [];
        if (measure) {
            ops.push({ op: "timer", what: "tg-start" });
            for (let r = 0; r < nrep; r++) {
                ops.push({ op: "drop", from: nKv });
                for (let i = 0; i < tg; i++) ops.push({ op: "decode", pos: nKv + i, n: 1, logits: "all", random: true });
            }
            ops.push({ op: "timer", what: "tg-end" }, { op: "timer", what: "pp-start" });
            for (let r = 0; r < nrep; r++) {
                ops.push({ op: "drop", from: nKv });
                ops.push(...chunked(nKv, pp, c.nBatch, "last"));
            }
            ops.push({ op: "timer", what: "pp-end" });
        } else {
            // unmeasured rows only extend the cache (the reference still draws tg random numbers to stay aligned)
            ops.push(...chunked(nKv, pp, c.nBatch, "last"));
        }
        rows.push({ nKv, measure, nrep, ops });
        iLoop++;
    }
    return { pp, tg, warmup, rows };
}

/** One measured row; times are the integer microsecond deltas around the TG and PP loops. */
export interface SweepMeasurement {
    pp: number;
    tg: number;
    nKv: number;
    tPpUs: number;
    tTgUs: number;
    nrep: number;
    rssHwmMib?: number;
    vramDeltaMib?: number;
}

/** The f32 arithmetic: t = (µs / 1e6f) / nrep; speed = n / t. */
export function sweepRates(m: SweepMeasurement): { tPp: number; tTg: number; speedPp: number; speedTg: number } {
    const f = Math.fround;
    const tPp = f(f(f(m.tPpUs) / 1e6) / m.nrep);
    const tTg = f(f(f(m.tTgUs) / 1e6) / m.nrep);
    return { tPp, tTg, speedPp: f(f(m.pp) / tPp), speedTg: f(f(m.tg) / tTg) };
}

export interface SweepHeader {
    nKvMax: number;
    nBatch: number;
    nUbatch: number;
    flashAttn: number;
    nGpuLayers: number;
    nThreads: number;
    nThreadsBatch: number;
}

/** "\nmain: n_kv_max = …\n\n" followed by the two table header lines. */
export function sweepTableHeader(h: SweepHeader, memory = false): string {
    let s = sprintf("\n%s: n_kv_max = %d, n_batch = %d, n_ubatch = %d, flash_attn = %d, n_gpu_layers = %d, " +
        "n_threads = %u, n_threads_batch = %u\n\n",
        "main", h.nKvMax, h.nBatch, h.nUbatch, h.flashAttn, h.nGpuLayers, h.nThreads, h.nThreadsBatch);
    const d6 = "------", d8 = "--------", d10 = "----------";
    if (memory) {
        s += sprintf("|%6s | %6s | %6s | %8s | %8s | %8s | %8s | %10s | %10s |\n",
            "PP", "TG", "N_KV", "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "RSS HWM", "VRAM delta");
        s += sprintf("|%6s-|-%6s-|-%6s-|-%8s-|-%8s-|-%8s-|-%8s-|-%10s-|-%10s-|\n", d6, d6, d6, d8, d8, d8, d8, d10, d10);
    } else {
        s += sprintf("|%6s | %6s | %6s | %8s | %8s | %8s | %8s |\n", "PP", "TG", "N_KV", "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s");
        s += sprintf("|%6s-|-%6s-|-%6s-|-%8s-|-%8s-|-%8s-|-%8s-|\n", d6, d6, d6, d8, d8, d8, d8);
    }
    return s;
}

function mib(v: number | undefined, prec: number, missing: string): string {
    return v === undefined || v < 0 ? missing : sprintf("%.*f", prec, v);
}

export function sweepTableRow(m: SweepMeasurement, memory = false): string {
    const r = sweepRates(m);
    const base = sprintf("|%6d | %6d | %6d | %8.3f | %8.2f | %8.3f | %8.2f |", m.pp, m.tg, m.nKv, r.tPp, r.speedPp, r.tTg, r.speedTg);
    if (!memory) return `${base}\n`;
    return `${base}${sprintf(" %10s | %10s |", mib(m.rssHwmMib, 1, "n/a"), mib(m.vramDeltaMib, 1, "n/a"))}\n`;
}

export function sweepJsonlRow(h: SweepHeader, m: SweepMeasurement, memory = false): string {
    const r = sweepRates(m);
    let s = sprintf('{"n_kv_max": %d, "n_batch": %d, "n_ubatch": %d, "flash_attn": %d, "n_gpu_layers": %d, ' +
        '"n_threads": %u, "n_threads_batch": %u, ',
        h.nKvMax, h.nBatch, h.nUbatch, h.flashAttn, h.nGpuLayers, h.nThreads, h.nThreadsBatch);
    s += sprintf('"pp": %d, "tg": %d, "n_kv": %d, "t_pp": %f, "speed_pp": %f, "t_tg": %f, "speed_tg": %f',
        m.pp, m.tg, m.nKv, r.tPp, r.speedPp, r.tTg, r.speedTg);
    if (memory) s += `, "rss_hwm_mib": ${mib(m.rssHwmMib, 3, "null")}, "vram_delta_mib": ${mib(m.vramDeltaMib, 3, "null")}`;
    return `${s} }\n`;
}

/** A parsed JSONL row (ours or the reference's), as the plotter and comparisons consume it. */
export interface SweepPoint {
    nKv: number;
    pp: number;
    tg: number;
    tPp: number;
    speedPp: number;
    tTg: number;
    speedTg: number;
}

/** Parses sweep-bench JSONL (blank and non-JSON lines, such as interleaved logs, are skipped). */
export function parseSweepJsonl(text: string): SweepPoint[] {
    const out: SweepPoint[] = [];
    for (const line of text.split("\n")) {
        const t = line.trim();
        if (!t.startsWith("{")) continue;
        const o = JSON.parse(t) as Record<string, number>;
        if (typeof o["n_kv"] !== "number") continue;
        out.push({
            nKv: o["n_kv"], pp: o["pp"] ?? 0, tg: o["tg"] ?? 0, tPp: o["t_pp"] ?? 0, speedPp: o["speed_pp"] ?? 0,
            tTg: o["t_tg"] ?? 0, speedTg: o["speed_tg"] ?? 0
        });
    }
    return out;
}

/** Parses the markdown table rows (`|   512 |    128 |      0 | …`), e.g. from a pasted log. */
export function parseSweepTable(text: string): SweepPoint[] {
    const out: SweepPoint[] = [];
    for (const line of text.split("\n")) {
        const cells = line.split("|").slice(1, -1).map((c) => c.trim());
        if (cells.length < 7 || !/^\d+$/.test(cells[0] ?? "")) continue;
        const n = cells.map(Number);
        out.push({ pp: n[0]!, tg: n[1]!, nKv: n[2]!, tPp: n[3]!, speedPp: n[4]!, tTg: n[5]!, speedTg: n[6]! });
    }
    return out;
}
