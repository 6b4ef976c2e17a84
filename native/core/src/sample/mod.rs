//! Token sampling: the reference's sampler chain over one row of logits, with a seeded RNG.
//!
//! Ported (own Rust, same arithmetic and order) from ik_llama.cpp @ 8337e4cd:
//! `common/sampling.cpp` (`common_sampler_init`, `llama_sampling_prepare_impl`, `sampler_queue`,
//! `llama_sampling_sample_impl`, `common_sampler_accept`), `common/sampling.h` (defaults, sampler order)
//! and `src/llama-sampling.cpp` (`llama_sort`, `llama_sample_*_impl`, `llama_sample_token_with_rng_impl`).
//!
//! What one `sample` call does, exactly as the reference (no grammar, no logit bias, no DRY/XTC/mirostat):
//! 1. candidates = every token in id order, `sorted = false`;
//! 2. penalties (`llama_sample_repetition_penalties_impl`) over the penalty window (see below): for each token
//!    id seen `count` times, `logit <= 0 ? logit *= repeat : logit /= repeat`, then
//!    `logit -= count*freq + (count>0)*present`; then, unless `penalize_nl`, the newline token's logit is
//!    restored (reference default `penalize_nl = false`; set the id with [`Sampler::set_newline_token`]);
//! 3. `temp < 0`: full softmax sort, take the first (greedy "with probs");
//!    `temp == 0`: `std::max_element` over the penalized logits (first maximum = lowest id);
//!    `temp > 0`: the sampler queue with `min_keep = max(1, min_keep)` in the default order
//!    `d k f y p m x n t w s` (DRY, top-k, tail-free, typical, top-p, min-p, XTC, top-n-σ, temperature,
//!    adaptive-p, dist) — DRY/XTC/top-n-σ/adaptive-p are disabled by default and are no-ops here; `s` (dist)
//!    is an un-normalised softmax; then the draw.
//! 4. the draw (`llama_sample_token_with_rng_impl`) is NOT `std::discrete_distribution`: with the candidates
//!    in their current order, `probs[j] = Σ_{i<=j} expf(logit_i - max)` accumulated in f32, then
//!    `probs[last] += sump`, `r = rng()` (one mt19937 output), `p = (sump * float(r)) / float(0xFFFFFFFF)`
//!    (f32 arithmetic; `float(0xFFFFFFFF) = 2^32`), and the token is the first `j` with `probs[j] > p`
//!    (`std::upper_bound`). A single candidate is returned without drawing (the RNG is not advanced).
//!
//! Sorting: libstdc++'s `std::sort` (introsort) and `std::partial_sort` (heap select + sort heap) are ported
//! step for step, as is the reference's bucket pre-sort for `k > 1024`, so the candidate order — and hence
//! the drawn token — also matches on exactly tied logits.
//!
//! Penalty window (a reference quirk): `common_sampler_accept` does `if prev.size() > 0 erase(front)` then
//! `push_back`, and `prev` is only pre-sized to `n_prev = 64` when a grammar is set. Without a grammar the
//! reference therefore remembers only the LAST accepted token, and the window is
//! `min(prev.size(), repeat_last_n < 0 ? n_prev(64) : repeat_last_n)` ≤ 1. That is a reference bug: ikl
//! defaults to the documented semantics (the last `repeat_last_n` accepted tokens, `-1` = all of them, i.e.
//! the context, `0` = off); [`Sampler::set_reference_history(true)`](Sampler::set_reference_history)
//! reproduces the reference's one-token history exactly (used to check the rest of the chain against it).
//!
//! Seed: the reference's seed is `uint32_t`; we use `params.seed as u32`. `0xFFFFFFFF` (LLAMA_DEFAULT_SEED)
//! means a random seed (`std::random_device` there; time + address entropy here).

/// Sampling parameters, with llama.cpp's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerParams {
    pub temp: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub typical_p: f32,
    pub repeat_penalty: f32,
    pub repeat_last_n: i32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temp: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            typical_p: 1.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: 0xFFFF_FFFF,
        }
    }
}

