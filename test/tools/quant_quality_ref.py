#!/usr/bin/env python3
"""Reference side of the quantizer-quality table (docs/quant-quality.md, fixtures/golden/quant-rmse.json).

For every weight type of native/core/src/quant/registry.rs (except the ARM-only Q4_0_4_4/4_8/8_8 and the foreign
I2_S), quantize a few tensors with ik_llama.cpp's own quantizer (libggml.so @ 8337e4cd, `ggml_quantize_chunk`
with llama-quantize's default user data), dequantize with its own `dequantize_row_<type>`, and record:
  * the error of each (tensor, imatrix mode): RMSE without an imatrix, imatrix-weighted RMSE with one;
  * FNV-1a of the reference's encoded bytes (ours must equal them for the simple types);
  * the reference's quantization time (single thread, ms per MiB of f32 input);
  * for one 16×256 slice, the reference's bytes and the FNV of its dequantization (bit-exact dequant goldens).

Inputs: 16 rows × 1024 columns of four F16 tensors of the fixture models llama-1b and ds-mini
(.cache/models/*-f16.gguf, `make models`) and a deterministic positive imatrix per tensor. They are written
to native/core/tests/data/quant_quality_input.bin so that the Rust test recomputes our numbers on the same data.

Usage: .toolchain/py/bin/python test/tools/quant_quality_ref.py [libggml.so [--only type,type]]
Why `ggml_init` first: it fills the f16 table that the reference's dequantizers read on builds without F16C.
"""
import ctypes
import json
import os
import re
import struct
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "native/core/tests/data")
MODELS = os.environ.get("IKL_MODELS_DIR", os.path.join(ROOT, ".cache/models"))
NE0, NROWS = 1024, 16
TENSORS = [  # (model file, tensor, first row, first column)
    ("llama-1b-f16.gguf", "blk.0.attn_q.weight", 0, 0),
    ("llama-1b-f16.gguf", "blk.3.ffn_down.weight", 0, 0),
    ("ds-mini-f16.gguf", "blk.0.attn_kv_a_mqa.weight", 0, 0),
    ("ds-mini-f16.gguf", "token_embd.weight", 1000, 0),
]
SKIP = {"q4_0_4x4", "q4_0_4x8", "q4_0_8x8"}  # ARM-only; the x86 reference build has no dequantizer for them
GOLDEN_NE0 = 256


def registry():
    """(name, id, block, type_size, row_meta, interleave) of every Weight type, parsed from registry.rs."""
    src = open(os.path.join(ROOT, "native/core/src/quant/registry.rs")).read()
    out = []
    for m in re.finditer(r'^\s+(\d+)\s+(\w+)\s+"(\w+)"\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\w+\s+(\w+)\s+\w+;', src, re.M):
        tid, _, name, blk, ts, meta, il, role = m.groups()
        if role == "Weight" and name not in SKIP:
            out.append((name, int(tid), int(blk), int(ts), int(meta), int(il)))
    return out


