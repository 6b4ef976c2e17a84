#!/usr/bin/env python3
"""Reference-quantizer goldens for the types gguf-py cannot quantize (K-quants, IQ4_NL/IQ4_XS, Q6_0, and the
imatrix paths of Q4_0…Q5_1), produced by calling ik_llama.cpp's own `quantize_<type>` / `dequantize_row_<type>`
from a built libggml.so (reference commit 8337e4cd) through ctypes.

Usage: python3 gen_quant_ref.py /path/to/ik_llama.cpp/build/ggml/src/libggml.so
Writes quant_ref_<type>[_im].bin in the format of gen_quant_golden.py, with flags bit 1 = an f32[ne0]
importance matrix follows the input.
"""
import ctypes
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NE0, NROWS = 512, 4
# name, ggml id, block, bytes
TYPES = [("q2_k", 10, 256, 84), ("q3_k", 11, 256, 110), ("q4_k", 12, 256, 144), ("q5_k", 13, 256, 176),
         ("q6_k", 14, 256, 210), ("iq4_nl", 20, 32, 18), ("iq4_xs", 23, 256, 136), ("q6_0", 133, 32, 26),
         ("q4_0", 2, 32, 18), ("q4_1", 3, 32, 20), ("q5_0", 6, 32, 22), ("q5_1", 7, 32, 24)]
DEQ = {"q2_k": "q2_K", "q3_k": "q3_K", "q4_k": "q4_K", "q5_k": "q5_K", "q6_k": "q6_K"}


def main(lib_path):
    lib = ctypes.CDLL(lib_path)
    rng = np.random.default_rng(8337)
    x = rng.standard_normal((NROWS, NE0)).astype(np.float32)
    x[0, :32] = 0.0
    x[1, ::97] *= 20.0
    x[2] *= 1e-3
    im = (0.1 + rng.random(NE0)).astype(np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    for name, tid, blk, ts in TYPES:
        for use_im in (False, True):
            if not use_im and name in ("q4_0", "q4_1", "q5_0", "q5_1"):
                continue  # covered bit-exactly by gguf-py
            enc = np.zeros(NROWS * NE0 // blk * ts, dtype=np.uint8)
            q = getattr(lib, f"quantize_{name if name not in DEQ else DEQ[name]}")
            q.restype = ctypes.c_size_t
            q(x.ctypes.data_as(fp), enc.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(NROWS), ctypes.c_int64(NE0),
              im.ctypes.data_as(fp) if use_im else None, None)
            deq = np.zeros(NROWS * NE0, dtype=np.float32)
            d = getattr(lib, f"dequantize_row_{DEQ.get(name, name)}")
            d(enc.ctypes.data_as(ctypes.c_void_p), deq.ctypes.data_as(fp), ctypes.c_int64(NROWS * NE0))
            flags = 1 | (2 if use_im else 0)
            with open(os.path.join(HERE, f"quant_ref_{name}{'_im' if use_im else ''}.bin"), "wb") as f:
                f.write(b"IKQG" + struct.pack("<5I", 1, tid, NE0, NROWS, flags))
                f.write(x.astype("<f4").tobytes())
                if use_im:
                    f.write(im.astype("<f4").tobytes())
                f.write(enc.tobytes())
                f.write(deq.astype("<f4").tobytes())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/ref/ik/build/ggml/src/libggml.so")
