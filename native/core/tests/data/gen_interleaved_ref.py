#!/usr/bin/env python3
"""Reference goldens for the row-interleaved (_R4/_R8/_R16), Q8_KV, ternary (BN) and trellis (KT) types, made by
calling ik_llama.cpp's own `quantize_<type>` / `dequantize_row_<type>` (reference commit 8337e4cd) from a built
libggml.so through ctypes.

Usage: python3 gen_interleaved_ref.py [/path/to/ik_llama.cpp/build/ggml/src/libggml.so]

Why `ggml_init` first: on builds without F16C, GGML_FP16_TO_FP32 reads `ggml_table_f32_f16`, which only
`ggml_init` fills — without it every f16 scale decodes as 0 and `dequantize_row_*` returns zeros (the symptom
gen_quant_ref.py's author hit with `to_float`). `ggml_quantize_init(type)` builds the i-quant grids/neighbour
tables the IQ2/IQ3 quantizers need.

Inputs are not stored: they come from an integer xorshift32 generator that tests/quant_interleaved.rs
reproduces bit for bit (every float is an exactly representable integer times a power of two).
File il_<name>[_im].bin: b"IKIL", then u32 version=1, type id, ne0, nrows, flags (bit0 = imatrix), nbytes;
the reference-quantized bytes; u64 FNV-1a of the reference dequantization (f32 LE bytes); f32 reference RMSE.
"""
import ctypes
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NE0 = 512
# name, ggml id, interleave, block, type size, row meta, imatrix variant
TYPES = [
    ("q4_0_r8", 202, 8, 32, 18, 0, True), ("q8_0_r8", 208, 8, 32, 34, 0, False),
    ("q5_0_r4", 206, 4, 32, 22, 0, True), ("q6_0_r4", 233, 4, 32, 26, 0, True),
    ("iq4_nl_r4", 220, 4, 32, 18, 0, True), ("mxfp4_r8", 353, 8, 32, 17, 0, False),
    ("iq4_xs_r8", 223, 8, 256, 136, 0, True), ("q2_k_r4", 210, 4, 256, 84, 0, True),
    ("q3_k_r4", 211, 4, 256, 110, 0, True), ("q4_k_r4", 212, 4, 256, 144, 0, True),
    ("q5_k_r4", 213, 4, 256, 176, 0, True), ("q6_k_r4", 214, 4, 256, 210, 0, True),
    ("iq2_xxs_r4", 216, 4, 256, 66, 0, True), ("iq2_xs_r4", 217, 4, 256, 74, 0, True),
    ("iq2_s_r4", 222, 4, 256, 82, 0, True), ("iq3_xxs_r4", 218, 4, 256, 98, 0, True),
    ("iq3_s_r4", 221, 4, 256, 110, 0, True),
    ("iq2_k_r4", 337, 4, 256, 76, 0, True), ("iq3_k_r4", 338, 4, 256, 110, 0, True),
    ("iq4_k_r4", 339, 4, 256, 144, 0, True), ("iq5_k_r4", 340, 4, 256, 176, 0, True),
    ("iq4_ks_r4", 344, 4, 256, 136, 4, True), ("iq5_ks_r4", 352, 4, 256, 168, 4, True),
    ("q8_k_r8", 399, 8, 256, 258, 0, False), ("q8_KV", 151, 1, 32, 32, 8, False),
    ("q8_KV_r8", 398, 8, 32, 32, 4, False), ("iq1_bn", 134, 1, 64, 13, 2, False),
    ("iq2_bn", 135, 1, 64, 16, 4, False), ("iq2_bn_r4", 335, 4, 64, 16, 4, False),
    ("iq1_s_r4", 219, 4, 32, 6, 2, True), ("iq1_m_r4", 229, 4, 32, 7, 2, True),
    ("iq1_kt", 158, 1, 256, 56, 4, True), ("iq2_kt", 153, 1, 256, 68, 4, True),
    ("iq3_kt", 154, 1, 256, 100, 4, True), ("iq4_kt", 155, 1, 256, 128, 4, True),
]


def xorshift(seed):
    s = seed

    def u():
        nonlocal s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        return s >> 8
    return u


