//! A small backtracking regex matcher for the pre-tokenizer presets that ik_llama.cpp runs through
//! `std::regex` / `std::wregex` (ECMAScript grammar: ordered alternation, greedy quantifiers, `(?!..)`).
//!
//! Subjects and patterns are sequences of `u32` "characters": code points for the wide form, or the bytes
//! of the category-collapsed text (see `unicode.rs`). Supported syntax: literals, `\` escapes, `[..]` /
//! `[^..]` with ranges and `\s \S \d \D \w \W`, `.`, `^`, `$`, `(..)`, `(?:..)`, `(?=..)`, `(?!..)`, `|`,
//! and `? * + {n} {n,} {n,m}` (on groups only `?` and bounded counts). Character classes follow the C locale,
//! as `std::regex_traits` does: `\s` is `[\t\n\v\f\r ]`. Anything else is rejected at parse time.
//!
//! Recursion depth is bounded by the pattern size, not the subject length: a quantified single-character
//! atom is counted iteratively and then backed off one position at a time.

use super::unicode::Kind;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Builtin {
    Space,
    Digit,
    Word,
}

impl Builtin {
    fn test(self, c: u32) -> bool {
        match self {
            Builtin::Space => (9..=13).contains(&c) || c == 32,
            Builtin::Digit => (0x30..=0x39).contains(&c),
            Builtin::Word => (0x30..=0x39).contains(&c) || (0x41..=0x5A).contains(&c) || (0x61..=0x7A).contains(&c) || c == 0x5F,
        }
    }
}

/// A one-character matcher.
#[derive(Clone, Debug, Default)]
struct Set {
    neg: bool,
    ranges: Vec<(u32, u32)>,
    builtins: Vec<(Builtin, bool)>,
}

impl Set {
    fn single(c: u32) -> Set {
        Set { ranges: vec![(c, c)], ..Set::default() }
    }
    fn builtin(b: Builtin, neg: bool) -> Set {
        Set { builtins: vec![(b, neg)], ..Set::default() }
    }
    fn test(&self, c: u32) -> bool {
        let hit = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) || self.builtins.iter().any(|&(b, neg)| b.test(c) != neg);
        hit != self.neg
    }
}

#[derive(Clone, Debug)]
enum Node {
    Set(Set),
    /// greedy repetition of one character matcher
    Repeat(Set, usize, usize),
    /// ordered alternation (a group)
    Alt(Vec<Vec<Node>>),
    LookAhead(Vec<Vec<Node>>, bool),
    Start,
    End,
}

/// A compiled pre-tokenizer regex (or a marker for one of the hand-written splitters).
#[derive(Clone, Debug)]
pub(crate) struct Regex {
    pub(crate) kind: Kind,
    root: Vec<Node>,
}

struct Cont<'a> {
    nodes: &'a [Node],
    next: Option<&'a Cont<'a>>,
}

fn bad(what: &str) -> Error {
    Error::Unsupported { what: format!("pre-tokenizer regex: {what}") }
}

