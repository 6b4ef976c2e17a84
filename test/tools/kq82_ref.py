"""Reference numbers for native/core/tests/cpu_kernels_kq82.rs `equals_reference_iqk_mul_mat` (opt-in).

The reference's own AVX2 path for Q4_K / Q5_K / Q6_K weights: random rows quantized by ggml_quantize_chunk,
activation rows by quantize_row_q8_2_x4, and C = iqk_mul_mat(...) (64 weight rows x 8 activation rows, n = 256,
1024, 4096). Writes per case `{ggml type id}_{n}.a` (weights), `.b` (Q8_2_X4 activations), `.x` (f32 activations)
and `.c` (result, f32) into OUT_DIR.
Run: .toolchain/py/bin/python test/tools/kq82_ref.py OUT_DIR [path/to/libggml.so]
     IKL_KQ82_REF_DIR=OUT_DIR cargo test -p ikl-core --test cpu_kernels_kq82 equals_reference
"""
import ctypes as C, numpy as np, sys, os
lib = C.CDLL(sys.argv[2] if len(sys.argv) > 2 else "/work/ref/ik/build/ggml/src/libggml.so")
class P(C.Structure): _fields_=[("mem_size",C.c_size_t),("mem_buffer",C.c_void_p),("no_alloc",C.c_bool)]
lib.ggml_init.restype=C.c_void_p; lib.ggml_init.argtypes=[P]
lib.ggml_init(P(1<<20,None,False))
lib.ggml_quantize_chunk.restype=C.c_size_t
lib.ggml_quantize_chunk.argtypes=[C.c_int,C.c_void_p,C.c_void_p,C.c_int64,C.c_int64,C.c_int64,C.c_void_p,C.c_void_p]
lib.quantize_row_q8_2_x4.argtypes=[C.c_void_p,C.c_void_p,C.c_int64]
lib.iqk_mul_mat.restype=C.c_bool
lib.iqk_mul_mat.argtypes=[C.c_long,C.c_long,C.c_long,C.c_int,C.c_void_p,C.c_long,C.c_int,C.c_void_p,C.c_long,C.c_void_p,C.c_long,C.c_int,C.c_int]
out=sys.argv[1]
BYTES={12:144,13:176,14:210}
rng=np.random.default_rng(7)
for t in (12,13,14):
    for n in (256,1024,4096):
        nx,ny=64,8
        w=(rng.standard_normal((nx,n))*(1+9*(rng.random((nx,n))<0.01))).astype(np.float32)
        x=(rng.standard_normal((ny,n))*(1+9*(rng.random((ny,n))<0.01))).astype(np.float32)
        rb=n//256*BYTES[t]; A=np.zeros(nx*rb,np.uint8)
        lib.ggml_quantize_chunk(t,w.ctypes.data,A.ctypes.data,0,nx,n,None,None)
        yb=n//32*36; B=np.zeros(ny*yb,np.uint8)
        for i in range(ny): lib.quantize_row_q8_2_x4(x[i].ctypes.data,B[i*yb:].ctypes.data,n)
        Cm=np.full(ny*nx,np.nan,np.float32)
        ok=lib.iqk_mul_mat(nx,ny,n,t,A.ctypes.data,rb,99,B.ctypes.data,yb,Cm.ctypes.data,nx,0,1)
        assert ok, (t,n)
        base=os.path.join(out,f"{t}_{n}")
        A.tofile(base+".a"); B.tofile(base+".b"); Cm.tofile(base+".c"); x.tofile(base+".x")
        print(t,n,Cm[:3])
