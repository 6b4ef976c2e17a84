//! Unicode helpers and the BPE pre-tokenizer split, following ik_llama.cpp `src/unicode.cpp`
//! (reference commit 8337e4cd): code point flags, UTF-8 decoding with the reference's error rules, the GPT-2
//! byte<->unicode map, the hand-written splitters for the gpt2 / llama3 / qwen2 regexes, and the
//! "collapsed text" trick that lets one byte stand for a whole Unicode category in the general regexes.
//!
//! Our own Rust; the regexes themselves are run by `super::regex` (a small backtracking matcher with
//! ECMAScript alternation semantics, as `std::regex` has).

use super::regex::Regex;
use super::unicode_data::{CATEGORY_RANGES, WHITESPACE};

pub(crate) const UNDEFINED: u16 = 0x0001;
pub(crate) const NUMBER: u16 = 0x0002;
pub(crate) const LETTER: u16 = 0x0004;
pub(crate) const ACCENT_MARK: u16 = 0x0010;
pub(crate) const PUNCTUATION: u16 = 0x0020;
pub(crate) const SYMBOL: u16 = 0x0040;
pub(crate) const WHITESPACE_FLAG: u16 = 0x0100;

/// Flags of one code point (category bits | WHITESPACE), as `unicode_cpt_flags_from_cpt`.
pub(crate) fn cpt_flags(cpt: u32) -> u16 {
    if cpt >= 0x110000 {
        return UNDEFINED;
    }
    // last range whose start <= cpt
    let i = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cpt);
    let cat = if i == 0 { UNDEFINED } else { CATEGORY_RANGES[i - 1].1 as u16 };
    let ws = if WHITESPACE.binary_search(&cpt).is_ok() { WHITESPACE_FLAG } else { 0 };
    cat | ws
}

fn is_ws(f: u16) -> bool {
    f & WHITESPACE_FLAG != 0
}
fn is_letter(f: u16) -> bool {
    f & LETTER != 0
}
fn is_number(f: u16) -> bool {
    f & NUMBER != 0
}

/// `unicode_len_utf8`: sequence length implied by a lead byte (continuation bytes count as 1).
pub(crate) fn utf8_len(b: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[(b >> 4) as usize]
}

/// `unicode_cpts_from_utf8`: structural UTF-8 decoding; a malformed sequence yields U+FFFD and skips one byte.
pub(crate) fn cpts_from_utf8(s: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let cont = |j: usize| s.get(j).is_some_and(|&b| b & 0xC0 == 0x80);
    while i < s.len() {
        let b = s[i] as u32;
        let (cpt, n) = if b & 0x80 == 0 {
            (b, 1)
        } else if b & 0x40 == 0 {
            (0xFFFD, 0)
        } else if b & 0x20 == 0 {
            if cont(i + 1) {
                (((b & 0x1F) << 6) | (s[i + 1] as u32 & 0x3F), 2)
            } else {
                (0xFFFD, 0)
            }
        } else if b & 0x10 == 0 {
            if cont(i + 1) && cont(i + 2) {
                (((b & 0x0F) << 12) | ((s[i + 1] as u32 & 0x3F) << 6) | (s[i + 2] as u32 & 0x3F), 3)
            } else {
                (0xFFFD, 0)
            }
        } else if b & 0x08 == 0 {
            if cont(i + 1) && cont(i + 2) && cont(i + 3) {
                let c = ((b & 0x07) << 18) | ((s[i + 1] as u32 & 0x3F) << 12) | ((s[i + 2] as u32 & 0x3F) << 6) | (s[i + 3] as u32 & 0x3F);
                (c, 4)
            } else {
                (0xFFFD, 0)
            }
        } else {
            (0xFFFD, 0)
        };
        out.push(cpt);
        i += n.max(1);
    }
    out
}

/// `unicode_cpt_to_utf8`. Code points above U+10FFFF (only from malformed 4-byte input) become U+FFFD,
/// where the reference would throw.
pub(crate) fn push_utf8(out: &mut Vec<u8>, cpt: u32) {
    let c = if cpt > 0x10FFFF { 0xFFFD } else { cpt };
    if c <= 0x7F {
        out.push(c as u8);
    } else if c <= 0x7FF {
        out.extend_from_slice(&[0xC0 | ((c >> 6) & 0x1F) as u8, 0x80 | (c & 0x3F) as u8]);
    } else if c <= 0xFFFF {
        out.extend_from_slice(&[0xE0 | ((c >> 12) & 0x0F) as u8, 0x80 | ((c >> 6) & 0x3F) as u8, 0x80 | (c & 0x3F) as u8]);
    } else {
        out.extend_from_slice(&[
            0xF0 | ((c >> 18) & 0x07) as u8,
            0x80 | ((c >> 12) & 0x3F) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]);
    }
}