struct Parser<'a> {
    p: &'a [u32],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u32> {
        self.p.get(self.i).copied()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c as u32) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn next(&mut self) -> Result<u32> {
        let c = self.peek().ok_or_else(|| bad("unexpected end"))?;
        self.i += 1;
        Ok(c)
    }

    fn alternation(&mut self) -> Result<Vec<Vec<Node>>> {
        let mut alts = vec![self.sequence()?];
        while self.eat('|') {
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' as u32 || c == ')' as u32 {
                break;
            }
            let atom = self.atom()?;
            seq.extend(self.quantified(atom)?);
        }
        Ok(seq)
    }

    /// `\x` escape (after the backslash): a builtin class or a literal.
    fn escape(&mut self) -> Result<Set> {
        let c = self.next()?;
        let ch = char::from_u32(c).unwrap_or('\0');
        Ok(match ch {
            's' => Set::builtin(Builtin::Space, false),
            'S' => Set::builtin(Builtin::Space, true),
            'd' => Set::builtin(Builtin::Digit, false),
            'D' => Set::builtin(Builtin::Digit, true),
            'w' => Set::builtin(Builtin::Word, false),
            'W' => Set::builtin(Builtin::Word, true),
            'r' => Set::single(0x0D),
            'n' => Set::single(0x0A),
            't' => Set::single(0x09),
            'f' => Set::single(0x0C),
            'v' => Set::single(0x0B),
            c if c.is_ascii_alphanumeric() => return Err(bad(&format!("escape \\{c}"))),
            _ => Set::single(c),
        })
    }

    fn class(&mut self) -> Result<Set> {
        let mut set = Set { neg: self.eat('^'), ..Set::default() };
        loop {
            let c = self.next()?;
            if c == ']' as u32 {
                break;
            }
            let lo = if c == '\\' as u32 { self.escape()? } else { Set::single(c) };
            let is_char = lo.builtins.is_empty();
            if is_char && self.peek() == Some('-' as u32) && self.p.get(self.i + 1) != Some(&(']' as u32)) {
                self.i += 1;
                let h = self.next()?;
                let hi = if h == '\\' as u32 { self.escape()? } else { Set::single(h) };
                match (lo.ranges.first(), hi.ranges.first(), hi.builtins.is_empty()) {
                    (Some(&(a, _)), Some(&(b, _)), true) => set.ranges.push((a, b)),
                    _ => return Err(bad("class range")),
                }
            } else {
                set.ranges.extend(lo.ranges);
                set.builtins.extend(lo.builtins);
            }
        }
        Ok(set)
    }

    fn atom(&mut self) -> Result<Node> {
        let c = self.next()?;
        let ch = char::from_u32(c).unwrap_or('\0');
        Ok(match ch {
            '(' => {
                let look = if self.eat('?') {
                    match self.next()? {
                        x if x == ':' as u32 => None,
                        x if x == '!' as u32 => Some(true),
                        x if x == '=' as u32 => Some(false),
                        _ => return Err(bad("group kind")),
                    }
                } else {
                    None
                };
                let alts = self.alternation()?;
                if !self.eat(')') {
                    return Err(bad("missing )"));
                }
                match look {
                    Some(neg) => Node::LookAhead(alts, neg),
                    None => Node::Alt(alts),
                }
            }
            '[' => Node::Set(self.class()?),
            '\\' => Node::Set(self.escape()?),
            '.' => Node::Set(Set { neg: true, ranges: vec![(10, 10), (13, 13), (0x2028, 0x2029)], builtins: vec![] }),
            '^' => Node::Start,
            '$' => Node::End,
            '*' | '+' | '?' | '{' | ')' => return Err(bad("misplaced quantifier")),
            _ => Node::Set(Set::single(c)),
        })
    }

    fn number(&mut self) -> Option<usize> {
        let mut n: Option<usize> = None;
        while let Some(d) = self.peek().and_then(|c| char::from_u32(c)?.to_digit(10)) {
            n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
            self.i += 1;
        }
        n
    }

    fn quantified(&mut self, atom: Node) -> Result<Vec<Node>> {
        let (min, max) = match self.peek().and_then(char::from_u32) {
            Some('?') => (0, 1),
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('{') => {
                let save = self.i;
                self.i += 1;
                let lo = self.number();
                let hi = if self.eat(',') { self.number().unwrap_or(usize::MAX) } else { lo.unwrap_or(0) };
                match (lo, self.eat('}')) {
                    (Some(lo), true) if lo <= hi => {
                        self.i -= 1; // leave '}' to be skipped below
                        (lo, hi)
                    }
                    _ => {
                        self.i = save;
                        return Err(bad("bad {n,m}"));
                    }
                }
            }
            _ => return Ok(vec![atom]),
        };
        self.i += 1;
        if self.peek() == Some('?' as u32) {
            return Err(bad("lazy quantifier"));
        }
        match atom {
            Node::Set(s) => Ok(vec![Node::Repeat(s, min, max)]),
            other => {
                if max == usize::MAX || max > 64 {
                    return Err(bad("unbounded repetition of a group"));
                }
                // X{min,max} = X^min then (X(X(..)?)?)? nested optional groups
                let mut out: Vec<Node> = std::iter::repeat_n(other.clone(), min).collect();
                let mut tail: Vec<Node> = Vec::new();
                for _ in min..max {
                    let mut seq = vec![other.clone()];
                    seq.extend(tail);
                    tail = vec![Node::Alt(vec![seq, Vec::new()])];
                }
                out.extend(tail);
                Ok(out)
            }
        }
    }
}

impl Regex {
    /// A marker for a hand-written splitter (no pattern).
    pub(crate) fn empty(kind: Kind) -> Regex {
        Regex { kind, root: Vec::new() }
    }

    pub(crate) fn parse(pat: &[u32], kind: Kind) -> Result<Regex> {
        let mut p = Parser { p: pat, i: 0 };
        let alts = p.alternation()?;
        if p.i != pat.len() {
            return Err(bad("unbalanced )"));
        }
        Ok(Regex { kind, root: vec![Node::Alt(alts)] })
    }

    /// Leftmost match starting at or after `from`: `(start, end)`.
    pub(crate) fn find_at(&self, t: &[u32], from: usize) -> Option<(usize, usize)> {
        (from..=t.len()).find_map(|s| self.run(t, &self.root, None, s).map(|e| (s, e)))
    }

    fn run(&self, t: &[u32], nodes: &[Node], next: Option<&Cont>, pos: usize) -> Option<usize> {
        let Some((first, rest)) = nodes.split_first() else {
            return match next {
                Some(c) => self.run(t, c.nodes, c.next, pos),
                None => Some(pos),
            };
        };
        match first {
            Node::Set(s) => match t.get(pos) {
                Some(&c) if s.test(c) => self.run(t, rest, next, pos + 1),
                _ => None,
            },
            Node::Repeat(s, min, max) => {
                let avail = t.len().saturating_sub(pos);
                let lim = (*max).min(avail);
                let n = t[pos.min(t.len())..].iter().take(lim).take_while(|&&c| s.test(c)).count();
                if n < *min {
                    return None;
                }
                (*min..=n).rev().find_map(|k| self.run(t, rest, next, pos + k))
            }
            Node::Alt(alts) => {
                let c = Cont { nodes: rest, next };
                alts.iter().find_map(|a| self.run(t, a, Some(&c), pos))
            }
            Node::LookAhead(alts, neg) => {
                let found = alts.iter().any(|a| self.run(t, a, None, pos).is_some());
                if found != *neg {
                    self.run(t, rest, next, pos)
                } else {
                    None
                }
            }
            Node::Start => (pos == 0).then(|| self.run(t, rest, next, pos)).flatten(),
            Node::End => (pos == t.len()).then(|| self.run(t, rest, next, pos)).flatten(),
        }
    }
}
