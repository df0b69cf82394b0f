//! `lyapunov`: Lyapunov spectra of RNN maps and rate-RNN flows (Benettin/QR), and sweeps over g.
//! A thin shell: parse → build (library) → spectrum (library) → write (library).

use clap::Parser;
use faer::Mat;
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::io::{read_npy_mat, Column, Table, TableFormat};
use neurodyn::lyapunov::{
    lyapunov_flow, lyapunov_map, sweep, EulerMap, InitialFrame, LyapunovOptions, RnnMap, Spectrum,
    SweepSummary,
};
use neurodyn::model::{Activation, Anru, Model, RateRnn};
use neurodyn::plot::LinePlot;
use neurodyn::preset::Preset;
use neurodyn::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Lyapunov spectrum of a discrete RNN map `h ← φ(W h + b + U x_t)`, or of the rate-RNN flow
/// `τ dx/dt = −x + W φ(x) + b` (RK4 variational equation), by the Benettin/QR method.
///
/// Example (the tanh map, QR every step, one exponent per output row):
///   lyapunov --map tanh --W W.npy --x0 h0.npy --warmup 100 --steps 1000 --out spectrum.csv
///
/// Without --W the weights come from --model (default: the embedded preset,
/// models/rate-rnn-chaotic.toml). Exponents are natural-log rates per step (maps) or per unit time
/// (flows and --euler); --bits adds log2 columns.
#[derive(Parser, Debug)]
#[command(name = "lyapunov", version)]
struct Args {
    /// Discrete map h ← φ(W h + b): φ = tanh, relu, sigmoid, softplus, linear or gamma:N:S.
    #[arg(long, conflicts_with_all = ["flow", "euler"])]
    map: Option<Activation>,
    /// The continuous rate-RNN flow, integrated with RK4 at step --dt.
    #[arg(long)]
    flow: bool,
    /// An ANRU network (gamma-anru.md §A.3) with N neurons and M controller units per neuron, in the
    /// seed's initialisation drawn from --init-seed (state dimension N(1 + M); use --k).
    #[arg(long, value_name = "N:M", conflicts_with_all = ["map", "flow", "euler", "sweep_g"])]
    anru: Option<String>,
    /// A network trained by `train` (checkpoint.safetensors), analysed as its flow (--flow) or its
    /// Euler map with dt = 1 step (--euler), input off.
    #[arg(long, conflicts_with_all = ["anru", "w", "model", "map"])]
    checkpoint: Option<PathBuf>,
    /// Seed of the ANRU initialisation.
    #[arg(long, default_value_t = 0)]
    init_seed: u64,
    /// Constant drive added to every ANRU pre-activation.
    #[arg(long, default_value_t = 0.0)]
    drive: f64,
    /// The forward-Euler map of the rate-RNN flow with step --dt (lyapunov.md §B.1).
    #[arg(long, conflicts_with = "flow")]
    euler: bool,
    /// Model preset (TOML) providing W, b, x0, τ and φ when the files are not given.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Recurrent weights W (N×N float64 .npy).
    #[arg(long = "W", value_name = "W.npy")]
    w: Option<PathBuf>,
    /// Bias b (length N).
    #[arg(long, value_name = "b.npy")]
    b: Option<PathBuf>,
    /// Initial state (length N).
    #[arg(long, value_name = "h0.npy")]
    x0: Option<PathBuf>,
    /// Input weights U (N×N_in) for an input-driven map (with --inputs).
    #[arg(long = "U", value_name = "U.npy", requires = "inputs")]
    u: Option<PathBuf>,
    /// Input sequence (N_in×T: column t is x_t) for an input-driven map (with --U).
    #[arg(long, value_name = "X.npy", requires = "u")]
    inputs: Option<PathBuf>,
    /// State-only steps before the tangent dynamics start.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Tangent steps whose QR is done but not accumulated (frame alignment).
    #[arg(long, default_value_t = 0)]
    transient: usize,
    /// Accumulated steps.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Number of leading exponents (default: all N; O(N k²) per QR).
    #[arg(long)]
    k: Option<usize>,
    /// Re-orthonormalise every this many steps.
    #[arg(long, default_value_t = 1)]
    reorth: usize,
    /// Time step of --flow (RK4) and --euler; maps use 1 (per step).
    #[arg(long, default_value_t = 0.05)]
    dt: f64,
    /// Random initial frame from this seed (default: the first k columns of the identity; for
    /// --anru a random frame with seed 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Sweep over the gain: comma list or start:stop:count; W is scaled by g/g0.
    #[arg(long, value_name = "G-LIST")]
    sweep_g: Option<String>,
    /// Reference gain of the given W for --sweep-g (default: the preset's g, or 1 for a W file).
    #[arg(long)]
    g0: Option<f64>,
    /// Output table (.csv or .parquet): one exponent per row, or one g per row with --sweep-g.
    #[arg(long, default_value = "out/spectrum.csv")]
    out: PathBuf,
    /// Also write the running estimates (one row per QR batch) to this table.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Record a running estimate every this many QRs (for --history and --plot).
    #[arg(long, default_value_t = 10)]
    every: usize,
    /// Add log2 (bits) columns.
    #[arg(long)]
    bits: bool,
    /// Draw the spectrum and its convergence (or λ_max and D_KY versus g) as PNG + SVG.
    #[arg(long)]
    plot: bool,
    /// No progress bar or summary.
    #[arg(long, short)]
    quiet: bool,
}

