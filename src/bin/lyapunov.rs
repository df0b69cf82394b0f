//! `lyapunov`: Lyapunov spectra of any flow or map the resolver knows (Benettin/QR), and sweeps
//! over the gain g. Argument parsing → `neurodyn::source` → `lyapunov_system` → writing.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::io::{Column, TableFormat};
use neurodyn::lyapunov::report::{gain_plots, summarise_networks, summary_table, Reorth};
use neurodyn::lyapunov::{lyapunov_system, InitialFrame, LyapunovOptions};
use neurodyn::model::Activation;
use neurodyn::source::{Resolved, Source, SourceArgs, View};
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
#[command(name = "lyapunov", version, allow_negative_numbers = true)]
struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// The rate RNN's discrete map h ← φ(W h + b) with this φ: tanh, relu, sigmoid, softplus,
    /// linear or gamma:N:S (the default view of rate networks, with the preset's φ).
    #[arg(long, value_name = "PHI", conflicts_with_all = ["flow", "euler", "activation"])]
    map: Option<Activation>,
    /// The flow itself, integrated with RK4 at step --dt (rate RNNs, ORGaNICs, rate checkpoints).
    #[arg(long)]
    flow: bool,
    /// The forward-Euler map of the flow with step --dt.
    #[arg(long, conflicts_with = "flow")]
    euler: bool,
    /// Where --sweep-g and --checkpoints run: cpu (f64, default) or gpu (f32 WGSL, all networks at
    /// once; maps h ← φ(W h + b) without input, e.g. `--map tanh` on a W or preset).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    device: String,
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
    /// Re-orthonormalise every this many steps, or `auto` (adaptive: the frame's predicted
    /// conditioning kept below 10^8; `auto:D` for 10^D) — the same exponents to ~1e-8 with far
    /// fewer QR factorisations on non-chaotic systems.
    #[arg(long, default_value = "1", value_parser = Reorth::parse)]
    reorth: Reorth,
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
    /// Spectra of several training checkpoints (comma-separated safetensors files), one row
    /// each, e.g. the runs of a seed sweep; with --device gpu all at once (maps h ← φ(W h + b):
    /// gamma-cell checkpoints, or rate checkpoints with --map).
    #[arg(long, value_delimiter = ',', value_name = "FILES", conflicts_with_all = ["sweep_g", "checkpoint", "model", "w", "organics", "anru"])]
    checkpoints: Vec<PathBuf>,
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
    /// Confidence intervals: split the accumulated QRs into this many blocks and add columns
    /// `ci_lo`, `ci_hi` (95 %, Student's t over the block averages) and `block_sd`.
    #[arg(long, default_value_t = 0)]
    blocks: usize,
    /// Also write the local (finite-time) exponents of every QR interval to this table (time,
    /// lambda0, …), and add the columns `local_sd` (their standard deviation) to the output.
    #[arg(long)]
    local: Option<PathBuf>,
    /// Also compute λ₁ by the two-trajectory method (a neighbour at distance 1e-8, renormalised
    /// every step) over the same warm-up and steps: column `lambda1_two_trajectories`.
    #[arg(long)]
    brute_force: bool,
    /// Draw the spectrum and its convergence (or λ_max and D_KY versus g) as PNG + SVG.
    #[arg(long)]
    plot: bool,
    /// No progress bar or summary.
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

/// The view of the source this invocation asks for.
fn view(args: &Args) -> View {
    if args.flow {
        View::Natural
    } else if args.euler {
        View::Euler(args.dt)
    } else if args.map.is_some() {
        View::Map
    } else {
        View::PreferMap
    }
}

/// The source, with `--map PHI` as the rate RNN's activation.
fn source(args: &Args) -> Result<Source, Error> {
    let mut sa = args.source.clone();
    if let Some(phi) = args.map {
        sa.activation = Some(phi);
    }
    sa.source()
}

