#!/usr/bin/env python3
"""Generate native/core/src/tokenizer/unicode_data.rs from ik_llama.cpp's src/unicode-data.cpp.

The reference tokenizer classifies code points with its own generated tables (ik_llama.cpp
src/unicode-data.cpp, itself produced by scripts/gen-unicode-data.py at a fixed Unicode version).
Python's `unicodedata` may be a different Unicode version, so we read the reference tables directly:
  * `unicode_ranges_flags`  -> (range start, category flags) pairs (flags & 0xFF: \\p{N} \\p{L} ...)
  * `unicode_set_whitespace` -> the code points with the WHITESPACE flag

Usage: gen_unicode_tables.py /path/to/ik_llama.cpp/src/unicode-data.cpp > native/core/src/tokenizer/unicode_data.rs
"""
import re
import sys


def main() -> None:
    src = open(sys.argv[1], encoding="utf-8").read()

    def block(name: str) -> str:
        m = re.search(name + r"\s*=\s*\{(.*?)\n\};", src, re.S)
        if not m:
            sys.exit(f"table {name} not found")
        return m.group(1)

    ranges = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-Fa-f]+), 0x([0-9A-Fa-f]+)\}", block("unicode_ranges_flags"))]
    ws = [int(x, 16) for x in re.findall(r"0x([0-9A-Fa-f]+)", block("unicode_set_whitespace"))]
    # merge adjacent ranges with equal category flags (only the low 8 bits are used)
    merged = []
    for start, flags in ranges:
        f = flags & 0xFF
        if merged and merged[-1][1] == f:
            continue
        merged.append((start, f))

    out = []
    out.append("//! Unicode code point classes as ik_llama.cpp sees them (GENERATED, do not edit).")
    out.append("//!")
    out.append("//! Source: ik_llama.cpp `src/unicode-data.cpp` (tables `unicode_ranges_flags`, `unicode_set_whitespace`),")
    out.append("//! converted by `test/tools/gen_unicode_tables.py`. Category bits: 0x01 undefined, 0x02 \\\\p{N}, 0x04 \\\\p{L},")
    out.append("//! 0x08 \\\\p{Z}, 0x10 \\\\p{M}, 0x20 \\\\p{P}, 0x40 \\\\p{S}, 0x80 \\\\p{C}.")
    out.append("")
    out.append("/// `(first code point, category flags)`; a range runs to the next entry's start - 1; the last entry is 0x110000.")
    out.append(f"pub(crate) static CATEGORY_RANGES: [(u32, u8); {len(merged)}] = [")
    line = ""
    for start, f in merged:
        item = f"(0x{start:X}, 0x{f:02X}), "
        if len(line) + len(item) > 110:
            out.append("    " + line.rstrip())
            line = ""
        line += item
    if line:
        out.append("    " + line.rstrip())
    out.append("];")
    out.append("")
    out.append("/// Code points with the reference's WHITESPACE flag (sorted).")
    out.append(f"pub(crate) static WHITESPACE: [u32; {len(ws)}] = [")
    out.append("    " + ", ".join(f"0x{c:X}" for c in sorted(ws)) + ",")
    out.append("];")
    print("\n".join(out))


if __name__ == "__main__":
    main()
