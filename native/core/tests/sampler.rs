//! Sampler tests: the reference chain (ik_llama.cpp @ 8337e4cd, common/sampling.cpp + src/llama-sampling.cpp).
//!
//! `reference_sequences` compares whole token sequences with the reference: the expected ids were produced
//! by a C++ harness that compiles the reference's `llama_sort`, `llama_sample_{softmax,top_k,top_p,min_p,
//! tail_free,typical,temp,repetition_penalties}_impl` and `llama_sample_token_with_rng_impl` verbatim
//! (copied from src/llama-sampling.cpp), driven the way `llama_sampling_prepare_impl` / `sampler_queue` /
//! `llama_sampling_sample_impl` / `common_sampler_accept` drive them (no grammar), with `std::mt19937` and
//! libstdc++ (g++ 12, `-O3 -march=native -std=gnu++17`; `-O2 -ffp-contract=off` gives the same ids), on
//! logits from the xorshift32 generator below.

use ikl_core::sample::*;
use std::time::Instant;

fn xs(s: &mut u32) -> u32 {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    *s
}

/// The harness's logit generator: coarse = 401 levels (many exact ties), fine = 200001 levels.
fn gen(l: &mut [f32], st: &mut u32, coarse: bool) {
    for v in l.iter_mut() {
        let x = xs(st);
        *v = if coarse { ((x >> 8) % 401) as f32 / 20.0 - 12.0 } else { ((x >> 8) % 200001) as f32 / 10000.0 - 12.0 };
    }
}

struct Cfg {
    name: &'static str,
    temp: f32,
    top_k: i32,
    top_p: f32,
    min_p: f32,
    typical_p: f32,
    tfs_z: f32,
    rep: f32,
    freq: f32,
    pres: f32,
    last_n: i32,
    order: &'static str,
    n_vocab: usize,
    min_keep: i32,
    nl: i32,
    coarse: bool,
}

#[rustfmt::skip]
fn cfgs() -> Vec<Cfg> {
    let c = |name, temp, top_k, top_p, min_p, typical_p, tfs_z, rep, freq, pres, last_n, order, n_vocab, min_keep, nl, coarse|
        Cfg { name, temp, top_k, top_p, min_p, typical_p, tfs_z, rep, freq, pres, last_n, order, n_vocab, min_keep, nl, coarse };
    vec![
        c("default",  0.8, 40, 0.95, 0.05, 1.0, 1.0, 1.0, 0.0, 0.0, 64, "kfypmts", 129280, 0, -1, true),
        c("default_fine", 0.8, 40, 0.95, 0.05, 1.0, 1.0, 1.0, 0.0, 0.0, 64, "kfypmts", 129280, 0, -1, false),
        c("vocab_k",  1.0, 0, 0.9, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 64, "kfypmts", 129280, 0, -1, true),
        c("k2000",    1.5, 2000, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 64, "kfypmts", 32000, 0, -1, true),
        c("typ_tfs",  0.7, 100, 0.98, 0.01, 0.8, 0.95, 1.0, 0.0, 0.0, 64, "kfypmts", 32000, 3, -1, false),
        c("typ_minp_unsorted", 1.2, 60, 1.0, 0.2, 0.7, 1.0, 1.0, 0.0, 0.0, 64, "kymt", 32000, 0, -1, true),
        c("penalties", 0.9, 40, 0.95, 0.05, 1.0, 1.0, 1.3, 0.2, 0.3, 64, "kfypmts", 512, 0, 13, false),
        c("greedy0",  0.0, 40, 0.95, 0.05, 1.0, 1.0, 1.1, 0.0, 0.5, 64, "kfypmts", 4000, 0, -1, true),
        c("greedyneg", -1.0, 40, 0.95, 0.05, 1.0, 1.0, 1.0, 0.0, 0.0, 64, "kfypmts", 129280, 0, -1, true),
        c("tempfirst", 2.0, 10, 0.8, 0.1, 1.0, 1.0, 1.0, 0.0, 0.0, 64, "tkpm", 32000, 0, -1, false),
    ]
}

