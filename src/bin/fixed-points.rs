//! `fixed-points`: fixed points (and slow points) of a flow or a map, with their linear stability.
//! Argument parsing → the resolver (`neurodyn::source`) → `find_system_fixed_points` → writing.

use clap::Parser;
use neurodyn::fixed_points::{
    find_system_fixed_points, organics_candidates, random_starts, FinderOptions, FixedPoint,
    NewtonOptions, OrganicsMethod,
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
    /// Draw the eigenvalues in the complex plane, and the points with a few trajectories in the
    /// plane of their first two principal components (PNG + SVG: `<out>`, `<out>_pca`).
    #[arg(long)]
    plot: bool,
    /// Also write the points' coordinates as a K × N float64 array.
    #[arg(long, value_name = "FILE.npy")]
    points_npy: Option<PathBuf>,
    /// Also write the Jacobian at each point as a K × N × N float64 array.
    #[arg(long, value_name = "FILE.npy")]
    jacobians_npy: Option<PathBuf>,
    /// Also write the eigenvectors at each point as a K × N × N × 2 float64 array (real and
    /// imaginary parts; column j belongs to the j-th eigenvalue of the spectrum table).
    #[arg(long, value_name = "FILE.npy")]
    eigenvectors: Option<PathBuf>,
    /// Hold the network at a constant input: the input pattern (length N; default for a rate
    /// checkpoint W_in·1, for a rate preset all ones) scaled by --input-scalar (default 1).
    /// Trained non-rate cells: every input channel at --input-scalar.
    #[arg(long, value_name = "u.npy")]
    input: Option<PathBuf>,
    /// The constant input level c (times the pattern of --input).
    #[arg(long, value_name = "c")]
    input_scalar: Option<f64>,
    /// How to find the points: newton (multi-start Newton / Levenberg–Marquardt, any model), or
    /// for ORGaNICs circuits closed-form (W_r = I), quartic (all roots, one-unit circuit),
    /// iterative (the scheme + Newton, any W_r), or all of them; repeatable. Each point's
    /// `found_by` column lists the methods that found it.
    #[arg(long, value_enum, default_value = "newton")]
    method: Vec<MethodArg>,
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MethodArg {
    Newton,
    ClosedForm,
    Quartic,
    Iterative,
    All,
}

fn run(args: Args) -> Result<(), Error> {
    let fmt = TableFormat::from_path(&args.out)?;
    neurodyn::io::check_output("out", &args.out)?;
    for (field, path) in [
        ("spectrum", &args.spectrum),
        ("points-npy", &args.points_npy),
        ("jacobians-npy", &args.jacobians_npy),
        ("eigenvectors", &args.eigenvectors),
    ] {
        if let Some(p) = path {
            neurodyn::io::check_output(field, p)?;
        }
    }
    if let Some(c) = args.input_scalar {
        if !c.is_finite() {
            return Err(Error::invalid(
                "input-scalar",
                format!("{c} (must be finite)"),
            ));
        }
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
    let source = args.source.source()?;
    let mut r = source.resolve(view, 1.0)?;
    let n = r.system.dim();
    // Under a constant input: the same network with its input held at c (the continuation's
    // `input` parameter, frozen at c).
    let input_level = match (&args.input, args.input_scalar) {
        (None, None) => None,
        (pattern, c) => {
            let pattern = pattern
                .as_ref()
                .map(|p| neurodyn::io::read_npy_vec(p, "input", Some(n)))
                .transpose()?;
            let c = c.unwrap_or(1.0);
            let ps = source.parametrised(view, "input", pattern, 0, c)?;
            r.system = neurodyn::continuation::frozen(std::sync::Arc::from(ps.system), c);
            Some(c)
        }
    };
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
    // The methods asked for, in order; ORGaNICs methods need an ORGaNICs circuit.
    let mut methods: Vec<MethodArg> = vec![];
    for m in &args.method {
        let add: &[MethodArg] = match m {
            MethodArg::All => &[
                MethodArg::Newton,
                MethodArg::ClosedForm,
                MethodArg::Quartic,
                MethodArg::Iterative,
            ],
            one => std::slice::from_ref(one),
        };
        for a in add {
            if !methods.contains(a) {
                methods.push(*a);
            }
        }
    }
    let organics = if methods.iter().any(|m| *m != MethodArg::Newton) {
        if input_level.is_some() {
            return Err(Error::invalid(
                "method",
                "the ORGaNICs methods take the circuit as it is (drop --input/--input-scalar)",
            ));
        }
        match source.organics_model()? {
            Some((m, _)) => Some(m),
            None => {
                return Err(Error::invalid(
                    "method",
                    "closed-form, quartic and iterative are ORGaNICs methods (use an ORGaNICs preset or --organics N); other models use newton",
                ))
            }
        }
    } else {
        None
    };
    let explicit_one = methods.len() == 1;
    let mut points: Vec<FixedPoint> = vec![];
    let mut found_by: Vec<Vec<&'static str>> = vec![];
    let mut notes: Vec<String> = vec![];
    for m in &methods {
        let (name, found) = match m {
            MethodArg::Newton => (
                "newton",
                find_system_fixed_points(&r.system, &starts, &opts)?,
            ),
            other => {
                let om = match other {
                    MethodArg::ClosedForm => OrganicsMethod::ClosedForm,
                    MethodArg::Quartic => OrganicsMethod::Quartic,
                    _ => OrganicsMethod::Iterative,
                };
                let Some(model) = organics.as_ref() else {
                    return Err(Error::invalid(
                        "method",
                        "the ORGaNICs methods need an ORGaNICs circuit",
                    ));
                };
                match organics_candidates(model, om) {
                    Ok(c) if c.is_empty() => {
                        notes.push(format!("{}: no candidate (no positive root)", om.name()));
                        continue;
                    }
                    Ok(c) => (om.name(), find_system_fixed_points(&r.system, &c, &opts)?),
                    Err(e) if !explicit_one => {
                        notes.push(format!("{}: does not apply ({e})", om.name()));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        notes.push(format!("{name}: {} point(s)", found.len()));
        for p in found {
            let scale = 1.0 + p.x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let same = points.iter().position(|q| {
                q.x.iter()
                    .zip(&p.x)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
                    < 1e-7 * scale
            });
            match same {
                Some(k) => {
                    if !found_by[k].contains(&name) {
                        found_by[k].push(name);
                    }
                }
                None => {
                    points.push(p);
                    found_by.push(vec![name]);
                }
            }
        }
    }
    let found_by: Vec<String> = found_by.iter().map(|v| v.join(";")).collect();
    write_points(&args, fmt, &points, &found_by, &r.system, input_level)?;
    if args.plot {
        pca_plot(&args, &points, &r.system, &starts)?;
    }
    if !args.quiet {
        for (k, p) in points.iter().enumerate() {
            eprintln!(
                "#{k}: ‖x‖ = {:.6}, q = {:.2e}, {} (max growth {:.4e}), found by {}",
                p.x.iter().map(|v| v * v).sum::<f64>().sqrt(),
                p.q,
                p.stability.class.label(),
                p.stability.max_growth,
                found_by[k]
            );
        }
        if methods != [MethodArg::Newton] {
            eprintln!("{}", notes.join("; "));
        }
    }
    Ok(())
}

/// The Jacobian of `system` at x.
fn jacobian(system: &System, x: &[f64]) -> faer::Mat<f64> {
    match system {
        System::Flow(m) => neurodyn::model::jacobian_mat(m.as_ref(), 0.0, x),
        System::Map(m) => neurodyn::model::map_jacobian_mat(m.as_ref(), 0, x),
    }
}

/// Eigenvectors of `j` ordered as `eig` (the spectrum table's order): for each listed eigenvalue
/// the eigenvector of the nearest unused eigenvalue of the decomposition.
fn eigenvectors(j: &faer::Mat<f64>, eig: &[faer::c64]) -> Result<Vec<Vec<faer::c64>>, Error> {
    let n = j.nrows();
    let e = j
        .eigen()
        .map_err(|e| Error::failed("eigenvectors", format!("{e:?}")))?;
    let (vals, vecs) = (e.S(), e.U());
    let mut used = vec![false; n];
    let mut out = vec![];
    for l in eig {
        let k = (0..n)
            .filter(|&k| !used[k])
            .min_by(|&a, &b| {
                let da = (vals[a] - *l).norm();
                let db = (vals[b] - *l).norm();
                da.total_cmp(&db)
            })
            .unwrap_or(0);
        used[k] = true;
        out.push((0..n).map(|i| vecs[(i, k)]).collect());
    }
    Ok(out)
}

/// The points and trajectories from the first few starts, projected on the first two principal
/// components of the points and trajectory states together.
fn pca_plot(
    args: &Args,
    points: &[FixedPoint],
    system: &System,
    starts: &[Vec<f64>],
) -> Result<(), Error> {
    let n = system.dim();
    let mut trajs: Vec<Vec<Vec<f64>>> = vec![];
    for s in starts.iter().take(5) {
        let t = match system {
            System::Flow(m) => {
                let sol = integrate(
                    m.as_ref(),
                    s,
                    (0.0, 50.0),
                    &Method::rk4(0.05),
                    &Options::new().save(SaveAt::Uniform(200)).blowup(1e6),
                );
                match sol {
                    Ok(sol) => (0..sol.len()).map(|k| sol.state(k).to_vec()).collect(),
                    Err(_) => continue,
                }
            }
            System::Map(m) => {
                let mut h = s.clone();
                (0..200)
                    .map(|t| {
                        let x = h.clone();
                        m.step(t, &mut h);
                        x
                    })
                    .collect()
            }
        };
        trajs.push(t);
    }
    let rows: Vec<&Vec<f64>> = points
        .iter()
        .map(|p| &p.x)
        .chain(trajs.iter().flatten())
        .filter(|x| x.iter().all(|v| v.is_finite()))
        .collect();
    if rows.len() < 2 || n < 2 {
        return Ok(());
    }
    let mean: Vec<f64> = (0..n)
        .map(|i| rows.iter().map(|x| x[i]).sum::<f64>() / rows.len() as f64)
        .collect();
    let a = faer::Mat::from_fn(rows.len(), n, |r, i| rows[r][i] - mean[i]);
    let svd = a
        .thin_svd()
        .map_err(|e| Error::failed("pca", format!("{e:?}")))?;
    let v = svd.V();
    let proj = |x: &[f64]| -> (f64, f64) {
        let (mut p, mut q) = (0.0, 0.0);
        for i in 0..n {
            p += (x[i] - mean[i]) * v[(i, 0)];
            q += (x[i] - mean[i]) * v[(i, 1)];
        }
        (p, q)
    };
    let mut plot = LinePlot::new(
        "Fixed points and trajectories (first two PCs)",
        "PC 1",
        "PC 2",
    );
    for (k, t) in trajs.iter().enumerate() {
        plot = plot.series(
            format!("trajectory {k}"),
            t.iter()
                .filter(|x| x.iter().all(|v| v.is_finite()))
                .map(|x| proj(x))
                .collect(),
        );
    }
    for (k, p) in points.iter().enumerate().take(20) {
        plot = plot.points(
            format!("#{k} {}", p.stability.class.label()),
            vec![proj(&p.x)],
        );
    }
    let stem = args.out.with_extension("");
    let name = format!(
        "{}_pca",
        stem.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    plot.save(&stem.with_file_name(name))?;
    Ok(())
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

fn write_points(
    args: &Args,
    fmt: TableFormat,
    points: &[FixedPoint],
    found_by: &[String],
    system: &System,
    input: Option<f64>,
) -> Result<(), Error> {
    let n = system.dim();
    let k = points.len();
    // Everything is computed before the first file is written.
    let jacs: Vec<faer::Mat<f64>> = points.iter().map(|p| jacobian(system, &p.x)).collect();
    let vecs = match &args.eigenvectors {
        Some(_) => Some(
            jacs.iter()
                .zip(points)
                .map(|(j, p)| eigenvectors(j, &p.stability.eigenvalues))
                .collect::<Result<Vec<_>, Error>>()?,
        ),
        None => None,
    };
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
    t.push("input", Column::F64(vec![input.unwrap_or(f64::NAN); k]));
    t.push("found_by", Column::Str(found_by.to_vec()));
    // The coordinates, one column per unit (x0 … x{N−1}).
    for i in 0..n {
        t.push(
            format!("x{i}"),
            Column::F64(points.iter().map(|p| p.x[i]).collect()),
        );
    }
    if let Some(path) = &args.points_npy {
        let data: Vec<f64> = points.iter().flat_map(|p| p.x.iter().copied()).collect();
        neurodyn::io::write_npy_mat(path, k, n, &data)?;
    }
    if let Some(path) = &args.jacobians_npy {
        let a = ndarray::Array3::from_shape_fn((k, n, n), |(p, i, j)| jacs[p][(i, j)]);
        write_npy_nd(path, &a)?;
    }
    if let (Some(path), Some(vecs)) = (&args.eigenvectors, &vecs) {
        let a = ndarray::Array4::from_shape_fn((k, n, n, 2), |(p, i, j, c)| {
            let z = vecs[p][j][i];
            if c == 0 {
                z.re
            } else {
                z.im
            }
        });
        write_npy_nd(path, &a)?;
    }
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
    Ok(())
}

fn main() -> ExitCode {
    neurodyn::io::stage_outputs();
    // The work is parallel across trials / initial states (rayon); faer's own threading inside each
    // small factorisation only adds overhead (measured: eigenvalues of 200×200 take 15 ms
    // sequential vs 29 ms threaded; BENCHMARKS.md).
    faer::set_global_parallelism(faer::Par::Seq);
    let args = Args::parse();
    let json = args.json;
    neurodyn::io::exit_with(run(args), json)
}

/// Writes an n-D float64 array as `.npy` (atomically).
fn write_npy_nd<D: ndarray::Dimension>(
    path: &std::path::Path,
    a: &ndarray::Array<f64, D>,
) -> Result<(), Error> {
    use ndarray_npy::WriteNpyExt;
    neurodyn::io::write_atomic(path, |w| a.write_npy(w).map_err(|e| Error::file(path, e)))
}
