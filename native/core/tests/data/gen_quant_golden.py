#!/usr/bin/env python3
"""Golden vectors for native/core/tests/quant_basic.rs, from gguf-py (an implementation independent of ours).

Usage: python3 gen_quant_golden.py   (needs `pip install gguf numpy`; writes quant_<type>.bin next to this file)

File layout (little-endian):
  b"IKQG", u32 version=1, u32 ggml type id, u32 ne0, u32 nrows, u32 flags
  flags & 1: f32[nrows*ne0] input, and the encoded bytes below are gguf-py's quantization of it
             (bit-exact with ggml's quantize_row_*_ref)
  u8[nrows*row_size] encoded rows (flags & 1 == 0: random valid blocks)
  f32[nrows*ne0] gguf-py dequantization of the encoded rows
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
NE0, NROWS = 512, 4


def make_input(rng):
    x = rng.standard_normal((NROWS, NE0)).astype(np.float32)
    x[0, :32] = 0.0  # an all-zero block
    x[0, 40:48] = 0.0  # scattered zeros
    x[1, 64:96] = 0.75  # a constant block
    x[1, ::97] *= 20.0  # outliers
    x[2] *= 1e-3  # small magnitudes
    x[3, 256:288] = np.linspace(-2.5, 5.25, 32, dtype=np.float32)  # spec B.5-like ramp
    return x


def f16_bytes(vals):
    return np.asarray(vals, dtype=np.float16).view(np.uint8)


def random_blocks(qtype, rng, nblocks):
    """Random encoded blocks with sane f16 scales (finite, moderate) at the type's scale offsets."""
    bs, ts = quants.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(nblocks, ts), dtype=np.uint8)
    def put_f16(off, lo, hi, signed=False):
        v = rng.uniform(lo, hi, size=nblocks).astype(np.float32)
        if signed:
            v *= rng.choice([-1.0, 1.0], size=nblocks).astype(np.float32)
        raw[:, off:off + 2] = f16_bytes(v).reshape(nblocks, 2)
    if qtype == T.Q2_K:
        put_f16(80, 1e-3, 0.05); put_f16(82, 1e-3, 0.05)
    elif qtype == T.Q3_K:
        put_f16(108, 1e-3, 0.05, True)
    elif qtype in (T.Q4_K, T.Q5_K):
        put_f16(0, 1e-3, 0.05); put_f16(2, 1e-3, 0.05)
    elif qtype == T.Q6_K:
        put_f16(208, 1e-4, 0.01, True)
    elif qtype == T.IQ4_NL:
        put_f16(0, 1e-3, 0.05, True)
    elif qtype == T.IQ4_XS:
        put_f16(0, 1e-3, 0.05, True)
    elif qtype == T.MXFP4:
        raw[:, 0] = rng.integers(100, 140, size=nblocks, dtype=np.uint8)
    return raw


def write(name, qtype, flags, x, enc, deq):
    with open(os.path.join(HERE, f"quant_{name}.bin"), "wb") as f:
        f.write(b"IKQG" + struct.pack("<5I", 1, int(qtype), NE0, NROWS, flags))
        if flags & 1:
            f.write(x.astype("<f4").tobytes())
        f.write(enc.astype(np.uint8).tobytes())
        f.write(deq.astype("<f4").tobytes())


def main():
    rng = np.random.default_rng(20240611)
    x = make_input(rng)
    # Types gguf-py quantizes bit-exactly like ggml's reference quantizers.
    for name, qt in [("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0), ("q5_1", T.Q5_1),
                     ("q8_0", T.Q8_0), ("bf16", T.BF16), ("mxfp4", T.MXFP4)]:
        enc = quants.quantize(x, qt)
        deq = quants.dequantize(enc, qt)
        write(name, qt, 1, x, enc, deq)
    enc = x.astype(np.float16).view(np.uint8)
    write("f16", T.F16, 1, x, enc, enc.view(np.float16).astype(np.float32))
    # Dequantization-only goldens from random valid blocks.
    for name, qt in [("q2_k", T.Q2_K), ("q3_k", T.Q3_K), ("q4_k", T.Q4_K), ("q5_k", T.Q5_K),
                     ("q6_k", T.Q6_K), ("iq4_nl", T.IQ4_NL), ("iq4_xs", T.IQ4_XS), ("mxfp4_rand", T.MXFP4),
                     ("q4_0_rand", T.Q4_0), ("q5_1_rand", T.Q5_1)]:
        bs, ts = quants.GGML_QUANT_SIZES[qt]
        if qt in (T.Q4_0, T.Q5_1):
            raw = rng.integers(0, 256, size=(NROWS * NE0 // bs, ts), dtype=np.uint8)
            raw[:, 0:2] = f16_bytes(rng.uniform(-0.05, 0.05, size=raw.shape[0]).astype(np.float32)).reshape(-1, 2)
            if qt == T.Q5_1:
                raw[:, 2:4] = f16_bytes(rng.uniform(-1, 1, size=raw.shape[0]).astype(np.float32)).reshape(-1, 2)
        else:
            raw = random_blocks(qt, rng, NROWS * NE0 // bs)
        enc = raw.reshape(NROWS, -1)
        deq = quants.dequantize(enc, qt)
        write(name, qt, 0, None, enc, deq)


if __name__ == "__main__":
    main()
