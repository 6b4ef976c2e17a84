// cli-table3 wrapper for human tables on stdout: box-drawing when stdout is a TTY, plain space-separated columns
// otherwise (friendlier to grep/awk and logs). Markdown tables that must match ik byte-for-byte (bench,
// sweep-bench) are rendered by their own formatters, not here.
import Table from "cli-table3";
import { out } from "./format.js";

const PLAIN_CHARS = {
    top: "", "top-mid": "", "top-left": "", "top-right": "",
    bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "",
    left: "", "left-mid": "", mid: "", "mid-mid": "",
    right: "", "right-mid": "", middle: "  "
};

export interface TableOptions {
    head?: string[]; // no header row when absent
    align?: ("left" | "right" | "center")[];
    plain?: boolean; // default: !process.stdout.isTTY
}

/** Renders rows to a string (no trailing newline). */
export function renderTable(rows: (string | number)[][], opts: TableOptions): string {
    const plain = opts.plain ?? process.stdout.isTTY !== true;
    const table = new Table({
        head: (opts.head ?? []).map((h) => out.bold(h)),
        ...(opts.align !== undefined ? { colAligns: opts.align } : {}),
        style: plain ? { head: [], border: [], "padding-left": 0, "padding-right": 0 } : { head: [], border: [], compact: true },
        ...(plain ? { chars: PLAIN_CHARS } : {})
    });
    for (const row of rows) table.push(row.map((c) => (typeof c === "number" ? String(c) : c)));
    const text = table.toString();
    return plain ? text.split("\n").map((l) => l.trimEnd()).join("\n") : text;
}
