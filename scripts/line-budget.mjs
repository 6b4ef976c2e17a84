// File-size budget (STYLE §2 rule 9): source files stay under ~800 lines. Pure data tables (lattice grids,
// Unicode ranges) are exempt by name. Prints offenders and exits 1 if any.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const LIMIT = 800;
const EXEMPT = [/grids\.rs$/, /unicode_data\.rs$/, /_data\.rs$/];
const ROOTS = ["src", "native/core/src", "native/node/src", "native/kernels", "scripts"];
const EXT = /\.(rs|ts|mjs|cu|cuh)$/;

function* walk(dir) {
    let entries = [];
    try {
        entries = readdirSync(dir);
    } catch {
        return;
    }
    for (const e of entries) {
        const p = join(dir, e);
        if (statSync(p).isDirectory()) yield* walk(p);
        else if (EXT.test(p)) yield p;
    }
}

const over = [];
for (const root of ROOTS) {
    for (const f of walk(root)) {
        const n = readFileSync(f, "utf8").split("\n").length;
        if (n > LIMIT && !EXEMPT.some((r) => r.test(f))) over.push(`${f}: ${n} lines (budget ${LIMIT})`);
    }
}
if (over.length > 0) {
    console.error(over.join("\n"));
    process.exitCode = 1;
} else {
    console.log(`line budget: all source files within ${LIMIT} lines`);
}
