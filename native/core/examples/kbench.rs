//! Kernel bench: per type and activation-row count, SIMD vs scalar agreement, then GB/s of weight bytes read,
//! GFLOP/s and the speed-up over the scalar fallback; plus this machine's single-thread memory read bandwidth.
//!
//! cargo run --release -p ikl-core --example kbench -- [--type q4_0[,q4_K…]] [--ny 1..8 | 1,4,8] [--n 4096]
//!     [--rows 4096] [--reps 7] [--hot]
//! Single-threaded (the kernels are per-thread building blocks; callers split rows across the pool).

use std::time::Instant;

use ikl_core::cpu::table::{kernels_for_tier, Kernels};
use ikl_core::cpu::tier::{tier, Tier};
use ikl_core::quant::formats::lookup;
use ikl_core::quant::QType;

const DEFAULT_TYPES: &[&str] = &[
    "q8_0",
    "q4_0",
    "iq4_nl",
    "q4_K",
    "q5_K",
    "q6_K",
    "q3_K",
    "q2_K",
    "iq4_xs",
    "f16",
    "bf16",
    "f32",
    "iq4_k",
    "iq4_ks",
    "iq2_k",
    "iq3_k",
    "iq5_k",
    "iq6_k",
    "iq5_ks",
    "iq2_ks",
    "iq3_ks",
    "iq4_k_r4",
    "iq4_ks_r4",
    "iq4_xs_r8",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f(); // warm-up
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Single-thread streaming read bandwidth over a 512 MiB buffer (GB/s): ikl_core::cpu::membw, median of `reps`.
fn mem_bandwidth(reps: usize) -> f64 {
    ikl_core::cpu::membw::read_bandwidth(1, 512 << 20, reps)
}

struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn parse_ny(s: &str) -> Vec<usize> {
    if let Some((a, b)) = s.split_once("..") {
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        (a..=b).collect()
    } else {
        s.split(',').map(|v| v.parse().unwrap()).collect()
    }
}

fn run(k: &Kernels, n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32]) {
    (k.gemm[ny - 1])(n, x, bx, nx, y, by, ny, out, nx);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).map(|i| args[i + 1].clone());
    let types: Vec<String> = arg("--type")
        .map(|s| s.split(',').map(String::from).collect())
        .unwrap_or_else(|| DEFAULT_TYPES.iter().map(|s| s.to_string()).collect());
    let nys = parse_ny(&arg("--ny").unwrap_or_else(|| "1,2,4,8".into()));
    let n: usize = arg("--n").map(|s| s.parse().unwrap()).unwrap_or(4096);
    let rows: usize = arg("--rows").map(|s| s.parse().unwrap()).unwrap_or(4096);
    let hot = args.iter().any(|a| a == "--hot");
    let reps: usize = arg("--reps").map(|s| s.parse().unwrap()).unwrap_or(7).max(1);
    assert!(nys.iter().all(|&v| (1..=8).contains(&v)), "--ny must lie in 1..8");

    println!("tier: {} (features: {})", tier().name(), ikl_core::cpu::tier::features().join(" "));
    let bw = mem_bandwidth(5);
    println!("memory read bandwidth (1 thread, 512 MiB stream sum, median of 5): {bw:.1} GB/s");
    println!(
        "matrix {rows} x {n}, single thread, median of {reps}; scalar timed on min(rows, 256) rows and scaled; weights {}",
        if hot { "cache-resident (--hot)" } else { "streamed from DRAM (copies > L3)" }
    );
    println!(
        "{:<8} {:>2} {:>10} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8} {:>7}",
        "type", "ny", "max_rel", "ms", "GB/s", "GFLOP/s", "scal GB/s", "scal ms", "speedup", "%memBW"
    );

    let mut rng = Rng(0x2545F4914F6CDD1D);
    for tname in &types {
        let Some(q) = QType::from_name(tname) else {
            eprintln!("unknown type {tname}");
            continue;
        };
        let (Some(simd), Some(scalar)) = (kernels_for_tier(q, tier()), kernels_for_tier(q, Tier::Scalar)) else {
            eprintln!("{tname}: no kernels");
            continue;
        };
        let Some(quant) = lookup(q).and_then(|f| f.quantize) else {
            continue;
        };
        let bx = q.row_size(n as u64).unwrap() as usize;
        let by = simd.act.row_size(n as u64).unwrap() as usize;
        // quantize one block of distinct rows and tile it (the file quantizers are slow at 4096×4096)
        let distinct = rows.min(64);
        let w: Vec<f32> = (0..n * distinct).map(|_| rng.f()).collect();
        let mut xd = vec![0u8; bx * distinct];
        quant(&w, &mut xd, n, None);
        // enough copies of the matrix that together they exceed the caches (L3 here is 32 MiB): each timed
        // run streams all copies once, so the weights come from DRAM (`--hot` keeps one cache-resident copy)
        let copies = if hot { 1 } else { ((160usize << 20) / (bx * rows)).max(1) };
        let mut x = vec![0u8; bx * rows * copies];
        for r in 0..rows * copies {
            let d = r % rows % distinct;
            x[r * bx..(r + 1) * bx].copy_from_slice(&xd[d * bx..(d + 1) * bx]);
        }
        let a: Vec<f32> = (0..n * 8).map(|_| rng.f()).collect();
        let mut y = vec![0u8; by * 8];
        for iy in 0..8 {
            (simd.quantize_act)(&a[iy * n..(iy + 1) * n], &mut y[iy * by..(iy + 1) * by]);
        }
        for &ny in &nys {
            let srows = rows.min(256);
            let mut o1 = vec![0f32; rows * ny];
            let mut o2 = vec![0f32; srows * ny];
            run(&simd, n, &x, bx, rows, &y, by, ny, &mut o1);
            run(&scalar, n, &x, bx, srows, &y, by, ny, &mut o2);
            let mut max_rel = 0f64;
            for iy in 0..ny {
                for ix in 0..srows {
                    let (s, r) = (o1[iy * rows + ix] as f64, o2[iy * srows + ix] as f64);
                    max_rel = max_rel.max((s - r).abs() / r.abs().max(1e-30));
                }
            }
            let mat = bx * rows;
            let t = time(reps, || {
                for c in 0..copies {
                    run(&simd, n, &x[c * mat..(c + 1) * mat], bx, rows, &y, by, ny, &mut o1);
                }
            }) / copies as f64;
            let ts = time(reps.clamp(1, 3), || run(&scalar, n, &x, bx, srows, &y, by, ny, &mut o2)) * rows as f64 / srows as f64;
            let bytes = (bx * rows) as f64;
            let flops = 2.0 * (n * rows * ny) as f64;
            println!(
                "{:<8} {:>2} {:>10.2e} {:>9.3} {:>9.2} {:>8.2} {:>9.2} {:>9.1} {:>7.1}x {:>6.0}%",
                q.name(),
                ny,
                max_rel,
                t * 1e3,
                bytes / t / 1e9,
                flops / t / 1e9,
                bytes / ts / 1e9,
                ts * 1e3,
                ts / t,
                100.0 * bytes / t / 1e9 / bw
            );
        }
    }
}