/// Options for a resolved system: maps step in units of their own time step (1, or the Euler dt),
/// flows in RK4 steps of --dt.
fn options(args: &Args, r: &Resolved) -> LyapunovOptions {
    args.reorth.apply(LyapunovOptions {
        k: args.k,
        warmup: args.warmup,
        transient: args.transient,
        steps: args.steps,
        dt: r.map_dt.unwrap_or(args.dt),
        frame: match (args.seed, args.source.anru.is_some()) {
            (Some(s), _) => InitialFrame::Random(s),
            (None, true) => InitialFrame::Random(0),
            (None, false) => InitialFrame::Identity,
        },
        // Running estimates only when something reads them (bounded memory on long runs).
        history_every: if args.history.is_some() || args.plot {
            // (--every 0 is refused in `run` before this.)
            args.every
        } else {
            0
        },
        ..Default::default()
    })
}

/// Checks that an input-driven map has input for every step.
fn check_input(args: &Args, r: &Resolved) -> Result<(), Error> {
    if let Some(len) = r.input_len {
        let need = args.warmup + args.transient + args.steps;
        if len < need {
            return Err(Error::invalid(
                "inputs",
                format!("has {len} steps but warmup + transient + steps = {need}"),
            ));
        }
    }
    Ok(())
}

fn parse_gains(s: &str) -> Result<Vec<f64>, Error> {
    let bad = || {
        Error::invalid(
            "sweep-g",
            format!("`{s}`: give a comma list (0.5,1,2) or start:stop:count (0.5:3:11)"),
        )
    };
    let v: Vec<f64> = if s.contains(':') {
        neurodyn::io::parse_range(s, "sweep-g", 2)?
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
    neurodyn::io::check_output("out", &args.out)?;
    if let Some(h) = &args.history {
        neurodyn::io::check_output("history", h)?;
    }
    if let Some(h) = &args.local {
        neurodyn::io::check_output("local", h)?;
        TableFormat::from_path(h)?;
    }
    if args.blocks == 1 || args.blocks > args.steps.max(1) {
        return Err(Error::invalid(
            "blocks",
            format!(
                "{}: need at least 2 blocks and no more than --steps ({})",
                args.blocks, args.steps
            ),
        ));
    }
    if let Some(h) = &args.history {
        TableFormat::from_path(h).map_err(|_| {
            Error::invalid("history", format!("{}: use .csv or .parquet", h.display()))
        })?;
    }
    if args.every == 0 && (args.history.is_some() || args.plot) {
        return Err(Error::invalid(
            "every",
            "must be at least 1 (a running estimate every this many QRs)",
        ));
    }
    if (args.flow || args.euler) && !(args.dt > 0.0 && args.dt.is_finite()) {
        return Err(Error::invalid(
            "dt",
            format!("{} (must be positive)", args.dt),
        ));
    }
    let source = source(&args)?;
    let view = view(&args);
    let probe = source.resolve(view, 1.0)?;
    let is_map = probe.system.is_map() && !args.euler;
    let unit = if is_map { "per step" } else { "per unit time" };

    if args.device == "gpu" && args.sweep_g.is_none() && args.checkpoints.is_empty() {
        return Err(Error::invalid(
            "device",
            "--device gpu computes many spectra at once: give --sweep-g or --checkpoints",
        ));
    }
    if args.device == "gpu" && (args.transient > 0 || args.seed.is_some()) {
        return Err(Error::invalid(
            if args.transient > 0 {
                "transient"
            } else {
                "seed"
            },
            "the GPU spectra start from the identity frame with no transient (use --device cpu)",
        ));
    }
    // Many networks, one summary row each: the gains of a sweep, or a list of checkpoints.
    let batch: Option<(Column, Vec<f64>)> = if let Some(gs) = &args.sweep_g {
        let gains = parse_gains(gs)?;
        Some((Column::F64(gains.clone()), gains))
    } else if !args.checkpoints.is_empty() {
        let names = args
            .checkpoints
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let index = (0..args.checkpoints.len()).map(|i| i as f64).collect();
        Some((Column::Str(names), index))
    } else {
        None
    };
    if let Some((key, values)) = batch {
        let is_gain = matches!(key, Column::F64(_));
        let g0 = match (is_gain, args.g0) {
            (false, _) => 1.0,
            (true, Some(g)) => g,
            (true, None) => source.reference_gain()?,
        };
        if !(g0 > 0.0) {
            return Err(Error::invalid("g0", format!("{g0} (must be positive)")));
        }
        // The network of row value v: the source at gain v, or checkpoint number v.
        let resolve = |v: f64| -> Result<Resolved, Error> {
            let r = if is_gain {
                source.resolve(view, v / g0)?
            } else {
                Source::Checkpoint {
                    path: args.checkpoints[v as usize].clone(),
                    x0: args.source.x0.clone(),
                }
                .resolve(view, 1.0)?
            };
            check_input(&args, &r)?;
            Ok(r)
        };
        let bar = bar(
            args.quiet || args.device == "gpu",
            values.len() as u64,
            "networks",
        );
        let rows = summarise_networks(
            &values,
            args.device == "gpu",
            |v| {
                let r = resolve(v)?;
                let opts = options(&args, &r);
                Ok((r.system, r.x0, opts))
            },
            || bar.inc(1),
        )?;
        bar.finish_and_clear();
        summary_table(if is_gain { "g" } else { "checkpoint" }, key, &rows)
            .write(&args.out, format)?;
        if args.plot && is_gain {
            let st = stem(&args.out);
            let (lmax, dky) = gain_plots(&rows, unit);
            lmax.save(&st.with_file_name(format!("{}_lambda_max", file_stem(&st))))?;
            dky.save(&st.with_file_name(format!("{}_dky", file_stem(&st))))?;
        }
        if !args.quiet {
            eprintln!(
                "{:>8} {:>12} {:>12} {:>8} {:>10}",
                if is_gain { "g" } else { "#" },
                "λ_max",
                "Σλ",
                "D_KY",
                "entropy"
            );
            for r in &rows {
                eprintln!(
                    "{:>8.3} {:>12.5} {:>12.5} {:>8.3} {:>10.5}",
                    r.value, r.lambda_max, r.sum, r.kaplan_yorke, r.entropy
                );
            }
            eprintln!(
                "{} networks on the {}; wrote {}",
                rows.len(),
                if args.device == "gpu" {
                    "GPU (f32)"
                } else {
                    "CPU"
                },
                args.out.display()
            );
        }
        return Ok(());
    }

    check_input(&args, &probe)?;
    let total = (args.transient + args.steps) as u64;
    let bar = bar(args.quiet, total, "steps");
    let b2 = bar.clone();
    let opts = options(&args, &probe)
        .blocks(args.blocks)
        .record_local(args.local.is_some())
        .progress(move |s: usize| {
            if s % 16 == 0 || s as u64 == total {
                b2.set_position(s as u64)
            }
        });
    let s = lyapunov_system(&probe.system, &probe.x0, &opts)?;
    bar.finish_and_clear();
    let brute = if args.brute_force {
        Some(neurodyn::lyapunov::lyapunov_two_trajectories(
            &probe.system,
            &probe.x0,
            opts.dt,
            args.warmup + args.transient,
            args.steps,
            1e-8,
            1,
        )?)
    } else {
        None
    };
    s.table(unit, args.bits, brute).write(&args.out, format)?;
    if let Some(path) = &args.local {
        s.over_time_table(true)
            .write(path, TableFormat::from_path(path)?)?;
    }
    if let Some(h) = &args.history {
        s.over_time_table(false)
            .write(h, TableFormat::from_path(h)?)?;
    }
    if args.plot {
        let st = stem(&args.out);
        let (spectrum, conv) = s.plots(unit);
        spectrum.save(&st)?;
        conv.save(&st.with_file_name(format!("{}_convergence", file_stem(&st))))?;
    }
    if !args.quiet {
        eprintln!(
            "λ_max = {:.6e} {unit}; Σλ = {:.10}; {} QR factorisations",
            s.max(),
            s.sum(),
            s.factorizations
        );
        if let Some(ci) = s.confidence(0.95) {
            eprintln!(
                "λ_max 95 % interval from {} blocks: [{:.6e}, {:.6e}]",
                s.block_exponents.len(),
                ci[0].0,
                ci[0].1
            );
        }
        if let Some(r) = brute {
            eprintln!(
                "λ₁ by two nearby trajectories = {r:.6e} {unit} (QR: {:.6e}, difference {:.1e})",
                s.max(),
                r - s.max()
            );
        }
        if let Some(r) = s.sum_reference {
            let what = if is_map {
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
    neurodyn::io::stage_outputs();
    let args = Args::parse();
    let json = args.json;
    neurodyn::io::exit_with(run(args), json)
}
