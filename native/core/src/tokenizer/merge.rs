//! The two merge loops: SentencePiece-style bigram merging by score (`llm_tokenizer_spm_session`) and
//! byte-level BPE merging by rank (`llm_tokenizer_bpe_session`), after ik_llama.cpp `src/llama-vocab.cpp`
//! (reference commit 8337e4cd). Same priority orders and tie-breaks as the reference's priority queues.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::unicode::{regex_split, utf8_len};
use super::Vocab;

#[derive(Clone, Copy)]
struct Sym {
    prev: isize,
    next: isize,
    start: usize,
    n: usize,
}

/// Split `text` into UTF-8 characters (a truncated sequence at the end is one short symbol).
fn symbols(text: &[u8]) -> Vec<Sym> {
    let mut syms = Vec::with_capacity(text.len());
    let mut offs = 0;
    while offs < text.len() {
        let n = utf8_len(text[offs]).min(text.len() - offs);
        let i = syms.len() as isize;
        offs += n;
        syms.push(Sym { prev: i - 1, next: if offs == text.len() { -1 } else { i + 1 }, start: offs - n, n });
    }
    syms
}

struct SpmBigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for SpmBigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for SpmBigram {}
impl PartialOrd for SpmBigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for SpmBigram {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.partial_cmp(&o.score).unwrap_or(Ordering::Equal).then_with(|| o.left.cmp(&self.left))
    }
}

/// `llm_tokenizer_spm_session::tokenize` on already-escaped text; appends ids to `out`.
pub(crate) fn spm(vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) {
    let mut syms = symbols(text);
    let mut heap = BinaryHeap::new();
    let try_add = |syms: &[Sym], heap: &mut BinaryHeap<SpmBigram>, l: isize, r: isize| {
        if l < 0 || r < 0 {
            return;
        }
        let (l, r) = (l as usize, r as usize);
        let (a, b) = (syms[l], syms[r]);
        let piece = &text[a.start..a.start + a.n + b.n];
        if let Some(id) = vocab.text_to_token(piece) {
            let score = vocab.scores.get(id as usize).copied().unwrap_or(0.0);
            heap.push(SpmBigram { left: l, right: r, score, size: piece.len() });
        }
    };
    for i in 1..syms.len() {
        try_add(&syms, &mut heap, i as isize - 1, i as isize);
    }
    while let Some(bg) = heap.pop() {
        let (l, r) = (syms[bg.left], syms[bg.right]);
        if l.n == 0 || r.n == 0 || l.n + r.n != bg.size {
            continue;
        }
        syms[bg.left].n += r.n;
        syms[bg.right].n = 0;
        syms[bg.left].next = r.next;
        if r.next >= 0 {
            syms[r.next as usize].prev = bg.left as isize;
        }
        let prev = syms[bg.left].prev;
        try_add(&syms, &mut heap, prev, bg.left as isize);
        let next = syms[bg.left].next;
        try_add(&syms, &mut heap, bg.left as isize, next);
    }
    // resegment: merged symbols are always tokens; others fall back to bytes
    let mut i: isize = if syms.is_empty() { -1 } else { 0 };
    while i >= 0 {
        let s = syms[i as usize];
        let piece = &text[s.start..s.start + s.n];
        match vocab.text_to_token(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece {
                    if let Some(id) = vocab.spm_byte_to_token(b) {
                        out.push(id);
                    }
                }
            }
        }
        i = s.next;
    }
}

struct BpeBigram {
    left: usize,
    right: usize,
    text: Vec<u8>,
    rank: u32,
}

impl PartialEq for BpeBigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for BpeBigram {}
impl PartialOrd for BpeBigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for BpeBigram {
    /// Max-heap order: lowest rank first, then the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        o.rank.cmp(&self.rank).then_with(|| o.left.cmp(&self.left))
    }
}

/// `llm_tokenizer_bpe_session::tokenize`: pre-tokenize, merge each word by rank, map pieces to ids.
pub(crate) fn bpe(vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) {
    let words = regex_split(text, &vocab.pre_regex, true);
    for word in &words {
        let mut syms: Vec<Sym>;
        if vocab.ignore_merges && vocab.text_to_token(word).is_some() {
            syms = vec![Sym { prev: -1, next: -1, start: 0, n: word.len() }];
        } else {
            syms = symbols(word);
            let mut heap = BinaryHeap::new();
            let add = |syms: &[Sym], heap: &mut BinaryHeap<BpeBigram>, l: isize, r: isize| {
                if l < 0 || r < 0 {
                    return;
                }
                let (l, r) = (l as usize, r as usize);
                let (a, b) = (syms[l], syms[r]);
                let lt = &word[a.start..a.start + a.n];
                let rt = &word[b.start..b.start + b.n];
                if let Some(rank) = vocab.bpe_rank(lt, rt) {
                    let mut t = Vec::with_capacity(lt.len() + rt.len());
                    t.extend_from_slice(lt);
                    t.extend_from_slice(rt);
                    heap.push(BpeBigram { left: l, right: r, text: t, rank });
                }
            };
            for i in 1..syms.len() {
                add(&syms, &mut heap, i as isize - 1, i as isize);
            }
            while let Some(bg) = heap.pop() {
                let (l, r) = (syms[bg.left], syms[bg.right]);
                if l.n == 0 || r.n == 0 {
                    continue;
                }
                // outdated if the two current pieces no longer spell the bigram
                let lt = &word[l.start..l.start + l.n];
                let rt = &word[r.start..r.start + r.n];
                if lt.len() + rt.len() != bg.text.len() || bg.text[..lt.len()] != *lt || bg.text[lt.len()..] != *rt {
                    continue;
                }
                syms[bg.left].n += r.n;
                syms[bg.right].n = 0;
                syms[bg.left].next = r.next;
                if r.next >= 0 {
                    syms[r.next as usize].prev = bg.left as isize;
                }
                let prev = syms[bg.left].prev;
                add(&syms, &mut heap, prev, bg.left as isize);
                let next = syms[bg.left].next;
                add(&syms, &mut heap, bg.left as isize, next);
            }
        }
        // symbols are in text order; the reference walks them in that order too
        for s in syms.iter().filter(|s| s.n > 0) {
            let piece = &word[s.start..s.start + s.n];
            match vocab.text_to_token(piece) {
                Some(id) => out.push(id),
                None => {
                    // each byte of the (byte-encoded) piece looked up as a one-byte token
                    for &b in piece {
                        if let Some(id) = vocab.text_to_token(&[b]) {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }
}
