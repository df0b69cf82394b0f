//! `simulate`: integrate a model preset or `.npy` weights and write the trajectory.
//! A thin shell: parse → build the model (library) → integrate (library) → write (library).

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::integrate::{integrate, Method, Options, SaveAt};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::model::{Activation, Model};
use neurodyn::plot::LinePlot;
use neurodyn::preset::Preset;
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
#[command(name = "simulate", version)]
struct Args {
    /// Model preset (TOML, see models/). Default: the embedded chaotic rate RNN.
    #[arg(long, conflicts_with = "checkpoint")]
    model: Option<PathBuf>,
    /// A network trained by `train` (rate cell): simulates τ ⊙ dx/dt = −x + W φ(x), time in steps,
    /// input off, from --x0 (default 0).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Recurrent weights W (N×N float64 .npy); overrides the preset's W.
    #[arg(long = "W", value_name = "W.npy")]
    w: Option<PathBuf>,
    /// Bias b (length-N float64 .npy); overrides the preset's b.
    #[arg(long, value_name = "b.npy")]
    b: Option<PathBuf>,
    /// Initial state x0 (length-N float64 .npy); overrides the preset's x0.
    #[arg(long, value_name = "x0.npy")]
    x0: Option<PathBuf>,
    /// Nonlinearity φ: tanh, relu, sigmoid, softplus or linear (overrides the preset).
    #[arg(long)]
    activation: Option<Activation>,
    /// Time constant τ for every unit (overrides the preset).
    #[arg(long)]
    tau: Option<f64>,
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
}

fn run(args: Args) -> Result<(), Error> {
    let overrides = neurodyn::preset::Overrides {
        w: args.w.clone(),
        b: args.b.clone(),
        x0: args.x0.clone(),
        activation: args.activation,
        tau: args.tau,
    };
    // An ORGaNICs preset (model = "organics") is simulated as it is; rate-RNN presets take overrides.
    let organics = match &args.model {
        Some(p) => match neurodyn::preset::load_any(p)? {
            neurodyn::preset::AnyModel::Organics(m, x0, sim) => Some((m, x0, sim)),
            neurodyn::preset::AnyModel::RateRnn(_) => None,
        },
        None => None,
    };
    let (model, x0, d): (Box<dyn Model>, Vec<f64>, neurodyn::preset::SimulateDefaults) =
        if let Some(ck) = &args.checkpoint {
            use neurodyn::train::checkpoint::{analysis, load, Analysis};
            let (net, _) = load::<f64>(ck)?;
            match analysis(&net)? {
                Analysis::Flow(m) => {
                    let n = m.dim();
                    let x0 = match &args.x0 {
                        Some(p) => neurodyn::io::read_npy_vec(p, "x0", Some(n))?,
                        None => vec![0.0; n],
                    };
                    (Box::new(m), x0, Default::default())
                }
                _ => {
                    return Err(Error::invalid(
                        "checkpoint",
                        "this cell is a discrete-time map, not an ODE: analyse it with \
                         `lyapunov --checkpoint` or `fixed-points --checkpoint`",
                    ))
                }
            }
        } else {
            match organics {
                Some((m, x0, sim)) => {
                    if args.w.is_some()
                        || args.b.is_some()
                        || args.x0.is_some()
                        || args.activation.is_some()
                        || args.tau.is_some()
                    {
                        return Err(Error::invalid("model", "--W/--b/--x0/--activation/--tau apply to rate-RNN presets, not ORGaNICs ones"));
                    }
                    (Box::new(m), x0, sim)
                }
                None => {
                    let (preset, dir) = Preset::load_with(args.model.as_deref(), &overrides)?;
                    let built = preset.build(&dir)?;
                    (Box::new(built.model), built.x0, preset.simulate.clone())
                }
            }
        };
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

fn main() -> ExitCode {
    let args = Args::parse();
    neurodyn::error::exit(run(args))
}
