// Hand-made GgufInspect + registry excerpt for gguf-dump tests: a 2-layer deepseek2-like model (1 dense, 1 MoE)
// with ik-only types, a row-interleaved type and the 2-D attn_k_b/attn_v_b (ik) MLA layout. No addon needed.
import type { GgufInspect, MetaEntry, QTypeInfo, TensorEntry } from "../../src/engine/index.js";

const q = (id: number, name: string, mainline: boolean, interleave = 1, cuda: QTypeInfo["cuda"] = "full"): QTypeInfo => ({
    id, name, enumName: name.toUpperCase(), block: 32, typeSize: 34, rowMeta: 0, interleave, cuda, role: "weight", mainline
});

export const SAMPLE_QTYPES: QTypeInfo[] = [
    q(0, "f32", true), q(1, "f16", true), q(8, "q8_0", true), q(12, "q4_K", true),
    q(145, "iq4_ks", false), q(212, "q4_k_r4", false, 4, "no")
];

let index = 0;
let offset = 0;
function t(name: string, type: string, typeId: number, ne: number[], bytes: number): TensorEntry {
    const entry = { index: index++, name, type, typeId, ne, nElements: ne.reduce((a, b) => a * b, 1), bytes, offset, file: 0 };
    offset += bytes;
    return entry;
}

const tensors: TensorEntry[] = [
    t("token_embd.weight", "q8_0", 8, [64, 1000], 68000),
    t("blk.0.attn_norm.weight", "f32", 0, [64], 256),
    t("blk.0.attn_q.weight", "q8_0", 8, [64, 96], 6528),
    t("blk.0.attn_kv_a_mqa.weight", "q8_0", 8, [64, 40], 2720),
    t("blk.0.attn_kv_b.weight", "q8_0", 8, [32, 160], 5440),
    t("blk.0.attn_k_b.weight", "q8_0", 8, [16, 64], 1088),
    t("blk.0.attn_v_b.weight", "q8_0", 8, [32, 32], 1088),
    t("blk.0.ffn_up.weight", "q4_K", 12, [64, 128], 4608),
    t("blk.1.ffn_gate_inp.weight", "f32", 0, [64, 4], 1024),
    t("blk.1.exp_probs_b.bias", "f32", 0, [4], 16),
    t("blk.1.ffn_up_exps.weight", "iq4_ks", 145, [64, 32, 4], 4352),
    t("blk.1.ffn_down_exps.weight", "q4_k_r4", 212, [32, 64, 4], 4352),
    t("blk.1.ffn_up_shexp.weight", "f16", 1, [64, 32], 4096),
    t("output_norm.weight", "f32", 0, [64], 256),
    t("output.weight", "q8_0", 8, [64, 1000], 68000)
];

const meta = (key: string, type: string, value: MetaEntry["value"], extra: Partial<MetaEntry> = {}): MetaEntry => ({ key, type, value, ...extra });

export const LONG_TEMPLATE = "{% for m in messages %}" + "x".repeat(200) + "{% endfor %}";

const metadata: MetaEntry[] = [
    meta("general.architecture", "STRING", "deepseek2"),
    meta("general.name", "STRING", "Tiny DS2"),
    meta("general.file_type", "UINT32", 145),
    meta("deepseek2.context_length", "UINT32", 4096),
    meta("deepseek2.embedding_length", "UINT32", 64),
    meta("deepseek2.block_count", "UINT32", 2),
    meta("deepseek2.attention.head_count", "UINT32", 4),
    meta("deepseek2.attention.head_count_kv", "UINT32", 4),
    meta("deepseek2.attention.kv_lora_rank", "UINT32", 32),
    meta("deepseek2.rope.dimension_count", "UINT32", 8),
    meta("deepseek2.rope.freq_base", "FLOAT32", 10000),
    meta("deepseek2.expert_count", "UINT32", 4),
    meta("deepseek2.expert_used_count", "UINT32", 2),
    meta("deepseek2.expert_shared_count", "UINT32", 1),
    meta("deepseek2.leading_dense_block_count", "UINT32", 1),
    meta("deepseek2.expert_gating_func", "UINT32", 2),
    meta("deepseek2.expert_weights_scale", "FLOAT32", 2.5),
    meta("tokenizer.ggml.model", "STRING", "gpt2"),
    meta("tokenizer.ggml.tokens", "ARRAY", ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], { arrayType: "STRING", length: 1000, truncated: true }),
    meta("tokenizer.ggml.bos_token_id", "UINT32", 0),
    meta("tokenizer.ggml.eos_token_id", "UINT32", 1),
    meta("tokenizer.chat_template", "STRING", LONG_TEMPLATE)
];

export const SAMPLE: GgufInspect = {
    path: "/models/tiny-ds2.gguf",
    files: [{ path: "/models/tiny-ds2.gguf", size: 200000, version: 3, nTensors: tensors.length, nKv: metadata.length, alignment: 32, dataOffset: 4096 }],
    fileSize: 200000,
    metadata,
    tensors
};
