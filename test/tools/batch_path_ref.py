"""Golden outputs of the reference's iqk_mul_mat on the large-batch path (docs/batch-path.md).

For each weight type: NX rows of NE00 weights quantized by the reference (ggml_quantize_chunk), activation rows
quantized by the reference (quantize_row_q8_2_x4, quantize_row_q8_K for IQ4_XS), and C = iqk_mul_mat(...) with nth = 1, for NY = threshold − 1
(own kernels) and NY = threshold (converted). Writes fixtures/golden/batch-path-ref.bin:
  magic b"IKLBATCH", u32 n_types, u32 NE00, u32 NX, then per type: u32 ggml type id, u32 weight bytes, weight
  bytes, u32 threshold T, then for NY in (T − 1, T): NY*NX f32 (activation row major).
Activation values are the formula `act(i)` (also in native/core/tests/cpu_batch_path.rs).
Run: .toolchain/py/bin/python test/tools/batch_path_ref.py /work/ref/ik/build/ggml/src/libggml.so
"""
import ctypes, struct, sys
import numpy as np

NE00, NX = 256, 32
# name: (ggml type id, threshold of is_dequant_better on AVX2)
TYPES = {"Q8_0": (8, 32), "Q4_0": (2, 32), "Q5_0": (6, 32), "Q6_0": (133, 32), "IQ4_NL": (20, 32), "Q6_K": (14, 64), "IQ4_XS": (23, 32)}
# activation type per weight type (ggml.c vec_dot_type on AVX2): Q8_2_X4, except Q8_K for IQ4_XS
Q8_K = 15
ACT = {23: Q8_K}
MAX_NY = 64
Q8_2_X4 = 99


def act(i):
    return (((i * 2654435761) % 2001) - 1000) / 256.0


def weight(i):
    return (((i * 40503 + 12345) % 4099) - 2049) / 1024.0


def main(lib_path, out_path):
    g = ctypes.CDLL(lib_path)

    class P(ctypes.Structure):
        _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]

    g.ggml_init.restype = ctypes.c_void_p
    g.ggml_init.argtypes = [P]
    g.ggml_init(P(1 << 20, None, False))
    g.ggml_quantize_init.argtypes = [ctypes.c_int]
    for t, _ in TYPES.values():
        g.ggml_quantize_init(t)
    g.ggml_row_size.restype = ctypes.c_size_t
    g.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    g.ggml_quantize_chunk.restype = ctypes.c_size_t
    g.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
    g.quantize_row_q8_2_x4.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    g.iqk_mul_mat.restype = ctypes.c_bool
    g.iqk_mul_mat.argtypes = [ctypes.c_long] * 3 + [ctypes.c_int, ctypes.c_void_p, ctypes.c_long] * 2 + [ctypes.c_void_p, ctypes.c_long, ctypes.c_int, ctypes.c_int]

    w = np.array([weight(i) for i in range(NX * NE00)], dtype=np.float32)
    a = np.array([act(i) for i in range(MAX_NY * NE00)], dtype=np.float32)
    g.quantize_row_q8_K.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    ys = {}
    for at, fn in ((Q8_2_X4, g.quantize_row_q8_2_x4), (Q8_K, g.quantize_row_q8_K)):
        by = g.ggml_row_size(at, NE00)
        y = np.zeros(by * MAX_NY, dtype=np.uint8)
        for r in range(MAX_NY):
            fn(a[r * NE00:].ctypes.data, y[r * by:].ctypes.data, NE00)
        ys[at] = (y, by)
    out = bytearray(b"IKLBATCH" + struct.pack("<III", len(TYPES), NE00, NX))
    for name, (t, thr) in TYPES.items():
        bx = g.ggml_row_size(t, NE00)
        x = np.zeros(bx * NX, dtype=np.uint8)
        g.ggml_quantize_chunk(t, w.ctypes.data, x.ctypes.data, 0, NX, NE00, None, None)
        out += struct.pack("<II", t, len(x)) + x.tobytes() + struct.pack("<I", thr)
        for ny in (thr - 1, thr):
            c = np.full(ny * NX, np.nan, dtype=np.float32)
            at = ACT.get(t, Q8_2_X4)
            y, by = ys[at]
            ok = g.iqk_mul_mat(NX, ny, NE00, t, x.ctypes.data, bx, at, y.ctypes.data, by, c.ctypes.data, NX, 0, 1)
            assert ok, name
            out += c.tobytes()
    open(out_path, "wb").write(out)
    print(f"wrote {out_path}: {len(out)} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "fixtures/golden/batch-path-ref.bin")