const fn printable(c: u32) -> bool {
    (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)
}

/// GPT-2 `bytes_to_unicode` table: printable bytes map to themselves, the n-th other byte to 256 + n.
const BYTE_TO_CPT: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        if printable(b as u32) {
            t[b] = b as u32;
        } else {
            t[b] = 256 + n;
            n += 1;
        }
        b += 1;
    }
    t
};

/// GPT-2 `bytes_to_unicode`: byte -> code point.
pub(crate) fn byte_to_cpt(b: u8) -> u32 {
    BYTE_TO_CPT[b as usize]
}

/// Inverse of `byte_to_cpt` (`unicode_utf8_to_byte`); `None` for code points outside the map.
pub(crate) fn cpt_to_byte(cpt: u32) -> Option<u8> {
    if cpt < 256 {
        return if printable(cpt) { Some(cpt as u8) } else { None };
    }
    BYTE_TO_CPT.iter().position(|&c| c == cpt).map(|b| b as u8)
}

/// Per-fragment state of the hand-written splitters: positions are code point indices.
struct Frag<'a> {
    cpts: &'a [u32],
    ini: usize,
    end: usize,
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

const OUT_OF_RANGE: u32 = 0xFFFF_FFFF;

impl Frag<'_> {
    fn cpt(&self, pos: usize) -> u32 {
        if self.ini <= pos && pos < self.end {
            self.cpts[pos]
        } else {
            OUT_OF_RANGE
        }
    }
    fn flags(&self, pos: usize) -> u16 {
        if self.ini <= pos && pos < self.end {
            cpt_flags(self.cpts[pos])
        } else {
            0
        }
    }
    fn add(&mut self, end: usize) -> usize {
        let len = end.saturating_sub(self.prev_end);
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }

    /// Trailing alternatives shared by all three: `\s+(?!\S)|\s+`, else a single code point.
    fn whitespace_tail(&mut self, pos: &mut usize, num_ws: usize) {
        if num_ws > 1 && self.cpt(*pos + num_ws) != OUT_OF_RANGE {
            *pos += num_ws - 1;
        } else if num_ws > 0 {
            *pos += num_ws;
        } else {
            *pos += 1;
        }
        self.add(*pos);
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d` (case-sensitive; see `split_llama3` for why that holds there too).
fn contraction(f: &Frag, pos: usize) -> usize {
    if f.cpt(pos) != '\'' as u32 || pos + 1 >= f.end {
        return 0;
    }
    let n = f.cpt(pos + 1);
    if [b's', b't', b'm', b'd'].iter().any(|&c| n == c as u32) {
        return 2;
    }
    if pos + 2 < f.end {
        let nn = f.cpt(pos + 2);
        let pair = |a: u8, b: u8| n == a as u32 && nn == b as u32;
        if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
            return 3;
        }
    }
    0
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (+ `\s+`).
fn split_gpt2(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let mut f = Frag { cpts, ini: start, end: start + len, prev_end: start, out: &mut out };
        start += len;
        let mut pos = f.ini;
        while pos < f.end {
            let c = contraction(&f, pos);
            if c > 0 {
                pos += f.add(pos + c);
                continue;
            }
            let cpt = f.cpt(pos);
            let flags = f.flags(pos);
            let mut f2 = if cpt == ' ' as u32 { f.flags(pos + 1) } else { flags };
            let other = |x: u16| x & (WHITESPACE_FLAG | LETTER | NUMBER) == 0 && x != 0;
            let class: Option<fn(u16) -> bool> = if is_letter(f2) {
                Some(is_letter)
            } else if is_number(f2) {
                Some(is_number)
            } else if other(f2) {
                Some(|x| x & (WHITESPACE_FLAG | LETTER | NUMBER) == 0 && x != 0)
            } else {
                None
            };
            if let Some(test) = class {
                pos += (cpt == ' ' as u32) as usize;
                while test(f2) {
                    pos += 1;
                    f2 = f.flags(pos);
                }
                f.add(pos);
                continue;
            }
            let mut n = 0;
            while is_ws(f.flags(pos + n)) {
                n += 1;
            }
            f.whitespace_tail(&mut pos, n);
        }
    }
    out
}

/// LLaMA-3 (`max_digits` = 3) and Qwen2 (`max_digits` = 1):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
///
/// The reference lower-cases the contraction letter with `unicode_tolower`, which binary-searches an
/// `unordered_map` and so (with libstdc++) never finds ASCII letters: "'S" is *not* a contraction there. We
/// reproduce that observed behaviour (probed by compiling the reference's unicode.cpp): case-sensitive.
fn split_llama3(cpts: &[u32], offsets: &[usize], max_digits: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    let is_rn = |c: u32| c == '\r' as u32 || c == '\n' as u32;
    for &len in offsets {
        let mut f = Frag { cpts, ini: start, end: start + len, prev_end: start, out: &mut out };
        start += len;
        let mut pos = f.ini;
        while pos < f.end {
            let c = contraction(&f, pos);
            if c > 0 {
                pos += f.add(pos + c);
                continue;
            }
            let cpt = f.cpt(pos);
            let flags = f.flags(pos);
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(is_rn(cpt) || is_number(flags)) && (is_letter(flags) || is_letter(f.flags(pos + 1))) {
                pos += 1;
                while is_letter(f.flags(pos)) {
                    pos += 1;
                }
                f.add(pos);
                continue;
            }
            // \p{N}{1,max}
            if is_number(flags) {
                let mut ini = pos;
                while is_number(f.flags(pos)) {
                    pos += 1;
                    if pos - ini >= max_digits {
                        f.add(pos);
                        ini = pos;
                    }
                }
                f.add(pos);
                continue;
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            let mut f2 = if cpt == ' ' as u32 { f.flags(pos + 1) } else { flags };
            let other = |x: u16| x & (WHITESPACE_FLAG | LETTER | NUMBER) == 0;
            if other(f2) && flags != 0 {
                pos += (cpt == ' ' as u32) as usize;
                while other(f2) && f2 != 0 {
                    pos += 1;
                    f2 = f.flags(pos);
                }
                while is_rn(f.cpt(pos)) {
                    pos += 1;
                }
                f.add(pos);
                continue;
            }
            let mut n = 0;
            let mut last_rn = 0;
            while is_ws(f.flags(pos + n)) {
                if is_rn(f.cpt(pos + n)) {
                    last_rn = pos + n + 1;
                }
                n += 1;
            }
            // \s*[\r\n]+
            if last_rn > 0 {
                pos = last_rn;
                f.add(pos);
                continue;
            }
            f.whitespace_tail(&mut pos, n);
        }
    }
    out
}

// `unicode_regex_split`'s category table: `\p{..}` -> flag, flag -> collapsed byte and ASCII members.
const UCAT_ENUM: [(&str, u16); 10] = [
    ("\\p{N}", NUMBER),
    ("\\p{L}", LETTER),
    ("\\p{P}", PUNCTUATION),
    ("\\p{M}", ACCENT_MARK),
    ("\\p{S}", SYMBOL),
    ("\\p{Lu}", LETTER),
    ("\\p{Ll}", LETTER),
    ("\\p{Lt}", LETTER),
    ("\\p{Lm}", LETTER),
    ("\\p{Lo}", LETTER),
];

fn ucat_collapsed(flag: u16) -> Option<(u32, &'static str)> {
    Some(match flag {
        NUMBER => (0xD1, "0-9"),
        LETTER => (0xD2, "A-Za-z"),
        PUNCTUATION => (0xD3, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"),
        ACCENT_MARK => (0xD4, ""),
        SYMBOL => (0xD5, "\\$\\+<->^`\\|"),
        _ => return None,
    })
}

