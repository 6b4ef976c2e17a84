// `ikl gguf-dump FILE`: summary card, metadata, tensor table, -ot group sizes and a compatibility verdict for a
// GGUF (all split parts), or one `--json` document. Replaces gguf-py's gguf_dump.py for placement planning
// (UX.md pain points #1 and #13). Parsing/reading happens in Rust (inspectGguf); analysis and rendering are in
// ./gguf-dump/ and pure.
import { Command, Option } from "commander";
import { inspectGguf, qtypes } from "../engine/index.js";
import { parseRegex } from "../options/parsers.js";
import { analyzeGguf } from "./gguf-dump/analyze.js";
import { ARRAY_PREVIEW, renderHuman, renderJson, type DumpView } from "./gguf-dump/render.js";

interface GgufDumpRaw {
    full?: boolean;
    tensors?: boolean;
    filter?: RegExp;
    json?: boolean;
}

export function ggufDumpCommand(): Command {
    return new Command("gguf-dump")
        .description("inspect a GGUF file: summary, metadata, tensors, per-group sizes and engine compatibility")
        .argument("<FILE>", "GGUF file (first shard of a split model; the other parts are read too)")
        .addOption(new Option("--full", "show whole arrays and long strings"))
        .addOption(new Option("--no-tensors", "omit the tensor table"))
        .addOption(new Option("--filter <REGEX>", "only list tensors whose name matches REGEX (JS RegExp, unanchored)").argParser(parseRegex))
        .addOption(new Option("--json", "print one JSON document (schema 1, docs/gguf-dump-json.md) and nothing else"))
        .addHelpText("after", [
            "",
            "Examples:",
            "  ikl gguf-dump DeepSeek-R1-IQ4_KS-00001-of-00009.gguf --no-tensors",
            "  ikl gguf-dump model.gguf --filter 'blk\\.3\\.ffn_.*_exps'",
            "  ikl gguf-dump model.gguf --json | jq '.summary.types'"
        ].join("\n"))
        .action(async (file: string, raw: GgufDumpRaw) => {
            const view: DumpView = { full: raw.full === true, tensors: raw.tensors !== false, filter: raw.filter };
            const inspect = await inspectGguf(file, view.full ? -1 : ARRAY_PREVIEW * 2);
            const report = analyzeGguf(inspect, qtypes());
            const text = raw.json === true ? JSON.stringify(renderJson(report, view), null, 2) : renderHuman(report, view);
            process.stdout.write(`${text}\n`);
        });
}
