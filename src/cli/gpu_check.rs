//! `gpu-check`: every GPU path (training steps of each cell, batched Lyapunov spectra, sweep
//! trials) against its CPU reference and timed against the CPU, one table
//! ([`crate::gpu_check`]). Exit 1 when a row misses its tolerance.

use crate::gpu_check::{run_check, table, CheckOptions};
use crate::io::TableFormat;
use crate::Error;
use clap::Parser;
use std::path::PathBuf;

/// Example: gpu-check --size paper --out gpu_check.csv
#[derive(Parser, Debug)]
#[command(
    name = "gpu-check",
    version,
    about = "Validate and time every GPU path against the CPU"
)]
pub struct Args {
    /// `small` (seconds on lavapipe; what CI runs) or `paper` (the papers' shapes, for a real GPU).
    #[arg(long, default_value = "small", value_parser = ["small", "paper"])]
    size: String,
    /// Hidden units of the trained cells [default: the size's].
    #[arg(long)]
    hidden: Option<usize>,
    /// Sequence length of the training batch [default: the size's].
    #[arg(long)]
    steps: Option<usize>,
    /// The table (.csv or .parquet).
    #[arg(long, default_value = "gpu_check.csv")]
    out: PathBuf,
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    json: bool,
}

super::command!("gpu-check");

fn run(a: Args) -> Result<(), Error> {
    let fmt = TableFormat::from_path(&a.out)?;
    crate::io::check_output("out", &a.out)?;
    let mut opts = match a.size.as_str() {
        "paper" => CheckOptions::paper(),
        _ => CheckOptions::small(),
    };
    for (field, v) in [("hidden", a.hidden), ("steps", a.steps)] {
        if v == Some(0) {
            return Err(Error::invalid(field, "must be at least 1"));
        }
    }
    opts.hidden = a.hidden.unwrap_or(opts.hidden);
    opts.steps = a.steps.unwrap_or(opts.steps);
    let quiet = a.quiet;
    let (adapter, rows) = run_check(&opts, &|name| {
        if !quiet {
            eprintln!("{name} …");
        }
    })?;
    table(&adapter, &rows).write(&a.out, fmt)?;
    if !a.quiet {
        eprintln!("device: {adapter}");
        for r in &rows {
            eprintln!(
                "{:<20} {:<40} CPU {:>9.4} s  GPU {:>9.4} s  ×{:<7.2} error {:.1e} (≤ {:.0e}) {}",
                r.path,
                r.problem,
                r.cpu_seconds,
                r.gpu_seconds,
                r.cpu_seconds / r.gpu_seconds,
                r.error,
                r.tolerance,
                if r.passed() { "ok" } else { "FAILED" }
            );
        }
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.path.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::failed(
            "gpu-check",
            format!("outside tolerance: {}", failed.join(", ")),
        ))
    }
}
