//! `fixed-points`: fixed points (and slow points) of a flow or a map, with their linear stability.
//! Argument parsing → the resolver (`neurodyn::source`) → `find_system_fixed_points` → writing.

use clap::Parser;
use neurodyn::fixed_points::{
    find_system_fixed_points, random_starts, FinderOptions, FixedPoint, NewtonOptions,
};
use neurodyn::integrate::{integrate, Method, Options, SaveAt};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::model::{Map, System};
use neurodyn::plot::LinePlot;
use neurodyn::source::{SourceArgs, View};
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
#[command(name = "fixed-points", version, allow_negative_numbers = true)]
struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Fixed points of the discrete map h ← φ(W h + b) instead of the rate RNN's flow.
    #[arg(long, conflicts_with = "organics")]
    map: bool,
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
    neurodyn::io::check_output("out", &args.out)?;
    if let Some(s) = &args.spectrum {
        neurodyn::io::check_output("spectrum", s)?;
    }
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
    let opts = FinderOptions {
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
    let view = if args.map { View::Map } else { View::Natural };
    let r = args.source.source()?.resolve(view, 1.0)?;
    let n = r.system.dim();
    // The starts and one result row with a Jacobian per start, before allocating them.
    neurodyn::memory::check(
        "starts",
        args.starts as u128 * (n as u128 * 8 * 4 + 256) + (n as u128).pow(2) * 8 * 4,
        None,
    )?;
    let mut starts = random_starts(n, args.starts, lo, hi, args.seed);
    for s in starts.iter_mut() {
        for v in s[r.nonnegative.clone()].iter_mut() {
            *v = v.abs();
        }
    }
    if let Some(x) = r.extra_start {
        starts.push(x);
    }
    if args.trajectory > 0 {
        starts.extend(trajectory_starts(&r.system, &r.x0, args.trajectory)?);
    }
    let points = find_system_fixed_points(&r.system, &starts, &opts)?;
    write_points(&args, fmt, &points)
}

/// `count` states along a trajectory from x0: a flow over t ∈ [0, 50] (RK4, dt = 0.05, evenly
/// spaced samples), a map over `count` steps.
fn trajectory_starts(system: &System, x0: &[f64], count: usize) -> Result<Vec<Vec<f64>>, Error> {
    Ok(match system {
        System::Flow(m) => {
            let sol = integrate(
                m,
                x0,
                (0.0, 50.0),
                &Method::rk4(0.05),
                &Options::new().save(SaveAt::Uniform(count.max(2))),
            )?;
            (0..sol.len())
                .take(count)
                .map(|k| sol.state(k).to_vec())
                .collect()
        }
        System::Map(m) => {
            let mut h = x0.to_vec();
            (0..count)
                .map(|t| {
                    let s = h.clone();
                    m.step(t, &mut h);
                    s
                })
                .collect()
        }
    })
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
