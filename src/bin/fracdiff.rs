//! `fracdiff`: fractional derivatives of recorded signals, or per-signal fractional-order estimates.
//! A thin shell: parse → read (library) → differentiate / estimate (library) → write (library).

use clap::Parser;
use neurodyn::fracdiff::{estimate_order, fracdiff_columns, spectral, Scheme};
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
    #[arg(long)]
    input: PathBuf,
    /// Order α.
    #[arg(long, required_unless_present = "estimate")]
    alpha: Option<f64>,
    /// Sample spacing h (default: from the `t` column of a table).
    #[arg(long)]
    dt: Option<f64>,
    /// gl, rl, l1 or spectral.
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

fn run(args: Args) -> Result<(), Error> {
    neurodyn::io::check_output("out", &args.out)?;
    let sig = read_signals(&args.input, "input")?;
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
        let alphas = neurodyn::error::parse_range(&args.alphas, "alphas", 1)?;
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
    let out = if args.method == "spectral" {
        let mut d = vec![0.0; sig.t * sig.n];
        for i in 0..sig.n {
            let (re, _) = spectral(&sig.column(i), alpha, dt)?;
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
    neurodyn::error::exit_with(run(args), json)
}