/// The collapsed form of a regex: each known `\p{..}` becomes its collapsed byte plus the ASCII members.
fn collapse_regex(expr: &str) -> Vec<u32> {
    let r = expr.as_bytes();
    let mut out: Vec<u32> = Vec::with_capacity(r.len() + 32);
    let mut inside = false;
    let mut i = 0;
    while i < r.len() {
        if r[i] == b'[' && (i == 0 || r[i - 1] != b'\\') {
            out.push('[' as u32);
            inside = true;
            i += 1;
            continue;
        }
        if inside && r[i] == b']' && i > 0 && r[i - 1] != b'\\' {
            out.push(']' as u32);
            inside = false;
            i += 1;
            continue;
        }
        if r[i] == b'\\' && i + 3 < r.len() && r[i + 1] == b'p' && r[i + 2] == b'{' {
            if let Some(rel) = r[i + 3..].iter().position(|&b| b == b'}') {
                let cb = i + 3 + rel;
                if cb <= i + 10 {
                    let pat = &expr[i..=cb];
                    if let Some(&(_, flag)) = UCAT_ENUM.iter().find(|(k, _)| *k == pat) {
                        if let Some((byte, members)) = ucat_collapsed(flag) {
                            if !inside {
                                out.push('[' as u32);
                            }
                            out.push(byte);
                            out.extend(members.bytes().map(|b| b as u32));
                            if !inside {
                                out.push(']' as u32);
                            }
                            i = cb + 1;
                            continue;
                        }
                    }
                }
            }
        }
        out.push(r[i] as u32);
        i += 1;
    }
    out
}

