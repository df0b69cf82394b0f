//! `simulate`: integrate a flow (preset, `.npy` weights, checkpoint, ORGaNICs) and write the
//! trajectory. Argument parsing → the resolver (`crate::source`) → `integrate` → writing.

use crate::integrate::{
    ensemble_table, integrate, integrate_ensemble, iterate, sample_steps, Options, SaveAt, Solution,
};
use crate::io::TableFormat;
use crate::model::{Model, System};
use crate::source::{SourceArgs, View};
use crate::Error;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Integrate a rate RNN `tau ⊙ dx/dt = −x + W φ(x) + b` and write times and states to Parquet/CSV.
///
/// With no arguments, simulates the embedded default preset (models/rate-rnn-chaotic.toml: N = 100,
/// g = 1.5, t ∈ `[0, 50]`, Tsitouras 5(4) at rtol 1e-6 / atol 1e-9) into out/traj.parquet.
#[derive(Parser, Debug)]
#[command(name = "simulate", version, allow_negative_numbers = true)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Integration method: euler, rk4, dopri5, tsit5 (default), dop853 (8th order, for tight
    /// tolerances), bdf, esdirk34, tr-bdf2, tsit45 (diffsol).
    #[arg(long)]
    method: Option<String>,
    /// Relative tolerance of adaptive methods (default 1e-6).
    #[arg(long)]
    rtol: Option<f64>,
    /// Absolute tolerance of adaptive methods (default 1e-9).
    #[arg(long)]
    atol: Option<f64>,
    /// Step size of fixed-step methods (euler, rk4; default 0.01).
    #[arg(long)]
    dt: Option<f64>,
    /// Start time.
    #[arg(long, default_value_t = 0.0)]
    t0: f64,
    /// End time (default: the preset's, else 50).
    #[arg(long)]
    t1: Option<f64>,
    /// Number of evenly spaced output samples from t0 to t1 (dense output, steps are not forced).
    #[arg(long, default_value_t = 501, conflicts_with = "every_step")]
    samples: usize,
    /// Save every accepted step instead of evenly spaced samples.
    #[arg(long)]
    every_step: bool,
    /// Stop once ‖f(x)‖∞ falls below this tolerance (steady state reached).
    #[arg(long)]
    steady_tol: Option<f64>,
    /// Integrate an ensemble: every row of this .npy (M × N, float64/32) is an initial state.
    /// Each member keeps its own step-size control and equals its single run bit for bit; the
    /// right-hand sides of the members are evaluated together (one matrix product per stage for
    /// a rate network). The table gets a `member` column (long format: M × samples rows).
    #[arg(long, value_name = "x0s.npy", conflicts_with = "x0")]
    ensemble: Option<PathBuf>,
    /// Output table (.parquet or .csv).
    #[arg(long, default_value = "out/traj.parquet")]
    out: PathBuf,
    /// Also write a CSV copy next to the Parquet file.
    #[arg(long)]
    csv: bool,
    /// Also draw the first units against time (PNG + SVG next to the table).
    #[arg(long)]
    plot: bool,
    /// Number of units to draw with --plot.
    #[arg(long, default_value_t = 6)]
    plot_units: usize,
    /// No progress bar or summary.
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