/// The reference's LLAMA_DEFAULT_SEED: "pick a random seed".
pub const DEFAULT_SEED: u32 = 0xFFFF_FFFF;
/// The reference's default sampler order (`common_params_sampling::samplers_sequence`), as chars.
pub const DEFAULT_ORDER: &str = "dkfypmxntws";
pub mod rows;
/// The reference's `n_prev` default (used for `repeat_last_n = -1` in reference-history mode).
mod sort;
use sort::{std_partial_sort, std_sort};

const N_PREV: usize = 64;

// ---------------------------------------------------------------------------------------------------------
// mt19937 (std::mt19937: 32-bit Mersenne Twister, standard seeding)
// ---------------------------------------------------------------------------------------------------------

/// `std::mt19937`, bit for bit (seeding by `seed(u32)`, output tempering, twist).
#[derive(Clone)]
pub struct Mt19937 {
    mt: [u32; 624],
    idx: usize,
}

impl Mt19937 {
    pub fn new(seed: u32) -> Mt19937 {
        let mut r = Mt19937 { mt: [0; 624], idx: 624 };
        r.seed(seed);
        r
    }

    pub fn seed(&mut self, seed: u32) {
        self.mt[0] = seed;
        for i in 1..624 {
            let p = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32.wrapping_mul(p ^ (p >> 30)).wrapping_add(i as u32);
        }
        self.idx = 624;
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7fff_ffff);
            let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.mt[i] = v;
        }
        self.idx = 0;
    }

    /// `rng()`: the next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.idx >= 624 {
            self.twist();
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }
}

fn random_seed() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let local = 0u8;
    let a = &local as *const u8 as usize as u128;
    let mut x = (t ^ (a << 17)) as u64 ^ ((t >> 64) as u64);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let s = x as u32;
    if s == DEFAULT_SEED {
        0
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------------------------------
// Candidates and the stages
// ---------------------------------------------------------------------------------------------------------

/// One candidate: `llama_token_data`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenData {
    pub id: u32,
    pub logit: f32,
    pub p: f32,
}

#[inline]
fn by_logit_desc(a: &TokenData, b: &TokenData) -> bool {
    a.logit > b.logit
}

/// Reusable buffers so that a `sample` call does not allocate after the first one.
#[derive(Default)]
struct Scratch {
    tmp: Vec<TokenData>,
    bucket_idx: Vec<u8>,
    f1: Vec<f32>,
    f2: Vec<f32>,
    indices: Vec<u32>,
    window: Vec<u32>,
}

/// `llama_token_data_array` plus its scratch: `data[..size]` are the live candidates.
struct Cands {
    data: Vec<TokenData>,
    size: usize,
    sorted: bool,
    s: Scratch,
}

impl Cands {
    fn live(&mut self) -> &mut [TokenData] {
        &mut self.data[..self.size]
    }

    /// `llama_sort(candidates, k)` (k < 0 → all).
    fn sort(&mut self, k: i64) {
        if self.sorted || self.size < 2 {
            return;
        }
        let size = self.size;
        let k = if k < 0 { size } else { k as usize };
        if k <= 1024 {
            if k == size {
                std_sort(&mut self.data[..size], &by_logit_desc);
            } else {
                std_partial_sort(&mut self.data[..size], k, &by_logit_desc);
            }
        } else {
            const NB: usize = 128;
            const SCALE: f32 = 128.0 / 20.0; // nbuckets/(bucket_high - bucket_low)
            const INTER: f32 = 10.0 * SCALE; // -bucket_low * bucket_scale
            let mut histo = [0usize; NB];
            let bi = &mut self.s.bucket_idx;
            bi.clear();
            for c in &self.data[..size] {
                let ib = (SCALE * c.logit + INTER) as i32;
                let ib = ib.clamp(0, NB as i32 - 1) as usize;
                bi.push(ib as u8);
                histo[ib] += 1;
            }
            let mut nhave = 0usize;
            let mut ib = NB as i64 - 1;
            while ib >= 0 {
                nhave += histo[ib as usize];
                if nhave >= k {
                    break;
                }
                ib -= 1;
            }
            let ib = ib.max(0) as usize;
            let tmp = &mut self.s.tmp;
            tmp.clear();
            tmp.resize(nhave, TokenData { id: 0, logit: 0.0, p: 0.0 });
            // write cursors per bucket, buckets high → low
            let mut start = [0usize; NB];
            let mut off = 0usize;
            for j in (ib..NB).rev() {
                start[j] = off;
                off += histo[j];
            }
            for (i, c) in self.data[..size].iter().enumerate() {
                let j = bi[i] as usize;
                if j >= ib {
                    tmp[start[j]] = *c;
                    start[j] += 1;
                }
            }
            let mut ptr = 0usize;
            let mut ndone = 0usize;
            for j in (ib + 1..NB).rev() {
                std_sort(&mut tmp[ptr..ptr + histo[j]], &by_logit_desc);
                ptr += histo[j];
                ndone += histo[j];
            }
            std_partial_sort(&mut tmp[ptr..ptr + histo[ib]], k - ndone, &by_logit_desc);
            self.data[..k].copy_from_slice(&tmp[..k]);
        }
        self.sorted = true;
    }

