//! `lyapunov`: Lyapunov spectra of any flow or map the resolver knows (Benettin/QR), and sweeps
//! over the gain g. Argument parsing → `crate::source` → `lyapunov_system` → writing.

use crate::io::{progress_bar, suffixed, Column, TableFormat};
use crate::lyapunov::report::{
    batch_rows, check_device, gain_plots, summarise_networks, summary_table, summary_text, Reorth,
    ReportArgs,
};
use crate::lyapunov::{lyapunov_system, InitialFrame, LyapunovOptions};
use crate::model::Activation;
use crate::source::{Resolved, Source, SourceArgs, View};
use crate::Error;
use clap::Parser;
use std::path::PathBuf;

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
pub struct Args {
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
    /// With --sweep-g or --checkpoints: only block i of n of the networks (0-based; e.g. a SLURM
    /// array task). The shards' tables, concatenated in shard order, are the whole table.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Reference gain of the given W for --sweep-g (default: the preset's g, or 1 for a W file).
    #[arg(long)]
    g0: Option<f64>,
    /// Output table (.csv or .parquet): one exponent per row, or one g per row with --sweep-g.
    #[arg(long, default_value = "out/spectrum.csv")]
    out: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
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
        history_every: args.report.history_every(),
        ..Default::default()
    })
}

fn run(args: Args) -> Result<(), Error> {
    let format = TableFormat::from_path(&args.out)?;
    crate::io::check_output("out", &args.out)?;
    args.report.check(args.steps)?;
    if args.flow || args.euler {
        crate::error::ensure_positive("dt", args.dt)?;
    }
    let source = source(&args)?;
    let view = view(&args);
    let probe = source.resolve(view, 1.0)?;
    let is_map = probe.system.is_map() && !args.euler;
    let unit = if is_map { "per step" } else { "per unit time" };
    let batch = args.sweep_g.is_some() || !args.checkpoints.is_empty();
    check_device(args.device == "gpu", batch, args.transient, args.seed)?;
    // Many networks, one summary row each: the gains of a sweep, or a list of checkpoints.
    if args.shard.is_some() && !batch {
        return Err(Error::invalid(
            "shard",
            "only with --sweep-g or --checkpoints (one network is not split)",
        ));
    }
    if let Some((key, values)) = batch_rows(args.sweep_g.as_deref(), &args.checkpoints)? {
        let (si, sn) = crate::io::parse_shard(&args.shard)?;
        if sn > values.len() {
            return Err(Error::invalid(
                "shard",
                format!("{si}/{sn}: more shards than the {} networks", values.len()),
            ));
        }
        let block = crate::io::shard_jobs(values.len(), si, sn);
        let (key, values) = (key.select(block.clone()), values[block].to_vec());
        let is_gain = matches!(key, Column::F64(_));
        let g0 = match (is_gain, args.g0) {
            (true, None) => source.reference_gain()?,
            (g, asked) => asked.filter(|_| g).unwrap_or(1.0),
        };
        crate::error::ensure_positive("g0", g0)?;
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
            r.check_input_len(args.warmup + args.transient + args.steps)?;
            Ok(r)
        };
        let quiet = args.quiet || args.device == "gpu";
        let bar = progress_bar(
            quiet,
            values.len() as u64,
            "{pos}/{len} networks ({eta} left)",
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
        if args.report.plot && is_gain {
            let (lmax, dky) = gain_plots(&rows, unit);
            lmax.save(&suffixed(&args.out, "lambda_max"))?;
            dky.save(&suffixed(&args.out, "dky"))?;
        }
        if !args.quiet {
            let device = ["CPU", "GPU (f32)"][usize::from(args.device == "gpu")];
            eprintln!("{}", summary_text(&rows, if is_gain { "g" } else { "#" }));
            eprintln!(
                "{} networks on the {device}; wrote {}",
                rows.len(),
                args.out.display()
            );
        }
        return Ok(());
    }

    probe.check_input_len(args.warmup + args.transient + args.steps)?;
    let total = (args.transient + args.steps) as u64;
    let bar = progress_bar(args.quiet, total, "{pos}/{len} steps ({eta} left)");
    let b2 = bar.clone();
    let opts = options(&args, &probe)
        .blocks(args.report.blocks.unwrap_or(0))
        .record_local(args.report.local.is_some())
        .progress(move |s: usize| {
            if s % 16 == 0 || s as u64 == total {
                b2.set_position(s as u64)
            }
        });
    let s = lyapunov_system(&probe.system, &probe.x0, &opts)?;
    bar.finish_and_clear();
    let brute = if args.report.brute_force {
        Some(crate::lyapunov::lyapunov_two_trajectories(
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
    let clv = args.report.covariant(&probe.system, &probe.x0, &opts)?;
    args.report
        .write(&s, unit, brute, clv.as_ref(), &args.out)?;
    if !args.quiet {
        eprintln!(
            "{}\nwrote {}",
            s.summary(unit, is_map, brute),
            args.out.display()
        );
    }
    Ok(())
}

super::command!("lyapunov");
