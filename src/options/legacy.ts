// THE alias table from ik_llama.cpp's single-dash multi-letter flags (-ngl, -ot, -fa, …) to our long flags, and
// the argv rewrite applied before commander parses (commander >= 13 refuses to declare such flags; STYLE §1.10).
// The same table drives help text so both spellings are shown. Semantics follow users' command lines from every
// reference revision: bare -fa / -fmoe mean "on", -no-fa / -no-fmoe mean "off", --ctx_size ≡ --ctx-size.
import { isTriStateValue, parseTriState } from "./parsers.js";

/** value: takes the next token; flag: no value; tristate: optional on|off|auto|1|0|true|false value. */
export type AliasKind = "value" | "flag" | "tristate";

export interface LegacyAlias {
    short: string;
    long: string;
    kind: AliasKind;
}

export const LEGACY_ALIASES: readonly LegacyAlias[] = [
    { short: "-ngl", long: "--n-gpu-layers", kind: "value" },
    { short: "-ot", long: "--override-tensor", kind: "value" },
    { short: "-dev", long: "--device", kind: "value" },
    { short: "-ts", long: "--tensor-split", kind: "value" },
    { short: "-sm", long: "--split-mode", kind: "value" },
    { short: "-mg", long: "--main-gpu", kind: "value" },
    { short: "-cmoe", long: "--cpu-moe", kind: "flag" },
    { short: "-ncmoe", long: "--n-cpu-moe", kind: "value" },
    { short: "-nkvo", long: "--no-kv-offload", kind: "flag" },
    { short: "-rtr", long: "--run-time-repack", kind: "flag" },
    { short: "-tb", long: "--threads-batch", kind: "value" },
    { short: "-ub", long: "--ubatch-size", kind: "value" },
    { short: "-ctk", long: "--cache-type-k", kind: "value" },
    { short: "-ctv", long: "--cache-type-v", kind: "value" },
    { short: "-fa", long: "--flash-attn", kind: "tristate" },
    { short: "-no-fa", long: "--no-flash-attn", kind: "flag" },
    { short: "-mla", long: "--mla-use", kind: "value" },
    { short: "-amb", long: "--attention-max-batch", kind: "value" },
    { short: "-fmoe", long: "--fused-moe", kind: "tristate" },
    { short: "-no-fmoe", long: "--no-fused-moe", kind: "flag" },
    { short: "-ser", long: "--smart-expert-reduction", kind: "value" },
    { short: "-ger", long: "--grouped-expert-routing", kind: "flag" },
    { short: "-mqkv", long: "--merge-qkv", kind: "flag" },
    { short: "-muge", long: "--merge-up-gate-experts", kind: "flag" },
    { short: "-np", long: "--parallel", kind: "value" },
    { short: "-cnv", long: "--conversation", kind: "flag" },
    { short: "-sys", long: "--system-prompt", kind: "value" },
    { short: "-ppl-stride", long: "--ppl-stride", kind: "value" },
    { short: "-nrep", long: "--n-repetitions", kind: "value" },
    { short: "-wb", long: "--warmup-batch", kind: "flag" },
    { short: "-pg", long: "--pg", kind: "value" },
    { short: "-gp", long: "--gp", kind: "value" }
];

const BY_SHORT = new Map(LEGACY_ALIASES.map((a) => [a.short, a]));
const BY_LONG = new Map(LEGACY_ALIASES.map((a) => [a.long, a]));

/** The ik short spelling of a long flag, for help text ("--n-gpu-layers" → "-ngl"). */
export function legacyAliasFor(long: string): string | undefined {
    return BY_LONG.get(long)?.short;
}

/** Rewrites a tri-state occurrence: --fused-moe has a --no- twin, --flash-attn takes the value itself. */
function triState(long: string, value: string | undefined): string {
    const state = value === undefined ? "on" : parseTriStateLoose(value);
    if (long === "--fused-moe") return state === "off" ? "--no-fused-moe" : "--fused-moe";
    return `${long}=${state}`;
}

function parseTriStateLoose(value: string): string {
    // An invalid explicit value (--flash-attn=maybe) is passed through so the option's parser reports it.
    return isTriStateValue(value) ? parseTriState(value) : value;
}

/** Splits "-ngl=99" / "--flash-attn=on" into name and inline value; normalises "_" to "-" in long names. */
function splitToken(token: string): { name: string; inline: string | undefined } {
    const eq = token.indexOf("=");
    let name = eq < 0 ? token : token.slice(0, eq);
    const inline = eq < 0 ? undefined : token.slice(eq + 1);
    if (name.startsWith("--")) name = `--${name.slice(2).replaceAll("_", "-")}`;
    return { name, inline };
}

/**
 * Rewrites user argv (without node and script) to the long flags commander knows. Stops at "--". A tri-state
 * flag consumes the next token only if it is on|off|auto|1|0|true|false, so "-fa model.gguf" and "-fa -fmoe"
 * leave the next token alone.
 */
export function rewriteLegacyArgs(argv: readonly string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < argv.length; i++) {
        const token = argv[i] as string;
        if (token === "--") {
            out.push(...argv.slice(i));
            break;
        }
        if (!token.startsWith("-") || token.length < 2) {
            out.push(token);
            continue;
        }
        const { name, inline } = splitToken(token);
        const alias = BY_SHORT.get(name) ?? BY_LONG.get(name);
        if (alias === undefined) {
            out.push(inline === undefined ? name : `${name}=${inline}`);
            continue;
        }
        if (alias.kind === "tristate") {
            const next = argv[i + 1];
            if (inline === undefined && next !== undefined && alias.long === "--flash-attn" && /^[01](,[01])+$/.test(next)) {
                out.push(`${alias.long}=${next}`); // llama-bench's "-fa 0,1" list; other commands reject it in their parser
                i++;
            } else if (inline === undefined && next !== undefined && isTriStateValue(next)) {
                out.push(triState(alias.long, next));
                i++;
            } else {
                out.push(triState(alias.long, inline));
            }
            continue;
        }
        out.push(inline === undefined ? alias.long : `${alias.long}=${inline}`);
    }
    return out;
}