    /// `llama_sample_softmax_impl(candidates, normalize)`.
    fn softmax(&mut self, normalize: bool) {
        self.sort(-1);
        let live = &mut self.data[..self.size];
        let max_l = live[0].logit;
        let mut cum = 0.0f32;
        for c in live.iter_mut() {
            let p = (c.logit - max_l).exp();
            c.p = p;
            cum += p;
        }
        if normalize {
            for c in live.iter_mut() {
                c.p /= cum;
            }
        }
    }

    fn top_k(&mut self, k: i32, min_keep: usize) {
        let mut k = if k <= 0 { self.size as i64 } else { k as i64 };
        k = k.max(min_keep as i64);
        k = k.min(self.size as i64);
        self.sort(k);
        self.size = k as usize;
    }

    fn top_p(&mut self, p: f32, min_keep: usize) {
        if p >= 1.0 {
            return;
        }
        self.softmax(true);
        let mut cum = 0.0f32;
        let mut last = self.size;
        for (i, c) in self.data[..self.size].iter().enumerate() {
            cum += c.p;
            if cum >= p && i + 1 >= min_keep {
                last = i + 1;
                break;
            }
        }
        self.size = last;
    }

    fn min_p(&mut self, p: f32, min_keep: usize) {
        if p <= 0.0 || self.size == 0 {
            return;
        }
        let mut applied = false;
        if !self.sorted {
            let mut max_logit = -f32::MAX;
            for c in &self.data[..self.size] {
                max_logit = max_logit.max(c.logit);
            }
            let min_logit = max_logit + p.ln();
            let tmp = &mut self.s.tmp;
            tmp.clear();
            for c in &self.data[..self.size] {
                if c.logit >= min_logit {
                    tmp.push(*c);
                }
            }
            if tmp.len() >= min_keep {
                let n = tmp.len();
                self.data[..n].copy_from_slice(tmp);
                self.size = n;
                applied = true;
            }
        }
        if !applied {
            self.sort(-1);
            let min_logit = self.data[0].logit + p.ln();
            let mut i = 1;
            while i < self.size {
                if self.data[i].logit < min_logit && i >= min_keep {
                    break;
                }
                i += 1;
            }
            self.size = i;
        }
    }

    fn tail_free(&mut self, z: f32, min_keep: usize) {
        if z >= 1.0 || self.size <= 2 {
            return;
        }
        self.softmax(true);
        let n = self.size;
        let f1 = &mut self.s.f1;
        let f2 = &mut self.s.f2;
        f1.clear();
        f2.clear();
        for i in 0..n - 1 {
            f1.push(self.data[i].p - self.data[i + 1].p);
        }
        for i in 0..n - 2 {
            f2.push((f1[i] - f1[i + 1]).abs());
        }
        let mut sum = 0.0f32;
        for &v in f2.iter() {
            sum += v;
        }
        if sum > 1e-6 {
            for v in f2.iter_mut() {
                *v /= sum;
            }
        } else {
            let u = 1.0 / f2.len() as f32;
            for v in f2.iter_mut() {
                *v = u;
            }
        }
        let min_keep = min_keep.max(1);
        let mut cum = 0.0f32;
        let mut last = n;
        for (i, &v) in f2.iter().enumerate() {
            cum += v;
            if cum > z && i >= min_keep {
                last = i;
                break;
            }
        }
        self.size = last;
    }

