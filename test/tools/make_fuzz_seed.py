#!/usr/bin/env python3
"""Write a small but varied GGUF with gguf-py (an independent writer) as the seed of the fuzz tests.

Usage: make_fuzz_seed.py OUT.gguf [ARCH] — every scalar value type, string and numeric arrays, a vocabulary-like
array, and tensors of plain, legacy, K-, IQK and row-interleaved types (raw bytes; contents are irrelevant).
"""
import sys

import numpy as np
from gguf import GGUFValueType, GGUFWriter
from gguf import constants, quants

# gguf-py knows only mainline ids: teach it the sizes of the ik-only types used below (spec/quants.md §2).

# conversion (row_bytes // type_size * block) still maps back to 256 elements.
for tid, size in {137: (256, 76), 139: (256, 144), 208: (32, 34)}.items():
    constants.GGML_QUANT_SIZES[tid] = size
    quants.GGML_QUANT_SIZES[tid] = size

w = GGUFWriter(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "llama")
w.add_uint32("llama.block_count", 2)
w.add_uint32("llama.embedding_length", 256)
w.add_float32("llama.rope.freq_base", 10000.0)
w.add_key_value("x.i8", -3, GGUFValueType.INT8)
w.add_key_value("x.u16", 7, GGUFValueType.UINT16)
w.add_key_value("x.i64", -9, GGUFValueType.INT64)
w.add_key_value("x.f64", 0.5, GGUFValueType.FLOAT64)
w.add_bool("x.bool", True)
w.add_string("x.str", "h\u00e9llo \u2581world")
w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(1500)])
w.add_array("tokenizer.ggml.scores", [float(-i) for i in range(1500)])
w.add_array("tokenizer.ggml.token_type", [1] * 1500)
rng = np.random.default_rng(7)
w.add_tensor("token_embd.weight", rng.standard_normal((16, 256)).astype(np.float16))
w.add_tensor("output_norm.weight", np.ones(256, dtype=np.float32))
# (type id, bytes per row for ne0 = 256, rows): q8_0, q4_K, iq4_k (ik), iq2_k (ik), q8_0_r8 (ik)
for name, tid, row, rows in [("blk.0.attn_q.weight", 8, 272, 8), ("blk.0.ffn_down.weight", 12, 144, 4),
                             ("blk.1.ffn_up.weight", 139, 144, 4), ("blk.1.ffn_gate.weight", 137, 76, 4),
                             ("blk.1.attn_k.weight", 208, 272, 8)]:
    data = rng.integers(0, 256, size=(rows, row), dtype=np.uint8)
    w.add_tensor(name, data, raw_shape=(rows, row), raw_dtype=tid)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
