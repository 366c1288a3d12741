//! Benchmark: load and normalize one compose file in-process, as `berth config` does before printing.
//!
//!     cargo bench -p berth-orchestrator --bench load -- FILE
//!
//! Runs `loader::load` on FILE (or `$BERTH_BENCH_FILE`) `$BERTH_BENCH_RUNS` times (default 50) after 3 warm-up
//! loads, and prints the median, p90 and min in milliseconds, and the time of the first (cold) load, plus one
//! `RESULT …` line for scripts (`bench/config/run.sh`). Options are those of the CLI: the process environment,
//! interpolation on.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use berth_orchestrator::compose::loader::{LoadOptions, load};

const WARMUP: usize = 3;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` adds `--bench` (and may pass other flags): the file is the first argument that is not a flag.
    let file = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("BERTH_BENCH_FILE").ok())
        .map(PathBuf::from)
        .ok_or("usage: cargo bench -p berth-orchestrator --bench load -- FILE (or set BERTH_BENCH_FILE)")?;
    let runs: usize = match std::env::var("BERTH_BENCH_RUNS") {
        Ok(v) => v.trim().parse()?,
        Err(_) => 50,
    };
    if !file.exists() {
        return Err(format!(
            "{} does not exist (cargo bench runs this in the orchestrator/ directory: pass an absolute path)",
            file.display()
        )
        .into());
    }
    if runs == 0 {
        return Err("BERTH_BENCH_RUNS must be at least 1".into());
    }
    let mut opts = LoadOptions::from_process()?;
    opts.config_files = vec![file.clone()];

    // The first load pays for one-time initialisation too (as every `berth` process does); reported apart.
    let t0 = Instant::now();
    let loaded = load(&opts).map_err(|e| format!("{}: {e}", file.display()))?;
    let first = t0.elapsed().as_secs_f64() * 1e3;
    let services = loaded.project.services.len();
    drop(loaded);
    for _ in 1..WARMUP {
        std::hint::black_box(load(&opts).map_err(|e| format!("{}: {e}", file.display()))?);
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let loaded = load(&opts).map_err(|e| format!("{}: {e}", file.display()))?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(&loaded);
    }
    times.sort_by(f64::total_cmp);
    let median = if runs % 2 == 1 { times[runs / 2] } else { (times[runs / 2 - 1] + times[runs / 2]) / 2.0 };
    // Nearest rank.
    let p90 = times[(runs * 9).div_ceil(10).max(1) - 1];
    let min = times[0];
    println!(
        "load+normalize {} ({services} services): {runs} runs, median {median:.2} ms, p90 {p90:.2} ms, min {min:.2} ms; \
         first load in this process {first:.2} ms",
        file.display()
    );
    println!(
        "RESULT file={} services={services} runs={runs} median_ms={median:.3} p90_ms={p90:.3} min_ms={min:.3} first_ms={first:.3}",
        file.display()
    );
    Ok(())
}
