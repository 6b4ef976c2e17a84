#!/usr/bin/env python3
"""Split a GGUF into N parts with gguf-py's writer (an independent writer), for split-model tests.

Usage: split_gguf.py IN.gguf OUT_PREFIX N  → OUT_PREFIX-00001-of-0000N.gguf … (gguf-py naming and split keys).
"""
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter


def main(src, prefix, n):
    r = GGUFReader(src)
    arch = str(bytes(r.fields["general.architecture"].parts[-1]), "utf-8")
    per = -(-len(r.tensors) // n)
    w = GGUFWriter(prefix + ".gguf", arch, split_max_tensors=per)
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name in ("general.architecture", "general.alignment"):
            continue
        vt = f.types[0]
        if vt == GGUFValueType.ARRAY:
            et = f.types[1]
            if et == GGUFValueType.STRING:
                vals = [str(bytes(f.parts[i]), "utf-8") for i in f.data]
            else:
                vals = [f.parts[i].tolist()[0] for i in f.data]
            w.add_key_value(f.name, vals, vt, sub_type=et)
        elif vt == GGUFValueType.STRING:
            w.add_key_value(f.name, str(bytes(f.parts[-1]), "utf-8"), vt)
        else:
            w.add_key_value(f.name, f.parts[-1].tolist()[0], vt)
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape))
        data = np.asarray(t.data)
        w.add_tensor(t.name, data, raw_shape=shape if data.dtype == np.uint8 else None, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
