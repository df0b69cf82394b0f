//! `fixed-points`: fixed points (and slow points) of a model, with their linear stability.
//! A thin shell over `neurodyn::fixed_points` and `neurodyn::stability`.

use clap::Parser;
use neurodyn::fixed_points::{
    find_fixed_points, random_starts, FinderOptions, FixedPoint, MapResidual, NewtonOptions,
};
use neurodyn::integrate::{integrate, Method, Options, SaveAt};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::lyapunov::RnnMap;
use neurodyn::model::organics::Organics;
use neurodyn::model::{Activation, Model};
use neurodyn::plot::LinePlot;
use neurodyn::preset::Preset;
use neurodyn::stability::TimeKind;
use neurodyn::Error;
use std::path::PathBuf;
use std::process::ExitCode;

/// Find the fixed points of a rate-RNN flow (preset or .npy weights), of the discrete RNN map
/// h ← φ(W h + b) (--map, as FixedPointFinder does for trained RNNs), or of an ORGaNICs circuit with
/// the paper's defaults (--organics N), by damped Newton / Levenberg–Marquardt from many initial
/// states; report one row per distinct point (state norm, q = ½‖f‖², class, number of unstable
/// eigenvalues, max Re λ or max |λ|) and the spectra.
#[derive(Parser, Debug)]
#[command(name = "fixed-points", version)]
struct Args {
    /// Model preset (TOML): a rate RNN, or an ORGaNICs circuit (`model = "organics"`, see
    /// models/organics-*.toml); default: the embedded chaotic rate RNN.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Recurrent weights W (N×N float64 .npy).
    #[arg(long = "W", value_name = "W.npy")]
    w: Option<PathBuf>,
    /// Bias b (length N).
    #[arg(long, value_name = "b.npy")]
    b: Option<PathBuf>,
    /// Nonlinearity (tanh, relu, sigmoid, softplus, linear, gamma:N:S).
    #[arg(long)]
    activation: Option<Activation>,
    /// Fixed points of the discrete map h ← φ(W h + b) instead of the flow.
    #[arg(long)]
    map: bool,
    /// A network trained by `train` (checkpoint.safetensors): its continuous dynamics
    /// τ ⊙ dx/dt = −x + W σ(x), input off.
    #[arg(long, conflicts_with_all = ["organics", "w", "model"])]
    checkpoint: Option<PathBuf>,
    /// An ORGaNICs circuit with N units and the paper's defaults (organics.md).
    #[arg(long, value_name = "N", conflicts_with_all = ["map", "w", "model"])]
    organics: Option<usize>,
    /// Number of random initial states.
    #[arg(long, default_value_t = 64)]
    starts: usize,
    /// Box of the random initial states, LO:HI in every coordinate.
    #[arg(long, default_value = "-2:2", allow_hyphen_values = true)]
    r#box: String,
    /// Also start from this many states sampled along a trajectory from the preset's x0.
    #[arg(long, default_value_t = 0)]
    trajectory: usize,
    /// Seed of the random initial states.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also report slow points (local minima of q above the Newton tolerance, q ≤ --q-tol).
    #[arg(long)]
    slow: bool,
    /// Largest q = ½‖f‖² kept.
    #[arg(long, default_value_t = 1e-20)]
    q_tol: f64,
    /// Output table of fixed points (.csv or .parquet).
    #[arg(long, default_value = "out/fixed_points.csv")]
    out: PathBuf,
    /// Output table of spectra (one row per eigenvalue); default: `<out>_spectrum.<ext>`.
    #[arg(long)]
    spectrum: Option<PathBuf>,
    /// Draw the eigenvalues in the complex plane (PNG + SVG).
    #[arg(long)]
    plot: bool,
    #[arg(long, short)]
    quiet: bool,
}

