#!/usr/bin/env python3
"""Golden dequantization vectors for the lattice i-quants, from an independent implementation (gguf-py).

Writes tests/data/iq_<type>.bin: u32 block count, the encoded blocks, then gguf-py's dequantized f32 values
(little-endian). Blocks are deterministic random bytes with a sane f16 super-scale (every index pattern is a
valid grid index for these types). Used by tests/quant_iq.rs. Requires `pip install gguf numpy`.
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

NBLOCKS = 16
# type name -> (ggml type, block bytes, byte offset of the f16 d or None for IQ1_M's spread scale)
TYPES = {
    "iq2_xxs": (T.IQ2_XXS, 66, 0),
    "iq2_xs": (T.IQ2_XS, 74, 0),
    "iq2_s": (T.IQ2_S, 82, 0),
    "iq3_xxs": (T.IQ3_XXS, 98, 0),
    "iq3_s": (T.IQ3_S, 110, 0),
    "iq1_s": (T.IQ1_S, 50, 0),
    "iq1_m": (T.IQ1_M, 56, None),
}


def sane_f16(rng):
    # Magnitudes 1e-4 … 1 with random sign; one block in 8 uses a subnormal to exercise exact f16 decoding.
    if rng.integers(8) == 0:
        return int(rng.integers(1, 0x400)) | (int(rng.integers(2)) << 15)
    v = np.float16(rng.choice([-1, 1]) * 10 ** rng.uniform(-4, 0))
    return int(v.view(np.uint16))


def main():
    out_dir = os.path.dirname(os.path.abspath(__file__))
    for i, (name, (qt, size, doff)) in enumerate(TYPES.items()):
        rng = np.random.default_rng(1234 + i)
        blocks = rng.integers(0, 256, size=(NBLOCKS, size), dtype=np.uint8)
        for b in blocks:
            h = sane_f16(rng)
            if doff is not None:
                b[doff:doff + 2] = np.frombuffer(struct.pack("<H", h), dtype=np.uint8)
            else:
                sc = np.frombuffer(b[48:56].tobytes(), dtype="<u2").copy()
                for k in range(4):
                    sc[k] = (sc[k] & 0x0FFF) | (((h >> (4 * k)) & 0xF) << 12)
                b[48:56] = np.frombuffer(sc.astype("<u2").tobytes(), dtype=np.uint8)
        y = dequantize(blocks.reshape(-1), qt).astype("<f4").reshape(-1)
        assert y.size == NBLOCKS * 256
        with open(os.path.join(out_dir, f"iq_{name}.bin"), "wb") as f:
            f.write(struct.pack("<I", NBLOCKS))
            f.write(blocks.tobytes())
            f.write(y.tobytes())


if __name__ == "__main__":
    main()