enum System {
    Map(RnnMap),
    Cell(neurodyn::train::checkpoint::CellMap),
    Anru(Anru),
    Flow(RateRnn),
    Euler(RateRnn),
}

fn build(args: &Args, gain: f64) -> Result<(System, Vec<f64>), Error> {
    if let Some(ck) = &args.checkpoint {
        use neurodyn::train::checkpoint::{analysis, load, Analysis};
        let (net, _) = load::<f64>(ck)?;
        let sys = analysis(&net)?;
        if gain != 1.0 && !matches!(sys, Analysis::Flow(_)) {
            return Err(Error::invalid(
                "sweep-g",
                "scaling the recurrent weights applies to rate-cell checkpoints only",
            ));
        }
        return Ok(match sys {
            Analysis::Flow(m) => {
                let w = Mat::from_fn(m.dim(), m.dim(), |i, j| gain * m.w()[(i, j)]);
                let r = RateRnn::new(w, m.activation())?.with_tau(m.tau())?;
                let x0 = vec![0.0; m.dim()];
                if args.euler {
                    (System::Euler(r), x0)
                } else {
                    (System::Flow(r), x0)
                }
            }
            Analysis::Map(m) => {
                let x0 = vec![0.0; neurodyn::lyapunov::Map::dim(&m)];
                (System::Map(m), x0)
            }
            Analysis::Anru(a) => {
                let x0 = vec![0.0; a.n() * (1 + a.m())];
                (System::Anru(a), x0)
            }
            Analysis::Cell(c) => {
                let x0 = c.initial_state();
                (System::Cell(c), x0)
            }
        });
    }
    if let Some(spec) = &args.anru {
        let bad = || Error::invalid("anru", format!("`{spec}`: expected N:M, e.g. 64:10"));
        let p: Vec<&str> = spec.split(':').collect();
        if p.len() != 2 {
            return Err(bad());
        }
        let (n, m): (usize, usize) = (
            p[0].parse().map_err(|_| bad())?,
            p[1].parse().map_err(|_| bad())?,
        );
        let mut a = Anru::seed_init(n, m, args.init_seed)?;
        if !args.drive.is_finite() {
            return Err(Error::invalid("drive", "must be finite"));
        }
        a.bias = vec![args.drive; n];
        let x0 = match &args.x0 {
            Some(p) => neurodyn::io::read_npy_vec(p, "x0", Some(n * (1 + m)))?,
            None => vec![0.0; n * (1 + m)],
        };
        return Ok((System::Anru(a), x0));
    }
    let overrides = neurodyn::preset::Overrides {
        w: args.w.clone(),
        b: args.b.clone(),
        x0: args.x0.clone(),
        activation: args.map,
        tau: None,
    };
    let (preset, dir) = Preset::load_with(args.model.as_deref(), &overrides)?;
    let built = preset.build(&dir)?;
    let m = built.model;
    let w = Mat::from_fn(m.w().nrows(), m.w().ncols(), |i, j| gain * m.w()[(i, j)]);
    let sys = if args.flow || args.euler {
        let tau = m.tau();
        let r = RateRnn::new(w, m.activation())?
            .with_bias(m.bias().to_vec())?
            .with_tau(tau)?;
        if args.flow {
            System::Flow(r)
        } else {
            System::Euler(r)
        }
    } else {
        let mut map = RnnMap::new(w, m.activation())?.with_bias(m.bias().to_vec())?;
        if let (Some(u), Some(x)) = (&args.u, &args.inputs) {
            let u = read_npy_mat(u, "U", None)?;
            let x = read_npy_mat(x, "inputs", None)?;
            map = map.with_input(u.as_ref(), x.as_ref())?;
            let len = map.input_len().unwrap_or(0);
            let need = args.warmup + args.transient + args.steps;
            if len < need {
                return Err(Error::invalid(
                    "inputs",
                    format!("has {len} steps but warmup + transient + steps = {need}"),
                ));
            }
        }
        System::Map(map)
    };
    Ok((sys, built.x0))
}

