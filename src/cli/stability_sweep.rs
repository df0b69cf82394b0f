//! `stability-sweep`: the ORGaNICs stability phase diagram (the stability sweep of Rawat, Heeger & Martiniani (2024)). A thin shell over
//! `crate::sweep`: parse → config → run the trials (resumable, shardable) → tables and figure.

use crate::sweep::{
    finish, phase_diagram, run_jobs, summarize, Store, SweepConfig, TrialResult, DEFAULT_CONFIG,
    FULL_CONFIG,
};
use crate::Error;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Classify random ORGaNICs circuits over a grid of recurrent scales δ and input strengths as
/// fixed point / periodic / diverging / undetermined (the stability sweep of Rawat, Heeger & Martiniani (2024)), with the Jacobian spectrum at
/// every fixed point, and draw the "% stable" phase diagram with the critical curve Δ_c(z).
///
/// With no arguments: the embedded reduced phase diagram (N = 100, 14 δ × 10 input norms × 10
/// trials, 15–30 s on 2 cores) into out/sweep/. `--preset full` is the published 200 × 200 × 100 grid.
///
/// Rerunning with the same --out continues a killed run (no lost or duplicated rows). On a cluster,
/// run `--shard i/n` for i = 0..n−1 (e.g. a SLURM job array) into one --out folder, then `merge`.
#[derive(Parser, Debug)]
#[command(
    name = "stability-sweep",
    version,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Sweep configuration (TOML; see models/sweep-*.toml). Default: the embedded reduced grid.
    #[arg(long, conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// Built-in configuration: `default` (reduced) or `full` (the stability sweep of Rawat, Heeger & Martiniani 2024).
    #[arg(long)]
    preset: Option<String>,
    /// Output folder (journals, config.toml, results.parquet/.csv, summary.csv, phase diagram).
    #[arg(long, default_value = "out/sweep")]
    out: PathBuf,
    /// Base seed (overrides the config's); each trial's seed is derived from it and (i, j, k).
    #[arg(long)]
    seed: Option<u64>,
    /// Run only shard i of n (0-based), e.g. 3/100 for SLURM_ARRAY_TASK_ID = 3 of 100.
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    shard: Option<String>,
    /// Per-trial arrays to keep (comma-separated; overrides the config's `store`): `eigvals`
    /// (eig(J) at fixed points → eigvals.npy, complex128), `start` (y0, a0, y1, a1 → .npy),
    /// `final` (the final state → y_final.npy, a_final.npy); each shaped (δ, input, trial, ·).
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    store: Option<Vec<String>>,
    /// Where the trials run (overrides the config's `device`): `cpu` (f64) or `gpu` (f32 compute
    /// shaders: the Euler chunks and the classification on the device, the matrix draws and the
    /// spectra at fixed points on the CPU). Any Vulkan device; lavapipe without a GPU.
    #[arg(long, value_enum)]
    device: Option<crate::gpu::Device>,
    /// No progress bar or summary table.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join the shards' journals in --out into the final tables and figure.
    Merge {
        /// The folder the shards wrote to.
        #[arg(long, default_value = "out/sweep")]
        out: PathBuf,
        #[arg(long, short)]
        quiet: bool,
    },
}

fn load_config(run: &RunArgs) -> Result<SweepConfig, Error> {
    let mut cfg = match (&run.config, run.preset.as_deref()) {
        (Some(p), _) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Error::invalid("config", format!("cannot read {}: {e}", p.display()))
            })?;
            SweepConfig::from_toml(&text, &p.display().to_string())?
        }
        (None, None) | (None, Some("default")) => {
            SweepConfig::from_toml(DEFAULT_CONFIG, "embedded default")?
        }
        (None, Some("full")) => SweepConfig::from_toml(FULL_CONFIG, "preset full")?,
        (None, Some(other)) => {
            return Err(Error::invalid(
                "preset",
                format!("unknown preset `{other}` (default or full)"),
            ))
        }
    };
    if let Some(s) = run.seed {
        cfg.seed = s;
    }
    if let Some(d) = run.device {
        cfg.device = d;
    }
    if let Some(groups) = &run.store {
        cfg.store = groups
            .iter()
            .filter(|g| !g.trim().is_empty())
            .map(|g| match g.trim() {
                "eigvals" => Ok(Store::Eigvals),
                "start" => Ok(Store::Start),
                "final" => Ok(Store::Final),
                other => Err(Error::invalid(
                    "store",
                    format!("unknown group `{other}` (eigvals, start, final)"),
                )),
            })
            .collect::<Result<_, _>>()?;
        cfg.validate()?;
    }
    if let Some(p) = &cfg.initial_file {
        // Relative to the config's folder (as the model presets' .npy files), pinned as an
        // absolute path: `merge` and resumed runs may start elsewhere.
        let dir = run
            .config
            .as_ref()
            .and_then(|c| c.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let p = if p.is_relative() {
            dir.join(p)
        } else {
            p.clone()
        };
        cfg.initial_file = Some(std::path::absolute(&p).unwrap_or(p));
    }
    Ok(cfg)
}

