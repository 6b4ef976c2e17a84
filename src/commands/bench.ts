// `ikl bench`: llama-bench compatible (spec/cli.md §5): every value option takes a comma-separated list (and may
// be repeated); the cross product runs in the reference's order and the md/csv/json/jsonl report goes to stdout
// byte-compatible with the reference's (report.ts). t/s comes from Rust compute time; --wall adds end-to-end
// rates on stderr. -ngl/-sm/-mg/-ts are swept lists, -ot/--n-cpu-moe rules apply to every test (placement through
// engine/placement-open.ts, as `ikl run` does); without CUDA the layer options are ignored like a CPU build's.
// The driver is src/bench/run-bench.ts.
import { Command, InvalidArgumentError, Option } from "commander";
import { runBench } from "../bench/run-bench.js";
import { withSigint } from "../ui/sigint.js";
import { benchDefaults, type BenchParams } from "../bench/params.js";
import { systemInfo } from "../engine/index.js";
import { KV_CACHE_TYPES } from "../options/context.js";
import { collectPlacementRules, parseSer, type Rule } from "../options/parsers.js";
import { refuseUnsupported } from "../options/support.js";

function list<T>(parse: (v: string) => T) {
    return (value: string, previous: T[] | undefined): T[] => [...(previous ?? []), ...value.split(",").map((v) => parse(v.trim()))];
}
function int(v: string): number {
    if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`'${v}' is not an integer`);
    return Number(v);
}
function nonNegative(v: string): number {
    const n = int(v);
    if (n < 0) throw new InvalidArgumentError(`'${v}' must be >= 0`);
    return n;
}
function bool(v: string): boolean {
    if (["1", "on", "true"].includes(v)) return true;
    if (["0", "off", "false"].includes(v)) return false;
    throw new InvalidArgumentError(`'${v}' is not 0 or 1`);
}
function mla(v: string): number {
    const n = int(v);
    if (n < 0 || n > 3) throw new InvalidArgumentError(`'${v}' is not an MLA mode 0..3`);
    return n;
}
function kvType(v: string): string {
    if (!(KV_CACHE_TYPES as readonly string[]).includes(v)) throw new InvalidArgumentError(`'${v}' is not one of ${KV_CACHE_TYPES.join(", ")}`);
    return v;
}
/** -ser "K1,t1,K2,t2,…" (llama-bench's string_split_pairs): a list of smart-expert-reduction settings. */
function serPairs(value: string, previous: [number, number][] | undefined): [number, number][] {
    const v = value.split(",");
    if (v.length % 2 !== 0) throw new InvalidArgumentError(`'${value}' is not a list of Kmin,t pairs`);
    const out: [number, number][] = [];
    for (let i = 0; i < v.length; i += 2) {
        const s = parseSer(`${v[i]},${v[i + 1]}`);
        out.push([s.kMin, s.threshold]);
    }
    return [...(previous ?? []), ...out];
}
/** -ts "3/1,1/1": one split per comma item, devices separated by '/' or ';' (llama-bench). */
function splits(value: string, previous: number[][] | undefined): number[][] {
    const out = value.split(",").map((item) => {
        const v = item.split(/[;/]+/).map((x) => Number(x.trim()));
        if (v.some((x) => !Number.isFinite(x) || x < 0)) throw new InvalidArgumentError(`'${item}' is not a list of non-negative proportions such as 3/1`);
        return v;
    });
    return [...(previous ?? []), ...out];
}
function splitMode(v: string): "none" | "layer" {
    if (v === "none" || v === "layer") return v;
    throw new InvalidArgumentError(`'${v}' is not a split mode this build runs (none, layer)`);
}
/** llama-bench --n-cpu-moe N: the routed experts of the FIRST N layers on the CPU (its add_cpu_buft_overrides). */
function cpuMoeRules(n: number): Rule<string>[] {
    return Array.from({ length: n }, (_, l) => {
        const pattern = `blk\\.${l}\\.(ffn_(up|down|gate)_exps\\.weight)`;
        return { source: `${pattern}=CPU`, pattern: new RegExp(pattern), target: "CPU" };
    });
}
function pair(value: string, previous: [number, number][] | undefined): [number, number][] {
    const p = value.split(",").map(int);
    if (p.length !== 2) throw new InvalidArgumentError(`'${value}' is not a pp,tg pair`);
    return [...(previous ?? []), [p[0]!, p[1]!]];
}