fn options(args: &Args, map: bool) -> LyapunovOptions {
    LyapunovOptions {
        k: args.k,
        warmup: args.warmup,
        transient: args.transient,
        steps: args.steps,
        reorth: args.reorth,
        dt: if map { 1.0 } else { args.dt },
        frame: args
            .seed
            .map(InitialFrame::Random)
            .unwrap_or(InitialFrame::Identity),
        history_every: args.every,
    }
}

fn compute(
    sys: &System,
    x0: &[f64],
    opts: &LyapunovOptions,
    progress: Option<&(dyn Fn(usize) + Sync)>,
) -> Result<Spectrum, Error> {
    match sys {
        System::Map(m) => lyapunov_map(m, x0, opts, progress),
        System::Anru(a) => lyapunov_map(a, x0, opts, progress),
        System::Cell(c) => lyapunov_map(c, x0, opts, progress),
        System::Flow(r) => lyapunov_flow(r, x0, opts, progress),
        System::Euler(r) => lyapunov_map(
            &EulerMap {
                model: r,
                dt: opts.dt,
            },
            x0,
            opts,
            progress,
        ),
    }
}

fn parse_gains(s: &str) -> Result<Vec<f64>, Error> {
    let bad = || {
        Error::invalid(
            "sweep-g",
            format!("`{s}`: give a comma list (0.5,1,2) or start:stop:count (0.5:3:11)"),
        )
    };
    let v: Vec<f64> = if s.contains(':') {
        neurodyn::error::parse_range(s, "sweep-g", 2)?
    } else {
        s.split(',')
            .map(|x| x.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?
    };
    if v.is_empty() || v.iter().any(|g| !(g.is_finite() && *g >= 0.0)) {
        return Err(bad());
    }
    Ok(v)
}

fn run(args: Args) -> Result<(), Error> {
    let format = TableFormat::from_path(&args.out)?;
    if let Some(h) = &args.history {
        TableFormat::from_path(h).map_err(|_| {
            Error::invalid("history", format!("{}: use .csv or .parquet", h.display()))
        })?;
    }
    let is_map = !(args.flow || args.euler || args.checkpoint.is_some());
    if !is_map && !(args.dt > 0.0 && args.dt.is_finite()) {
        return Err(Error::invalid(
            "dt",
            format!("{} (must be positive)", args.dt),
        ));
    }
    let opts = options(&args, is_map && !args.euler);
    let opts = if args.euler {
        LyapunovOptions {
            dt: args.dt,
            ..opts
        }
    } else {
        opts
    };
    let unit = if is_map && !args.euler {
        "per step"
    } else {
        "per unit time"
    };

    if let Some(gs) = &args.sweep_g {
        let gains = parse_gains(gs)?;
        let g0 = match (args.g0, &args.w, &args.model) {
            (Some(g), _, _) => g,
            (None, Some(_), _) => 1.0,
            (None, None, Some(p)) => Preset::load(p)?.0.g.unwrap_or(1.0),
            (None, None, None) => Preset::default_preset().g.unwrap_or(1.0),
        };
        if !(g0 > 0.0) {
            return Err(Error::invalid("g0", format!("{g0} (must be positive)")));
        }
        let bar = bar(args.quiet, gains.len() as u64, "gains");
        let spectra = sweep(&gains, |g| {
            let (sys, x0) = build(&args, g / g0)?;
            let s = compute(&sys, &x0, &opts, None);
            bar.inc(1);
            s
        })?;
        bar.finish_and_clear();
        let rows: Vec<SweepSummary> = gains
            .iter()
            .zip(&spectra)
            .map(|(&g, s)| (g, s).into())
            .collect();
        let mut t = Table::new();
        t.push("g", Column::F64(rows.iter().map(|r| r.value).collect()));
        t.push(
            "lambda_max",
            Column::F64(rows.iter().map(|r| r.lambda_max).collect()),
        );
        t.push("sum", Column::F64(rows.iter().map(|r| r.sum).collect()));
        t.push(
            "kaplan_yorke",
            Column::F64(rows.iter().map(|r| r.kaplan_yorke).collect()),
        );
        t.push(
            "entropy",
            Column::F64(rows.iter().map(|r| r.entropy).collect()),
        );
        t.push(
            "n_positive",
            Column::I64(rows.iter().map(|r| r.n_positive as i64).collect()),
        );
        t.write(&args.out, format)?;
        if args.plot {
            let st = stem(&args.out);
            LinePlot::new(
                "Largest Lyapunov exponent vs gain",
                "g",
                format!("λ_max ({unit})"),
            )
            .series(
                "λ_max",
                rows.iter().map(|r| (r.value, r.lambda_max)).collect(),
            )
            .series(
                "0",
                vec![(gains[0], 0.0), (*gains.last().unwrap_or(&1.0), 0.0)],
            )
            .save(&st.with_file_name(format!("{}_lambda_max", file_stem(&st))))?;
            LinePlot::new("Kaplan–Yorke dimension vs gain", "g", "D_KY")
                .series(
                    "D_KY",
                    rows.iter()
                        .filter(|r| r.kaplan_yorke.is_finite())
                        .map(|r| (r.value, r.kaplan_yorke))
                        .collect(),
                )
                .save(&st.with_file_name(format!("{}_dky", file_stem(&st))))?;
        }
        if !args.quiet {
            eprintln!(
                "{:>8} {:>12} {:>12} {:>8} {:>10}",
                "g", "λ_max", "Σλ", "D_KY", "entropy"
            );
            for r in &rows {
                eprintln!(
                    "{:>8.3} {:>12.5} {:>12.5} {:>8.3} {:>10.5}",
                    r.value, r.lambda_max, r.sum, r.kaplan_yorke, r.entropy
                );
            }
            eprintln!("wrote {}", args.out.display());
        }
        return Ok(());
    }

    let (sys, x0) = build(&args, 1.0)?;
    let total = (args.transient + args.steps) as u64;
    let bar = bar(args.quiet, total, "steps");
    let b2 = bar.clone();
    let progress = move |s: usize| {
        if s % 16 == 0 || s as u64 == total {
            b2.set_position(s as u64)
        }
    };
    let s = compute(&sys, &x0, &opts, Some(&progress))?;
    bar.finish_and_clear();
    let k = s.exponents.len();
    let mut t = Table::new();
    t.push("index", Column::I64((0..k as i64).collect()));
    t.push("exponent", Column::F64(s.exponents.clone()));
    if args.bits {
        t.push("exponent_bits", Column::F64(s.bits()));
    }
    t.push("unit", Column::Str(vec![unit.to_string(); k]));
    t.write(&args.out, format)?;
    if let Some(h) = &args.history {
        let mut ht = Table::new();
        let rows = s.history.len();
        ht.push(
            "time",
            Column::F64(s.history.iter().map(|(t, _)| *t).collect()),
        );
        for i in 0..k {
            ht.push(
                format!("lambda{i}"),
                Column::F64((0..rows).map(|r| s.history[r].1[i]).collect()),
            );
        }
        ht.write(h, TableFormat::from_path(h)?)?;
    }
    if args.plot {
        let st = stem(&args.out);
        LinePlot::new(
            format!("Lyapunov spectrum (N = {}, k = {k})", s.n),
            "i",
            format!("λ_i ({unit})"),
        )
        .series(
            "λ_i",
            s.exponents
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as f64, l))
                .collect(),
        )
        .series("0", vec![(0.0, 0.0), ((k.max(2) - 1) as f64, 0.0)])
        .save(&st)?;
        let mut p = LinePlot::new(
            "Convergence of the running estimates",
            "time",
            format!("λ_i ({unit})"),
        );
        for i in 0..k.min(8) {
            p = p.series(
                format!("λ_{i}"),
                s.history.iter().map(|(t, v)| (*t, v[i])).collect(),
            );
        }
        p.save(&st.with_file_name(format!("{}_convergence", file_stem(&st))))?;
    }
    if !args.quiet {
        eprintln!("λ_max = {:.6e} {unit}; Σλ = {:.10}", s.max(), s.sum());
        if let Some(r) = s.sum_reference {
            let what = if is_map && !args.euler {
                "⟨ln|det D|⟩"
            } else {
                "⟨tr J⟩"
            };
            eprintln!(
                "sum identity: {what} = {r:.10} (difference {:.2e})",
                s.sum() - r
            );
        }
        eprintln!(
            "Kaplan–Yorke dimension = {:.4}; entropy (Σ λ>0) = {:.6e} nats {unit}",
            s.kaplan_yorke(),
            s.entropy()
        );
        eprintln!("wrote {}", args.out.display());
    }
    Ok(())
}

fn bar(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {what} ({{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

fn stem(p: &Path) -> PathBuf {
    p.with_extension("")
}

fn file_stem(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args = Args::parse();
    neurodyn::error::exit(run(args))
}
