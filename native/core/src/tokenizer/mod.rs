//! Tokenizers built from GGUF metadata: SentencePiece-style (`llama`) and byte-level BPE (`gpt2`).
//!
//! A port of the behaviour of ik_llama.cpp `src/llama-vocab.cpp` and `src/unicode.cpp` (reference commit
//! 8337e4cd): `llama_tokenize` (special-token partition, SPM bigram merging, BPE pre-tokenizer presets and
//! rank merging), `llama_token_to_piece` and `llama_detokenize`. Written from the reference's behaviour, not
//! copied. Loading (GGUF keys, defaults, special-token detection) lives in `load.rs`.
//!
//! Known, documented departures (none reachable with the fixture vocabularies):
//! * where the reference would abort or throw (a missing byte token, a BOS id that is not set) we skip;
//! * special tokens of equal length are tried in id order (the reference's `std::sort` is unstable);
//! * auto-detected EOT/FIM ids pick the first candidate in the reference's list order (the reference
//!   takes whichever its `unordered_map` yields first).

mod load;
mod merge;
mod regex;
mod unicode;
mod unicode_data;

use std::collections::HashMap;

use regex::Regex;

/// Token attributes (`llama_token_attr` bits).
pub mod attr {
    pub const UNDEFINED: u32 = 0;
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
}

/// Vocabulary family (`tokenizer.ggml.model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// `llama`: SentencePiece BPE with scores and byte fallback.
    Spm,
    /// `gpt2`: byte-level BPE with merges and a regex pre-tokenizer.
    Bpe,
}

/// A loaded vocabulary: token texts (bytes), scores, attributes, merges, special ids and flags.
#[derive(Clone, Debug)]
pub struct Vocab {
    kind: VocabKind,
    pre: String,
    tokens: Vec<Vec<u8>>,
    scores: Vec<f32>,
    attrs: Vec<u32>,
    token_to_id: HashMap<Vec<u8>, u32>,
    /// key: `len(left) as u32 LE ++ left ++ right`
    bpe_ranks: HashMap<Vec<u8>, u32>,
    pre_regex: Vec<Regex>,
    /// special token ids, longest text first (CONTROL | USER_DEFINED | UNKNOWN)
    special_cache: Vec<u32>,
    eog: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    ignore_merges: bool,
    clean_spaces: bool,
}

enum Fragment {
    Raw(usize, usize),
    Token(u32),
}

fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let j = i + hay[i..=hay.len() - needle.len()].iter().position(|&b| b == first)?;
        if hay[j..j + needle.len()] == *needle {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

fn escape_spaces(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 8);
    for &b in text {
        if b == b' ' {
            out.extend_from_slice("\u{2581}".as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn unescape_spaces(text: &[u8]) -> Vec<u8> {
    let pat = "\u{2581}".as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(pat) {
            out.push(b' ');
            i += pat.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

impl Vocab {
    /// Load from GGUF metadata (works for vocab-only files: only `tokenizer.*` keys are read).
    pub fn from_gguf(h: &crate::gguf::GgufHeader) -> crate::Result<Vocab> {
        load::from_gguf(h)
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }
    pub fn kind(&self) -> VocabKind {
        self.kind
    }
    /// `tokenizer.ggml.pre` as loaded (empty when absent).
    pub fn pre(&self) -> &str {
        &self.pre
    }
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }
    /// Raw token text (after the `[EMPTY_<id>]` substitution), `None` when out of range.
    pub fn token_text(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(|t| t.as_slice())
    }
    /// Token attribute bits (see [`attr`]); 0 when out of range.
    pub fn token_attr(&self, id: u32) -> u32 {
        self.attrs.get(id as usize).copied().unwrap_or(attr::UNDEFINED)
    }

    pub(crate) fn text_to_token(&self, text: &[u8]) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub(crate) fn bpe_rank(&self, left: &[u8], right: &[u8]) -> Option<u32> {
        let mut key = Vec::with_capacity(4 + left.len() + right.len());
        key.extend_from_slice(&(left.len() as u32).to_le_bytes());
        key.extend_from_slice(left);
        key.extend_from_slice(right);
        self.bpe_ranks.get(&key).copied()
    }

    /// SPM `byte_to_token`: `<0xXX>`, else the raw byte as a token, else nothing (the reference throws).
    pub(crate) fn spm_byte_to_token(&self, b: u8) -> Option<u32> {
        let hex = format!("<0x{b:02X}>");
        self.text_to_token(hex.as_bytes()).or_else(|| self.text_to_token(&[b]))
    }

    /// `tokenizer_st_partition`: cut the text at special-token occurrences, longest tokens first.
    fn partition(&self, text: &[u8], parse_special: bool) -> Vec<Fragment> {
        let mut frags = vec![Fragment::Raw(0, text.len())];
        for &id in &self.special_cache {
            let a = self.token_attr(id);
            if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let tok = match self.tokens.get(id as usize) {
                Some(t) if !t.is_empty() => t.as_slice(),
                _ => continue,
            };
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                let Fragment::Raw(mut off, mut len) = f else {
                    next.push(f);
                    continue;
                };
                loop {
                    let Some(rel) = find_bytes(&text[off..off + len], tok) else {
                        if len > 0 {
                            next.push(Fragment::Raw(off, len));
                        }
                        break;
                    };
                    let m = off + rel;
                    let mut left = rel;
                    if a & attr::LSTRIP != 0 {
                        while left > 0 && c_isspace(text[off + left - 1]) {
                            left -= 1;
                        }
                    }
                    if left > 0 {
                        next.push(Fragment::Raw(off, left));
                    }
                    next.push(Fragment::Token(id));
                    let end = off + len;
                    if m + tok.len() >= end {
                        break;
                    }
                    off = m + tok.len();
                    len = end - off;
                    if a & attr::RSTRIP != 0 {
                        while len > 0 && c_isspace(text[off]) {
                            off += 1;
                            len -= 1;
                        }
                    }
                }
            }
            frags = next;
        }
        frags
    }

    /// `llama_tokenize(text, add_special, parse_special)`.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let raw = text.as_bytes();
        let frags = if raw.is_empty() { Vec::new() } else { self.partition(raw, parse_special) };
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match self.kind {
            VocabKind::Spm => {
                let mut prev_special = true;
                for f in &frags {
                    match *f {
                        Fragment::Raw(off, len) => {
                            let mut t = Vec::with_capacity(len + 1);
                            if self.add_space_prefix && prev_special {
                                t.push(b' ');
                            }
                            t.extend_from_slice(&raw[off..off + len]);
                            merge::spm(self, &escape_spaces(&t), &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            VocabKind::Bpe => {
                for f in &frags {
                    match *f {
                        Fragment::Raw(off, len) => merge::bpe(self, &raw[off..off + len], &mut out),
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// `llama_token_to_piece(id, lstrip = 0, special)`: the bytes of one token (may be a partial UTF-8 char).
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        let Some(text) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        let a = self.token_attr(id);
        if !special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return Vec::new();
        }
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            return text.clone();
        }
        if a & attr::NORMAL != 0 {
            return match self.kind {
                VocabKind::Spm => unescape_spaces(text),
                VocabKind::Bpe => decode_byte_level(text),
            };
        }
        if a & attr::BYTE != 0 {
            return vec![byte_token_value(text)];
        }
        Vec::new()
    }

    /// `llama_detokenize(ids, remove_special, unparse_special)`.
    pub fn detokenize(&self, ids: &[u32], remove_special: bool, unparse_special: bool) -> Vec<u8> {
        let mut ids = ids;
        let mut remove_space = self.add_space_prefix;
        if remove_special && self.add_bos {
            if let (Some(&first), Some(bos)) = (ids.first(), self.bos) {
                if first == bos {
                    remove_space = false;
                    ids = &ids[1..];
                }
            }
        }
        if remove_special && self.add_eos {
            if let (Some(&last), Some(eos)) = (ids.last(), self.eos) {
                if last == eos {
                    ids = &ids[..ids.len() - 1];
                }
            }
        }
        let mut text = Vec::new();
        for &id in ids {
            let piece = self.token_to_piece(id, unparse_special);
            let skip = usize::from(remove_space && piece.first() == Some(&b' '));
            text.extend_from_slice(&piece[skip..]);
            remove_space = false;
        }
        if self.clean_spaces {
            clean_up_spaces(&mut text);
        }
        text
    }
}

/// Value of a `<0xXX>` byte token (`strtol` of characters 3..5, 0 when unparsable).
fn byte_token_value(text: &[u8]) -> u8 {
    let hex = text.get(3..5.min(text.len())).unwrap_or(&[]);
    let mut v: u32 = 0;
    for &c in hex {
        match (c as char).to_digit(16) {
            Some(d) => v = v * 16 + d,
            None => break,
        }
    }
    v as u8
}

/// `llama_decode_text`: map each code point of a byte-level token back to its byte.
fn decode_byte_level(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for cpt in unicode::cpts_from_utf8(text) {
        match unicode::cpt_to_byte(cpt) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = Vec::new();
                unicode::push_utf8(&mut utf8, cpt);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in utf8 {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text);
                out.push(b']');
            }
        }
    }
    out
}

/// The `clean_spaces` passes of `llama_detokenize`: " ?", " !", " .", " ,"; " ' "; " 's", " 'm", " 're", " 've".
fn clean_up_spaces(text: &mut Vec<u8>) {
    // pass 1: drop the space before ? ! . ,
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }
    // pass 2: " ' " -> "'"
    // (the reference zeroes the skipped space in place, so it no longer counts as a space before the next char)
    let mut t = std::mem::take(&mut out);
    let mut i = 0;
    while i < t.len() {
        let x = t[i];
        if i > 0 && x == b'\'' && i + 1 < t.len() && t[i - 1] == b' ' && t[i + 1] == b' ' {
            out.pop();
            out.push(x);
            t[i + 1] = 0;
            i += 2;
            continue;
        }
        out.push(x);
        i += 1;
    }
    // pass 3: drop the space before 's 'm 're 've
    let t = std::mem::take(&mut out);
    for (i, &x) in t.iter().enumerate() {
        if i > 0 && t[i - 1] == b' ' && x == b'\'' && i + 1 < t.len() {
            let x1 = t[i + 1];
            let x2 = t.get(i + 2).copied().filter(|_| i + 2 < t.len());
            let drop = matches!(x1, b's' | b'm') || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e')));
            if drop {
                out.pop();
            }
        }
        out.push(x);
    }
    *text = out;
}
