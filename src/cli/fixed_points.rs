//! `fixed-points`: fixed points (and slow points) of a flow or a map, with their linear stability.
//! Argument parsing → the resolver (`crate::source`) → `fixed_points::search` → writing.

use crate::fixed_points::search::{
    eigenvalue_plot, eigenvectors, pca_plot, points_table, search, spectrum_table, SearchMethod,
    Starts,
};
use crate::fixed_points::FinderOptions;
use crate::io::TableFormat;
use crate::source::{SourceArgs, View};
use crate::stability::TimeKind;
use crate::Error;
use clap::Parser;
use std::path::PathBuf;

/// Find the fixed points of a rate-RNN flow (preset or .npy weights), of the discrete RNN map
/// h ← φ(W h + b) (--map, as FixedPointFinder does for trained RNNs), or of an ORGaNICs circuit with
/// the paper's defaults (--organics N), by damped Newton / Levenberg–Marquardt from many initial
/// states; report one row per distinct point (state norm, q = ½‖f‖², class, number of unstable
/// eigenvalues, max Re λ or max |λ|) and the spectra.
#[derive(Parser, Debug)]
#[command(name = "fixed-points", version, allow_negative_numbers = true)]
pub struct Args {
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
    method: Vec<SearchMethod>,
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

fn run(args: Args) -> Result<(), Error> {
    let fmt = TableFormat::from_path(&args.out)?;
    let spec_path = args.spectrum.clone().unwrap_or_else(|| {
        let stem = args.out.file_stem().unwrap_or_default().to_string_lossy();
        let ext = args
            .out
            .extension()
            .map_or("csv".into(), |e| e.to_string_lossy());
        args.out.with_file_name(format!("{stem}_spectrum.{ext}"))
    });
    for (field, path) in [
        ("out", Some(&args.out)),
        ("spectrum", Some(&spec_path)),
        ("points-npy", args.points_npy.as_ref()),
        ("jacobians-npy", args.jacobians_npy.as_ref()),
        ("eigenvectors", args.eigenvectors.as_ref()),
    ] {
        if let Some(p) = path {
            crate::io::check_output(field, p)?;
        }
    }
    let spec_fmt = TableFormat::from_path(&spec_path).map_err(|_| {
        Error::invalid(
            "spectrum",
            format!(
                "{}: unknown table format (use .parquet or .csv)",
                spec_path.display()
            ),
        )
    })?;
    if let Some(c) = args.input_scalar.filter(|c| !c.is_finite()) {
        return Err(Error::invalid(
            "input-scalar",
            format!("{c} (must be finite)"),
        ));
    }
    let plan = Starts::new(args.starts, &args.r#box, args.seed, args.trajectory)?;
    if !(args.q_tol > 0.0) {
        return Err(Error::invalid(
            "q-tol",
            format!("{} (must be positive)", args.q_tol),
        ));
    }
    let opts = FinderOptions {
        q_tol: args.q_tol,
        keep_slow: args.slow,
        kind: [TimeKind::Continuous, TimeKind::Discrete][usize::from(args.map)],
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
                .map(|p| crate::io::read_npy_vec(p, "input", Some(n)))
                .transpose()?;
            let c = c.unwrap_or(1.0);
            let ps = source.parametrised(view, "input", pattern, 0, c)?;
            r.system = crate::continuation::frozen(std::sync::Arc::from(ps.system), c);
            Some(c)
        }
    };
    let starts = plan.states(
        &r.system,
        &r.x0,
        r.nonnegative.clone(),
        r.extra_start.take(),
    )?;
    let methods = SearchMethod::expand(&args.method);
    let organics = if methods.iter().any(|m| *m != SearchMethod::Newton) {
        if input_level.is_some() {
            return Err(Error::invalid(
                "method",
                "the ORGaNICs methods take the circuit as it is (drop --input/--input-scalar)",
            ));
        }
        source.organics_model()?.map(|(m, _)| m)
    } else {
        None
    };
    let bar = crate::io::progress_bar(args.quiet, starts.len() as u64, "{pos}/{len} starts");
    let b2 = bar.clone();
    let opts = opts.progress(move |k| b2.set_position(k as u64));
    let found = search(&r.system, &starts, &methods, organics.as_ref(), &opts)?;
    bar.finish_and_clear();
    // Everything is computed before the first file is written.
    let jacs: Vec<faer::Mat<f64>> = found
        .points
        .iter()
        .map(|p| r.system.jacobian(&p.x))
        .collect();
    let k = found.points.len();
    if let Some(path) = &args.eigenvectors {
        let vecs = jacs
            .iter()
            .zip(&found.points)
            .map(|(j, p)| eigenvectors(j, &p.stability.eigenvalues))
            .collect::<Result<Vec<_>, Error>>()?;
        let a = ndarray::Array4::from_shape_fn((k, n, n, 2), |(p, i, j, c)| {
            let z = vecs[p][j][i];
            [z.re, z.im][c]
        });
        crate::io::write_npy_array(path, &a)?;
    }
    if let Some(path) = &args.points_npy {
        let data: Vec<f64> = found
            .points
            .iter()
            .flat_map(|p| p.x.iter().copied())
            .collect();
        crate::io::write_npy_mat(path, k, n, &data)?;
    }
    if let Some(path) = &args.jacobians_npy {
        let a = ndarray::Array3::from_shape_fn((k, n, n), |(p, i, j)| jacs[p][(i, j)]);
        crate::io::write_npy_array(path, &a)?;
    }
    points_table(&found, input_level, n).write(&args.out, fmt)?;
    spectrum_table(&found.points).write(&spec_path, spec_fmt)?;
    if args.plot {
        eigenvalue_plot(&found.points).save(&args.out.with_extension(""))?;
        if let Some(p) = pca_plot(&found.points, &r.system, &starts)? {
            let stem = args.out.with_extension("");
            let name = format!(
                "{}_pca",
                stem.file_name().unwrap_or_default().to_string_lossy()
            );
            p.save(&stem.with_file_name(name))?;
        }
    }
    if !args.quiet {
        for (k, p) in found.points.iter().enumerate() {
            eprintln!(
                "#{k}: ‖x‖ = {:.6}, q = {:.2e}, {} (max growth {:.4e}), found by {}",
                p.x.iter().map(|v| v * v).sum::<f64>().sqrt(),
                p.q,
                p.stability.class.label(),
                p.stability.max_growth,
                found.found_by[k]
            );
        }
        if methods != [SearchMethod::Newton] {
            eprintln!("{}", found.notes.join("; "));
        }
    }
    Ok(())
}

super::command!("fixed-points", FAER_SEQ = true);
