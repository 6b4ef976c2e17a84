//! Prints this machine's streaming memory read bandwidth in GB/s (used by `make bench` for the TG bound).
//! Usage: membw [-t THREADS] [--mib N] [-r REPS]   (defaults: 2 threads, 1024 MiB, 5 repetitions; median)

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str, def: usize| -> usize {
        match args.iter().position(|a| a == flag) {
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("error: {flag} needs a positive integer");
                std::process::exit(2)
            }),
            None => def,
        }
    };
    let (threads, mib, reps) = (get("-t", 2), get("--mib", 1024), get("-r", 5));
    let gbs = ikl_core::cpu::membw::read_bandwidth(threads, mib << 20, reps);
    println!("{gbs:.2}");
}
