// gguf-dump's JSON vs gguf-py (an independent reader): tensor names, type ids, shapes, byte sizes, absolute data
// offsets and metadata key types must agree. Shared by the e2e and the opt-in model tests.
import { expect } from "vitest";
import { ikl, python } from "./paths.js";

export interface DumpTensor {
    name: string;
    type: string;
    type_id: number;
    shape: number[];
    n_elements: number;
    bytes: number;
    offset: number;
    file: number;
}
export interface Dump {
    schema: number;
    files: { path: string; size: number; data_offset: number; n_tensors: number }[];
    summary: Record<string, unknown> & { n_params: number; split_count: number; attention?: { mla_form?: string } };
    metadata: { key: string; type: string; value: unknown }[];
    tensors: DumpTensor[];
    compat: { mainline: { ok: boolean; ik_only_types: string[] }; mla_form: string };
}
export interface PyView {
    kv: Record<string, string>;
    tensors: { name: string; type: number; shape: number[]; n_bytes: number; data_offset: number }[];
}

export function dump(path: string, extra: string[] = []): Dump {
    const r = ikl(["gguf-dump", path, "--json", ...extra]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Dump;
}

/** Our view vs gguf-py's, tensor by tensor (absolute data offsets), plus metadata key types. */
export function expectSameAsGgufPy(path: string): Dump {
    const ours = dump(path, ["--full"]);
    const theirs = JSON.parse(python("check_gguf_py.py", [path])) as PyView;
    expect(ours.tensors.length).toBe(theirs.tensors.length);
    theirs.tensors.forEach((t, i) => {
        const o = ours.tensors[i]!;
        const file = ours.files[o.file]!;
        expect({ name: o.name, type: o.type_id, shape: o.shape, n_bytes: o.bytes, data_offset: file.data_offset + o.offset }).toEqual({
            name: t.name,
            type: t.type,
            shape: t.shape,
            n_bytes: t.n_bytes,
            data_offset: t.data_offset
        });
    });
    for (const m of ours.metadata) {
        const py = theirs.kv[m.key];
        const ourType = m.type === "ARRAY" ? `ARRAY[${(m as unknown as { array_type?: string }).array_type ?? ""}]` : m.type;
        expect(py === ourType || (m.type === "ARRAY" && py?.startsWith("ARRAY")), `${m.key}: ${py} vs ${ourType}`).toBe(true);
    }
    return ours;
}

/** gguf-py reads split parts as separate files: compare part by part. */
export function expectSameAsGgufPyParts(first: string, n: number): Dump {
    const ours = dump(first);
    let i = 0;
    for (let p = 0; p < n; p++) {
        const path = first.replace("-00001-of-", `-${String(p + 1).padStart(5, "0")}-of-`);
        const theirs = JSON.parse(python("check_gguf_py.py", [path])) as PyView;
        for (const t of theirs.tensors) {
            const o = ours.tensors[i++]!;
            expect(o.file).toBe(p);
            expect({ name: o.name, type: o.type_id, shape: o.shape, n_bytes: o.bytes, off: ours.files[p]!.data_offset + o.offset }).toEqual({
                name: t.name,
                type: t.type,
                shape: t.shape,
                n_bytes: t.n_bytes,
                off: t.data_offset
            });
        }
    }
    expect(i).toBe(ours.tensors.length);
    return ours;
}