def fnv(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv_np(b):
    """FNV-1a over bytes, vectorised in chunks (pure-Python loops over MBs are slow)."""
    return fnv(bytes(b))


def load_inputs():
    import gguf
    xs, ims, names = [], [], []
    readers = {}
    for k, (f, t, r0, c0) in enumerate(TENSORS):
        rd = readers.setdefault(f, gguf.GGUFReader(os.path.join(MODELS, f)))
        ten = next(x for x in rd.tensors if x.name == t)
        a = np.asarray(ten.data)
        a = a.reshape(-1, a.shape[-1])
        x = a[r0:r0 + NROWS, c0:c0 + NE0].astype(np.float32)
        assert x.shape == (NROWS, NE0), (t, x.shape)
        rng = np.random.default_rng(8337 + k)
        im = (0.05 + rng.gamma(1.0, 1.0, NE0)).astype(np.float32)
        xs.append(np.ascontiguousarray(x))
        ims.append(im)
        names.append(f"{f.replace('-f16.gguf', '')}:{t}[{r0}:{r0 + NROWS},{c0}:{c0 + NE0}]")
    return xs, ims, names


def read_inputs():
    b = open(os.path.join(DATA, "quant_quality_input.bin"), "rb").read()
    assert b[:4] == b"IKQQ"
    _, n, nrows, ne0 = struct.unpack_from("<4I", b, 4)
    off, xs, ims = 20, [], []
    for _ in range(n):
        xs.append(np.frombuffer(b, dtype="<f2", count=nrows * ne0, offset=off).astype(np.float32).reshape(nrows, ne0))
        off += 2 * nrows * ne0
        ims.append(np.frombuffer(b, dtype="<f4", count=ne0, offset=off).copy())
        off += 4 * ne0
    return xs, ims


def write_inputs(xs, ims):
    with open(os.path.join(DATA, "quant_quality_input.bin"), "wb") as f:
        f.write(b"IKQQ" + struct.pack("<4I", 1, len(xs), NROWS, NE0))
        for x, im in zip(xs, ims):
            f.write(x.astype("<f2").tobytes())
            f.write(im.astype("<f4").tobytes())


class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


class UserData(ctypes.Structure):
    _fields_ = [("symmetric_q4_0", ctypes.c_bool), ("slow_iq2_ks", ctypes.c_bool)]


FP = ctypes.POINTER(ctypes.c_float)


def deq_name(name):
    return {"q2_K": "q2_K", "q3_K": "q3_K", "q4_K": "q4_K", "q5_K": "q5_K", "q6_K": "q6_K"}.get(name, name)


def dequantize(lib, t, enc, nrows, ne0):
    name, _, blk, ts, meta, il = t
    rs = meta + ne0 // blk * ts
    if name in ("f16", "bf16", "bf16_r16"):
        u = np.frombuffer(enc.tobytes(), dtype="<u2")
        if name == "f16":
            return u.view("<f2").astype(np.float32)
        y = (u.astype(np.uint32) << 16).view(np.float32)
        if name == "bf16_r16":  # de-interleave (spec §4.2): y[32·ib + 2k + e] = row k, column 2·ib + e
            y = y.reshape(nrows // 16, ne0 // 2, 16, 2).transpose(0, 2, 1, 3).reshape(-1)
        return y.copy()
    if name == "f32":
        return np.frombuffer(enc.tobytes(), dtype="<f4").copy()
    out = np.zeros(nrows * ne0, dtype=np.float32)
    d = getattr(lib, f"dequantize_row_{deq_name(name)}")
    if name in ("iq1_bn", "iq2_bn"):
        # ik's CPU to_float decodes from the buffer start and omits d (spec §7.1): call it past the header per
        # row and apply d ourselves, as every ik kernel does.
        for r in range(nrows):
            row = enc[r * rs:(r + 1) * rs]
            tmp = np.zeros(ne0, dtype=np.float32)
            d(row[meta:].ctypes.data_as(ctypes.c_void_p), tmp.ctypes.data_as(FP), ctypes.c_int64(ne0))
            dd = np.frombuffer(row[:meta].tobytes(), dtype="<f2" if meta == 2 else "<f4")[0].astype(np.float32)
            out[r * ne0:(r + 1) * ne0] = dd * tmp
    elif il > 1:
        for g in range(nrows // il):
            d(enc[g * il * rs:].ctypes.data_as(ctypes.c_void_p), out[g * il * ne0:].ctypes.data_as(FP), ctypes.c_int64(il * ne0))
    elif meta > 0:
        for r in range(nrows):
            d(enc[r * rs:].ctypes.data_as(ctypes.c_void_p), out[r * ne0:].ctypes.data_as(FP), ctypes.c_int64(ne0))
    else:
        d(enc.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(FP), ctypes.c_int64(nrows * ne0))
    return out


def quantize(lib, t, x, im, ne0):
    name, tid, blk, ts, meta, il = t
    nrows = x.size // ne0
    enc = np.zeros(nrows * (meta + ne0 // blk * ts), dtype=np.uint8)
    ud = UserData(False, False)
    lib.ggml_quantize_chunk(ctypes.c_int(tid), x.ctypes.data_as(FP), enc.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(0),
                            ctypes.c_int64(nrows), ctypes.c_int64(ne0), im.ctypes.data_as(FP) if im is not None else None,
                            ctypes.byref(ud))
    return enc


def errors(x, y, im):
    e = (x.reshape(-1).astype(np.float64) - y.astype(np.float64)) ** 2
    if im is None:
        return float(np.sqrt(e.mean()))
    w = np.tile(im.astype(np.float64), e.size // im.size)
    return float(np.sqrt((w * e).sum() / w.sum()))


def one_type(lib_path, name):
    """Measure one type (run in a child process: a reference abort must not take the whole run down)."""
    lib = ctypes.CDLL(lib_path)
    lib.ggml_init.restype = ctypes.c_void_p
    lib.ggml_init.argtypes = [InitParams]
    lib.ggml_init(InitParams(1 << 20, None, True))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    t = next(t for t in registry() if t[0] == name)
    lib.ggml_quantize_init(ctypes.c_int(t[1]))
    xs, ims = read_inputs()
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    needs_im = bool(lib.ggml_quantize_requires_imatrix(ctypes.c_int(t[1])))
    res = {"id": t[1], "err": [], "fnv": [], "ms_per_mib": None}
    quantize(lib, t, xs[0], ims[0], NE0)  # warm-up (lazy tables, codebooks)
    secs = 0.0
    for x, im in zip(xs, ims):
        errs, fnvs = [], []
        for use in (None, im):
            if use is None and needs_im:
                errs.append(None)  # the reference refuses (GGML_ASSERT) to quantize this type without an imatrix
                fnvs.append(None)
                continue
            t0 = time.perf_counter()
            enc = quantize(lib, t, x, use, NE0)
            secs += time.perf_counter() - t0
            y = dequantize(lib, t, enc, NROWS, NE0)
            errs.append(errors(x, y, use))
            fnvs.append(f"{fnv_np(enc.tobytes()):016x}")
        res["err"].append(errs)
        res["fnv"].append(fnvs)
    nq = sum(1 for e in res["err"] for v in e if v is not None)
    res["ms_per_mib"] = 1000.0 * secs / (nq * NROWS * NE0 * 4 / 2**20)
    # bit-exact dequantization golden: a 16×256 slice of the first tensor, with its imatrix
    xg = np.ascontiguousarray(xs[0][:, :GOLDEN_NE0])
    enc = quantize(lib, t, xg, np.ascontiguousarray(ims[0][:GOLDEN_NE0]), GOLDEN_NE0)
    y = dequantize(lib, t, enc, NROWS, GOLDEN_NE0)
    res["golden"] = {"bytes": enc.tobytes().hex(), "deq_fnv": f"{fnv_np(y.astype('<f4').tobytes()):016x}"}
    print(json.dumps(res))


def read_golden():
    b = open(os.path.join(DATA, "quant_ref_blocks.bin"), "rb").read()
    n, off, out = struct.unpack_from("<I", b, 8)[0], 12, []
    for _ in range(n):
        tid, _, _, nb = struct.unpack_from("<4I", b, off)
        out.append((tid, b[off + 16:off + 16 + nb], struct.unpack_from("<Q", b, off + 16 + nb)[0]))
        off += 24 + nb
    return out


def main(lib_path, only=None):
    if only:  # refresh some types in the existing files
        doc = json.load(open(os.path.join(ROOT, "fixtures/golden/quant-rmse.json")))
        types, names, golden = doc["types"], doc["tensors"], read_golden()
    else:
        xs, ims, names = load_inputs()
        write_inputs(xs, ims)
        types, golden = {}, []
    for t in registry():
        if only and t[0] not in only:
            continue
        golden = [g for g in golden if g[0] != t[1]]
        types.pop(t[0], None)
        p = subprocess.run([sys.executable, __file__, lib_path, t[0]], capture_output=True, text=True)
        line = p.stdout.strip().splitlines()[-1] if p.returncode == 0 and p.stdout.strip() else None
        if not line:
            why = p.stderr.strip().splitlines()[-1][-160:] if p.stderr.strip() else f"rc {p.returncode}"
            print(f"{t[0]}: reference failed (rc {p.returncode}): {why}", file=sys.stderr)
            base = t[0].rsplit("_r", 1)[0]
            if base in types:  # a row-interleaved type: hold it to its base type's numbers (same quantizer)
                types[t[0]] = {"id": t[1], "err": types[base]["err"], "fnv": None, "ms_per_mib": None,
                               "ref_failed": f"{why}; numbers are those of {base}"}
            continue
        r = json.loads(line)
        g = r.pop("golden")
        golden.append((t[1], bytes.fromhex(g["bytes"]), int(g["deq_fnv"], 16)))
        types[t[0]] = r
        print(f"{t[0]:<11} err {r['err'][0]}  {r['ms_per_mib']:.1f} ms/MiB", file=sys.stderr)
    doc = {
        "reference": "ik_llama.cpp 8337e4cd libggml.so: ggml_quantize_chunk (llama-quantize's default user data) + dequantize_row_<type>",
        "input": "native/core/tests/data/quant_quality_input.bin",
        "tensors": names,
        "metric": "per tensor [no imatrix, with imatrix]: RMSE, and imatrix-weighted RMSE sqrt(sum w*e^2 / sum w)",
        "ms_per_mib": "single-thread quantization time per MiB of f32 input on the machine that generated the file",
        "types": dict(sorted(types.items(), key=lambda kv: kv[1]["id"])),
    }
    with open(os.path.join(ROOT, "fixtures/golden/quant-rmse.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    # IKRB: u32 version, count; per type: u32 id, ne0, nrows, nbytes, bytes, u64 FNV of the reference dequantization
    with open(os.path.join(DATA, "quant_ref_blocks.bin"), "wb") as f:
        f.write(b"IKRB" + struct.pack("<2I", 1, len(golden)))
        for tid, b, h in golden:
            f.write(struct.pack("<4I", tid, GOLDEN_NE0, NROWS, len(b)) + b + struct.pack("<Q", h))


if __name__ == "__main__":
    lib = sys.argv[1] if len(sys.argv) > 1 else "/work/ref/ik/build/ggml/src/libggml.so"
    if len(sys.argv) > 2 and sys.argv[2] == "--only":
        main(lib, set(sys.argv[3].split(",")))
    elif len(sys.argv) > 2:
        one_type(lib, sys.argv[2])
    else:
        main(lib)
