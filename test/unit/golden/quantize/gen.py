#!/usr/bin/env python3
"""Regenerates the quantize goldens: runs ik_llama.cpp `llama-quantize --dry-run` for each fixture model and preset and
records the per-tensor type it chose. Usage: gen.py MODEL_DIR OUT_DIR (models from make_fixtures: *-f16.gguf)."""
import json, re, subprocess, sys, os

BIN = os.environ.get("LLAMA_QUANTIZE", "/work/ref/ik/build/bin/llama-quantize")
MODELS = ["llama-tiny", "ds-tiny-27l", "ds-mini"]
PRESETS = ["Q4_0", "Q8_0", "Q4_K_M", "Q4_K_S", "Q5_K_M", "Q5_K_S", "Q6_K", "Q3_K_M", "Q3_K_S", "Q3_K_L", "Q2_K",
           "IQ4_XS", "IQ4_NL", "IQ4_K", "IQ3_K", "IQ2_K", "IQ4_KS", "IQ4_K_R4", "Q4_0_R8", "IQ3_XS", "IQ3_M", "IQ3_KL",
           "IQ5_K", "IQ2_KS", "IQ3_KS", "IQ2_KL", "IQ4_KSS", "Q4_K_R4", "IQ2_K_R4", "IQ3_K_R4", "IQ3_XXS", "Q8_0_R8",
           "Q6_K_R4", "BF16", "IQ4_KT", "IQ3_KT", "Q5_K_R4", "IQ4_NL_R4", "IQ4_XS_R8", "Q5_0", "Q6_0", "IQ6_K",
           "IQ5_KS", "IQ3_XXS_R4", "IQ3_S", "IQ2_XXS", "Q2_K_S", "IQ2_KT"]
CUSTOM = [  # (label, extra args, ftype)
    ("custom-ds:Q4_K_M", ["--custom-q", r"attn=q8_0,shexp=q8_0,ffn_down_exps=iq4_k,ffn_(up|gate)_exps=iq3_k"], "Q4_K_M"),
    ("custom-ds:IQ4_K", ["--custom-q", r"attn=q8_0,shexp=q8_0,ffn_down_exps=iq4_k,ffn_(up|gate)_exps=iq3_k"], "IQ4_K"),
    ("pure:Q4_K_M", ["--pure"], "Q4_K_M"),
    ("pure:IQ4_K_R4", ["--pure"], "IQ4_K_R4"),
    ("otype:Q4_K_M", ["--output-tensor-type", "q8_0", "--token-embedding-type", "iq4_k_r4"], "Q4_K_M"),
    ("leave-output:Q4_K_M", ["--leave-output-tensor"], "Q4_K_M"),
    ("attn-v:Q4_K_M", ["--attn-v-type", "q8_0", "--ffn-down-type", "iq4_k", "--attn-output-type", "q5_0"], "Q4_K_M"),
    ("gate-inp:Q4_0", ["--ffn-gate-inp-type", "q8_0"], "Q4_0"),
]
HEAD = re.compile(r"\[\s*\d+/\s*\d+\]\s+(\S+) - \[([^\]]*)\], type =\s*(\S+), ")

def run(model, args, ftype):
    p = subprocess.run([BIN, "--dry-run", *args, model, "/tmp/rec/out.gguf", ftype, "2"], capture_output=True, text=True, errors="replace")
    out = p.stdout + p.stderr
    if p.returncode != 0:
        errs = [l.strip() for l in out.splitlines() if "Missing importance matrix" in l or "Please do not use" in l or "error" in l.lower()]
        return None, (errs[0] if errs else out.strip().splitlines()[-1])
    return out, out

def main():
    src, dst = sys.argv[1], sys.argv[2]
    golden = {}
    for m in MODELS:
        path = os.path.join(src, f"{m}-f16.gguf")
        if not os.path.exists(path):
            print("skip", m); continue
        res, tensors, meta = {}, None, None
        for label, args, ftype in [(p, [], p) for p in PRESETS] + CUSTOM:
            out, log = run(path, args, ftype)
            if out is None:
                res[label] = {"error": log[:300]}
                continue
            types, tl = {}, []
            heads = list(HEAD.finditer(out))
            for i, mm in enumerate(heads):
                seg = out[mm.end(): heads[i + 1].start() if i + 1 < len(heads) else len(out)]
                name, ne, src_t = mm.group(1), [int(x) for x in mm.group(2).split(",")], mm.group(3)
                while len(ne) > 1 and ne[-1] == 1: ne.pop()
                conv = re.findall(r"converting to (\S+) \.\.", seg)
                types[name] = conv[-1] if conv else src_t
                tl.append({"name": name, "ne": ne, "type": src_t})
            if tensors is None:
                tensors = tl
                kv = {}
                for line in out.splitlines():
                    k = re.match(r"llama_model_loader: - kv\s+\d+:\s+(\S+)\s+(\S+)\s+= (.*)$", line)
                    if k: kv[k.group(1)] = k.group(3).strip()
                meta = kv
            res[label] = [types[t["name"]] for t in tensors]
        meta = {k: v for k, v in meta.items() if not k.startswith("tokenizer.")}
        golden[m] = {"kv": meta, "tensors": tensors, "results": res}
        print(m, len(tensors or []), "tensors", sum(1 for v in res.values() if "error" in v), "errors")
    with open(os.path.join(dst, "reference.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))

main()