fn run(args: Args) -> Result<(), Error> {
    let (stem, mut outputs) = (args.out.with_extension(""), vec![args.out.clone()]);
    outputs.extend(args.csv.then(|| args.out.with_extension("csv")));
    if args.plot {
        outputs.extend(["png", "svg"].map(|e| crate::plot::with_suffix(&stem, e)));
    }
    crate::io::check_outputs("out", &outputs)?;
    let resolved = args.source.source()?.resolve(View::Natural, 1.0)?;
    if !args.every_step {
        // The saved samples (and their table) before integrating.
        crate::memory::check(
            "samples",
            args.samples as u128 * (resolved.system.dim() as u128 + 1) * 8 * 3,
            None,
        )?;
    }
    let model =
        match resolved.system {
            System::Flow(ref m) => m,
            System::Map(_) if args.ensemble.is_some() => return Err(Error::invalid(
                "ensemble",
                "this model is a map: --ensemble integrates flows (iterate a map once per start)",
            )),
            System::Map(ref m) => return iterate_map(&args, m.as_ref(), &resolved.x0),
        };
    let (method_name, method, t1) = resolved.integration(
        args.method.as_deref(),
        [args.dt, args.rtol, args.atol],
        (args.t0, args.t1),
    )?;
    let x0 = &resolved.x0;
    let format = TableFormat::from_path(&args.out)?;
    let save = if args.every_step {
        SaveAt::Steps
    } else {
        if args.samples < 2 {
            return Err(Error::invalid(
                "samples",
                format!("{} (need at least 2)", args.samples),
            ));
        }
        SaveAt::Uniform(args.samples)
    };
    let mut opts = Options::new().save(save);
    if let Some(tol) = args.steady_tol {
        opts = opts.steady_state(tol);
    }
    let bar = crate::io::progress_bar(args.quiet, 1000, "t = {msg} ({eta} left)");
    {
        let bar = bar.clone();
        let (t0, span) = (args.t0, t1 - args.t0);
        opts = opts.progress(Arc::new(move |t| {
            bar.set_position(((t - t0) / span * 1000.0) as u64);
            bar.set_message(format!("{t:.3}"));
        }));
    }
    if let Some(path) = &args.ensemble {
        let n = model.dim();
        let samples = if args.every_step { 1 } else { args.samples };
        let x0s = crate::io::read_states(path, "ensemble", n, samples)?;
        let start = Instant::now();
        let opts = Options {
            progress: None,
            ..opts
        };
        let sols = integrate_ensemble(&model, &x0s, (args.t0, t1), &method, &opts)?;
        let elapsed = start.elapsed();
        bar.finish_and_clear();
        let (table, steps) = ensemble_table(sols, n, |j| {
            format!("member {j} (row {j} of {})", path.display())
        })?;
        table.write(&args.out, format)?;
        if !args.quiet {
            eprintln!(
                "{}: {} members, {method_name} over [{}, {t1}] in {:.3} s ({steps} steps in all); wrote {}",
                model.name(),
                x0s.len(),
                args.t0,
                elapsed.as_secs_f64(),
                args.out.display()
            );
        }
        return Ok(());
    }
    let start = Instant::now();
    let sol = integrate(&model, &x0, (args.t0, t1), &method, &opts)?;
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    let title = format!("{} — {method_name}", model.name());
    let written = write(&args, &sol, title, ("t", "x_i(t)"))?;
    if !args.quiet {
        let s = sol.stats;
        eprintln!(
            "{}: {} over [{}, {}] in {:.3} s — {:?}; {} steps ({} rejected), {} rhs, {} jvp, {} LU",
            model.name(),
            method_name,
            args.t0,
            t1,
            elapsed.as_secs_f64(),
            sol.status,
            s.n_accepted,
            s.n_rejected,
            s.n_rhs,
            s.n_jvp,
            s.n_lu
        );
        for w in written {
            eprintln!("wrote {}", w.display());
        }
    }
    Ok(())
}

/// The table (and its CSV copy with --csv), and the figure with --plot.
fn write(
    args: &Args,
    sol: &Solution,
    title: String,
    axes: (&str, &str),
) -> Result<Vec<PathBuf>, Error> {
    let format = TableFormat::from_path(&args.out)?;
    let table = sol.table();
    table.write(&args.out, format)?;
    let mut written = vec![args.out.clone()];
    if args.csv && format != TableFormat::Csv {
        let csv = args.out.with_extension("csv");
        table.write(&csv, TableFormat::Csv)?;
        written.push(csv);
    }
    if args.plot {
        let (png, svg) = sol
            .plot(title, axes, args.plot_units)
            .save(&args.out.with_extension(""))?;
        written.extend([png, svg]);
    }
    Ok(written)
}

/// A discrete-time map (a trained gamma/ANRU/ORGaNICs cell, a PyTorch nn.RNN/GRU/LSTM) iterated
/// from x0 for t1 − t0 steps (t1 default 50); `t` is the step index. Every step with
/// --every-step, else `samples` evenly spaced steps (at most one per step).
fn iterate_map(args: &Args, m: &dyn crate::model::Map, x0: &[f64]) -> Result<(), Error> {
    let t1 = args.t1.unwrap_or(50.0);
    if !(t1 > args.t0) || !(t1 - args.t0).is_finite() {
        return Err(Error::invalid(
            "t1",
            format!("{t1} must be greater than t0 = {}", args.t0),
        ));
    }
    TableFormat::from_path(&args.out)?;
    let steps = (t1 - args.t0).round().max(1.0) as usize;
    let keep = sample_steps(steps, if args.every_step { 0 } else { args.samples })?;
    let sol = iterate(m, x0, args.t0, steps, &keep)?;
    let title = format!("{} — iterated", m.name());
    write(args, &sol, title, ("step", "h_i"))?;
    if !args.quiet {
        eprintln!(
            "{}: {steps} steps of the map from t = {}; wrote {}",
            m.name(),
            args.t0,
            args.out.display()
        );
    }
    Ok(())
}

super::command!("simulate");