/// `unicode_regex_split_stl`: run `re` over each fragment; matches and the gaps between them become pieces.
fn split_regex(text: &[u32], re: &Regex, offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let sub = &text[start..start + len];
        let mut pos = 0;
        let mut last = 0;
        while pos <= sub.len() {
            let Some((ms, me)) = re.find_at(sub, pos) else {
                break;
            };
            if me == ms {
                // empty match: skip a position (none of the preset regexes can match empty)
                pos = ms + 1;
                continue;
            }
            if ms > last {
                out.push(ms - last);
            }
            out.push(me - ms);
            last = me;
            pos = me;
        }
        if last < len {
            out.push(len - last);
        }
        start += len;
    }
    out
}

/// `unicode_regex_split`: split `text` with each regex in turn; returns the words, GPT-2 byte-encoded when
/// `byte_encode` (each UTF-8 byte of the word mapped through `bytes_to_unicode`).
pub(crate) fn regex_split(text: &[u8], exprs: &[Regex], byte_encode: bool) -> Vec<Vec<u8>> {
    let cpts = cpts_from_utf8(text);
    if cpts.is_empty() {
        return Vec::new();
    }
    let need_collapse = exprs.iter().any(|r| r.kind == Kind::Collapsed);
    let mut collapsed: Vec<u32> = Vec::new();
    if need_collapse {
        collapsed = cpts
            .iter()
            .map(|&c| {
                if c < 128 {
                    return c;
                }
                let f = cpt_flags(c);
                if is_ws(f) {
                    0x0B
                } else {
                    ucat_collapsed(f & 0xFF).map_or(0xD0, |(b, _)| b)
                }
            })
            .collect();
    }
    let mut wide: Vec<u32> = Vec::new();
    if exprs.iter().any(|r| r.kind == Kind::Wide) {
        wide = cpts.iter().map(|&c| if c > 0x7F && is_ws(cpt_flags(c)) { 0x0B } else { c }).collect();
    }
    let mut offsets = vec![cpts.len()];
    for re in exprs {
        offsets = match re.kind {
            Kind::Gpt2 => split_gpt2(&cpts, &offsets),
            Kind::Llama3 => split_llama3(&cpts, &offsets, 3),
            Kind::Qwen2 => split_llama3(&cpts, &offsets, 1),
            Kind::Collapsed => split_regex(&collapsed, re, &offsets),
            Kind::Wide => split_regex(&wide, re, &offsets),
        };
    }
    let mut words = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for len in offsets {
        let mut w = Vec::with_capacity(len * 2);
        for &c in &cpts[start..start + len] {
            push_utf8(&mut w, c);
        }
        start += len;
        if byte_encode {
            let mut e = Vec::with_capacity(w.len() * 2);
            for &b in &w {
                push_utf8(&mut e, byte_to_cpt(b));
            }
            w = e;
        }
        words.push(w);
    }
    words
}

/// How a pre-tokenizer regex is executed (chosen once, when the vocabulary is loaded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Gpt2,
    Llama3,
    Qwen2,
    /// general regex over the category-collapsed text
    Collapsed,
    /// general regex over code points (non-ASCII whitespace -> U+000B)
    Wide,
}

/// Compile one preset regex the way `unicode_regex_split` would run it.
pub(crate) fn compile(expr: &str) -> crate::Result<Regex> {
    const GPT2: &str = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    const LLAMA3_A: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const LLAMA3_B: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const QWEN2: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    let special = match expr {
        GPT2 => Some(Kind::Gpt2),
        LLAMA3_A | LLAMA3_B => Some(Kind::Llama3),
        QWEN2 => Some(Kind::Qwen2),
        _ => None,
    };
    if let Some(kind) = special {
        return Ok(Regex::empty(kind));
    }
    if UCAT_ENUM.iter().any(|(k, _)| expr.contains(k)) {
        if !expr.is_ascii() {
            return Err(crate::Error::Unsupported { what: format!("pre-tokenizer regex mixes unicode categories and non-ASCII: {expr}") });
        }
        Regex::parse(&collapse_regex(expr), Kind::Collapsed)
    } else {
        let pat: Vec<u32> = expr.chars().map(|c| c as u32).collect();
        Regex::parse(&pat, Kind::Wide)
    }
}
