// The `ikl sweep-bench` driver: runs sweep.ts's plan on the engine and writes the reference's table or JSONL.
// T_PP / T_TG are sums of the Rust forward time (`computeUs`) of the decode calls inside each timed loop, so JS
// overhead does not count; the wall time of the whole sweep goes to stderr next to it (STYLE §1.4 rule 6).
// Tokens are pseudo-random like the reference's std::rand() % n_vocab; no logits cross the boundary.
// Plotting (--plot FILE.svg|FILE.png|term, --compare) goes through plot.ts.
// Mirrors ik_llama.cpp examples/sweep-bench/sweep-bench.cpp @ 8337e4cd3.
import { readFileSync, writeFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { Context, Model, systemInfo } from "../engine/index.js";
import type { MoeEngineOptions } from "../options/context.js";
import { IklError } from "../engine/errors.js";
import { paddedCtx } from "../engine/generate.js";
import { interrupted, isCancelled } from "../ui/sigint.js";
import { renderSweepPng, renderSweepSvg, renderSweepTerm, type PlotSeries } from "./plot.js";
import { parseSweepJsonl, sweepJsonlRow, sweepPlan, sweepRates, sweepTableHeader, sweepTableRow, type DecodeOp, type SweepHeader, type SweepPoint } from "./sweep.js";

export interface SweepOptions {
    model: string;
    nCtx: number; // 0 = model's context_length
    nBatch: number;
    nUbatch: number;
    nPredict: number;
    nrep: number;
    stride: number;
    warmup: boolean;
    warmupBatch: boolean;
    threads: number | undefined; // undefined: the engine's default
    threadsBatch: number | undefined;
    runTimeRepack?: boolean; // -rtr
    /** Tensor name → device for the tensors placed off the CPU (engine/placement-open.ts placementFor). */
    placement?: Record<string, string>;
    /** What the header prints for n_threads / n_threads_batch. */
    shownThreads: number;
    nGpuLayers: number;
    typeK: string;
    typeV: string;
    flashAttn: "on" | "off" | "auto";
    /** MoE context options (fused MoE, -ser, -ger); absent = the engine defaults. */
    moe?: MoeEngineOptions;
    /** md: the reference's table; jsonl: its JSONL rows as measured; json: one array of those rows at the end. */
    format: "md" | "jsonl" | "json";
    /** --sweep-memory: RSS high-water mark and CUDA memory in use since the start, per row. */
    memory: boolean;
    plot: string | undefined;
    label: string | undefined;
    compare: string[];
    out: (s: string) => void;
    log: (s: string) => void;
    /** Where `--plot term` draws (stderr, even with --quiet: it was asked for). */
    chart: (s: string) => void;
    /** Ctrl-C: stop the row in flight; the rows printed so far stand and the plot is drawn from them. */
    signal?: AbortSignal;
}

/** std::rand()-like stream (glibc TYPE_0 LCG); the values only need to be valid token ids. */
function rng(seed = 1): () => number {
    let s = seed >>> 0;
    return () => {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        return s >>> 1;
    };
}

async function decodeOp(ctx: Context, op: DecodeOp, nVocab: number, bos: number, rand: () => number, signal?: AbortSignal): Promise<number> {
    const tokens = new Uint32Array(op.n);
    const pos = new Int32Array(op.n);
    for (let i = 0; i < op.n; i++) {
        tokens[i] = op.random ? rand() % nVocab : bos;
        pos[i] = op.pos + i;
    }
    const outRows = op.logits === "all" ? Int32Array.from(pos, (_, i) => i) : op.logits === "last" ? Int32Array.of(op.n - 1) : new Int32Array(0);
    const r = await ctx.decode({ tokens, pos, seq: new Int32Array(op.n), outRows, signal });
    return r.computeUs;
}

/** The process's peak resident set in MiB (getrusage ru_maxrss, as the reference reads it). */
function rssHwmMib(): number {
    return process.resourceUsage().maxRSS / 1024;
}

/** Device memory taken since `start()`, summed over CUDA devices (MiB); undefined without CUDA, as the reference. */
function vramTracker(): () => number | undefined {
    const free = (): number[] => systemInfo().cuda.devices.map((d) => d.freeBytes);
    const base = free();
    if (base.length === 0) return () => undefined;
    return () => free().reduce((s, f, i) => s + Math.max(0, base[i]! - f), 0) / 2 ** 20;
}

export async function runSweep(o: SweepOptions): Promise<SweepPoint[]> {
    const vram = o.memory ? vramTracker() : () => undefined;
    const model = await Model.open(o.model, { threads: o.threads, runTimeRepack: o.runTimeRepack, placement: o.placement });
    const requested = o.nCtx === 0 ? model.meta.nCtxTrain : o.nCtx;
    const ctx = await Context.create(model, {
        nCtx: paddedCtx(requested, o.flashAttn !== "off"), nBatch: Math.min(o.nBatch, requested), nUbatch: o.nUbatch, threads: o.threads,
        threadsBatch: o.threadsBatch, typeK: o.typeK, typeV: o.typeV, flashAttn: o.flashAttn, ...o.moe
    });
    const h: SweepHeader = { nKvMax: ctx.nCtx, nBatch: o.nBatch, nUbatch: o.nUbatch, flashAttn: o.flashAttn === "off" ? 0 : 1, nGpuLayers: o.nGpuLayers, nThreads: o.threads ?? o.shownThreads, nThreadsBatch: o.threadsBatch ?? o.threads ?? o.shownThreads };
    const plan = sweepPlan({ nKvMax: ctx.nCtx, nBatch: Math.min(o.nBatch, requested), nUbatch: o.nUbatch, nPredict: o.nPredict, nrep: o.nrep, stride: o.stride, warmup: o.warmup, warmupBatch: o.warmupBatch });
    const nVocab = model.meta.nVocab;
    const bos = model.meta.bos ?? 0;
    const rand = rng();
    const run = async (ops: typeof plan.warmup, timers?: Record<string, number>): Promise<void> => {
        let section = "";
        for (const op of ops) {
            if (op.op === "timer") section = op.what === "tg-start" ? "tg" : op.what === "pp-start" ? "pp" : "";
            else if (op.op === "drop") {
                if (op.clear === true) ctx.kvClear();
                else ctx.kvRemove(-1, op.from, -1);
            } else {
                const us = await decodeOp(ctx, op, nVocab, bos, rand, o.signal);
                if (timers !== undefined && section !== "") timers[section] = (timers[section] ?? 0) + us;
            }
        }
    };
    const points: SweepPoint[] = [];
    const jsonRows: string[] = [];
    const runRows = async (): Promise<void> => {
        for (const row of plan.rows) {
            const timers: Record<string, number> = {};
            await run(row.ops, timers);
            if (!row.measure) continue;
            const m = { pp: plan.pp, tg: plan.tg, nKv: row.nKv, tPpUs: timers["pp"] ?? 0, tTgUs: timers["tg"] ?? 0, nrep: row.nrep,
                ...(o.memory ? { rssHwmMib: rssHwmMib(), vramDeltaMib: vram() } : {}) };
            if (o.format === "json") jsonRows.push(sweepJsonlRow(h, m, o.memory).trimEnd());
            else o.out(o.format === "md" ? sweepTableRow(m, o.memory) : sweepJsonlRow(h, m, o.memory));
            const r = sweepRates(m);
            points.push({ nKv: row.nKv, pp: plan.pp, tg: plan.tg, tPp: r.tPp, speedPp: r.speedPp, tTg: r.tTg, speedTg: r.speedTg });
        }
    };
    const wall0 = performance.now();
    try {
        await run(plan.warmup);
        if (o.format === "md") o.out(sweepTableHeader(h, o.memory));
        await runRows();
    } catch (e) {
        if (!isCancelled(e)) throw e; // Ctrl-C: the rows printed so far stand
    }
    if (o.format === "json") o.out(`[\n${jsonRows.map((r) => `  ${r}`).join(",\n")}\n]\n`);
    const computeS = points.reduce((s, p) => s + p.tPp + p.tTg, 0);
    o.log(`\nsweep-bench: ${points.length} rows, Rust compute ${computeS.toFixed(3)} s of ${((performance.now() - wall0) / 1000).toFixed(3)} s wall\n`);
    if (o.plot !== undefined && points.length > 0) await plot(o, points);
    if (o.signal?.aborted === true) throw interrupted("sweep-bench");
    return points;
}

/** --plot: this run (labelled --label or the model file name) overlaid with each --compare JSONL (labelled by file name). */
async function plot(o: SweepOptions, points: SweepPoint[]): Promise<void> {
    const file = o.plot ?? "term";
    const series: PlotSeries[] = [{ label: o.label ?? basename(o.model, ".gguf"), points }];
    for (const file of o.compare) {
        const [label, path] = file.includes("=") ? (file.split("=", 2) as [string, string]) : [basename(file, extname(file)), file];
        let text: string;
        try {
            text = readFileSync(path, "utf8");
        } catch (e) {
            throw new IklError("IKL_E_IO", `${path}: cannot read --compare file: ${(e as Error).message}`);
        }
        series.push({ label, points: parseSweepJsonl(text) });
    }
    if (file === "term") {
        o.chart(renderSweepTerm(series));
        return;
    }
    const svg = renderSweepSvg(series, { title: `sweep-bench, n_ubatch = ${o.nUbatch}` });
    writeFileSync(file, file.toLowerCase().endsWith(".png") ? await renderSweepPng(svg) : svg);
    o.log(`sweep-bench: wrote ${file}\n`);
}
