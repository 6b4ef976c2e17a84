// Human and JSON renderers for `ikl gguf-dump`: summary card, metadata table, tensor table, group summary and the
// compatibility verdict (human, via cli-table3), and the ONE stable `--json` document (schema 1, documented in
// docs/gguf-dump-json.md). Pure: takes a GgufReport, returns strings/objects; printing is the command's job.
import type { MetaEntry, MetaValue, TensorEntry } from "../../engine/index.js";
import { formatFtype } from "../../engine/ftypes.js";
import { formatBytes, formatCount, formatInt, formatPct, out } from "../../ui/format.js";
import { renderTable } from "../../ui/table.js";
import type { GgufReport, GgufSummary, MlaForm } from "./analyze.js";

export interface DumpView {
    full: boolean; // whole arrays and strings
    tensors: boolean; // print the tensor table (--no-tensors → false)
    filter: RegExp | undefined; // tensor-name filter (search semantics)
    plain?: boolean; // force plain tables (tests); default: stdout not a TTY
}

export const STRING_PREVIEW = 60; // characters, as gguf_dump.py
export const ARRAY_PREVIEW = 8; // elements shown per array unless --full

export function metaTypeLabel(e: MetaEntry): string {
    return e.type === "ARRAY" ? `ARRAY[${e.arrayType ?? "?"}]` : e.type;
}

function quote(s: string, full: boolean, limit: number): string {
    if (full || s.length <= limit) return JSON.stringify(s);
    return `${JSON.stringify(s.slice(0, limit))}… (${s.length} chars)`;
}

function element(v: MetaValue, full: boolean): string {
    if (Array.isArray(v)) return `[${v.length} items]`;
    return typeof v === "string" ? quote(v, full, 24) : String(v);
}

export function formatMetaValue(e: MetaEntry, full: boolean): string {
    if (!Array.isArray(e.value)) return typeof e.value === "string" ? quote(e.value, full, STRING_PREVIEW) : String(e.value);
    const total = e.length ?? e.value.length;
    const shown = full ? e.value : e.value.slice(0, ARRAY_PREVIEW);
    const more = total > shown.length ? `, … (${total} total)` : "";
    return `[${shown.map((v) => element(v, full)).join(", ")}${more}]`;
}

function mlaFormLabel(form: MlaForm): string {
    const labels: Record<MlaForm, string> = {
        none: "none",
        attn_kv_b: "attn_kv_b only",
        split_2d: "split attn_k_b + attn_v_b, 2-D (ik convention)",
        split_3d: "split attn_k_b + attn_v_b, 3-D (mainline convention)",
        "attn_kv_b+split_2d": "attn_kv_b + 2-D attn_k_b/attn_v_b (ik convention)",
        "attn_kv_b+split_3d": "attn_kv_b + 3-D attn_k_b/attn_v_b",
        split_mixed: "attn_k_b/attn_v_b with mixed 2-D/3-D shapes"
    };
    return labels[form];
}

const show = (v: unknown): string => (v === null || v === undefined ? "-" : String(v));

function summaryRows(s: GgufSummary): [string, string][] {
    const rows: [string, string][] = [
        ["architecture", show(s.architecture)],
        ["name", show(s.name)],
        ["parameters", `${formatCount(s.n_params)} (${formatInt(s.n_params)})`],
        ["file size", `${formatBytes(s.file_size)}${s.split_count > 1 ? ` in ${s.split_count} parts` : ""}`],
        ["bits per weight", s.bits_per_weight.toFixed(2)],
        ["file type", s.file_type === null ? "-" : formatFtype(s.file_type.id)],
        ["tensor types", s.types.map((t) => `${t.type}: ${t.tensors} (${formatBytes(t.bytes)}, ${formatPct(t.fraction)})`).join("\n")],
        ["context length", show(s.context_length)],
        ["embedding length", show(s.embedding_length)],
        ["layers", show(s.block_count)],
        ["heads / kv heads", `${show(s.head_count)} / ${show(s.head_count_kv)}`]
    ];
    const a = s.attention;
    if (a !== null) {
        rows.push(["MLA", [
            `q_lora_rank ${a.q_lora_rank === null ? "none (attn_q)" : a.q_lora_rank}, kv_lora_rank ${show(a.kv_lora_rank)}, rope dim ${show(a.rope_dim)}`,
            `key/value length ${show(a.key_length)}/${show(a.value_length)}` +
                (a.key_length_mla !== null ? `, mla ${show(a.key_length_mla)}/${show(a.value_length_mla)}` : ""),
            `tensors: ${mlaFormLabel(a.mla_form)}`
        ].join("\n")]);
    }
    const e = s.moe;
    if (e !== null) {
        rows.push(["MoE", [
            `experts ${e.expert_count}, used ${show(e.expert_used_count)}, shared ${show(e.expert_shared_count)}, expert ffn ${show(e.expert_feed_forward_length)}`,
            `leading dense blocks ${show(e.leading_dense_block_count)}, gating ${e.gating_func}`,
            `weights scale ${show(e.expert_weights_scale)}, norm ${show(e.expert_weights_norm)}, exp_probs_b ${e.exp_probs_b ? "yes" : "no"}`
        ].join("\n")]);
    }
    const r = s.rope;
    rows.push(["rope", `freq base ${show(r.freq_base)}, dims ${show(r.dimension_count)}, scaling ${show(r.scaling_type)}` +
        (r.scaling_factor !== null ? ` x${r.scaling_factor}` : "") + (r.original_context_length !== null ? ` (orig ctx ${r.original_context_length})` : "")]);
    const t = s.tokenizer;
    rows.push(["tokenizer", `${show(t.model)} / pre ${show(t.pre)}, vocab ${show(t.vocab_size)}, bos ${show(t.bos_token_id)}, eos ${show(t.eos_token_id)}`]);
    rows.push(["chat template", t.chat_template.present ? `yes (${t.chat_template.length} chars)` : "no"]);
    rows.push(["split parts", String(s.split_count)]);
    return rows;
}

