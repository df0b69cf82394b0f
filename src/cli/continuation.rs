//! `continuation`: follow a branch of fixed points through one parameter and locate its
//! bifurcations. Argument parsing → the resolver (`crate::source`) → `continue_branch` → writing.

use crate::continuation::cycles::{
    cycles_from_hopf, doubled_table, switch_all_period_doublings, CycleContinuationOptions,
};
use crate::continuation::{continue_branch, Branch, ContinuationOptions, Spectrum, Stop};
use crate::io::{read_npy_vec, TableFormat};
use crate::source::{SourceArgs, View};
use crate::Error;
use clap::Parser;
use std::path::PathBuf;

/// Follow the fixed points of a flow or map through one parameter by pseudo-arclength
/// continuation, through folds, and detect and locate folds, branch points, Hopf points (with ω
/// and the first Lyapunov coefficient), flips and Neimark–Sacker points.
///
/// Parameters: rate RNNs (presets, --W, rate checkpoints; flows or --map) `g`, `bias`, `input`;
/// ORGaNICs (presets, --organics N) `W_r`, `delta`, `b0`, `b1`, `sigma`, `tau_y`, `tau_a`, `z`;
/// other trained cells `input`.
///
/// Example: continuation --model models/organics-2d-bistable.toml --param W_r --from 3 --to 0.5 --out out/cont
///
/// Writes DIR/branch.csv + .parquet (param, x0 … x{n-1}, stable, n_unstable, max_re_eig or
/// max_abs_eig), DIR/bifurcations.csv (kind, param, x…, omega, l1) and DIR/diagram.png/.svg.
#[derive(Parser, Debug)]
#[command(name = "continuation", version, allow_negative_numbers = true)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Continue the rate RNN's discrete map h ← φ(W h + b) instead of its flow.
    #[arg(long)]
    map: bool,
    /// The parameter (see above).
    #[arg(long, required_unless_present = "path")]
    param: Option<String>,
    /// Two checkpoints of one architecture, A,B: continue along the straight path between their
    /// weights, θ(p) = (1 − p) θ_A + p θ_B (the parameter `path`; --from 0 --to 1 covers it).
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "A,B", conflicts_with_all = ["param", "param2", "checkpoint", "model", "w", "organics", "anru"])]
    path: Vec<PathBuf>,
    /// Start value of the parameter.
    #[arg(long, allow_hyphen_values = true)]
    from: f64,
    /// End value: the branch is followed from --from towards --to and stops when the parameter
    /// leaves the interval between them.
    #[arg(long, allow_hyphen_values = true)]
    to: f64,
    /// Input pattern for `input` (float64 .npy of length N) [default: W_in·1 for checkpoints,
    /// all ones otherwise].
    #[arg(long, value_name = "u.npy")]
    input_pattern: Option<PathBuf>,
    /// Seed of the random W_r direction of `delta`, and of the finder's starts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Random starts of the fixed-point finder when --x0 is not given (the point nearest the
    /// source's initial state is continued).
    #[arg(long, default_value_t = 32)]
    starts: usize,
    /// Initial arclength step [default: 1 % of |to − from|].
    #[arg(long)]
    ds: Option<f64>,
    /// Largest arclength step [default: 5 % of |to − from|].
    #[arg(long)]
    ds_max: Option<f64>,
    /// Most points on the branch.
    #[arg(long, default_value_t = 1000)]
    max_points: usize,
    /// Each point's spectrum: `full` (every eigenvalue, O(N³) per point), `nearest:K` (flows:
    /// the K eigenvalues nearest a shift right of the last point's rightmost one, by
    /// shift-invert Arnoldi, and any converged Ritz value right of them; `nearest` is
    /// nearest:8) or `auto` (nearest:8 above 64 states, full below). With nearest, stability
    /// and bifurcations are checked against full spectra at the ends and around every change
    /// of stability (the branch falls back to full where they disagree).
    #[arg(long, default_value = "auto")]
    spectrum: Spectrum,
    /// Also follow the limit cycle born at the first Hopf point across the interval (shooting,
    /// Floquet multipliers; cycle folds, period doubling, Neimark–Sacker): DIR/cycles.csv +
    /// .parquet (param, period, amplitude, stable, max_abs_multiplier, min_i/max_i) and
    /// DIR/cycle_events.csv.
    #[arg(long)]
    cycles: bool,
    /// Branch switching: at every branch point, the other branch through it is followed (both
    /// halves) → DIR/switched.csv + .parquet (branch_point, half, then the branch columns); with
    /// --cycles also at every period doubling of the cycle branch, the doubled cycles →
    /// DIR/cycles_doubled.csv + .parquet (event, then the cycle columns). Switched branches are drawn
    /// on the diagram.
    #[arg(long)]
    switch: bool,
    /// A second parameter: the fold and Hopf curves through the branch's folds and Hopf points
    /// in (--param, --param2), with cusp, Bogdanov–Takens and Bautin points → DIR/curves.csv +
    /// .parquet, DIR/codim2.csv, DIR/two_parameter.png/.svg (the branch is followed at --from2).
    #[arg(long, requires_all = ["from2", "to2"])]
    param2: Option<String>,
    /// The second parameter's start (where the one-parameter branch is followed).
    #[arg(long, allow_hyphen_values = true)]
    from2: Option<f64>,
    /// The second parameter's other end: the curves stop at the box [from, to] × [from2, to2].
    #[arg(long, allow_hyphen_values = true)]
    to2: Option<f64>,
    /// State unit drawn in the diagram (default: the norm ‖x‖).
    #[arg(long)]
    unit: Option<usize>,
    /// Output folder.
    #[arg(long, default_value = "out/continuation")]
    out: PathBuf,
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