#[rustfmt::skip]
const EXPECTED: &[(&str, u32, [u32; 24])] = &[
    ("default", 42, [8976, 12882, 9968, 11249, 3991, 3672, 1306, 8801, 761, 7339, 4055, 6864, 12184, 13166, 13812, 1136, 6184, 9756, 20593, 16394, 4483, 12616, 12050, 6813]),
    ("default", 1234, [10457, 922, 10209, 1755, 5001, 2690, 17201, 751, 337, 15123, 6043, 11054, 1511, 8716, 18089, 10921, 5207, 4277, 11234, 6206, 4989, 2770, 4865, 18084]),
    ("default_fine", 42, [14416, 9643, 66956, 101286, 1228, 69409, 84102, 81010, 28853, 89352, 29889, 49289, 77764, 13307, 81694, 28944, 24190, 48801, 85920, 39455, 107020, 43777, 25497, 6786]),
    ("default_fine", 1234, [13086, 32314, 99564, 102216, 33906, 116101, 35648, 114033, 84211, 82428, 74494, 78902, 23331, 125714, 23055, 37474, 8198, 81079, 78784, 101643, 32802, 118207, 52526, 16044]),
    ("vocab_k", 42, [114003, 118956, 87710, 81267, 8869, 75432, 17487, 77537, 59201, 91639, 46275, 7038, 62881, 19406, 77932, 78335, 124266, 23371, 71889, 119230, 120933, 36842, 117830, 82602]),
    ("vocab_k", 1234, [73146, 88506, 101366, 126297, 60355, 115359, 11660, 55078, 34236, 23901, 44640, 50690, 23992, 86019, 65883, 2105, 100168, 14814, 59436, 99502, 105794, 77180, 107223, 18651]),
    ("k2000", 42, [22618, 29444, 2557, 6434, 10764, 10876, 6419, 24468, 10266, 4661, 4020, 2060, 10183, 18149, 16298, 26625, 9745, 3604, 25405, 5471, 29017, 14593, 20697, 1287]),
    ("k2000", 1234, [8761, 11777, 30525, 8962, 9413, 4835, 6668, 22024, 8830, 23319, 8878, 6282, 28443, 1145, 25915, 20788, 2238, 27856, 11667, 14454, 23993, 19039, 6249, 10949]),
    ("typ_tfs", 42, [18156, 6003, 5515, 8037, 10160, 5488, 7310, 2889, 7288, 7175, 19599, 6406, 26646, 8625, 28105, 1771, 6767, 23726, 21179, 20741, 14739, 16420, 12656, 16504]),
    ("typ_tfs", 1234, [20395, 3808, 15139, 11379, 21967, 3159, 9754, 27858, 11850, 20399, 14127, 27797, 27535, 23975, 15501, 3865, 9169, 4038, 7306, 10559, 21625, 3365, 14813, 6839]),
    ("typ_minp_unsorted", 42, [8035, 7634, 7444, 21606, 12260, 2534, 24411, 24328, 19235, 16005, 5315, 3572, 5792, 16055, 22050, 14592, 21848, 4483, 16309, 10744, 17632, 10136, 11017, 1457]),
    ("typ_minp_unsorted", 1234, [4477, 8827, 14480, 11545, 2728, 18074, 9575, 14192, 21187, 22066, 27409, 18645, 21589, 18026, 2538, 11241, 5840, 1999, 20942, 21080, 5328, 19775, 10423, 2276]),
    ("penalties", 42, [171, 253, 189, 249, 154, 54, 226, 470, 508, 314, 55, 1, 345, 454, 21, 313, 243, 161, 309, 318, 403, 263, 87, 403]),
    ("penalties", 1234, [283, 259, 303, 192, 17, 33, 327, 454, 179, 305, 326, 413, 438, 385, 452, 203, 172, 64, 507, 129, 160, 292, 121, 454]),
    ("greedy0", 42, [1039, 177, 35, 507, 642, 1980, 28, 16, 106, 601, 738, 361, 215, 1385, 181, 331, 101, 70, 346, 63, 615, 645, 76, 221]),
    ("greedy0", 1234, [1088, 191, 329, 733, 1200, 48, 130, 154, 103, 139, 35, 103, 299, 87, 905, 59, 216, 544, 318, 9, 280, 195, 133, 199]),
    ("greedyneg", 42, [80634, 78565, 88466, 89421, 85241, 82894, 86070, 80275, 79761, 81463, 85085, 83860, 92377, 90323, 91400, 83998, 86707, 78742, 91272, 86265, 83856, 86690, 85435, 79624]),
    ("greedyneg", 1234, [84251, 86243, 88063, 84887, 87013, 88224, 86576, 84794, 88244, 85931, 85389, 84984, 82597, 80927, 88914, 85253, 83504, 81502, 78509, 90160, 85140, 86757, 86470, 89615]),
    ("tempfirst", 42, [26001, 12606, 28019, 19077, 30751, 25531, 24594, 17584, 18536, 6884, 23729, 27139, 12014, 29885, 18632, 13998, 15339, 19482, 31852, 10488, 13839, 7005, 28810, 23866]),
    ("tempfirst", 1234, [13086, 6349, 27015, 8430, 5264, 18467, 10722, 9200, 9763, 26673, 22996, 28076, 8496, 24265, 19818, 12066, 8662, 31586, 4549, 11769, 16051, 13862, 13226, 9682]),
];

