// Pure value parsers for option groups: integers and floats with ranges, sizes (24GiB), ratios (-ts 3,1), -ser
// pairs, device names (CPU, CUDA0) and the REGEX=TARGET rule lists of -ot / --custom-q. Each throws commander's
// InvalidArgumentError, so commander prints "option '…' argument '…' is invalid. <why>" and the CLI exits 2.
// The rule syntax follows ik_llama.cpp common.cpp (-ot): split on commas outside brackets, then on the LAST '='.
import { InvalidArgumentError } from "commander";

/** An integer parser accepting only [min, max]; `what` explains the range in the error. */
export function intInRange(min: number, max: number, what?: string): (value: string) => number {
    return (value: string): number => {
        const v = value.trim();
        if (!/^[+-]?\d+$/.test(v)) throw new InvalidArgumentError(`expected an integer${rangeText(min, max, what)}.`);
        const n = Number(v);
        if (n < min || n > max) throw new InvalidArgumentError(`out of range${rangeText(min, max, what)}.`);
        return n;
    };
}

/** A finite-float parser accepting only [min, max]. */
export function floatInRange(min: number, max: number, what?: string): (value: string) => number {
    return (value: string): number => {
        const v = value.trim();
        const n = v === "" ? NaN : Number(v);
        if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number${rangeText(min, max, what)}.`);
        if (n < min || n > max) throw new InvalidArgumentError(`out of range${rangeText(min, max, what)}.`);
        return n;
    };
}

function rangeText(min: number, max: number, what?: string): string {
    const lo = min === -Infinity ? "" : `${min}`;
    const hi = max === Infinity ? "" : `${max}`;
    const range = lo !== "" && hi !== "" ? ` between ${lo} and ${hi}` : lo !== "" ? ` >= ${lo}` : hi !== "" ? ` <= ${hi}` : "";
    return what === undefined ? range : `${range} (${what})`;
}

const SIZE_UNITS: Record<string, number> = {
    "": 1, b: 1,
    k: 1024, kib: 1024, kb: 1000,
    m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2,
    g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3,
    t: 1024 ** 4, tib: 1024 ** 4, tb: 1000 ** 4
};

/** "24GiB", "1.5G" (binary), "500MB" (decimal), "4096" (bytes) → bytes. */
export function parseSize(value: string): number {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
    const unit = m === null ? undefined : SIZE_UNITS[(m[2] ?? "").toLowerCase()];
    if (m === null || unit === undefined) {
        throw new InvalidArgumentError("expected a size such as 4096, 512MiB, 24GiB or 1.5G (K/M/G/T = 1024-based, KB/MB/GB = 1000-based).");
    }
    return Math.round(Number(m[1]) * unit);
}

/** -ts "3,1" or "3/1" → [3, 1]: non-negative proportions, at least one positive. */
export function parseRatios(value: string): number[] {
    const parts = value.split(/[,/]/).map((s) => s.trim());
    const nums = parts.map((p) => (p === "" ? NaN : Number(p)));
    if (nums.some((n) => !Number.isFinite(n) || n < 0)) {
        throw new InvalidArgumentError("expected non-negative proportions such as 3,1 or 3/1.");
    }
    if (!nums.some((n) => n > 0)) throw new InvalidArgumentError("at least one proportion must be positive.");
    return nums;
}

export interface SerParams {
    kMin: number; // minimum experts kept; -1 = off
    threshold: number; // relative weight threshold
}

/** -ser "Kmin,t", e.g. "6,1.0"; "-1,0" disables smart expert reduction. */
export function parseSer(value: string): SerParams {
    const m = /^\s*(-?\d+)\s*,\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/i.exec(value);
    if (m === null) throw new InvalidArgumentError("expected Kmin,t such as 6,1.0 (or -1,0 to disable).");
    const kMin = Number(m[1]);
    const threshold = Number(m[2]);
    if (kMin < -1) throw new InvalidArgumentError("Kmin must be >= -1.");
    if (threshold < 0) throw new InvalidArgumentError("t must be >= 0.");
    return { kMin, threshold };
}

/** Device / buffer-type names: "CPU" or "CUDA<n>" (case-insensitive input, canonical output). */
export function parseDevice(value: string): string {
    const v = value.trim();
    if (/^cpu$/i.test(v)) return "CPU";
    const m = /^cuda(\d{1,3})$/i.exec(v);
    if (m !== null) return `CUDA${Number(m[1])}`;
    throw new InvalidArgumentError(`unknown device '${value}'; expected CPU or CUDA0, CUDA1, ….`);
}

export type TriState = "on" | "off" | "auto";

const TRI: Record<string, TriState> = { on: "on", off: "off", auto: "auto", "1": "on", "0": "off", true: "on", false: "off" };

/** Whether a token is a value of a tri-state flag such as -fa (used by the legacy argv rewrite). */
export function isTriStateValue(value: string): boolean {
    return Object.hasOwn(TRI, value.toLowerCase());
}

/** on|off|auto|1|0|true|false → "on" | "off" | "auto". */
export function parseTriState(value: string): TriState {
    const v = TRI[value.trim().toLowerCase()];
    if (v === undefined) throw new InvalidArgumentError("expected on, off, auto, 1, 0, true or false.");
    return v;
}

/** A JavaScript RegExp (search semantics: unanchored unless the pattern anchors itself). */
export function parseRegex(value: string): RegExp {
    try {
        return new RegExp(value);
    } catch (e) {
        throw new InvalidArgumentError(`invalid regular expression: ${e instanceof Error ? e.message : String(e)}`);
    }
}

/** Splits "a=X,b{1,3}=Y" on commas that are outside (), [] and {}. */
export function splitTopLevel(value: string): string[] {
    const out: string[] = [];
    let depth = 0;
    let start = 0;
    for (let i = 0; i < value.length; i++) {
        const c = value[i];
        if (c === "\\") i++;
        else if (c === "(" || c === "[" || c === "{") depth++;
        else if ((c === ")" || c === "]" || c === "}") && depth > 0) depth--;
        else if (c === "," && depth === 0) {
            out.push(value.slice(start, i));
            start = i + 1;
        }
    }
    out.push(value.slice(start));
    return out;
}

export interface Rule<T> {
    source: string; // the rule as written, for messages
    pattern: RegExp;
    target: T;
}

/** One REGEX=TARGET rule, split on the LAST '=' (the regex may itself contain '='). */
export function parseRule<T>(value: string, parseTarget: (target: string) => T): Rule<T> {
    const text = value.trim();
    const eq = text.lastIndexOf("=");
    if (eq <= 0 || eq === text.length - 1) {
        throw new InvalidArgumentError(`rule '${text}' must look like REGEX=TARGET (e.g. exps=CPU).`);
    }
    const pattern = parseRegex(text.slice(0, eq));
    return { source: text, pattern, target: parseTarget(text.slice(eq + 1).trim()) };
}

/** A comma-joined rule list, e.g. "blk\.(1|2)\.ffn_.*_exps=CPU,exps{1,3}=CUDA0". Empty items are errors. */
export function parseRuleList<T>(value: string, parseTarget: (target: string) => T): Rule<T>[] {
    return splitTopLevel(value).map((item) => {
        if (item.trim() === "") throw new InvalidArgumentError(`empty rule in '${value}'.`);
        return parseRule(item, parseTarget);
    });
}

/** Commander accumulator for repeatable, comma-joinable -ot: each occurrence appends its rules in order. */
export function collectPlacementRules(value: string, previous: Rule<string>[] | undefined): Rule<string>[] {
    return [...(previous ?? []), ...parseRuleList(value, parseDevice)];
}