    fn typical(&mut self, p: f32, min_keep: usize) {
        if p >= 1.0 {
            return;
        }
        self.softmax(true);
        let n = self.size;
        let mut entropy = 0.0f32;
        for c in &self.data[..n] {
            entropy += -c.p * c.p.ln();
        }
        let scores = &mut self.s.f1;
        scores.clear();
        for c in &self.data[..n] {
            scores.push((-c.p.ln() - entropy).abs());
        }
        let idx = &mut self.s.indices;
        idx.clear();
        idx.extend(0..n as u32);
        {
            let sc: &[f32] = scores;
            std_sort(&mut idx[..], &|a: &u32, b: &u32| sc[*a as usize] < sc[*b as usize]);
        }
        let mut cum = 0.0f32;
        let mut last = n;
        for (i, &j) in idx.iter().enumerate() {
            cum += self.data[j as usize].p;
            if cum > p && i + 1 >= min_keep {
                last = i + 1;
                break;
            }
        }
        let tmp = &mut self.s.tmp;
        tmp.clear();
        for &j in &idx[..last] {
            tmp.push(self.data[j as usize]);
        }
        self.data[..last].copy_from_slice(tmp);
        self.size = last;
        self.sorted = false;
    }

    fn temp(&mut self, t: f32) {
        for c in self.live() {
            c.logit /= t;
        }
    }
}

/// `llama_sample_token_with_rng_impl`: the draw over the live candidates in their current order.
fn draw(cands: &[TokenData], probs: &mut Vec<f32>, rng: &mut Mt19937) -> usize {
    if cands.len() < 2 {
        return 0;
    }
    let mut max = cands[0].logit;
    for c in &cands[1..] {
        if max < c.logit {
            max = c.logit;
        }
    }
    probs.clear();
    let mut sump = 0.0f32;
    for c in cands {
        sump += (c.logit - max).exp();
        probs.push(sump);
    }
    *probs.last_mut().unwrap() += sump;
    let r = rng.next_u32();
    let p = sump * (r as f32) / (u32::MAX as f32);
    // std::upper_bound: first element with p < probs[j] (kept as `!(p < x)` for NaN parity)
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    let idx = probs.partition_point(|&x| !(p < x));
    assert!(idx < probs.len(), "sampler: failed to sample a token (sump = {sump}, r = {r})");
    idx
}

// ---------------------------------------------------------------------------------------------------------
// The sampler
// ---------------------------------------------------------------------------------------------------------

/// A sampler: parameters, the accepted-token history (for penalties) and the RNG state.
pub struct Sampler {
    pub params: SamplerParams,
    history: Vec<u32>,
    rng: Mt19937,
    seed_used: u32,
    cands: Cands,
    probs: Vec<f32>,
    order: Vec<u8>,
    min_keep: i32,
    tfs_z: f32,
    nl_token: Option<u32>,
    reference_history: bool,
    selected: usize,
}

impl Sampler {
    pub fn new(params: SamplerParams) -> Sampler {
        let mut s = Sampler {
            params,
            history: Vec::new(),
            rng: Mt19937::new(0),
            seed_used: 0,
            cands: Cands { data: Vec::new(), size: 0, sorted: false, s: Scratch::default() },
            probs: Vec::new(),
            order: DEFAULT_ORDER.as_bytes().to_vec(),
            min_keep: 0,
            tfs_z: 1.0,
            nl_token: None,
            reference_history: false,
            selected: 0,
        };
        s.reseed();
        s
    }

    fn reseed(&mut self) {
        let mut seed = self.params.seed as u32;
        if seed == DEFAULT_SEED {
            seed = random_seed();
        }
        self.seed_used = seed;
        self.rng.seed(seed);
    }

    /// The seed the RNG was started from (the random one when `params.seed` is LLAMA_DEFAULT_SEED).
    pub fn seed(&self) -> u32 {
        self.seed_used
    }

