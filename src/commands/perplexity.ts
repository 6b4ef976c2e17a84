// `ikl perplexity`: llama-perplexity compatible (spec/cli.md §7). The running values `[1]…,[2]…,` and the
// `Final estimate: PPL over …` line go to stdout exactly as the reference prints them (so existing regexes keep
// working); progress and the ETA line go to stderr. `--kl-divergence-base FILE` alone writes the reference's base
// file; with `--kl-divergence` it reads one (ours or the reference's) and prints the KLD statistics.
// The driver is src/bench/run-perplexity.ts.
import { Command, Option } from "commander";
import { runStridedPerplexity } from "../bench/run-ppl-stride.js";
import { runPerplexity, type PerplexityOptions } from "../bench/run-perplexity.js";
import { withSigint } from "../ui/sigint.js";
import { withContextOptions, parseContextOptions, moeEngineOptions } from "../options/context.js";
import { withModelOptions, parseModelOptions } from "../options/model.js";
import { intInRange } from "../options/parsers.js";
import { refuseUnsupported } from "../options/support.js";
import { placementFor } from "../engine/placement-open.js";

export function parsePerplexityOptions(raw: Record<string, unknown>): PerplexityOptions {
    const m = parseModelOptions(raw);
    const c = parseContextOptions(raw);
    const quiet = raw["quiet"] === true;
    return {
        model: m.model,
        file: raw["file"] as string | undefined,
        nCtx: c.ctxSize === 0 ? 512 : c.ctxSize,
        nBatch: c.batchSize,
        nUbatch: c.ubatchSize,
        nChunks: (raw["chunks"] as number | undefined) ?? -1,
        threads: m.threads,
        threadsBatch: m.threadsBatch,
        runTimeRepack: m.runTimeRepack,
        typeK: c.cacheTypeK,
        typeV: c.cacheTypeV,
        flashAttn: c.flashAttn,
        moe: moeEngineOptions(c),
        kldBase: raw["klDivergenceBase"] as string | undefined,
        kld: raw["klDivergence"] === true,
        outputType: (raw["pplOutputType"] as 0 | 1 | undefined) ?? 0,
        json: raw["outputFormat"] === "json" || raw["json"] === true,
        out: (s) => void process.stdout.write(s),
        log: quiet ? () => undefined : (s) => void process.stderr.write(s)
    };
}

export function perplexityCommand(): Command {
    const cmd = new Command("perplexity").alias("ppl").description("perplexity of a model over a text file, or KL divergence against a base run, like llama-perplexity");
    const g = "Perplexity:";
    cmd.addOption(new Option("-f, --file <FILE>", "evaluation text (e.g. wikitext-2 wiki.test.raw)").helpGroup(g))
        .addOption(new Option("--chunks <N>", "evaluate at most N chunks; -1 = all").argParser(intInRange(-1, 1 << 30)).default(-1).helpGroup(g))
        .addOption(new Option("--ppl-stride <N>", "strided perplexity: chunks start every N tokens, the last N positions of each are scored; the context grows by N/2 (0 = off)").argParser(intInRange(0, 1 << 30)).default(0).helpGroup(g))
        .addOption(new Option("--ppl-output-type <0|1>", "1 = one line per chunk: start, PPL, mean NLL, its error").argParser(intInRange(0, 1)).default(0).helpGroup(g))
        .addOption(new Option("--kl-divergence-base <FILE>", "alone: write the base log-probs to FILE; with --kl-divergence: read them").helpGroup(g))
        .addOption(new Option("--save-all-logits <FILE>", "alias of --kl-divergence-base").hideHelp())
        .addOption(new Option("--kl-divergence", "compare against --kl-divergence-base FILE (same -c)").helpGroup(g))
        .addOption(new Option("-o, --output-format <FMT>", "stdout: the reference's text, or one JSON object").choices(["text", "json"]).default("text").helpGroup("Output:"))
        .addOption(new Option("--json", "same as -o json").helpGroup("Output:"))
        .addOption(new Option("-q, --quiet", "no progress or logs on stderr").helpGroup("Output:"));
    withModelOptions(cmd);
    withContextOptions(cmd);
    cmd.setOptionValueWithSource("ctxSize", 512, "default"); // the reference's default chunk length
    return refuseUnsupported(cmd)
        .addHelpText("after", ["", "Examples:", "  ikl perplexity -m model.gguf -f wiki.test.raw", "  ikl perplexity -m f16.gguf -f wiki.test.raw --kl-divergence-base f16.kld",
            "  ikl perplexity -m q4.gguf --kl-divergence-base f16.kld --kl-divergence", "  ikl perplexity -m model.gguf -f wiki.test.raw -c 128 --ppl-stride 64", "", "Writing or reading a base file copies n_ctx/2 rows of logits per chunk out of the engine; plain runs do not."].join("\n"))
        .action(async (raw: Record<string, unknown>) => {
            if (raw["saveAllLogits"] !== undefined && raw["klDivergenceBase"] === undefined) raw["klDivergenceBase"] = raw["saveAllLogits"];
            const stride = raw["pplStride"] as number;
            const o = parsePerplexityOptions(raw);
            // -ngl/-ot/… → an explicit device per tensor (engine/placement.ts)
            o.placement = await placementFor(o.model, parseModelOptions(raw), { ctxSize: o.nCtx, ubatchSize: o.nUbatch, cacheTypeK: o.typeK, cacheTypeV: o.typeV }, (w) => void process.stderr.write(`${w}\n`));
            if (stride > 0) await runStridedPerplexity(o, stride);
            else await withSigint((signal) => runPerplexity({ ...o, signal }));
        });
}