export function filterTensors(tensors: readonly TensorEntry[], filter: RegExp | undefined): TensorEntry[] {
    return filter === undefined ? [...tensors] : tensors.filter((t) => filter.test(t.name));
}

function tensorTable(report: GgufReport, view: DumpView): string {
    const multi = report.inspect.files.length > 1;
    const rows = filterTensors(report.inspect.tensors, view.filter).map((t) => [
        t.index, t.name, t.type, `[${t.ne.join(", ")}]`, formatInt(t.nElements), formatBytes(t.bytes), formatInt(t.offset), ...(multi ? [t.file] : [])
    ]);
    const head = ["#", "name", "type", "shape", "elements", "bytes", "offset", ...(multi ? ["file"] : [])];
    const title = view.filter === undefined ? `Tensors (${rows.length})` : `Tensors matching /${view.filter.source}/ (${rows.length} of ${report.inspect.tensors.length})`;
    const align: ("left" | "right")[] = ["right", "left", "left", "left", "right", "right", "right", "right"];
    return `${out.bold(title)}\n${renderTable(rows, { head, align, plain: view.plain })}`;
}

function compatText(report: GgufReport): string {
    const c = report.compat;
    const yes = out.green("yes");
    const lines = [
        `ik_llama.cpp: ${c.ik_llama.ok ? yes : out.red(`no (unknown types: ${c.ik_llama.unknown_types.join(", ")})`)}`,
        `mainline llama.cpp: ${c.mainline.ok ? yes : out.yellow(`no (${c.mainline.reasons.join("; ")})`)}`,
        `CUDA: ${c.cuda_unsupported.length === 0 ? "all tensor types have CUDA support" : out.yellow(`CPU-only (no CUDA kernel in the reference): ${c.cuda_unsupported.map((u) => `${u.type} (${u.tensors})`).join(", ")}`)}`,
        `MLA tensors: ${mlaFormLabel(c.mla_form)}`,
        `f16/bf16 tensors: ${c.f16_tensors}/${c.bf16_tensors}`
    ];
    return `${out.bold("Compatibility")}\n${lines.map((l) => `  ${l}`).join("\n")}`;
}

/** The whole human report (no trailing newline). */
export function renderHuman(report: GgufReport, view: DumpView): string {
    const parts: string[] = [];
    parts.push(`${out.bold(`GGUF ${report.inspect.path}`)}\n${renderTable(summaryRows(report.summary), { plain: view.plain })}`);
    const meta = report.inspect.metadata.map((e) => [e.key, metaTypeLabel(e), formatMetaValue(e, view.full)]);
    parts.push(`${out.bold(`Metadata (${meta.length})`)}\n${renderTable(meta, { head: ["key", "type", "value"], plain: view.plain })}`);
    if (view.tensors) parts.push(tensorTable(report, view));
    const groups = report.groups.map((g) => [
        g.group, g.tensors, g.layers, formatBytes(g.bytes), g.layers > 0 ? formatBytes(g.bytes / g.layers) : "-", formatPct(g.fraction), g.types.join(" ")
    ]);
    const gAlign: ("left" | "right")[] = ["left", "right", "right", "right", "right", "right", "left"];
    parts.push(`${out.bold("Bytes by -ot group")}\n${renderTable(groups, { head: ["group", "tensors", "layers", "bytes", "per layer", "share", "types"], align: gAlign, plain: view.plain })}`);
    parts.push(compatText(report));
    return parts.join("\n\n");
}

/** The `--json` document, schema 1. Tensors honour --filter and --no-tensors; summary/compat cover all tensors. */
export function renderJson(report: GgufReport, view: DumpView): object {
    const i = report.inspect;
    return {
        schema: 1,
        path: i.path,
        files: i.files.map((f) => ({ path: f.path, size: f.size, version: f.version, n_tensors: f.nTensors, n_kv: f.nKv, alignment: f.alignment, data_offset: f.dataOffset })),
        summary: { ...report.summary, groups: report.groups },
        metadata: i.metadata.map((e) => ({
            key: e.key,
            type: metaTypeLabel(e),
            value: e.value,
            ...(e.type === "ARRAY" ? { length: e.length ?? (Array.isArray(e.value) ? e.value.length : 0), truncated: e.truncated === true } : {})
        })),
        tensors: view.tensors
            ? filterTensors(i.tensors, view.filter).map((t) => ({
                index: t.index, name: t.name, type: t.type, type_id: t.typeId, shape: t.ne, n_elements: t.nElements, bytes: t.bytes, offset: t.offset, file: t.file
            }))
            : [],
        compat: report.compat
    };
}