export function parseBenchParams(raw: Record<string, unknown>, d: BenchParams): BenchParams {
    const get = <T>(k: string, fallback: T): T => (raw[k] as T | undefined) ?? fallback;
    const threads = get<number[] | undefined>("threads", undefined);
    const rules = [...get<Rule<string>[]>("overrideTensor", []), ...cpuMoeRules(get<number>("nCpuMoe", 0))];
    // printed as llama-bench does: pattern=buffer-type name, comma-joined
    const printed = rules.map((r) => `${r.source.slice(0, r.source.lastIndexOf("="))}=${r.target}`).join(",");
    return {
        ...d,
        model: get("model", d.model), nPrompt: get("nPrompt", d.nPrompt), nGen: get("nGen", d.nGen), nPg: get("pg", d.nPg), nGp: get("gp", d.nGp),
        nBatch: get("batchSize", d.nBatch), nUbatch: get("ubatchSize", d.nUbatch), typeK: get("cacheTypeK", d.typeK), typeV: get("cacheTypeV", d.typeV),
        nThreads: threads === undefined ? d.nThreads : threads.map((t) => [t, t] as [number, number]), flashAttn: get("flashAttn", d.flashAttn),
        reps: get("repetitions", d.reps), warmup: get("warmup", d.warmup), ser: get("smartExpertReduction", d.ser), repack: get("runTimeRepack", d.repack),
        mlaAttn: get("mlaUse", d.mlaAttn), attnMaxBatch: get("attentionMaxBatch", d.attnMaxBatch), fmoe: get("fusedMoe", d.fmoe), ger: get("groupedExpertRouting", d.ger),
        nGpuLayers: get("nGpuLayers", d.nGpuLayers), splitMode: get("splitMode", d.splitMode), mainGpu: get("mainGpu", d.mainGpu),
        tensorSplit: get("tensorSplit", d.tensorSplit), overrideTensor: printed, overrideRules: rules, printOverrides: get("printOverrides", d.printOverrides)
    };
}

