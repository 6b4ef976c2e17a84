#!/usr/bin/env python3
"""Reference goldens of the IQK family (IQ2_K … IQ6_K, IQ4_KS, IQ4_KSS, IQ5_KS, IQ2_KS, IQ3_KS, IQ2_KL) from
ik_llama.cpp's own libggml.so (commit 8337e4cd) through ctypes; gguf-py cannot dequantize these types.

`ggml_init` must run first: it fills ggml's f16 → f32 lookup table, which every `dequantize_row_*` reads through
`GGML_FP16_TO_FP32` (without it all dequantized values come back as ±0).

Usage: python3 gen_iqk_ref.py [/path/to/ik_llama.cpp/build/ggml/src/libggml.so]
Writes:
* iqk_input.bin: b"IKQI", u32 ne0, u32 nrows, f32 x[nrows·ne0], f32 imatrix[ne0];
* iqk_<type>.bin: b"IKQK", u32 type id, u32 ne0, u32 nrows, then
  enc (reference `quantize_<type>` of x, no imatrix), deq (reference `dequantize_row_<type>` of enc, row by row),
  enc_im (the same with the imatrix), rnd (random block bytes with sane scales, NRND rows),
  rnd_deq (reference dequantization of rnd).
"""
import ctypes
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NE0, NROWS, NRND = 1024, 4, 2
# name, ggml id, block bytes, row metadata bytes
TYPES = [("iq2_k", 137, 76, 0), ("iq3_k", 138, 110, 0), ("iq4_k", 139, 144, 0), ("iq5_k", 140, 176, 0),
         ("iq6_k", 141, 212, 0), ("iq4_ks", 144, 136, 4), ("iq2_ks", 145, 70, 2), ("iq4_kss", 146, 128, 4),
         ("iq5_ks", 152, 168, 4), ("iq3_ks", 156, 102, 2), ("iq2_kl", 157, 86, 2)]


class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


def main(lib_path):
    lib = ctypes.CDLL(lib_path)
    lib.ggml_init.restype = ctypes.c_void_p
    lib.ggml_init(InitParams(1 << 20, None, False))
    rng = np.random.default_rng(8337)
    x = rng.standard_normal((NROWS, NE0)).astype(np.float32)
    x[0, :32] = 0.0          # an all-zero 32-block (imatrix eps path, zero scales)
    x[1, ::97] *= 20.0       # outliers
    x[2] *= 1e-3             # tiny row
    x[3, 256:512] = rng.random(256).astype(np.float32)  # one-signed super-block (shifted tables)
    im = (0.1 + rng.random(NE0)).astype(np.float32)
    with open(os.path.join(HERE, "iqk_input.bin"), "wb") as f:
        f.write(b"IKQI" + struct.pack("<2I", NE0, NROWS) + x.astype("<f4").tobytes() + im.astype("<f4").tobytes())
    fp = ctypes.POINTER(ctypes.c_float)
    vp = ctypes.c_void_p
    for name, tid, ts, meta in TYPES:
        rs = meta + NE0 // 256 * ts

        def quant(imat):
            enc = np.zeros(NROWS * rs, dtype=np.uint8)
            q = getattr(lib, f"quantize_{name}")
            q.restype = ctypes.c_size_t
            q(x.ctypes.data_as(fp), enc.ctypes.data_as(vp), ctypes.c_int64(NROWS), ctypes.c_int64(NE0),
              imat.ctypes.data_as(fp) if imat is not None else None, None)
            return enc

        def deq(enc, nrows):
            out = np.zeros(nrows * NE0, dtype=np.float32)
            d = getattr(lib, f"dequantize_row_{name}")
            for r in range(nrows):
                # row-scale types read their scale from the row start: one call per row
                d(ctypes.c_void_p(enc.ctypes.data + r * rs), ctypes.c_void_p(out.ctypes.data + 4 * r * NE0),
                  ctypes.c_int64(NE0))
            return out

        enc = quant(None)
        enc_im = quant(im)
        rnd = rng.integers(0, 256, NRND * rs, dtype=np.uint8)
        for r in range(NRND):
            o = r * rs
            if meta == 4:
                rnd[o:o + 4] = np.frombuffer(np.float32(0.0123 * (r + 1)).tobytes(), dtype=np.uint8)
            elif meta == 2:
                rnd[o:o + 2] = np.frombuffer(np.float16(0.0123 * (r + 1)).tobytes(), dtype=np.uint8)
            else:  # keep each super-block f16 d finite and moderate
                for b in range(NE0 // 256):
                    ob = o + b * ts
                    rnd[ob:ob + 2] = np.frombuffer(np.float16(rng.uniform(-0.01, 0.01)).tobytes(), dtype=np.uint8)
        with open(os.path.join(HERE, f"iqk_{name}.bin"), "wb") as f:
            f.write(b"IKQK" + struct.pack("<3I", tid, NE0, NROWS))
            f.write(enc.tobytes())
            f.write(deq(enc, NROWS).astype("<f4").tobytes())
            f.write(enc_im.tobytes())
            f.write(rnd.tobytes())
            f.write(deq(rnd, NRND).astype("<f4").tobytes())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/ref/ik/build/ggml/src/libggml.so")
