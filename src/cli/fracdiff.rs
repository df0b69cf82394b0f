//! `fracdiff`: fractional derivatives of recorded signals, or per-signal fractional-order estimates.
//! A thin shell: parse → read (library) → differentiate / estimate (library) → write (library).

use crate::fracdiff::{
    anru_orders, differentiate, estimate_orders, parse_window, AnruOrderOptions,
};
use crate::io::suffixed;
use crate::io::{read_signals, TableFormat};
use crate::Error;
use clap::Parser;
use std::path::PathBuf;

/// Fractional derivative D^α of every signal (column) of a recording, with base point t = 0 on a
/// uniform grid of spacing --dt; one output sample per input sample.
///
/// Example: fracdiff --input f.npy --alpha 0.5 --dt 0.001 --method gl --out d.npy
///
/// Methods: gl (Grünwald–Letnikov, O(h), 0 < α < 2), rl (Riemann–Liouville product trapezoid,
/// O(h^{2−α}), 0 < α < 1), l1 (Caputo L1, O(h^{2−α}), 0 < α < 1), spectral (the seed paper's
/// periodic Fourier operator, any real α). All run in O(N log N) by zero-padded FFTs.
///
/// With --estimate, instead fits each signal's fractional order (the spectral method of Geadah et al. 2024): for each α of
/// --alphas, y = Re spectral(x, α) − `y[anchor]` is compared with --target over --window.
#[derive(Parser, Debug)]
#[command(name = "fracdiff", version, allow_negative_numbers = true)]
pub struct Args {
    /// Input signals: .npy (1-D, or 2-D T×N with one signal per column), .parquet or .csv (one
    /// signal per column; a column `t` is the time, e.g. the output of `simulate`).
    #[arg(long, required_unless_present = "anru")]
    input: Option<PathBuf>,
    /// Order α.
    #[arg(long, required_unless_present_any = ["estimate", "anru"])]
    alpha: Option<f64>,
    /// The seed's fractional-order analysis of a trained ANRU checkpoint (Geadah et al. 2024):
    /// per-neuron inputs (U_xh ← diag), 20 trials per step amplitude ξ ∈ {0, 1, 2.5, 5, 10, 15,
    /// 20, 30} on for 50 < t < 101 of 150 steps, the order of the mean response (α ∈ [0, 1],
    /// 1001 values) and of each neuron's response to ξ = 30 (α ∈ [−1, 1], 100 values). Writes
    /// --out (neuron, alpha), `<out>_mean.csv` (alpha, error), `<out>_responses.csv` and the
    /// histogram `<out>_hist.png/.svg`.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with_all = ["input", "estimate"])]
    anru: Option<PathBuf>,
    /// --anru: W_hh ← diag(W_hh) (the "isolated" network).
    #[arg(long, requires = "anru")]
    isolated: bool,
    /// --anru: trials per ξ.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// --anru: seed of the trials' inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sample spacing h (default: from the `t` column of a table).
    #[arg(long)]
    dt: Option<f64>,
    /// gl, rl, l1, spectral, or spectral-int (the seed's `frac_int`: X/H, DC to 0).
    #[arg(long, default_value = "gl")]
    method: String,
    /// Output: .npy (same shape as the input), .parquet or .csv (same column names).
    #[arg(long)]
    out: PathBuf,
    /// Estimate each signal's order instead of differentiating (needs --target).
    #[arg(long, requires = "target")]
    estimate: bool,
    /// Target response s(t) for --estimate: one signal (used for every column) or one per column.
    #[arg(long)]
    target: Option<PathBuf>,
    /// Candidate orders for --estimate: start:stop:count.
    #[arg(long, default_value = "-1:1:201")]
    alphas: String,
    /// Anchor sample subtracted from y for --estimate.
    #[arg(long, default_value_t = 25)]
    anchor: usize,
    /// Window start:end (samples, end exclusive) of the --estimate error.
    #[arg(long, default_value = "40:110")]
    window: String,
    /// No summary.
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

/// `fracdiff --anru CHECKPOINT`: the per-neuron order analysis (library: `anru_orders`).
fn anru_pipeline(args: &Args, path: &std::path::Path) -> Result<(), Error> {
    let fmt = TableFormat::from_path(&args.out)?;
    crate::io::check_output("out", &args.out)?;
    let (model, u) = crate::train::checkpoint::anru_with_inputs(path)?;
    let opts = AnruOrderOptions {
        trials: args.trials,
        isolated: args.isolated,
        seed: args.seed,
        ..AnruOrderOptions::default()
    };
    let bar = crate::io::spinner(args.quiet, "ANRU responses and their orders");
    let r = anru_orders(&model, &u, &opts)?;
    bar.finish_and_clear();
    let [per, mean, responses] = r.tables(&opts);
    per.write(&args.out, fmt)?;
    mean.write(&suffixed(&args.out, "mean.csv"), TableFormat::Csv)?;
    responses.write(&suffixed(&args.out, "responses.csv"), TableFormat::Csv)?;
    r.histogram(&opts, args.isolated)
        .save(&suffixed(&args.out, "hist"))?;
    if !args.quiet {
        let mean_a = r.neuron_alpha.iter().sum::<f64>() / r.neuron_alpha.len() as f64;
        eprintln!(
            "mean-response order α* = {:.4}; per-neuron α: mean {mean_a:.4}; wrote {}, {}_mean.csv, _responses.csv, _hist.png/.svg",
            r.mean.alpha,
            args.out.display(),
            args.out.with_extension("").display()
        );
    }
    Ok(())
}

fn run(args: Args) -> Result<(), Error> {
    if let Some(p) = args.anru.clone() {
        return anru_pipeline(&args, &p);
    }
    let input = args
        .input
        .clone()
        .ok_or_else(|| Error::invalid("input", "missing: give --input"))?;
    crate::io::check_output("out", &args.out)?;
    let sig = read_signals(&input, "input")?;
    let dt = sig.spacing(args.dt)?;
    if args.estimate {
        let target = args
            .target
            .as_ref()
            .ok_or_else(|| Error::invalid("target", "--estimate needs --target"))?;
        let tgt = read_signals(target, "target")?;
        let alphas = crate::io::parse_range(&args.alphas, "alphas", 1)?;
        let window = parse_window(&args.window)?;
        let bar = crate::io::spinner(args.quiet, "fitting the fractional orders");
        let table = estimate_orders(&sig, &tgt, &alphas, dt, args.anchor, window)?;
        bar.finish_and_clear();
        table.write(&args.out, TableFormat::from_path(&args.out)?)?;
        if !args.quiet {
            let best = table.f64s("alpha").unwrap_or_default();
            let mean = best.iter().sum::<f64>() / best.len() as f64;
            eprintln!(
                "estimated orders of {} signals: mean α = {mean:.4}; wrote {}",
                sig.n,
                args.out.display()
            );
        }
        return Ok(());
    }
    let alpha = args
        .alpha
        .ok_or_else(|| Error::invalid("alpha", "missing: give --alpha"))?;
    let out = differentiate(&args.method, &sig.data, (sig.t, sig.n), alpha, dt)?;
    sig.write_like(&args.out, &out)?;
    if !args.quiet {
        eprintln!(
            "D^{alpha} ({}) of {} signal(s) × {} samples, h = {dt}; wrote {}",
            args.method,
            sig.n,
            sig.t,
            args.out.display()
        );
    }
    Ok(())
}

super::command!("fracdiff");
