//! Memory read bandwidth of this machine, measured (for `make bench`'s token-generation bound and kbench's
//! %memBW column): each of `threads` OS threads streams its own share of one buffer with AVX2 loads into four
//! independent sums (scalar fallback without AVX2); the rate is total bytes over the slowest thread's time.

use std::hint::black_box;
use std::time::Instant;

/// Streaming read bandwidth in GB/s (1e9 bytes/s): median of `reps` passes over a `bytes`-sized buffer
/// (rounded down to whole 128-byte lines per thread) split among `threads` threads.
pub fn read_bandwidth(threads: usize, bytes: usize, reps: usize) -> f64 {
    let threads = threads.max(1);
    let per = (bytes / threads / 128).max(1) * 16;
    let buf: Vec<u64> = (0..(per * threads) as u64).collect();
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t0 = Instant::now();
            std::thread::scope(|s| {
                for part in buf.chunks(per) {
                    s.spawn(move || black_box(stream_sum(part)));
                }
            });
            t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (buf.len() * 8) as f64 / t[t.len() / 2] / 1e9
}

/// Sum of `buf` (wrapping), reading every word once.
pub fn stream_sum(buf: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 checked above.
        return unsafe { stream_sum_avx2(buf) };
    }
    buf.iter().fold(0u64, |a, &b| a.wrapping_add(b))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn stream_sum_avx2(buf: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let mut s = [_mm256_setzero_si256(); 4];
    let p = buf.as_ptr() as *const __m256i;
    let whole = buf.len() / 16;
    for i in 0..whole {
        for k in 0..4 {
            // SAFETY: word 16·i + 4k + 3 < 16·whole ≤ buf.len().
            s[k] = _mm256_add_epi64(s[k], _mm256_loadu_si256(p.add(4 * i + k)));
        }
    }
    let mut out = [0u64; 4];
    let t = _mm256_add_epi64(_mm256_add_epi64(s[0], s[1]), _mm256_add_epi64(s[2], s[3]));
    _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, t);
    let tail = buf[whole * 16..].iter().fold(0u64, |a, &b| a.wrapping_add(b));
    out.iter().fold(tail, |a, &b| a.wrapping_add(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_sum_reads_every_word() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(super::stream_sum(&v), 500_500);
        assert!(super::read_bandwidth(2, 1 << 20, 3) > 0.0);
    }
}