fn run(a: Args) -> Result<(), Error> {
    // Check the output folder before computing.
    crate::error::ensure_finite("from", &[a.from])?;
    crate::error::ensure_finite("to", &[a.to])?;
    crate::io::check_out_dir(&a.out)?;
    let files = [
        "cycles.csv",
        "cycles.parquet",
        "cycle_events.csv",
        "switched.csv",
        "switched.parquet",
        "cycles_doubled.csv",
        "cycles_doubled.parquet",
        "branch.csv",
        "branch.parquet",
        "bifurcations.csv",
        "diagram.png",
        "diagram.svg",
        "curves.csv",
        "curves.parquet",
        "codim2.csv",
        "two_parameter.png",
        "two_parameter.svg",
    ];
    crate::io::check_outputs("out", &files.map(|f| a.out.join(f)))?;
    let view = if a.map { View::Map } else { View::Natural };
    let input = a
        .input_pattern
        .as_ref()
        .map(|p| read_npy_vec(p, "input-pattern", None))
        .transpose()?;
    let source = a.source.source()?;
    let param = a.param.clone().unwrap_or_else(|| "path".into());
    let two = match (&a.param2, a.from2, a.to2) {
        (Some(p2), Some(f2), Some(t2)) => {
            crate::error::ensure_finite("from2", &[f2])?;
            crate::error::ensure_finite("to2", &[t2])?;
            let (family, start) =
                source.parametrised2(view, &param, p2, input.clone(), a.seed, a.from, f2)?;
            Some((family, start, f2, t2))
        }
        _ => None,
    };
    let r = match &two {
        Some(_) => None,
        None if a.path.len() == 2 => Some(crate::source::checkpoint_path(
            &a.path[0], &a.path[1], a.from,
        )?),
        None if !a.path.is_empty() => {
            return Err(Error::invalid("path", "give two checkpoints: --path A,B"))
        }
        None => Some(source.parametrised(view, &param, input, a.seed, a.from)?),
    };
    let r = r
        .as_ref()
        .or(two.as_ref().map(|t| &t.1))
        .expect("one of them");
    let sys = r.system.as_ref();
    let n = sys.dim();
    if let Some(u) = a.unit {
        if u >= n {
            return Err(Error::invalid(
                "unit",
                format!("{u} (the system has {n} units)"),
            ));
        }
    }
    let mut opts = ContinuationOptions::new(a.from, a.to)
        .max_points(a.max_points)
        .spectrum(a.spectrum);
    if let Some(ds) = a.ds {
        opts = opts.ds(ds);
    }
    if let Some(m) = a.ds_max {
        opts = opts.ds_max(m);
    }
    // The start: --x0 as given (polished by Newton), or the fixed point the finder reaches
    // nearest the source's initial state at p = from.
    if a.starts == 0 {
        return Err(Error::invalid("starts", "need at least one start"));
    }
    let x0 = if a.source.x0.is_some() {
        r.x0.clone()
    } else {
        r.start_point(a.from, a.starts, a.seed)?
    };
    let bar = crate::io::progress_bar(a.quiet, a.max_points as u64, "{pos} points");
    let b2 = bar.clone();
    opts = opts.progress(move |k| b2.set_position(k as u64));
    let branch = continue_branch(sys, &x0, &opts)?;
    bar.finish_and_clear();
    if let Some((family, _, f2, t2)) = &two {
        use crate::continuation::two::{curves_from_branch, write_outputs, FoldCurveOptions};
        let opts = FoldCurveOptions::new((a.from, a.to), (*f2, *t2));
        write_outputs(
            &curves_from_branch(family, &branch, *f2, &opts)?,
            &a.out,
            a.quiet,
        )?;
    }
    let cycles = if a.cycles {
        let span = (a.from.min(a.to), a.from.max(a.to));
        cycles_from_hopf(sys, &branch, span, &CycleContinuationOptions::default())?
    } else {
        None
    };
    let switched = if a.switch {
        let (found, skipped) = crate::continuation::switch::switch_all(sys, &branch, &opts)?;
        for (k, why) in skipped {
            eprintln!("  branch point {k}: not switched ({why})");
        }
        found
    } else {
        vec![]
    };
    // With --switch, the cycle branch's period doublings too: the doubled cycles' branches.
    let doubled = match (&cycles, a.switch) {
        (Some(c), true) => {
            // Onwards in the direction the cycle branch went, to the end of the interval.
            let up = c.points.last().map_or(0.0, |q| q.p) >= c.points.first().map_or(0.0, |q| q.p);
            let o = CycleContinuationOptions {
                to: if up {
                    a.from.max(a.to)
                } else {
                    a.from.min(a.to)
                },
                ..CycleContinuationOptions::default()
            };
            let (found, skipped) = switch_all_period_doublings(sys, c, &o);
            for (k, why) in skipped {
                eprintln!("  period doubling {k}: not switched ({why})");
            }
            found
        }
        _ => vec![],
    };
    std::fs::create_dir_all(&a.out).map_err(|e| Error::file(&a.out, e))?;
    write(&a, &param, &branch, &switched)?;
    if !doubled.is_empty() {
        let t = doubled_table(&doubled);
        t.write(&a.out.join("cycles_doubled.csv"), TableFormat::Csv)?;
        t.write(&a.out.join("cycles_doubled.parquet"), TableFormat::Parquet)?;
    }
    if let Some(c) = &cycles {
        c.table()
            .write(&a.out.join("cycles.csv"), TableFormat::Csv)?;
        c.table()
            .write(&a.out.join("cycles.parquet"), TableFormat::Parquet)?;
        c.events_table()
            .write(&a.out.join("cycle_events.csv"), TableFormat::Csv)?;
    }
    if !a.quiet {
        eprintln!(
            "{}: {} points from {} = {} ({})",
            r.description,
            branch.points.len(),
            param,
            a.from,
            match branch.stop {
                Stop::Range => "left the range".to_string(),
                Stop::Points => "point budget spent".to_string(),
                Stop::Step { p } => format!("the step became too small at {} = {p}", param),
            }
        );
        for z in &branch.bifurcations {
            eprintln!(
                "  {:<15} {} = {:.12}{}{}",
                z.kind.label(),
                param,
                z.p,
                z.omega.map_or(String::new(), |w| format!(", ω = {w:.8}")),
                z.l1.map_or(String::new(), |l| format!(
                    ", l1 = {l:.6e} ({})",
                    if l < 0.0 {
                        "supercritical"
                    } else {
                        "subcritical"
                    }
                )),
            );
        }
        if let Some(c) = &cycles {
            let events: Vec<String> = c
                .events
                .iter()
                .map(|e| format!("{} at {:.6}", e.kind.name(), e.p))
                .collect();
            eprintln!(
                "  cycles: {} points ({}); {}",
                c.points.len(),
                c.stop,
                events.join(", ")
            );
        }
        for (k, d) in &doubled {
            eprintln!(
                "  doubled at period doubling {k}: {} points ({}) → cycles_doubled.csv/.parquet",
                d.points.len(),
                d.stop
            );
        }
        eprintln!(
            "wrote {0}/branch.csv, branch.parquet, bifurcations.csv, diagram.png/.svg{1}",
            a.out.display(),
            match (cycles.is_some(), a.switch) {
                (true, true) => ", cycles.csv/.parquet, cycle_events.csv, switched.csv/.parquet",
                (true, false) => ", cycles.csv/.parquet, cycle_events.csv",
                (false, true) => ", switched.csv/.parquet",
                (false, false) => "",
            }
        );
    }
    Ok(())
}

