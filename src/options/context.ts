// Context, attention, MLA and MoE options (-c, -b, -ub, -ctk, -ctv, -fa, -mla, -amb, -fmoe/-no-fmoe, -ser, -ger,
// -mqkv, -muge), declared once and attached with withContextOptions(cmd). Defaults are ik_llama.cpp's at 8337e4cd
// (spec/cli.md §2.1, §2.3, §2.4): FA on, MLA 3, fused MoE on, amb 256 MiB. Arch-specific checks (e.g. -mla on a
// non-MLA model) need the model's hparams and happen in the engine, not here.
import { Command, Option } from "commander";
import { attachGroup } from "./attach.js";
import { intInRange, parseSer, parseTriState, type SerParams, type TriState } from "./parsers.js";

export const KV_CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q6_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "q8_KV"] as const;
export type KvCacheType = (typeof KV_CACHE_TYPES)[number];

export interface ContextOptions {
    ctxSize: number; // 0 = model's context_length
    batchSize: number;
    ubatchSize: number; // clamped to <= batchSize, as ik does
    cacheTypeK: KvCacheType;
    cacheTypeV: KvCacheType;
    flashAttn: TriState;
    mlaUse: number; // 0–3
    attentionMaxBatch: number; // MiB; 0 = no cap
    fusedMoe: boolean;
    ser: SerParams;
    groupedExperts: boolean;
    mergeQkv: boolean;
    mergeUpGateExperts: boolean;
}

const MAX_CTX = 1 << 24; // 16M cells: far above any published model, below sizes that overflow KV math
const MAX_BATCH = 1 << 20;

export function withContextOptions(cmd: Command): Command {
    attachGroup(cmd, "Context:", [
        new Option("-c, --ctx-size <N>", "context size (KV cells); 0 = the model's context_length").argParser(intInRange(0, MAX_CTX)).default(0),
        new Option("-b, --batch-size <N>", "logical batch: max tokens per decode call").argParser(intInRange(1, MAX_BATCH)).default(2048),
        new Option("--ubatch-size <N>", "physical micro-batch (clamped to --batch-size)").argParser(intInRange(1, MAX_BATCH)).default(512),
        new Option("--cache-type-k <TYPE>", "K cache (or MLA latent cache) type").choices(KV_CACHE_TYPES).default("f16"),
        new Option("--cache-type-v <TYPE>", "V cache type (non-f16/bf16 requires flash attention)").choices(KV_CACHE_TYPES).default("f16")
    ]);
    return attachGroup(cmd, "Attention, MLA and MoE:", [
        new Option("--flash-attn [on|off|auto]", "flash attention; bare flag = on").argParser(parseTriState).default("on"),
        new Option("--no-flash-attn", "disable flash attention"),
        // ik_llama.cpp 8337e4cd defaults to 3 (common.h mla_attn = 3); ignored (0) for non-MLA models, as there.
        new Option(
            "--mla-use <0-3>",
            "DeepSeek2 attention: 0 = standard K/V cache, 1 = latent cache (+ V^T without FA), 2 = latent cache, 3 = latent cache, best path per batch"
        )
            .argParser(intInRange(0, 3))
            .default(3),
        new Option("--attention-max-batch <MiB>", "cap on MLA attention intermediates (1-127 are raised to 128); 0 = no cap; results do not change")
            .argParser(intInRange(0, 1 << 20))
            .default(256),
        new Option("--fused-moe", "fused MoE experts: gate, up, SiLU and down in one pass per expert (default)"),
        new Option("--no-fused-moe", "unfused MoE experts: the reference's op sequence (same results)"),
        new Option("--smart-expert-reduction <Kmin,t>", "MoE: keep the Kmin best experts, drop later ones scoring below t x the best; -1,0 = off")
            .argParser(parseSer),
        new Option("--grouped-expert-routing", "MoE: DeepSeek-V3 group-limited routing (expert_group_count/expert_group_used_count)"),
        new Option("--merge-qkv", "merge Q/K/V weights at load"),
        new Option("--merge-up-gate-experts", "merge ffn_up_exps/ffn_gate_exps at load (disables mmap)")
    ]);
}

function flashAttn(raw: unknown): TriState {
    if (raw === false) return "off"; // --no-flash-attn
    if (raw === true || raw === undefined) return "on";
    return raw as TriState;
}

/** Turns commander's loose option object into validated ContextOptions. */
export function parseContextOptions(raw: Record<string, unknown>): ContextOptions {
    const batchSize = (raw["batchSize"] as number | undefined) ?? 2048;
    return {
        ctxSize: (raw["ctxSize"] as number | undefined) ?? 0,
        batchSize,
        ubatchSize: Math.min((raw["ubatchSize"] as number | undefined) ?? 512, batchSize),
        cacheTypeK: (raw["cacheTypeK"] as KvCacheType | undefined) ?? "f16",
        cacheTypeV: (raw["cacheTypeV"] as KvCacheType | undefined) ?? "f16",
        flashAttn: flashAttn(raw["flashAttn"]),
        mlaUse: (raw["mlaUse"] as number | undefined) ?? 3,
        attentionMaxBatch: amb((raw["attentionMaxBatch"] as number | undefined) ?? 256),
        fusedMoe: raw["fusedMoe"] !== false,
        ser: (raw["smartExpertReduction"] as SerParams | undefined) ?? { kMin: -1, threshold: 0 },
        groupedExperts: raw["groupedExpertRouting"] === true,
        mergeQkv: raw["mergeQkv"] === true,
        mergeUpGateExperts: raw["mergeUpGateExperts"] === true
    };
}

/** As the reference's CLI: -amb 1..127 becomes 128 (common.cpp), 0 stays "no cap". */
function amb(v: number): number {
    return v > 0 && v < 128 ? 128 : v;
}

/** MoE and MLA context options as the engine takes them. */
export interface MoeEngineOptions {
    fusedMoe: boolean;
    ser: [number, number];
    groupedExperts: boolean;
    mla?: number;
    attentionMaxBatch?: number;
}

/** The engine's MoE (fused MoE, -ser, -ger) and MLA (-mla, -amb) context options from parsed ContextOptions. */
export function moeEngineOptions(
    c: Pick<ContextOptions, "fusedMoe" | "ser" | "groupedExperts"> & Partial<Pick<ContextOptions, "mlaUse" | "attentionMaxBatch">>
): MoeEngineOptions {
    const o: MoeEngineOptions = { fusedMoe: c.fusedMoe, ser: [c.ser.kMin, c.ser.threshold], groupedExperts: c.groupedExperts };
    if (c.mlaUse !== undefined) o.mla = c.mlaUse;
    if (c.attentionMaxBatch !== undefined) o.attentionMaxBatch = c.attentionMaxBatch;
    return o;
}
