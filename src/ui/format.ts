// Number formatting (bytes, parameter counts, percentages) and the colour policy shared by every human renderer.
// Colour is decided once in cli.ts: level 0 for NO_COLOR, --no-color, TERM=dumb or a non-TTY stream;
// FORCE_COLOR and --color force it on. stdout renderers use `out`, diagnostics use `err`.
import { Chalk, chalkStderr, type ChalkInstance } from "chalk";

type Level = 0 | 1 | 2 | 3;

export interface ColorEnv {
    env: Record<string, string | undefined>;
    argv: readonly string[];
    isTTY: boolean;
}

/** The chalk level for one stream under the NO_COLOR / FORCE_COLOR / --[no-]color / TERM / TTY rules. */
export function colorLevel({ env, argv, isTTY }: ColorEnv): Level {
    if (argv.includes("--no-color")) return 0;
    const force = env["FORCE_COLOR"];
    if (force !== undefined) {
        if (force === "0" || force === "false") return 0;
        const n = Number(force);
        return force === "" || force === "true" || !Number.isInteger(n) ? 1 : (Math.min(Math.max(n, 1), 3) as Level);
    }
    if (argv.includes("--color")) return 1;
    if (env["NO_COLOR"] !== undefined && env["NO_COLOR"] !== "") return 0;
    if (env["TERM"] === "dumb" || !isTTY) return 0;
    return env["COLORTERM"] === "truecolor" ? 3 : 2;
}

/** Colour instance for stdout renderers (level set by configureColor). */
export const out: ChalkInstance = new Chalk({ level: 0 });
/** Colour instance for stderr diagnostics. */
export const err: ChalkInstance = chalkStderr;

export function configureColor(argv: readonly string[], env: Record<string, string | undefined> = process.env): void {
    out.level = colorLevel({ env, argv, isTTY: process.stdout.isTTY === true });
    err.level = colorLevel({ env, argv, isTTY: process.stderr.isTTY === true });
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 512 → "512 B", 1536 → "1.50 KiB", 4.9e9 → "4.56 GiB". */
export function formatBytes(n: number): string {
    if (!Number.isFinite(n)) return String(n);
    let v = n;
    let u = 0;
    while (Math.abs(v) >= 1024 && u < BYTE_UNITS.length - 1) {
        v /= 1024;
        u++;
    }
    return u === 0 ? `${v} B` : `${v.toFixed(2)} ${BYTE_UNITS[u]}`;
}

/** Parameter counts the way llama.cpp prints them: 19468800 → "19.47 M", 1.24e9 → "1.24 B". */
export function formatCount(n: number): string {
    if (n >= 1e12) return `${(n / 1e12).toFixed(2)} T`;
    if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
    if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
    if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
    return String(n);
}

/** 0.4321 → "43.21%". */
export function formatPct(fraction: number): string {
    return `${(fraction * 100).toFixed(2)}%`;
}

/** Thousands separators for exact integers (offsets, element counts). */
export function formatInt(n: number): string {
    return Number.isInteger(n) ? n.toLocaleString("en-US") : String(n);
}