export function benchCommand(): Command {
    const cmd = new Command("bench").description("prompt-processing and generation speed over a grid of settings, like llama-bench");
    const g = "Benchmark (comma-separated lists; options may be repeated):";
    const add = (o: Option): void => void cmd.addOption(o.helpGroup(g));
    add(new Option("-m, --model <FILE>", "GGUF model; repeatable").argParser(list(String)));
    add(new Option("-p, --n-prompt <N,...>", "prompt-processing test sizes (0 = none) [512]").argParser(list(int)));
    add(new Option("-n, --n-gen <N,...>", "generation test sizes (0 = none) [128]").argParser(list(int)));
    add(new Option("--pg <PP,TG>", "prompt then generation, combined rate (ppP+tgG); repeatable").argParser(pair));
    add(new Option("--gp <PP,TG>", "generation rate after an untimed prompt (tgG@ppP); repeatable").argParser(pair));
    add(new Option("-b, --batch-size <N,...>", "logical batch [2048]").argParser(list(int)));
    add(new Option("--ubatch-size <N,...>", "physical micro-batch [512]").argParser(list(int)));
    add(new Option("--cache-type-k <T,...>", "K cache type [f16]").argParser(list(kvType)));
    add(new Option("--cache-type-v <T,...>", "V cache type [f16]").argParser(list(kvType)));
    add(new Option("-t, --threads <N,...>", "threads [all cores]").argParser(list(int)));
    add(new Option("--flash-attn <0|1,...>", "flash attention [1]").argParser(list(bool)));
    add(new Option("-r, --repetitions <N>", "measured repetitions per test [5]").argParser(int));
    add(new Option("-w, --warmup <0|1>", "one warm-up run per test [1]").argParser(bool));
    add(new Option("--mla-use <0..3,...>", "MLA attention mode (deepseek2; 0 for other models) [3]").argParser(list(mla)));
    add(new Option("--attention-max-batch <MiB,...>", "attention max batch: K·Q intermediate cap in MiB, 0 = none [0]").argParser(list(int)));
    add(new Option("--fused-moe [0|1]", "fused MoE experts [1]").argParser(bool));
    add(new Option("--no-fused-moe", "the reference's unfused MoE op sequence"));
    add(new Option("--grouped-expert-routing [0|1]", "DeepSeek-V3 group-limited expert routing [0]").argParser(bool));
    add(new Option("--smart-expert-reduction <K,t,...>", "MoE smart expert reduction Kmin,t pairs [-1,0]").argParser(serPairs));
    add(new Option("--run-time-repack <0|1>", "repack CPU weights into row-interleaved _R4/_R8 layouts at load [0]").argParser(bool));
    const gpu = "GPU offload (lists are swept; without CUDA the layer options are ignored, as in a CPU build):";
    const addGpu = (o: Option): void => void cmd.addOption(o.helpGroup(gpu));
    addGpu(new Option("--n-gpu-layers <N,...>", "layers offloaded to the GPU [999]").argParser(list(int)));
    addGpu(new Option("--split-mode <none|layer,...>", "multi-GPU split [layer]").argParser(list(splitMode)));
    addGpu(new Option("--main-gpu <N,...>", "GPU for -sm none [0]").argParser(list(int)));
    addGpu(new Option("--tensor-split <a/b,...>", "per-GPU proportions, '/' between devices, ',' between values [by free memory]").argParser(splits));
    addGpu(new Option("--override-tensor <REGEX=DEV,...>", "place tensors matching REGEX on DEV (CPU, CUDA0, …) in every test; repeatable").argParser(collectPlacementRules));
    addGpu(new Option("--n-cpu-moe <N>", "routed experts of the first N layers on the CPU (llama-bench's rule)").argParser(nonNegative));
    addGpu(new Option("--print-overrides <0|1>", "show the ot column [0]").argParser(bool));
    add(new Option("--wall", "also measure end-to-end (wall-clock) t/s: a `wall t/s` column (md), samples_wall_ns/_ts (json, jsonl), a line per test on stderr"));
    cmd.addOption(new Option("-o, --output-format <FMT>", "stdout format").choices(["md", "csv", "json", "jsonl"]).default("md").helpGroup("Output:"));
    cmd.addOption(new Option("--json", "same as -o json").helpGroup("Output:"));
    cmd.addOption(new Option("-q, --quiet", "no logs on stderr").helpGroup("Output:"));
    return refuseUnsupported(cmd)
        .addHelpText("after", ["", "Examples:", "  ikl bench -m model.gguf", "  ikl bench -m model.gguf -p 512 -n 128 -t 4,8 -fa 0,1 -r 3", "  ikl bench -m a.gguf -m b.gguf -p 0 -n 0 -pg 512,128 -gp 4096,64 -o jsonl", "  ikl bench -m ds.gguf -mla 1,3 -fa 0,1 -amb 0,128 -fmoe 1", "  ikl bench -m ds.gguf -ngl 99 -ot exps=CPU -p 4096 -ub 4096"].join("\n"))
        .action(async (raw: Record<string, unknown>) => {
            const defaults = benchDefaults(systemInfo().threads);
            const quiet = raw["quiet"] === true;
            await withSigint((signal) => runBench({ params: parseBenchParams(raw, defaults), defaults, format: raw["json"] === true ? "json" : (raw["outputFormat"] as "md"), wall: raw["wall"] === true,
                out: (s) => void process.stdout.write(s), log: quiet ? () => undefined : (s) => void process.stderr.write(s), signal }));
        });
}
