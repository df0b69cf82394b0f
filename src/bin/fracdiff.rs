//! `fracdiff`: fractional derivatives of recorded signals, or per-signal fractional-order estimates.
//! A thin shell: parse → read (library) → differentiate / estimate (library) → write (library).

use clap::Parser;
use neurodyn::fracdiff::{
    anru_orders, estimate_order, fracdiff_columns, spectral, spectral_integral, AnruOrderOptions,
    Scheme,
};
use neurodyn::io::{read_signals, write_npy_mat, write_npy_vec, Column, Table, TableFormat};
use neurodyn::Error;
use std::path::PathBuf;
use std::process::ExitCode;

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
struct Args {
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
    use neurodyn::io::{Column, Table, TableFormat};
    use neurodyn::tensor::safetensors::read_tensors;
    use neurodyn::train::checkpoint::{analysis, load, Analysis};
    let fmt = TableFormat::from_path(&args.out)?;
    neurodyn::io::check_output("out", &args.out)?;
    let (net, _) = load::<f64>(path)?;
    let Analysis::Anru(model) = analysis(&net)? else {
        return Err(Error::invalid(
            "anru",
            format!(
                "{}: not an ANRU checkpoint (train --cell anru)",
                path.display()
            ),
        ));
    };
    let u_xh = read_tensors(path)?
        .into_iter()
        .find(|t| t.0 == "U_xh")
        .ok_or_else(|| Error::invalid("anru", "the checkpoint has no `U_xh`"))?;
    let k = u_xh.1.get(1).copied().unwrap_or(1).max(1);
    // U_xh ← diag: neuron i's own input x_i enters with weight Σ_c U_xh[i, c] (U_xh[i, 0] for
    // the one-channel psMNIST network).
    let u: Vec<f64> = u_xh.2.chunks(k).map(|r| r.iter().sum()).collect();
    let opts = AnruOrderOptions {
        trials: args.trials,
        isolated: args.isolated,
        seed: args.seed,
        ..AnruOrderOptions::default()
    };
    let r = anru_orders(&model, &u, &opts)?;
    let mut t = Table::new();
    t.push("neuron", Column::I64((0..u.len() as i64).collect()));
    t.push("alpha", Column::F64(r.neuron_alpha.clone()));
    t.write(&args.out, fmt)?;
    let stem = args.out.with_extension("");
    let side = |suffix: &str| {
        let name = format!(
            "{}_{suffix}",
            stem.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        stem.with_file_name(name)
    };
    let mut m = Table::new();
    m.push("alpha", Column::F64(r.mean.alphas.clone()));
    m.push("error", Column::F64(r.mean.errors.clone()));
    m.write(&side("mean.csv"), TableFormat::Csv)?;
    let mut rt = Table::new();
    rt.push("t", Column::I64((0..opts.steps as i64).collect()));
    for (x, resp) in opts.xis.iter().zip(&r.responses) {
        rt.push(format!("r_xi{x}"), Column::F64(resp.clone()));
    }
    rt.write(&side("responses.csv"), TableFormat::Csv)?;
    // Histogram of the per-neuron orders over [−1, 1] in 20 bins (a step outline).
    let bins = 20;
    let mut counts = vec![0usize; bins];
    for a in &r.neuron_alpha {
        let b = (((a + 1.0) / 2.0 * bins as f64).floor() as usize).min(bins - 1);
        counts[b] += 1;
    }
    let mut pts = vec![];
    for (b, c) in counts.iter().enumerate() {
        let (x0, x1) = (
            -1.0 + 2.0 * b as f64 / bins as f64,
            -1.0 + 2.0 * (b + 1) as f64 / bins as f64,
        );
        pts.push((x0, *c as f64));
        pts.push((x1, *c as f64));
    }
    neurodyn::plot::LinePlot::new(
        format!(
            "per-neuron fractional order ({} network, ξ = {}; mean response α* = {:.3})",
            if args.isolated {
                "isolated"
            } else {
                "interacting"
            },
            opts.xis.iter().cloned().fold(0.0, f64::max),
            r.mean.alpha
        ),
        "α (> 0: differentiation / adaptation, < 0: integration)",
        "neurons",
    )
    .series("neurons per bin", pts)
    .save(&side("hist"))?;
    if !args.quiet {
        let mean_a = r.neuron_alpha.iter().sum::<f64>() / r.neuron_alpha.len() as f64;
        eprintln!(
            "mean-response order α* = {:.4}; per-neuron α: mean {mean_a:.4}; wrote {}, {}_mean.csv, _responses.csv, _hist.png/.svg",
            r.mean.alpha,
            args.out.display(),
            stem.display()
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
    neurodyn::io::check_output("out", &args.out)?;
    let sig = read_signals(&input, "input")?;
    let dt = match (args.dt, &sig.time) {
        (Some(d), _) => d,
        (None, Some(t)) if t.len() >= 2 => {
            let d = t[1] - t[0];
            if t.windows(2)
                .any(|w| ((w[1] - w[0]) - d).abs() > 1e-9 * d.abs().max(1e-300))
            {
                return Err(Error::invalid(
                    "dt",
                    "the `t` column is not uniformly spaced; resample or give --dt",
                ));
            }
            d
        }
        _ => {
            return Err(Error::invalid(
                "dt",
                "missing: give --dt (the input has no `t` column)",
            ))
        }
    };
    if args.estimate {
        let target = args
            .target
            .as_ref()
            .ok_or_else(|| Error::invalid("target", "--estimate needs --target"))?;
        let tgt = read_signals(target, "target")?;
        if tgt.t != sig.t || !(tgt.n == 1 || tgt.n == sig.n) {
            return Err(Error::invalid("target", format!("is {}×{}, the input is {}×{} (need the same length, one column or one per signal)", tgt.t, tgt.n, sig.t, sig.n)));
        }
        let alphas = neurodyn::io::parse_range(&args.alphas, "alphas", 1)?;
        let w: Vec<usize> = args
            .window
            .split(':')
            .map(|x| x.parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                Error::invalid("window", format!("`{}`: expected start:end", args.window))
            })?;
        if w.len() != 2 || w[0] >= w[1] {
            return Err(Error::invalid(
                "window",
                format!("`{}`: expected start:end with start < end", args.window),
            ));
        }
        let mut best = vec![];
        let mut err = vec![];
        for i in 0..sig.n {
            let s = sig.column(i);
            let t = tgt.column(if tgt.n == 1 { 0 } else { i });
            let e = estimate_order(&[s], &[t], &alphas, dt, args.anchor, w[0]..w[1])?;
            let k = e.alphas.iter().position(|&a| a == e.alpha).unwrap_or(0);
            best.push(e.alpha);
            err.push(e.errors[k]);
        }
        let mut table = Table::new();
        table.push("signal", Column::Str(sig.names.clone()));
        table.push("alpha", Column::F64(best.clone()));
        table.push("error", Column::F64(err));
        let fmt = TableFormat::from_path(&args.out)?;
        table.write(&args.out, fmt)?;
        if !args.quiet {
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
    let out = if args.method == "spectral" || args.method == "spectral-int" {
        let mut d = vec![0.0; sig.t * sig.n];
        for i in 0..sig.n {
            let (re, _) = if args.method == "spectral" {
                spectral(&sig.column(i), alpha, dt)?
            } else {
                spectral_integral(&sig.column(i), alpha, dt)?
            };
            for k in 0..sig.t {
                d[k * sig.n + i] = re[k];
            }
        }
        d
    } else {
        let scheme: Scheme = args.method.parse()?;
        fracdiff_columns(&sig.data, sig.t, sig.n, alpha, dt, scheme)?
    };
    let ext = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    if ext == "npy" {
        if sig.one_d {
            write_npy_vec(&args.out, &out)?;
        } else {
            write_npy_mat(&args.out, sig.t, sig.n, &out)?;
        }
    } else {
        let fmt = TableFormat::from_path(&args.out)?;
        let mut table = Table::new();
        if let Some(t) = &sig.time {
            table.push("t", Column::F64(t.clone()));
        }
        for (i, name) in sig.names.iter().enumerate() {
            table.push(
                name.clone(),
                Column::F64((0..sig.t).map(|k| out[k * sig.n + i]).collect()),
            );
        }
        table.write(&args.out, fmt)?;
    }
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

fn main() -> ExitCode {
    neurodyn::io::stage_outputs();
    let args = Args::parse();
    let json = args.json;
    neurodyn::io::exit_with(run(args), json)
}
