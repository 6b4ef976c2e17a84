//! Token sampling: the reference's sampler chain over one row of logits, with a seeded RNG.
//!
//! Order and defaults follow ik_llama.cpp `common/sampling.cpp` @ 8337e4cd (penalties over the last
//! `repeat_last_n` accepted tokens → top-k → typical → top-p → min-p → temperature → draw); `temp <= 0` is
//! greedy (argmax, lowest id on ties). The API is fixed; the chain is filled in by `sample.rs` alone.

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

/// A sampler: parameters, the accepted-token history (for penalties) and the RNG state.
pub struct Sampler {
    pub params: SamplerParams,
    history: Vec<u32>,
}

impl Sampler {
    pub fn new(params: SamplerParams) -> Sampler {
        Sampler { params, history: Vec::new() }
    }

    /// Choose a token from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        greedy(logits)
    }

    /// Record a token that was accepted into the sequence (prompt tokens included).
    pub fn accept(&mut self, token: u32) {
        self.history.push(token);
    }

    /// Forget the history and restart the RNG from the seed.
    pub fn reset(&mut self) {
        self.history.clear();
    }
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
