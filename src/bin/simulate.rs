//! `simulate`: integrate a flow (preset, `.npy` weights, checkpoint, ORGaNICs) and write the
//! trajectory. Argument parsing → the resolver (`neurodyn::source`) → `integrate` → writing.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::integrate::{integrate, Method, Options, SaveAt};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::model::{Model, System};
use neurodyn::plot::LinePlot;
use neurodyn::source::{SourceArgs, View};
use neurodyn::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Integrate a rate RNN `tau ⊙ dx/dt = −x + W φ(x) + b` and write times and states to Parquet/CSV.
///
/// With no arguments, simulates the embedded default preset (models/rate-rnn-chaotic.toml: N = 100,
/// g = 1.5, t ∈ `[0, 50]`, Tsitouras 5(4) at rtol 1e-6 / atol 1e-9) into out/traj.parquet.
#[derive(Parser, Debug)]
#[command(name = "simulate", version, allow_negative_numbers = true)]
struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Integration method: euler, rk4, dopri5, tsit5 (default), bdf, esdirk34, tr-bdf2, tsit45 (diffsol).
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
    #[arg(long, value_name = "x0s.npy")]
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
    neurodyn::io::check_output("out", &args.out)?;
    let resolved = args.source.source()?.resolve(View::Natural, 1.0)?;
    if !args.every_step {
        // The saved samples (and their table) before integrating.
        neurodyn::memory::check(
            "samples",
            args.samples as u128 * (resolved.system.dim() as u128 + 1) * 8 * 3,
            None,
        )?;
    }
    let model =
        match resolved.system {
            System::Flow(m) => m,
            System::Map(_) if args.ensemble.is_some() => return Err(Error::invalid(
                "ensemble",
                "this model is a map: --ensemble integrates flows (iterate a map once per start)",
            )),
            System::Map(m) => return iterate_map(&args, m.as_ref(), &resolved.x0),
        };
    let (x0, d) = (resolved.x0, resolved.simulate);
    let d = &d;
    let method_name = args
        .method
        .clone()
        .or(d.method.clone())
        .unwrap_or_else(|| "tsit5".into());
    let t1 = args.t1.or(d.t1).unwrap_or(50.0);
    let method = Method::from_name(
        &method_name,
        args.dt.or(d.dt).unwrap_or(0.01),
        args.rtol.or(d.rtol).unwrap_or(1e-6),
        args.atol.or(d.atol).unwrap_or(1e-9),
    )?;
    if !(t1 > args.t0) {
        return Err(Error::invalid(
            "t1",
            format!("{t1} must be greater than t0 = {}", args.t0),
        ));
    }
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
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(1000);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} t = {msg} ({eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
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
        let starts = neurodyn::io::read_npy_mat(path, "ensemble", None)?;
        if starts.ncols() != n || starts.nrows() == 0 {
            return Err(Error::invalid(
                "ensemble",
                format!(
                    "{}: shape [{}, {}]; need [M, {n}] (one initial state of the {n}-unit model per row)",
                    path.display(),
                    starts.nrows(),
                    starts.ncols()
                ),
            ));
        }
        let samples = if args.every_step { 1 } else { args.samples } as u128;
        neurodyn::memory::check(
            "ensemble",
            samples * starts.nrows() as u128 * (n as u128 + 2) * 8 * 3,
            None,
        )?;
        let x0s: Vec<Vec<f64>> = (0..starts.nrows())
            .map(|r| (0..n).map(|c| starts[(r, c)]).collect())
            .collect();
        let start = Instant::now();
        let sols = neurodyn::integrate::integrate_ensemble(
            &model,
            &x0s,
            (args.t0, t1),
            &method,
            &Options {
                progress: None,
                ..opts
            },
        )?;
        let elapsed = start.elapsed();
        bar.finish_and_clear();
        let mut member = vec![];
        let mut t = vec![];
        let mut cols: Vec<Vec<f64>> = vec![vec![]; n];
        let mut steps = 0usize;
        for (j, sol) in sols.into_iter().enumerate() {
            let sol = sol.map_err(|e| {
                Error::failed(
                    "ensemble",
                    format!("member {j} (row {j} of {}): {e}", path.display()),
                )
            })?;
            steps += sol.stats.n_accepted + sol.stats.n_rejected;
            member.extend(std::iter::repeat_n(j as i64, sol.t.len()));
            for (i, c) in cols.iter_mut().enumerate() {
                c.extend(sol.unit(i));
            }
            t.extend(sol.t);
        }
        let mut table = Table::new();
        table.push("member", Column::I64(member));
        table.push("t", Column::F64(t));
        for (i, c) in cols.into_iter().enumerate() {
            table.push(format!("x{i}"), Column::F64(c));
        }
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

    let n = model.dim();
    let mut table = Table::new();
    table.push("t", Column::F64(sol.t.clone()));
    for i in 0..n {
        table.push(format!("x{i}"), Column::F64(sol.unit(i)));
    }
    table.write(&args.out, format)?;
    let mut written = vec![args.out.clone()];
    if args.csv && format != TableFormat::Csv {
        let csv = args.out.with_extension("csv");
        table.write(&csv, TableFormat::Csv)?;
        written.push(csv);
    }
    if args.plot {
        let mut p = LinePlot::new(format!("{} — {method_name}", model.name()), "t", "x_i(t)");
        for i in 0..args.plot_units.min(n) {
            p = p.series(
                format!("x{i}"),
                sol.t.iter().copied().zip(sol.unit(i)).collect(),
            );
        }
        let (png, svg) = p.save(&stem(&args.out))?;
        written.push(png);
        written.push(svg);
    }
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

fn stem(p: &Path) -> PathBuf {
    p.with_extension("")
}

/// A discrete-time map (a trained gamma/ANRU/ORGaNICs cell, a PyTorch nn.RNN/GRU/LSTM) iterated
/// from x0 for t1 − t0 steps (t1 default 50); `t` is the step index. Every step with
/// --every-step, else `samples` evenly spaced steps (at most one per step).
fn iterate_map(args: &Args, m: &dyn neurodyn::model::Map, x0: &[f64]) -> Result<(), Error> {
    let t1 = args.t1.unwrap_or(50.0);
    if !(t1 > args.t0) || !(t1 - args.t0).is_finite() {
        return Err(Error::invalid(
            "t1",
            format!("{t1} must be greater than t0 = {}", args.t0),
        ));
    }
    let steps = (t1 - args.t0).round().max(1.0) as usize;
    let n = m.dim();
    let format = TableFormat::from_path(&args.out)?;
    let keep: Vec<usize> = if args.every_step || args.samples > steps {
        (0..=steps).collect()
    } else {
        if args.samples < 2 {
            return Err(Error::invalid(
                "samples",
                format!("{} (need at least 2)", args.samples),
            ));
        }
        let mut k: Vec<usize> = (0..args.samples)
            .map(|i| (i as f64 * steps as f64 / (args.samples - 1) as f64).round() as usize)
            .collect();
        k.dedup();
        k
    };
    neurodyn::memory::check("t1", keep.len() as u128 * (n as u128 + 1) * 8 * 3, None)?;
    let mut h = x0.to_vec();
    let mut rows: Vec<Vec<f64>> = vec![];
    let mut next = 0;
    for step in 0..=steps {
        if keep.get(next) == Some(&step) {
            rows.push(h.clone());
            next += 1;
        }
        if step < steps {
            m.step(step, &mut h);
        }
    }
    if let Some(bad) = rows.iter().position(|r| r.iter().any(|v| !v.is_finite())) {
        return Err(Error::failed(
            "simulate",
            format!("the state became non-finite by step {}", keep[bad]),
        ));
    }
    let ts: Vec<f64> = keep.iter().map(|&k| args.t0 + k as f64).collect();
    let mut table = Table::new();
    table.push("t", Column::F64(ts.clone()));
    for i in 0..n {
        table.push(
            format!("x{i}"),
            Column::F64(rows.iter().map(|r| r[i]).collect()),
        );
    }
    table.write(&args.out, format)?;
    if args.csv && format != TableFormat::Csv {
        table.write(&args.out.with_extension("csv"), TableFormat::Csv)?;
    }
    if args.plot {
        let mut p = LinePlot::new(format!("{} — iterated", m.name()), "step", "h_i");
        for i in 0..args.plot_units.min(n) {
            p = p.series(
                format!("x{i}"),
                ts.iter().copied().zip(rows.iter().map(|r| r[i])).collect(),
            );
        }
        p.save(&stem(&args.out))?;
    }
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

fn main() -> ExitCode {
    neurodyn::io::stage_outputs();
    let args = Args::parse();
    let json = args.json;
    neurodyn::io::exit_with(run(args), json)
}