    /// The sampler order as reference chars (`llama_sampling_types_from_chars`: d k p y m f x n t w; unknown
    /// chars are dropped, and — as there — a custom order has no trailing `s` unless given). d/x/n/w are
    /// accepted but are no-ops (their parameters are off by default in the reference).
    pub fn set_order(&mut self, order: &str) {
        self.order = order.bytes().filter(|c| b"dkpymfxntws".contains(c)).collect();
    }

    /// `min_keep` (reference default 0; the chain uses `max(1, min_keep)`).
    pub fn set_min_keep(&mut self, min_keep: i32) {
        self.min_keep = min_keep;
    }

    /// Tail-free `z` (reference default 1.0 = off).
    pub fn set_tfs_z(&mut self, z: f32) {
        self.tfs_z = z;
    }

    /// The vocabulary's newline token: the reference (`penalize_nl = false`) restores its logit after the
    /// penalties. `None` (the default here) penalises it like any token.
    pub fn set_newline_token(&mut self, nl: Option<u32>) {
        self.nl_token = nl;
    }

    /// `false` (default): the documented window of the last `repeat_last_n` accepted tokens (`-1` = all);
    /// `true`: the reference's one-token penalty history (see the module docs).
    pub fn set_reference_history(&mut self, on: bool) {
        self.reference_history = on;
    }

    /// The tokens the penalties look at for the next `sample`.
    fn penalty_window(&self) -> &[u32] {
        let n = self.history.len();
        let last_n = self.params.repeat_last_n;
        let used = if self.reference_history {
            let last_n = if last_n < 0 { N_PREV } else { last_n as usize };
            n.min(1).min(last_n)
        } else if last_n < 0 {
            n
        } else {
            n.min(last_n as usize)
        };
        &self.history[n - used..]
    }

    fn prepare(&mut self, logits: &[f32]) {
        let c = &mut self.cands;
        c.data.clear();
        c.data.extend(logits.iter().enumerate().map(|(i, &l)| TokenData { id: i as u32, logit: l, p: 0.0 }));
        c.size = c.data.len();
        c.sorted = false;

        let p = &self.params;
        let (rep, freq, pres) = (p.repeat_penalty, p.frequency_penalty, p.presence_penalty);
        let n = self.history.len();
        let used = self.penalty_window().len();
        if used == 0 {
            return;
        }
        // penalty_last_n == 0 or all neutral → untouched (but `sorted` stays false either way)
        if !(rep == 1.0 && freq == 0.0 && pres == 0.0) {
            let w = &mut self.cands.s.window;
            w.clear();
            w.extend_from_slice(&self.history[n - used..]);
            w.sort_unstable();
            let data = &mut self.cands.data;
            let mut i = 0;
            while i < w.len() {
                let tok = w[i];
                let mut j = i;
                while j < w.len() && w[j] == tok {
                    j += 1;
                }
                let count = (j - i) as i32;
                i = j;
                if let Some(c) = data.get_mut(tok as usize) {
                    if c.logit <= 0.0 {
                        c.logit *= rep;
                    } else {
                        c.logit /= rep;
                    }
                    c.logit -= count as f32 * freq + (count > 0) as i32 as f32 * pres;
                }
            }
        }
        if let Some(nl) = self.nl_token {
            if let (Some(c), Some(&l)) = (self.cands.data.get_mut(nl as usize), logits.get(nl as usize)) {
                c.logit = l;
            }
        }
    }