fn report(cfg: &SweepConfig, rows: &[TrialResult], dir: &Path, quiet: bool) -> Result<(), Error> {
    let cells = summarize(cfg, rows);
    phase_diagram(cfg, &cells).save(&dir.join("phase_diagram"))?;
    if !quiet {
        eprintln!(
            "{:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "δ", "‖z‖", "trials", "%fixed", "%lin.st", "%period", "%diverg", "%undet"
        );
        for c in &cells {
            eprintln!(
                "{:>9.4} {:>9.4} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
                c.delta,
                c.input,
                c.trials,
                c.pct_fixed_point,
                c.pct_linearly_stable,
                c.pct_periodic,
                c.pct_diverging,
                c.pct_undetermined
            );
        }
        eprintln!("wrote {0}/results.parquet, {0}/results.csv, {0}/summary.csv, {0}/phase_diagram.png/.svg, {0}/config.toml", dir.display());
    }
    Ok(())
}

fn run(args: Args) -> Result<(), Error> {
    if let Some(Command::Merge { out, quiet }) = args.command {
        let path = out.join("config.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::invalid("out", format!("{}: no sweep here ({e})", path.display()))
        })?;
        let cfg = SweepConfig::from_toml(&text, &path.display().to_string())?;
        return crate::io::staged(|| report(&cfg, &finish(&cfg, &out)?, &out, quiet));
    }
    let r = args.run;
    let cfg = load_config(&r)?;
    let shard = crate::sweep::parse_shard(&r.shard)?;
    if shard.1 > cfg.jobs() {
        return Err(Error::invalid(
            "shard",
            format!(
                "{}/{}: more shards than the sweep's {} trials (every shard past the last trial would run nothing)",
                shard.0,
                shard.1,
                cfg.jobs()
            ),
        ));
    }
    // A bad custom initial state is refused before anything is written.
    cfg.initial_states()?;
    let files = [
        "results.parquet",
        "results.csv",
        "summary.csv",
        "phase_diagram.png",
        "phase_diagram.svg",
    ];
    crate::io::check_outputs("out", &files.map(|f| r.out.join(f)))?;
    cfg.pin(&r.out)?;
    let bar = crate::io::progress_bar(r.quiet, 1, "{pos}/{len} trials ({per_sec}, {eta} left)");
    let b2 = bar.clone();
    let first = std::sync::atomic::AtomicBool::new(true);
    run_jobs(&cfg, &r.out, shard, &move |done, total| {
        b2.set_length(total as u64);
        b2.set_position(done as u64);
        // The first report counts the trials a resumed sweep found done: no time went into them.
        if first.swap(false, std::sync::atomic::Ordering::Relaxed) {
            crate::io::restart_eta(&b2);
        }
    })?;
    bar.finish_and_clear();
    // The tables and figures of the whole sweep appear together, or none does.
    let pending = crate::io::staged(|| match finish(&cfg, &r.out) {
        Ok(rows) => report(&cfg, &rows, &r.out, r.quiet).map(|()| None),
        Err(e) if shard.1 > 1 => Ok(Some(e)),
        Err(e) => Err(e),
    })?;
    if let (Some(e), false) = (pending, r.quiet) {
        eprintln!(
            "shard {}/{} done ({e}); after the last shard run: stability-sweep merge --out {}",
            shard.0,
            shard.1,
            r.out.display()
        );
    }
    Ok(())
}

// The work is parallel across trials / initial states (rayon); faer's own threading inside each
// small factorisation only adds overhead (measured: eigenvalues of 200×200 take 15 ms sequential
// vs 29 ms threaded; BENCHMARKS.md).
super::command!("stability-sweep", FAER_SEQ = true, RESUMABLE = true);