fn run(args: Args) -> Result<(), Error> {
    let fmt = TableFormat::from_path(&args.out)?;
    let (lo, hi) = args
        .r#box
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)))
        .filter(|(a, b)| a.is_finite() && b.is_finite() && a < b)
        .ok_or_else(|| {
            Error::invalid(
                "box",
                format!("`{}`: expected LO:HI with LO < HI", args.r#box),
            )
        })?;
    if !(args.q_tol > 0.0) {
        return Err(Error::invalid(
            "q-tol",
            format!("{} (must be positive)", args.q_tol),
        ));
    }
    if args.starts + args.trajectory == 0 {
        return Err(Error::invalid("starts", "need at least one initial state"));
    }
    let mut opts = FinderOptions {
        newton: NewtonOptions::default(),
        q_tol: args.q_tol,
        keep_slow: args.slow,
        kind: if args.map {
            TimeKind::Discrete
        } else {
            TimeKind::Continuous
        },
        ..Default::default()
    };
    let points: Vec<FixedPoint> = if let Some(ck) = &args.checkpoint {
        use neurodyn::train::checkpoint::{analysis, load, Analysis};
        let (net, _) = load::<f64>(ck)?;
        match analysis(&net)? {
            Analysis::Flow(m) => {
                let starts = random_starts(m.dim(), args.starts, lo, hi, args.seed);
                if args.map {
                    let rm = RnnMap::new(m.w().clone(), m.activation())?;
                    find_fixed_points(&MapResidual { map: &rm, t: 0 }, &starts, &opts)?
                } else {
                    find_fixed_points(&m, &starts, &opts)?
                }
            }
            Analysis::Map(rm) => {
                opts.kind = TimeKind::Discrete;
                let starts = random_starts(
                    neurodyn::lyapunov::Map::dim(&rm),
                    args.starts,
                    lo,
                    hi,
                    args.seed,
                );
                find_fixed_points(&MapResidual { map: &rm, t: 0 }, &starts, &opts)?
            }
            Analysis::Cell(cm) => {
                opts.kind = TimeKind::Discrete;
                let dim = neurodyn::lyapunov::Map::dim(&cm);
                // State entries of the ORGaNICs Euler RNN (y, a, gains) are non-negative.
                let mut starts = random_starts(dim, args.starts, lo, hi, args.seed);
                for s in starts.iter_mut() {
                    for v in s.iter_mut() {
                        *v = v.abs();
                    }
                }
                starts.push(cm.initial_state());
                find_fixed_points(&MapResidual { map: &cm, t: 0 }, &starts, &opts)?
            }
            Analysis::Anru(a) => {
                opts.kind = TimeKind::Discrete;
                let starts = random_starts(a.n() * (1 + a.m()), args.starts, lo, hi, args.seed);
                find_fixed_points(&MapResidual { map: &a, t: 0 }, &starts, &opts)?
            }
        }
    } else if let Some(n) = args.organics {
        let m = Organics::defaults(n)?;
        let mut starts = random_starts(2 * n, args.starts, lo, hi, args.seed);
        for s in starts.iter_mut() {
            for a in s[n..].iter_mut() {
                *a = a.abs(); // modulators start non-negative
            }
        }
        find_fixed_points(&m, &starts, &opts)?
    } else {
        // An ORGaNICs preset (model = "organics") goes straight to the finder.
        if let Some(path) = &args.model {
            if let neurodyn::preset::AnyModel::Organics(m, x0, _) =
                neurodyn::preset::load_any(path)?
            {
                let n = m.n();
                let mut starts = random_starts(2 * n, args.starts, lo, hi, args.seed);
                for s in starts.iter_mut() {
                    for a in s[n..].iter_mut() {
                        *a = a.abs();
                    }
                }
                starts.push(x0);
                let points = find_fixed_points(&m, &starts, &opts)?;
                return write_points(&args, fmt, &points);
            }
        }
        let overrides = neurodyn::preset::Overrides {
            w: args.w.clone(),
            b: args.b.clone(),
            activation: args.activation,
            ..Default::default()
        };
        let (preset, dir) = Preset::load_with(args.model.as_deref(), &overrides)?;
        let built = preset.build(&dir)?;
        let n = built.model.dim();
        let mut starts = random_starts(n, args.starts, lo, hi, args.seed);
        if args.trajectory > 0 {
            let sol = integrate(
                &built.model,
                &built.x0,
                (0.0, 50.0),
                &Method::rk4(0.05),
                &Options::new().save(SaveAt::Uniform(args.trajectory.max(2))),
            )?;
            starts.extend(
                (0..sol.len())
                    .take(args.trajectory)
                    .map(|k| sol.state(k).to_vec()),
            );
        }
        if args.map {
            let m = RnnMap::new(built.model.w().clone(), built.model.activation())?
                .with_bias(built.model.bias().to_vec())?;
            find_fixed_points(&MapResidual { map: &m, t: 0 }, &starts, &opts)?
        } else {
            find_fixed_points(&built.model, &starts, &opts)?
        }
    };
    write_points(&args, fmt, &points)
}