def gen_x(nrows, ne0, seed):
    """Sum of four 24-bit uniforms, centred, ×2^-23 (≈ N(0,1.15)); some outliers, a zero block, a tiny row."""
    u = xorshift(seed)
    x = np.zeros(nrows * ne0, dtype=np.float32)
    for j in range(nrows * ne0):
        v = u() + u() + u() + u() - (1 << 25)
        x[j] = np.float32(v) * np.float32(2.0 ** -23)
    x = x.reshape(nrows, ne0)
    x[:, ::97] *= np.float32(8.0)
    x[0, :32] = 0.0
    if nrows > 2:
        x[2] *= np.float32(2.0 ** -10)
    return x


def gen_im(ne0, seed):
    u = xorshift(seed)
    return np.array([np.float32(u() | 0x100000) * np.float32(2.0 ** -24) for _ in range(ne0)], dtype=np.float32)


def fnv(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


def main(lib_path, only=None):
    lib = ctypes.CDLL(lib_path)
    lib.ggml_init.restype = ctypes.c_void_p
    lib.ggml_init.argtypes = [InitParams]
    lib.ggml_init(InitParams(1 << 20, None, True))
    fp = ctypes.POINTER(ctypes.c_float)
    for name, tid, n, blk, ts, meta, has_im in TYPES:
        if only and name != only:
            continue
        nrows = max(2 * n, 4)
        x = gen_x(nrows, NE0, 0x1234567 + tid)
        im = gen_im(NE0, 0x7654321 + tid)
        rs = meta + NE0 // blk * ts
        for use_im in ([False, True] if has_im else [False]):
            lib.ggml_quantize_init(ctypes.c_int(tid))
            enc = np.zeros(nrows * rs, dtype=np.uint8)
            q = getattr(lib, f"quantize_{name}")
            q.restype = ctypes.c_size_t
            q(x.ctypes.data_as(fp), enc.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(nrows), ctypes.c_int64(NE0),
              im.ctypes.data_as(fp) if use_im else None, None)
            deq = np.zeros(nrows * NE0, dtype=np.float32)
            d = getattr(lib, f"dequantize_row_{name}")
            if name in ("iq1_bn", "iq2_bn"):
                # ik's CPU to_float decodes from the buffer start and omits d (spec §7.1): call it per row past the
                # header and apply d ourselves, as every ik kernel does.
                for r in range(nrows):
                    row = enc[r * rs:(r + 1) * rs]
                    t = np.zeros(NE0, dtype=np.float32)
                    d(row[meta:].ctypes.data_as(ctypes.c_void_p), t.ctypes.data_as(fp), ctypes.c_int64(NE0))
                    dd = np.frombuffer(row[:meta].tobytes(), dtype="<f2" if meta == 2 else "<f4")[0].astype(np.float32)
                    deq[r * NE0:(r + 1) * NE0] = dd * t
            elif n > 1:
                for g in range(nrows // n):
                    d(enc[g * n * rs:].ctypes.data_as(ctypes.c_void_p), deq[g * n * NE0:].ctypes.data_as(fp),
                      ctypes.c_int64(n * NE0))
            elif meta > 0:
                for r in range(nrows):
                    d(enc[r * rs:].ctypes.data_as(ctypes.c_void_p), deq[r * NE0:].ctypes.data_as(fp),
                      ctypes.c_int64(NE0))
            else:
                d(enc.ctypes.data_as(ctypes.c_void_p), deq.ctypes.data_as(fp), ctypes.c_int64(nrows * NE0))
            err = deq.astype(np.float64) - x.reshape(-1).astype(np.float64)
            rmse = float(np.sqrt(np.mean(err * err)))
            with open(os.path.join(HERE, f"il_{name.lower()}{'_im' if use_im else ''}.bin"), "wb") as f:
                f.write(b"IKIL" + struct.pack("<6I", 1, tid, NE0, nrows, 1 if use_im else 0, len(enc)))
                f.write(enc.tobytes())
                f.write(struct.pack("<Qf", fnv(deq.astype("<f4").tobytes()), rmse))
            print(f"{name}{' im' if use_im else ''}: {len(enc)} bytes, rmse {rmse:.5f}")


if __name__ == "__main__":
    # One type per process when given a second argument (a crash of one reference function spares the rest).
    lib = sys.argv[1] if len(sys.argv) > 1 else "/work/ref/ik/build/ggml/src/libggml.so"
    if len(sys.argv) > 2:
        main(lib, sys.argv[2])
    else:
        import subprocess
        for t in TYPES:
            subprocess.run([sys.executable, __file__, lib, t[0]], check=False)