fn make(c: &Cfg, seed: u32) -> Sampler {
    let mut s = Sampler::new(SamplerParams {
        temp: c.temp,
        top_k: c.top_k,
        top_p: c.top_p,
        min_p: c.min_p,
        typical_p: c.typical_p,
        repeat_penalty: c.rep,
        repeat_last_n: c.last_n,
        presence_penalty: c.pres,
        frequency_penalty: c.freq,
        seed: seed as u64,
    });
    s.set_order(c.order);
    s.set_tfs_z(c.tfs_z);
    s.set_min_keep(c.min_keep);
    s.set_newline_token(if c.nl >= 0 { Some(c.nl as u32) } else { None });
    // The reference sequences were recorded with the reference's one-token penalty history.
    s.set_reference_history(true);
    s
}

fn run(c: &Cfg, seed: u32, steps: usize) -> Vec<u32> {
    let mut s = make(c, seed);
    let mut st = 0x9E37_79B9u32 ^ seed;
    let mut logits = vec![0.0f32; c.n_vocab];
    let mut out = Vec::new();
    for _ in 0..steps {
        gen(&mut logits, &mut st, c.coarse);
        let t = s.sample(&logits);
        s.accept(t);
        out.push(t);
    }
    out
}

#[test]
fn reference_sequences() {
    let cfgs = cfgs();
    let mut bad = Vec::new();
    for &(name, seed, ref want) in EXPECTED {
        let c = cfgs.iter().find(|c| c.name == name).unwrap();
        let got = run(c, seed, 24);
        if got[..] != want[..] {
            bad.push(format!("{name} seed={seed}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------------------------
// RNG
// ---------------------------------------------------------------------------------------------------------

#[test]
fn mt19937_matches_std() {
    // std::mt19937 default seed 5489 (values printed by the g++ harness; also the C++ standard's sequence).
    let mut r = Mt19937::new(5489);
    let v: Vec<u32> = (0..5).map(|_| r.next_u32()).collect();
    assert_eq!(v, [3499211612, 581869302, 3890346734, 3586334585, 545404204]);
    // [rand.predef]: the 10000th consecutive invocation of a default-constructed mt19937 yields 4123659995.
    let mut r = Mt19937::new(5489);
    let mut last = 0;
    for _ in 0..10000 {
        last = r.next_u32();
    }
    assert_eq!(last, 4123659995);
    // std::mt19937(42) (g++ 12 harness).
    let mut r = Mt19937::new(42);
    let v: Vec<u32> = (0..5).map(|_| r.next_u32()).collect();
    assert_eq!(v, [1608637542, 3421126067, 4083286876, 787846414, 3143890026]);
}

// ---------------------------------------------------------------------------------------------------------
// Stages, one at a time (hand-computed)
// ---------------------------------------------------------------------------------------------------------

/// Parameters with every filter off and temperature 1.
fn neutral(seed: u64) -> SamplerParams {
    SamplerParams { temp: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, typical_p: 1.0, seed, ..Default::default() }
}

fn ids(s: &Sampler) -> Vec<u32> {
    s.candidates().iter().map(|c| c.id).collect()
}

/// ln of probabilities 0.5, 0.25, 0.125, 0.125 (shifted so they are logits).
fn halves() -> Vec<f32> {
    vec![0.0, -std::f32::consts::LN_2, -2.0 * std::f32::consts::LN_2, -2.0 * std::f32::consts::LN_2]
}

#[test]
fn top_k_keeps_k_largest_sorted() {
    let mut s = Sampler::new(SamplerParams { top_k: 2, ..neutral(1) });
    let t = s.sample(&[1.0, 5.0, 3.0, 4.0, 2.0]);
    assert_eq!(ids(&s), [1, 3]);
    assert!(t == 1 || t == 3);
    // top_k <= 0 → the whole vocabulary
    let mut s = Sampler::new(SamplerParams { top_k: 0, ..neutral(1) });
    s.sample(&[1.0, 5.0, 3.0, 4.0, 2.0]);
    assert_eq!(ids(&s), [1, 3, 2, 4, 0]);
    // top_k larger than the vocabulary is clamped
    let mut s = Sampler::new(SamplerParams { top_k: 100, ..neutral(1) });
    s.sample(&[1.0, 5.0, 3.0]);
    assert_eq!(ids(&s), [1, 2, 0]);
}

#[test]
fn top_p_cumulative_at_least_p() {
    // probs .5 .25 .125 .125: p = 0.7 → .5 < .7, .75 >= .7 → two tokens
    let mut s = Sampler::new(SamplerParams { top_p: 0.7, ..neutral(1) });
    s.sample(&halves());
    assert_eq!(ids(&s), [0, 1]);
    // p = 0.5 → the first token alone reaches it
    let mut s = Sampler::new(SamplerParams { top_p: 0.5, ..neutral(1) });
    s.sample(&halves());
    assert_eq!(ids(&s), [0]);
    // tiny p keeps at least one; min_keep raises that
    let mut s = Sampler::new(SamplerParams { top_p: 0.01, ..neutral(1) });
    s.sample(&halves());
    assert_eq!(ids(&s), [0]);
    s.set_min_keep(3);
    s.sample(&halves());
    assert_eq!(ids(&s), [0, 1, 2]);
    // p >= 1 disables
    let mut s = Sampler::new(SamplerParams { top_p: 1.0, ..neutral(1) });
    s.sample(&halves());
    assert_eq!(s.candidates().len(), 4);
}

#[test]
fn min_p_relative_to_max() {
    // p_max = .5; min_p = .3 → keep p >= .15 → tokens 0 (.5), 1 (.25)
    let mut s = Sampler::new(SamplerParams { min_p: 0.3, ..neutral(1) });
    s.sample(&halves());
    let mut got = ids(&s);
    got.sort();
    assert_eq!(got, [0, 1]);
    // min_p = .2 → keep p >= .1 → all four
    let mut s = Sampler::new(SamplerParams { min_p: 0.2, ..neutral(1) });
    s.sample(&halves());
    assert_eq!(s.candidates().len(), 4);
    // on an unsorted candidate list the reference filters in place (order kept): with top-k off and no
    // other stage before it, min-p sees the ids in vocabulary order
    let mut s = Sampler::new(SamplerParams { min_p: 0.3, ..neutral(1) });
    s.set_order("mt");
    s.sample(&[-5.0, 1.0, -5.0, 2.0]);
    assert_eq!(ids(&s), [1, 3]);
}

#[test]
fn typical_entropy_based() {
    // H = 1.75 ln2; |-ln p - H| = .75, .25, 1.25, 1.25 (× ln2) → order 1, 0, 2, 3;
    // typical_p = .5: cum .25 (not > .5), .75 > .5 → [1, 0] in that (typicality) order
    let mut s = Sampler::new(SamplerParams { typical_p: 0.5, ..neutral(1) });
    s.set_order("yt");
    s.sample(&halves());
    assert_eq!(ids(&s), [1, 0]);
}

#[test]
fn tail_free() {
    // probs .5 .25 .125 .125: d1 = .25 .125 0, |d2| = .125 .125 → normalised .5 .5;
    // z = .4: cum .5 > .4 at i = 0 but i >= min_keep(1) fails; i = 1: cum 1 > .4 → keep 1 token
    let mut s = Sampler::new(neutral(1));
    s.set_tfs_z(0.4);
    s.set_order("ft");
    s.sample(&halves());
    assert_eq!(ids(&s), [0]);
    s.set_tfs_z(1.0);
    s.sample(&halves());
    assert_eq!(s.candidates().len(), 4);
}

#[test]
fn temperature_divides_logits() {
    let mut s = Sampler::new(SamplerParams { temp: 2.0, top_k: 0, ..neutral(1) });
    s.set_order("kt");
    s.sample(&[2.0, 4.0]);
    let c = s.candidates();
    assert_eq!((c[0].id, c[0].logit, c[1].id, c[1].logit), (1, 2.0, 0, 1.0));
}

#[test]
fn chain_order_matters() {
    // logits 2 1 0 -1, temp 3, top_p .5: default order (p before t): p0 = .644 → 1 token;
    // temperature first flattens: p0 = .385, p0+p1 = .66 → 2 tokens.
    let l = [2.0, 1.0, 0.0, -1.0];
    let p = SamplerParams { temp: 3.0, top_p: 0.5, ..neutral(1) };
    let mut s = Sampler::new(p.clone());
    s.sample(&l);
    assert_eq!(ids(&s), [0]);
    let mut s = Sampler::new(p);
    s.set_order("tkp");
    s.sample(&l);
    assert_eq!(ids(&s), [0, 1]);
    // default order string is the reference's samplers_sequence
    assert_eq!(DEFAULT_ORDER, "dkfypmxntws");
}

#[test]
fn default_chain_post_sampling_probs() {
    // After the default order's trailing dist step, p is the un-normalised expf(logit - max) (reference).
    let mut s = Sampler::new(SamplerParams { seed: 7, ..Default::default() });
    let mut st = 5u32;
    let mut l = vec![0.0f32; 5000];
    gen(&mut l, &mut st, false);
    let t = s.sample(&l);
    let c = s.candidates();
    assert!(c.len() <= 40 && !c.is_empty());
    assert_eq!(c[0].p, 1.0);
    assert!(c.iter().any(|x| x.id == t));
    assert!(c.windows(2).all(|w| w[0].logit >= w[1].logit));
    let (t2, p) = Sampler::new(SamplerParams { seed: 7, ..Default::default() }).sample_with_prob(&l);
    assert_eq!(t, t2);
    assert!(p > 0.0 && p <= 1.0);
}

// ---------------------------------------------------------------------------------------------------------
// Greedy, seeds, penalties
// ---------------------------------------------------------------------------------------------------------

#[test]
fn greedy_ties_lowest_id() {
    assert_eq!(greedy(&[1.0, 3.0, 3.0, 2.0]), 1);
    assert_eq!(greedy(&[f32::NAN, 1.0, 1.0]), 1);
    let mut s = Sampler::new(SamplerParams { temp: 0.0, ..Default::default() });
    assert_eq!(s.sample(&[1.0, 3.0, 3.0, 2.0]), 1);
    assert_eq!(s.sample(&[3.0, 3.0, 3.0]), 0);
    // temp == 0 does not touch the RNG and ignores top-k/top-p/min-p
    let mut s = Sampler::new(SamplerParams { temp: 0.0, top_k: 1, top_p: 0.0001, seed: 3, ..Default::default() });
    assert_eq!(s.sample(&[0.0, 0.5, 0.2]), 1);
    // temp < 0: greedy after a full softmax sort
    let mut s = Sampler::new(SamplerParams { temp: -1.0, ..Default::default() });
    assert_eq!(s.sample(&[0.0, 0.5, 0.2]), 1);
}

#[test]
fn greedy_still_applies_penalties() {
    // temp 0: penalties are applied first (llama_sampling_prepare_impl runs before the temp branch)
    let mut s = Sampler::new(SamplerParams { temp: 0.0, presence_penalty: 1.0, ..Default::default() });
    assert_eq!(s.sample(&[0.0, 2.0, 1.5]), 1);
    s.accept(1);
    assert_eq!(s.sample(&[0.0, 2.0, 1.5]), 2);
}

#[test]
fn seeded_determinism() {
    let c = &cfgs()[1];
    let a = run(c, 1234, 40);
    let b = run(c, 1234, 40);
    let d = run(c, 1235, 40);
    assert_eq!(a, b);
    assert_ne!(a, d);
    // reset restarts the RNG from the seed and forgets the history
    let mut s = Sampler::new(SamplerParams { seed: 99, ..Default::default() });
    let mut st = 1u32;
    let mut l = vec![0.0f32; 1000];
    gen(&mut l, &mut st, false);
    let x: Vec<u32> = (0..10).map(|_| s.sample(&l)).collect();
    s.reset();
    let y: Vec<u32> = (0..10).map(|_| s.sample(&l)).collect();
    assert_eq!(x, y);
    // the reference's seed is uint32_t
    let mut s2 = Sampler::new(SamplerParams { seed: 99 + (1u64 << 32), ..Default::default() });
    let z: Vec<u32> = (0..10).map(|_| s2.sample(&l)).collect();
    assert_eq!(x, z);
    // LLAMA_DEFAULT_SEED → a random seed
    let r = Sampler::new(SamplerParams::default());
    assert_ne!(r.seed(), DEFAULT_SEED);
    assert_eq!(s.seed(), 99);
}

#[test]
fn penalty_arithmetic() {
    // repeat: positive logits divided, non-positive multiplied; then count*freq + present subtracted.
    let mut s = Sampler::new(SamplerParams {
        temp: 0.0,
        repeat_penalty: 2.0,
        frequency_penalty: 0.25,
        presence_penalty: 0.5,
        repeat_last_n: -1,
        ..Default::default()
    });
    s.set_reference_history(false);
    for t in [0, 1, 1, 1] {
        s.accept(t);
    }
    s.sample(&[4.0, -1.0, 3.0]);
    let l: Vec<f32> = s.candidates().iter().map(|c| c.logit).collect();
    assert_eq!(l, [4.0 / 2.0 - 0.25 - 0.5, -2.0 - 3.0 * 0.25 - 0.5, 3.0]);
}

fn penalized(s: &mut Sampler, n: usize) -> Vec<u32> {
    s.sample(&vec![1.0; n]);
    s.candidates().iter().filter(|c| c.logit != 1.0).map(|c| c.id).collect()
}

#[test]
fn penalties_only_over_the_window() {
    let p = SamplerParams { temp: 0.0, repeat_penalty: 2.0, repeat_last_n: 3, ..Default::default() };
    // documented window: last repeat_last_n accepted tokens
    let mut s = Sampler::new(p.clone());
    s.set_reference_history(false);
    for t in [5, 5, 1, 2, 3] {
        s.accept(t);
    }
    assert_eq!(penalized(&mut s, 8), [1, 2, 3]);
    s.params.repeat_last_n = 0;
    assert_eq!(penalized(&mut s, 8), [] as [u32; 0]);
    s.params.repeat_last_n = -1;
    assert_eq!(penalized(&mut s, 8), [1, 2, 3, 5]);
    s.reset();
    assert_eq!(penalized(&mut s, 8), [] as [u32; 0]);
    // reference history (opt-in): common_sampler_accept keeps one token when no grammar is set
    let mut s = Sampler::new(p);
    s.set_reference_history(true);
    for t in [5, 5, 1, 2, 3] {
        s.accept(t);
    }
    assert_eq!(penalized(&mut s, 8), [3]);
    s.params.repeat_last_n = -1;
    assert_eq!(penalized(&mut s, 8), [3]);
    s.params.repeat_last_n = 0;
    assert_eq!(penalized(&mut s, 8), [] as [u32; 0]);
}

#[test]
fn newline_not_penalized() {
    let mut s = Sampler::new(SamplerParams { temp: 0.0, repeat_penalty: 2.0, ..Default::default() });
    s.set_newline_token(Some(2));
    s.accept(2);
    assert_eq!(penalized(&mut s, 4), [] as [u32; 0]);
    s.accept(1);
    assert_eq!(penalized(&mut s, 4), [1]);
}

// ---------------------------------------------------------------------------------------------------------
// Property: the drawn token survived the filters and has non-zero probability
// ---------------------------------------------------------------------------------------------------------

#[test]
fn sampled_token_has_nonzero_probability() {
    let mut st = 0x00C0_FFEE_u32;
    let mut l = vec![0.0f32; 3000];
    for case in 0..400 {
        let r = |st: &mut u32, n: u32| xs(st) % n;
        let params = SamplerParams {
            temp: [0.05, 0.3, 0.8, 1.0, 1.7, 5.0][r(&mut st, 6) as usize],
            top_k: [0, 1, 2, 10, 40, 1500, 5000][r(&mut st, 7) as usize],
            top_p: [0.0, 0.1, 0.5, 0.9, 0.95, 1.0][r(&mut st, 6) as usize],
            min_p: [0.0, 0.05, 0.5, 0.99, 1.0][r(&mut st, 5) as usize],
            typical_p: [0.2, 0.9, 1.0, 1.0][r(&mut st, 4) as usize],
            repeat_penalty: [1.0, 1.1, 1.5][r(&mut st, 3) as usize],
            repeat_last_n: [-1, 0, 64][r(&mut st, 3) as usize],
            presence_penalty: [0.0, 0.5][r(&mut st, 2) as usize],
            frequency_penalty: [0.0, 0.3][r(&mut st, 2) as usize],
            seed: case,
        };
        let mut s = Sampler::new(params.clone());
        s.set_tfs_z([1.0, 0.9, 0.5][r(&mut st, 3) as usize]);
        s.set_min_keep(r(&mut st, 4) as i32);
        s.set_reference_history(case % 2 == 0);
        let coarse = case % 3 == 0;
        for _ in 0..5 {
            gen(&mut l, &mut st, coarse);
            let t = s.sample(&l);
            let c = s.candidates();
            let max = c.iter().fold(f32::NEG_INFINITY, |m, x| m.max(x.logit));
            let me = c.iter().find(|x| x.id == t).unwrap_or_else(|| panic!("case {case}: {t} not a candidate {params:?}"));
            assert!((me.logit - max).exp() > 0.0, "case {case}: zero probability for {t} {params:?}");
            s.accept(t);
        }
    }
}

#[test]
fn token_probabilities_sorted() {
    let l = [0.0f32, 2.0, 1.0, 2.0];
    let (p, top) = token_probabilities(&l, 2, 2);
    // std::greater<pair<float,int>>: equal logits → larger id first
    assert_eq!(top.iter().map(|c| c.id).collect::<Vec<_>>(), [3, 1]);
    assert!(p > 0.0 && top[0].p > p);
}

// ---------------------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------------------

#[test]
fn timing_129280() {
    let n = 129280;
    let mut st = 77u32;
    let rows: Vec<Vec<f32>> = (0..8)
        .map(|_| {
            let mut l = vec![0.0f32; n];
            gen(&mut l, &mut st, false);
            l
        })
        .collect();
    let report = |name: &str, p: SamplerParams, iters: usize| {
        let mut s = Sampler::new(p);
        for r in &rows {
            s.sample(r); // warm the buffers
        }
        let t0 = Instant::now();
        let mut acc = 0u64;
        for i in 0..iters {
            let t = s.sample(&rows[i % rows.len()]);
            s.accept(t);
            acc += t as u64;
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / iters as f64;
        eprintln!("sampler timing ({name}, n_vocab {n}): {us:.1} µs/sample [{acc}]");
        us
    };
    let d = report("defaults k40 p.95 m.05 t.8", SamplerParams { seed: 1, ..Default::default() }, 200);
    report(
        "defaults + repeat 1.1 / freq / presence",
        SamplerParams { seed: 1, repeat_penalty: 1.1, frequency_penalty: 0.1, presence_penalty: 0.1, ..Default::default() },
        200,
    );
    report("greedy temp 0", SamplerParams { temp: 0.0, ..Default::default() }, 200);
    report("top_k 0 (whole vocab) p.9", SamplerParams { seed: 1, top_k: 0, top_p: 0.9, ..Default::default() }, 30);
    assert!(d < 50_000.0, "default chain took {d} µs per sample");
}