fn write_points(args: &Args, fmt: TableFormat, points: &[FixedPoint]) -> Result<(), Error> {
    let mut t = Table::new();
    t.push("index", Column::I64((0..points.len() as i64).collect()));
    t.push(
        "norm",
        Column::F64(
            points
                .iter()
                .map(|p| p.x.iter().map(|v| v * v).sum::<f64>().sqrt())
                .collect(),
        ),
    );
    t.push("q", Column::F64(points.iter().map(|p| p.q).collect()));
    t.push(
        "residual",
        Column::F64(points.iter().map(|p| p.residual).collect()),
    );
    t.push(
        "converged",
        Column::I64(points.iter().map(|p| i64::from(p.converged)).collect()),
    );
    t.push(
        "class",
        Column::Str(points.iter().map(|p| p.stability.class.label()).collect()),
    );
    t.push(
        "n_unstable",
        Column::I64(
            points
                .iter()
                .map(|p| p.stability.n_unstable as i64)
                .collect(),
        ),
    );
    t.push(
        "max_growth",
        Column::F64(points.iter().map(|p| p.stability.max_growth).collect()),
    );
    t.push(
        "starts",
        Column::I64(points.iter().map(|p| p.count as i64).collect()),
    );
    t.write(&args.out, fmt)?;
    let spec_path = args.spectrum.clone().unwrap_or_else(|| {
        let stem = args
            .out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = args
            .out
            .extension()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "csv".into());
        args.out.with_file_name(format!("{stem}_spectrum.{ext}"))
    });
    let mut st = Table::new();
    let rows: Vec<(usize, f64, f64)> = points
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.stability.eigenvalues.iter().map(move |l| (k, l.re, l.im)))
        .collect();
    st.push(
        "index",
        Column::I64(rows.iter().map(|r| r.0 as i64).collect()),
    );
    st.push("re", Column::F64(rows.iter().map(|r| r.1).collect()));
    st.push("im", Column::F64(rows.iter().map(|r| r.2).collect()));
    st.write(&spec_path, TableFormat::from_path(&spec_path)?)?;
    if args.plot {
        let mut p = LinePlot::new(
            "Eigenvalues of the Jacobian at each fixed point",
            "Re λ",
            "Im λ",
        );
        p.markers = true;
        for (k, fp) in points.iter().enumerate().take(10) {
            p = p.series(
                format!("#{k} {}", fp.stability.class.label()),
                fp.stability
                    .eigenvalues
                    .iter()
                    .map(|l| (l.re, l.im))
                    .collect(),
            );
        }
        p.save(&args.out.with_extension(""))?;
    }
    if !args.quiet {
        for (k, p) in points.iter().enumerate() {
            eprintln!(
                "#{k}: ‖x‖ = {:.6}, q = {:.2e}, {} (max growth {:.4e}), from {} starts",
                p.x.iter().map(|v| v * v).sum::<f64>().sqrt(),
                p.q,
                p.stability.class.label(),
                p.stability.max_growth,
                p.count
            );
        }
        eprintln!(
            "{} point(s); wrote {} and {}",
            points.len(),
            args.out.display(),
            spec_path.display()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    // The work is parallel across trials / initial states (rayon); faer's own threading inside each
    // small factorisation only adds overhead (measured: eigenvalues of 200×200 take 15 ms
    // sequential vs 29 ms threaded; BENCHMARKS.md).
    faer::set_global_parallelism(faer::Par::Seq);
    let args = Args::parse();
    neurodyn::error::exit(run(args))
}
