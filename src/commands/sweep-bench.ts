// `ikl sweep-bench`: llama-sweep-bench compatible (spec/cli.md §6): PP and TG speed at growing KV depth, one row
// per n_ubatch step of -c. The table (ik's exact columns, so sweep-bench-plot.py keeps working) or the JSONL lines
// go to stdout; logs and the optional terminal chart go to stderr. `--plot` draws PP/TG panels as SVG or PNG,
// overlaying earlier runs' JSONL (`--compare`). The driver is src/bench/run-sweep.ts.
import { Command, Option } from "commander";
import { runSweep, type SweepOptions } from "../bench/run-sweep.js";
import { systemInfo } from "../engine/index.js";
import { withContextOptions, parseContextOptions, moeEngineOptions } from "../options/context.js";
import { withModelOptions, parseModelOptions } from "../options/model.js";
import { intInRange } from "../options/parsers.js";
import { refuseUnsupported } from "../options/support.js";
import { placementFor } from "../engine/placement-open.js";
import { withSigint } from "../ui/sigint.js";

function collect(value: string, previous: string[] | undefined): string[] {
    return [...(previous ?? []), value];
}

export function parseSweepOptions(raw: Record<string, unknown>): SweepOptions {
    const m = parseModelOptions(raw);
    const c = parseContextOptions(raw);
    const quiet = raw["quiet"] === true;
    return {
        model: m.model, nCtx: c.ctxSize, nBatch: c.batchSize, nUbatch: c.ubatchSize,
        nPredict: (raw["nPredict"] as number | undefined) ?? -1,
        nrep: (raw["nRepetitions"] as number | undefined) ?? 1,
        stride: (raw["sweepStride"] as number | undefined) ?? 1,
        warmup: raw["warmup"] !== false,
        warmupBatch: raw["warmupBatch"] === true,
        threads: m.threads, threadsBatch: m.threadsBatch, runTimeRepack: m.runTimeRepack, shownThreads: m.threads ?? systemInfo().threads,
        nGpuLayers: m.nGpuLayers, typeK: c.cacheTypeK, typeV: c.cacheTypeV, flashAttn: c.flashAttn,
        moe: moeEngineOptions(c),
        format: raw["json"] === true ? "json" : ((raw["outputFormat"] as "md" | "jsonl" | "json" | undefined) ?? "md"),
        memory: raw["sweepMemory"] === true,
        plot: raw["plot"] as string | undefined,
        label: raw["label"] as string | undefined,
        compare: (raw["compare"] as string[] | undefined) ?? [],
        out: (s) => void process.stdout.write(s),
        log: quiet ? () => undefined : (s) => void process.stderr.write(s),
        chart: (s) => void process.stderr.write(s)
    };
}

export function sweepBenchCommand(): Command {
    const cmd = new Command("sweep-bench").alias("sweep").description("PP/TG speed as the KV cache fills, like llama-sweep-bench");
    const g = "Sweep:";
    cmd.addOption(new Option("-n, --n-predict <N>", "TG tokens per step; <= 0 = n_ubatch/4").argParser(intInRange(-1, 1 << 20)).default(-1).helpGroup(g))
        .addOption(new Option("--n-repetitions <N>", "repetitions of the first row (N_KV = 0)").argParser(intInRange(1, 1000)).default(1).helpGroup(g))
        .addOption(new Option("--sweep-stride <N>", "measure every N-th row (the others only fill the cache)").argParser(intInRange(1, 1 << 20)).default(1).helpGroup(g))
        .addOption(new Option("--no-warmup", "skip the 1-token warm-up").helpGroup(g))
        .addOption(new Option("--warmup-batch", "extra warm-up with a full ubatch").helpGroup(g))
        .addOption(new Option("--sweep-memory", "add RSS high-water (MiB) and CUDA memory delta columns").helpGroup(g))
        .addOption(new Option("-o, --output-format <FMT>", "stdout: the reference's markdown table, its JSONL rows, or one JSON array of them").choices(["md", "jsonl", "json"]).default("md").helpGroup("Output:"))
        .addOption(new Option("--json", "same as -o json").helpGroup("Output:"))
        .addOption(new Option("--plot <FILE.svg|FILE.png|term>", "draw S_PP and S_TG against N_KV").helpGroup("Output:"))
        .addOption(new Option("--label <L>", "legend label of this run (default: the model file name)").helpGroup("Output:"))
        .addOption(new Option("--compare <[LABEL=]RUN.jsonl>", "overlay an earlier run's JSONL in the plot; repeatable").argParser(collect).helpGroup("Output:"))
        .addOption(new Option("-q, --quiet", "no logs on stderr").helpGroup("Output:"));
    withModelOptions(cmd);
    withContextOptions(cmd);
    return refuseUnsupported(cmd)
        .addHelpText("after", ["", "Examples:", "  ikl sweep-bench -m model.gguf -c 8704 -ub 512 -t 16", "  ikl sweep-bench -m q4.gguf -c 4608 -o jsonl > q4.jsonl",
            "  ikl sweep-bench -m q8.gguf -c 4608 --plot cmp.png --label q8 --compare q4=q4.jsonl", "", "-c defaults to the model's training context, as in the reference: pass it explicitly."].join("\n"))
        .action(async (raw: Record<string, unknown>) => {
            const o = parseSweepOptions(raw);
            // -ngl/-ot/… → an explicit device per tensor (engine/placement.ts), as in `ikl run`
            const shape = { ctxSize: o.nCtx, ubatchSize: o.nUbatch, cacheTypeK: o.typeK, cacheTypeV: o.typeV };
            o.placement = await placementFor(o.model, parseModelOptions(raw), shape, (w) => void process.stderr.write(`${w}\n`));
            await withSigint((signal) => runSweep({ ...o, signal }));
        });
}