    /// Choose a token from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        assert!(!logits.is_empty(), "sampler: empty logits row");
        self.prepare(logits);
        let temp = self.params.temp;
        let c = &mut self.cands;
        if temp < 0.0 {
            c.softmax(true);
            self.selected = 0;
            return c.data[0].id;
        }
        if temp == 0.0 {
            let live = &c.data[..c.size];
            let mut best = 0;
            for i in 1..live.len() {
                if live[best].logit < live[i].logit {
                    best = i;
                }
            }
            self.selected = best;
            return live[best].id;
        }
        let min_keep = self.min_keep.max(1) as usize;
        let p = &self.params;
        for &st in &self.order {
            match st {
                b'k' => c.top_k(p.top_k, min_keep),
                b'f' => c.tail_free(self.tfs_z, min_keep),
                b'y' => c.typical(p.typical_p, min_keep),
                b'p' => c.top_p(p.top_p, min_keep),
                b'm' => c.min_p(p.min_p, min_keep),
                b't' => c.temp(temp),
                b's' => c.softmax(false),
                _ => {} // d, x, n, w: disabled in the reference by default
            }
        }
        let idx = draw(&c.data[..c.size], &mut self.probs, &mut self.rng);
        self.selected = idx;
        c.data[idx].id
    }

    /// `sample`, and also the sampled token's post-chain probability (normalised over the surviving
    /// candidates; 1.0 for greedy `temp == 0`).
    pub fn sample_with_prob(&mut self, logits: &[f32]) -> (u32, f32) {
        let tok = self.sample(logits);
        if self.params.temp == 0.0 {
            return (tok, 1.0);
        }
        let live = &self.cands.data[..self.cands.size];
        let max = live.iter().fold(f32::NEG_INFINITY, |m, c| m.max(c.logit));
        let mut sum = 0.0f32;
        for c in live {
            sum += (c.logit - max).exp();
        }
        (tok, (live[self.selected].logit - max).exp() / sum)
    }

    /// The candidates left by the last `sample` (`common_sampler_get_candidates`, unsorted): id, the
    /// final logit and `p` as the reference leaves it (after the default order's trailing `s` step that is
    /// the un-normalised `expf(logit - max)`, as the reference's `post_sampling_probs` reports).
    pub fn candidates(&self) -> &[TokenData] {
        &self.cands.data[..self.cands.size]
    }

    /// Record a token that was accepted into the sequence (prompt tokens included).
    pub fn accept(&mut self, token: u32) {
        if self.reference_history {
            // The reference's `prev`: erase(front) when non-empty, then push_back → holds one token.
            self.history.clear();
        }
        self.history.push(token);
    }

    /// Forget the history and restart the RNG from the seed (a fresh random one for LLAMA_DEFAULT_SEED,
    /// as a freshly initialised reference sampler would get).
    pub fn reset(&mut self) {
        self.history.clear();
        self.reseed();
    }
}

/// The server's pre-sampling `n_probs` (`get_token_probabilities` in ik_llama.cpp
/// `examples/server/server-common.cpp`): the top `n` tokens of the raw logits by `(logit, id)` descending,
/// with softmax probabilities, and the sampled token's probability. Reproduces the reference's arithmetic,
/// including its normaliser (the tail beyond `n` is summed twice there).
pub fn token_probabilities(logits: &[f32], sampled: u32, n: usize) -> (f32, Vec<TokenData>) {
    let n_vocab = logits.len();
    let n = n.min(n_vocab);
    let mut sorted: Vec<(f32, i32)> = logits.iter().enumerate().map(|(i, &l)| (l, i as i32)).collect();
    // std::greater<std::pair<float,int>>: a > b lexicographically
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    std_partial_sort(&mut sorted[..], n, &|a: &(f32, i32), b: &(f32, i32)| a.0 > b.0 || (!(b.0 > a.0) && a.1 > b.1));
    let max_l = sorted[0].0;
    let mut cum = 0.0f32;
    let mut sampled_p = 0.0f32;
    let mut found = false;
    let mut cur = Vec::with_capacity(n);
    for (i, &(l, id)) in sorted.iter().enumerate() {
        let p = (l - max_l).exp();
        cum += p;
        if i < n {
            cur.push(TokenData { id: id as u32, logit: l, p });
        }
        if !found && id as u32 == sampled {
            sampled_p = p;
            found = true;
        }
    }
    for &(l, _) in &sorted[n..] {
        cum += (l - max_l).exp();
    }
    let inv = 1.0 / cum;
    for c in cur.iter_mut() {
        c.p *= inv;
    }
    (sampled_p * inv, cur)
}

/// Index of the largest logit (lowest index on ties; NaN never wins).
pub fn greedy(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}