fn write(a: &Args, param: &str, b: &Branch, switched: &[(usize, Branch)]) -> Result<(), Error> {
    let (branch, bifurcations) = b.tables();
    branch.write(&a.out.join("branch.csv"), TableFormat::Csv)?;
    branch.write(&a.out.join("branch.parquet"), TableFormat::Parquet)?;
    bifurcations.write(&a.out.join("bifurcations.csv"), TableFormat::Csv)?;
    // The diagram: stable solid, unstable dashed, bifurcations marked.
    let y = |x: &[f64]| match a.unit {
        Some(u) => x[u],
        None => x.iter().map(|v| v * v).sum::<f64>().sqrt(),
    };
    let ylabel = a.unit.map_or("‖x‖".to_string(), |u| format!("x{u}"));
    let mut plot = b.diagram(&format!("Fixed points vs {}", param), &ylabel, y);
    for (i, (_, s)) in switched.iter().enumerate() {
        let labels = if i == 0 {
            ("switched branch, stable", "switched branch, unstable")
        } else {
            ("", "")
        };
        plot = s.draw(plot, labels, 3, &y);
    }
    plot.save(&a.out.join("diagram"))?;
    if a.switch {
        let t = crate::continuation::switch::switched_table(switched);
        t.write(&a.out.join("switched.csv"), TableFormat::Csv)?;
        t.write(&a.out.join("switched.parquet"), TableFormat::Parquet)?;
    }
    Ok(())
}

super::command!("continuation", FAER_SEQ = true);
