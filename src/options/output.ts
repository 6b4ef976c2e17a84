// Output options shared by result-printing commands (-o md|csv|json|jsonl, -q/--quiet). stdout carries data in the
// chosen format; --quiet silences stderr progress. The root --verbose / --no-color flags live in src/cli.ts.
import { Command, Option } from "commander";
import { attachGroup } from "./attach.js";

export const OUTPUT_FORMATS = ["md", "csv", "json", "jsonl"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface OutputOptions {
    format: OutputFormat;
    quiet: boolean;
}

export function withOutputOptions(cmd: Command, defaultFormat: OutputFormat = "md"): Command {
    return attachGroup(cmd, "Output:", [
        new Option("-o, --output-format <FMT>", "format of the data written to stdout").choices(OUTPUT_FORMATS).default(defaultFormat),
        new Option("-q, --quiet", "no progress or logs on stderr")
    ]);
}

export function parseOutputOptions(raw: Record<string, unknown>): OutputOptions {
    return { format: (raw["outputFormat"] as OutputFormat | undefined) ?? "md", quiet: raw["quiet"] === true };
}
