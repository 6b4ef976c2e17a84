#!/usr/bin/env python3
"""Independent view of GGUF files through gguf-py (`pip install gguf numpy`), for cross-checking ikl's reader.

Usage: check_gguf_py.py FILE.gguf [--ours OURS.json] [--stats]
Prints JSON: {"kv": {key: type name}, "tensors": [{name, type, shape, n_bytes, data_offset}]} where `shape` is
ggml order (ne0 first), `data_offset` is absolute in the file. With --ours, compares against a JSON file of the
same schema (ikl's view) and exits 1 listing every difference. With --stats, adds mean/std per tensor.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader


def view(path, stats=False):
    r = GGUFReader(path)
    kv = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        t = f.types[0].name if f.types else "?"
        if t == "ARRAY" and len(f.types) > 1:
            t = f"ARRAY[{f.types[1].name}]"
        kv[f.name] = t
    tensors = []
    for t in r.tensors:
        rec = {
            "name": t.name,
            "type": int(t.tensor_type),
            "shape": [int(x) for x in t.shape],
            "n_bytes": int(t.n_bytes),
            "data_offset": int(t.data_offset),
        }
        if stats:
            a = np.asarray(t.data, dtype=np.float64).ravel()
            rec["mean"], rec["std"] = float(a.mean()), float(a.std())
        tensors.append(rec)
    return {"kv": kv, "tensors": tensors}


def main(argv):
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    stats = "--stats" in argv
    v = view(argv[0], stats)
    if "--ours" in argv:
        i = argv.index("--ours")
        ours = json.load(open(argv[i + 1]))
        diffs = []
        theirs = {t["name"]: t for t in v["tensors"]}
        mine = {t["name"]: t for t in ours.get("tensors", [])}
        for n in sorted(set(theirs) | set(mine)):
            a, b = theirs.get(n), mine.get(n)
            if a is None or b is None:
                diffs.append(f"{n}: only in {'ours' if a is None else 'gguf-py'}")
                continue
            for k in ("type", "shape", "n_bytes", "data_offset"):
                if k in b and a[k] != b[k]:
                    diffs.append(f"{n}.{k}: gguf-py {a[k]} vs ours {b[k]}")
        for k in sorted(set(v["kv"]) ^ set(ours.get("kv", {}))):
            diffs.append(f"key {k}: only in {'gguf-py' if k in v['kv'] else 'ours'}")
        if diffs:
            print("\n".join(diffs))
            return 1
        print(f"ok: {len(theirs)} tensors, {len(v['kv'])} keys agree")
        return 0
    json.dump(v, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
