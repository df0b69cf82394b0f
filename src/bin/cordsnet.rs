//! `cordsnet`: CordsNet convolutional RNNs as dynamical systems — the layer table, matrix-free
//! spectra of convolution operators, the simulation protocol, and steady states with their
//! per-layer spectra. Argument parsing → `neurodyn::cordsnet` / `neurodyn::krylov` → exit code.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::cordsnet::analyze::AnalyzeOptions;
use neurodyn::cordsnet::conv::ConvOperator;
use neurodyn::cordsnet::fit::{CordsConfig, CordsProgress, CordsRun};
use neurodyn::cordsnet::train::StimulusProtocol;
use neurodyn::cordsnet::{Arch, CordsNet};
use neurodyn::data::Dataset;
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::krylov::{arnoldi, newton_krylov, LinearOperator, NewtonKrylovOptions};
use neurodyn::learn::{OptimizerKind, Schedule};
use neurodyn::model::Model;
use neurodyn::Error;
use std::path::PathBuf;

/// CordsNet (Soo, Battista, Radmard & Wang, NeurIPS 2024): convolutional RNNs analysed as
/// dynamical systems, matrix-free.
///
/// Examples: cordsnet info --arch r8
///           cordsnet spectrum --kernel K.npy --size 10 10 --m 300 --k 10 --out ritz.csv
///           cordsnet simulate --arch mnist --seed 1 --mnist 0 --out traj.csv
///           cordsnet steady-state --arch mnist --seed 1 --mnist 0 --out ss.csv
///           cordsnet train --out cords/
///           cordsnet analyze --checkpoint cords/checkpoint.safetensors --images 20 --out cords/analysis
#[derive(Parser, Debug)]
#[command(name = "cordsnet", version, allow_negative_numbers = true)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// Print a machine-readable summary on stdout (status, exit code, files written).
    #[arg(long, global = true)]
    json: bool,
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct Net {
    /// Architecture preset: r8 (ImageNet), mini (the spec's X11 wiring test), mnist (depth 4).
    #[arg(long, default_value = "mnist")]
    arch: String,
    /// Weights: safetensors with the original's state-dict names (weight-normed g/V pairs or
    /// effective tensors); without it, seeded random weights (--seed).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Gain of the random recurrent kernels.
    #[arg(long, default_value_t = 0.5)]
    gain: f64,
    /// The image: .npy [C, S, S] or [S, S] (already normalised).
    #[arg(long, conflicts_with = "mnist")]
    image: Option<PathBuf>,
    /// The image: test image K of the bundled MNIST slice (28 × 28, normalised with MNIST's mean
    /// and deviation; --arch mnist).
    #[arg(long)]
    mnist: Option<usize>,
}

impl Net {
    fn build(&self) -> Result<(CordsNet, Vec<f64>), Error> {
        let arch = Arch::preset(&self.arch)?;
        let net = match &self.weights {
            Some(p) => CordsNet::load(p, arch)?,
            None => CordsNet::random(arch, self.seed, self.gain)?,
        };
        let a = &net.arch;
        let n = a.img_channels * a.img_size * a.img_size;
        let img = match (&self.image, self.mnist) {
            (Some(p), _) => {
                let v: ndarray::ArrayD<f64> = neurodyn::io::read_float(p, "image")?;
                v.iter().copied().collect::<Vec<f64>>()
            }
            (None, Some(k)) => {
                if (a.img_channels, a.img_size) != (1, 28) {
                    return Err(Error::invalid(
                        "mnist",
                        format!(
                            "MNIST images are 1×28×28; --arch {} takes {}×{}×{}",
                            self.arch, a.img_channels, a.img_size, a.img_size
                        ),
                    ));
                }
                let d = neurodyn::data::Digits::bundled(false)?;
                if k >= d.len() {
                    return Err(Error::invalid(
                        "mnist",
                        format!("{k}: the bundled test slice has {} images", d.len()),
                    ));
                }
                let (m, s) = Dataset::Mnist.mean_std();
                d.images[k * 784..(k + 1) * 784]
                    .iter()
                    .map(|&p| (p as f64 / 255.0 - m) / s)
                    .collect()
            }
            (None, None) => vec![0.0; n],
        };
        if img.len() != n {
            return Err(Error::invalid(
                "image",
                format!("has {} values; the network takes {n}", img.len()),
            ));
        }
        Ok((net, img))
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train on MNIST / Fashion-MNIST: linear stage, PReLU anneal, ReLU fine-tune (spec A.8
    /// stages 4–5, A.7 loss), resumable.
    Train(TrainArgs),
    /// Dissect a trained network image by image: steady states (Newton–Krylov), the leading
    /// spectrum of each layer's D·K^rec there, the stimulus phase's largest Lyapunov exponent,
    /// and traces of chosen units; tables and figures into a folder.
    Analyze {
        /// A checkpoint written by `cordsnet train`.
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, value_enum, default_value = "mnist")]
        dataset: Dataset,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The first this many test images.
        #[arg(long, default_value_t = 10)]
        images: usize,
        #[arg(long, default_value_t = 20)]
        spont: usize,
        #[arg(long, default_value_t = 40)]
        stim: usize,
        /// Arnoldi steps per layer, Ritz values kept.
        #[arg(long, default_value_t = 60)]
        m: usize,
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// A unit to trace, `layer,channel,row,column` (repeatable; default: the centre unit of
        /// channel 0 in every layer).
        #[arg(long, value_parser = parse_unit)]
        unit: Vec<[usize; 4]>,
        #[arg(long, default_value = "out/cordsnet_analysis")]
        out: PathBuf,
    },
    /// The layer table and the parameter count.
    Info {
        #[arg(long, default_value = "r8")]
        arch: String,
    },
    /// Ritz values of the stride-1, zero-padded convolution given by a C × C × k × k float64
    /// kernel on an H × W grid (Arnoldi with modified Gram–Schmidt; residual per Ritz pair).
    Spectrum {
        /// The kernel (.npy, C × C × k × k, k odd).
        #[arg(long)]
        kernel: PathBuf,
        /// Grid height and width.
        #[arg(long, num_args = 2, value_names = ["H", "W"])]
        size: Vec<usize>,
        /// Arnoldi steps.
        #[arg(long, default_value_t = 300)]
        m: usize,
        /// Ritz values written (largest modulus first).
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output table: re, im, residual.
        #[arg(long, default_value = "out/ritz.csv")]
        out: PathBuf,
    },
    /// The protocol: spontaneous steps (x = 0), then stimulus steps; per step each layer's sum
    /// of rates and the logits.
    Simulate {
        #[command(flatten)]
        net: Net,
        #[arg(long, default_value_t = 100)]
        spont: usize,
        #[arg(long, default_value_t = 100)]
        stim: usize,
        #[arg(long, default_value = "out/cordsnet_traj.csv")]
        out: PathBuf,
    },
    /// The stimulus-driven steady state by Newton–Krylov (from the end of the protocol), and the
    /// leading eigenvalues of each layer's D·K^rec there (Arnoldi).
    SteadyState {
        #[command(flatten)]
        net: Net,
        /// Arnoldi steps per layer.
        #[arg(long, default_value_t = 60)]
        m: usize,
        /// Eigenvalues written per layer.
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value = "out/cordsnet_steady.csv")]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: Dataset,
    /// Folder with the four IDX files (default: the bundled slice, 2,000 / 500 images).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Architecture preset (28 × 28 input): mnist-wide (stem 16; 16, 16, 32, 32 channels) or
    /// mnist (half the width).
    #[arg(long, default_value = "mnist-wide")]
    arch: String,
    /// Epochs of the linear stage (slope 1, stimulus only; spec A.8 stage 4).
    #[arg(long, default_value_t = 1)]
    linear_epochs: usize,
    /// Epochs of the PReLU anneal (slope 1 − (e+1)/n; stage 5).
    #[arg(long, default_value_t = 2)]
    anneal_epochs: usize,
    /// Epochs of ReLU fine-tuning (slope 0; may be raised when resuming).
    #[arg(long, default_value_t = 1)]
    relu_epochs: usize,
    /// Steps of the spontaneous / stimulus / post-stimulus phases.
    #[arg(long, default_value_t = 10)]
    spont: usize,
    #[arg(long, default_value_t = 20)]
    stim: usize,
    #[arg(long, default_value_t = 10)]
    post: usize,
    /// Stimulus states in the ramp-weighted cross-entropy (the last R).
    #[arg(long, default_value_t = 30)]
    ramp: usize,
    /// Post-stimulus states in the stability term (the last W).
    #[arg(long, default_value_t = 10)]
    window: usize,
    /// `paper`: 100 / 100 / 100 steps (overrides --spont/--stim/--post).
    #[arg(long, value_parser = ["paper"])]
    protocol: Option<String>,
    /// Weight λ of the stability term.
    #[arg(long, default_value_t = 1e-3)]
    stability: f64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Global L2 gradient-norm clip (over the trained tensors).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Optimiser: adam, adamw (the original's) or sgd.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerKind,
    /// Weight decay (L2 for adam and sgd, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Learning-rate schedule per epoch: constant, plateau:P[:F], step:S[:G] or cosine:T[:MIN].
    #[arg(long, default_value = "constant")]
    schedule: String,
    /// Scale of the random recurrent kernels.
    #[arg(long, default_value_t = 0.5)]
    rec_gain: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    train_limit: Option<usize>,
    #[arg(long)]
    test_limit: Option<usize>,
    /// Refuse runs whose memory estimate exceeds this many bytes.
    #[arg(long)]
    max_memory: Option<u64>,
    /// Run folder: checkpoint.safetensors, config.toml, metrics.csv/.parquet,
    /// learning_curve.png/.svg (resumed when it holds the same run).
    #[arg(long, default_value = "out/cordsnet")]
    out: PathBuf,
}

fn parse_unit(s: &str) -> Result<[usize; 4], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|t| t.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{s}`: expected layer,channel,row,column"))?;
    <[usize; 4]>::try_from(v).map_err(|_| format!("`{s}`: expected four numbers"))
}

fn train(t: TrainArgs, quiet: bool) -> Result<(), Error> {
    let mut c = CordsConfig::new(t.dataset);
    c.arch = t.arch;
    c.data_dir = t.data_dir;
    c.linear_epochs = t.linear_epochs;
    c.anneal_epochs = t.anneal_epochs;
    c.relu_epochs = t.relu_epochs;
    c.protocol = StimulusProtocol {
        spont: t.spont,
        stim: t.stim,
        post: t.post,
        ramp: t.ramp,
        window: t.window,
        stability: t.stability,
    };
    if t.protocol.is_some() {
        c.protocol = StimulusProtocol {
            stability: t.stability,
            ..StimulusProtocol::paper()
        };
    }
    c.batch = t.batch;
    c.lr = t.lr;
    c.clip = t.clip;
    c.optimizer = t.optimizer;
    c.weight_decay = t.weight_decay;
    c.schedule = Schedule::parse(&t.schedule, "schedule")?;
    c.rec_gain = t.rec_gain;
    c.seed = t.seed;
    c.train_limit = t.train_limit;
    c.test_limit = t.test_limit;
    let mut run = CordsRun::open(c, &t.out, t.max_memory)?;
    let steps = run.steps_per_epoch();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((run.config.epochs() * steps) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position((run.done() * steps) as u64);
    let mut last = run.rows.last().map(|r| r.test_accuracy);
    let cfg = run.config.clone();
    let rows = run.train(&mut |p| match p {
        CordsProgress::Step { epoch, loss, .. } => {
            bar.inc(1);
            let acc = last.map_or(String::new(), |v| {
                format!(", test accuracy {:.1} %", 100.0 * v)
            });
            let slope = cfg.stage(epoch).0;
            bar.set_message(format!(
                "epoch {} (slope {slope:.2}) loss {loss:.4}{acc}",
                epoch + 1
            ));
        }
        CordsProgress::Epoch(r) => last = Some(r.test_accuracy),
    })?;
    bar.finish_and_clear();
    if !quiet {
        if let Some(r) = rows.last() {
            eprintln!(
                "epoch {} (slope {}): train loss {:.4}, test accuracy {:.2} %; wrote {}/checkpoint.safetensors, metrics.csv/.parquet, learning_curve.png/.svg",
                r.epoch,
                r.slope,
                r.train_loss,
                100.0 * r.test_accuracy,
                t.out.display()
            );
        }
    }
    Ok(())
}

fn run(a: Args) -> Result<(), Error> {
    match a.command {
        Cmd::Train(t) => train(t, a.quiet),
        Cmd::Analyze {
            checkpoint,
            dataset,
            data_dir,
            images,
            spont,
            stim,
            m,
            k,
            unit,
            out,
        } => {
            let net = CordsNet::load_checkpoint(&checkpoint)?;
            let d = dataset.load(data_dir.as_deref(), false)?;
            if images == 0 || images > d.len() {
                return Err(Error::invalid(
                    "images",
                    format!("{images}: the test split has {} images", d.len()),
                ));
            }
            let a2 = net.arch.clone();
            if (a2.img_channels, a2.img_size) != (1, d.rows) || d.rows != d.cols {
                return Err(Error::invalid(
                    "checkpoint",
                    format!(
                        "the network takes {}×{}×{} images; the data are 1×{}×{}",
                        a2.img_channels, a2.img_size, a2.img_size, d.rows, d.cols
                    ),
                ));
            }
            let mut units = unit;
            if units.is_empty() {
                // Default: the centre unit of channel 0 in every layer.
                let s = a2.sizes();
                units = (0..a2.depth())
                    .map(|l| [l, 0, s[l] / 2, s[l] / 2])
                    .collect();
            }
            for u in &units {
                net.unit_index(*u)?;
            }
            let opts = AnalyzeOptions {
                spont,
                stim,
                m,
                k,
                units: units.clone(),
                ..AnalyzeOptions::default()
            };
            std::fs::create_dir_all(&out).map_err(|e| Error::file(&out, e))?;
            let (mm, ss) = dataset.mean_std();
            let bar = if a.quiet {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(images as u64)
            };
            let mut results = vec![];
            for i in 0..images {
                let img: Vec<f64> = d.images[i * 784..(i + 1) * 784]
                    .iter()
                    .map(|&p| (p as f64 / 255.0 - mm) / ss)
                    .collect();
                results.push(net.analyze_image(&img, &opts)?);
                bar.inc(1);
            }
            bar.finish_and_clear();
            neurodyn::cordsnet::analyze::write_outputs(
                &net,
                &results,
                &d.labels[..images],
                &units,
                &out,
            )?;
            if !a.quiet {
                let acc = results
                    .iter()
                    .zip(&d.labels)
                    .filter(|(r, &y)| r.predicted_steady == y as usize)
                    .count();
                let conv = results.iter().filter(|r| r.converged).count();
                let lmax = results
                    .iter()
                    .map(|r| r.lyapunov)
                    .fold(f64::NEG_INFINITY, f64::max);
                eprintln!(
                    "{images} images: {conv} steady states converged, {acc} classified correctly at the steady state, largest stimulus-phase λ₁ = {lmax:.4} /ms; wrote {}/images.csv, spectra.csv, traces.csv, eigenvalues.png/.svg, steady_state.png/.svg, traces.png/.svg",
                    out.display()
                );
            }
            Ok(())
        }
        Cmd::Info { arch } => {
            let ar = Arch::preset(&arch)?;
            ar.validate()?;
            let s = ar.sizes();
            println!("layer  C_in  C    H=W  stride  units");
            println!(
                "stem   {:<5} {:<4} {:<4} 2+2     (static)",
                ar.img_channels,
                ar.stem,
                ar.stem_size()
            );
            for l in 0..ar.depth() {
                println!(
                    "{l:<6} {:<5} {:<4} {:<4} {:<7} {}",
                    ar.in_channels(l),
                    ar.channels[l],
                    s[l],
                    ar.strides[l],
                    ar.channels[l] * s[l] * s[l]
                );
            }
            println!("recurrent units {}, parameters {}", ar.units(), ar.params());
            Ok(())
        }
        Cmd::Spectrum {
            kernel,
            size,
            m,
            k,
            seed,
            out,
        } => {
            let fmt = TableFormat::from_path(&out)?;
            neurodyn::io::check_output("out", &out)?;
            let kr: ndarray::Array4<f64> = neurodyn::io::read_float(&kernel, "kernel")?;
            let (c, c2, kh, kw) = kr.dim();
            if c != c2 || kh != kw {
                return Err(Error::invalid(
                    "kernel",
                    format!("is {c}×{c2}×{kh}×{kw}; need C×C×k×k"),
                ));
            }
            let op = ConvOperator::new(kr.iter().copied().collect(), c, kh, size[0], size[1])?;
            let t0 = std::time::Instant::now();
            let r = arnoldi(&op, m, seed)?;
            let k = k.min(r.values.len());
            let mut t = Table::new();
            t.push(
                "re",
                Column::F64(r.values[..k].iter().map(|v| v.re).collect()),
            );
            t.push(
                "im",
                Column::F64(r.values[..k].iter().map(|v| v.im).collect()),
            );
            t.push("residual", Column::F64(r.residuals[..k].to_vec()));
            t.write(&out, fmt)?;
            if !a.quiet {
                eprintln!(
                    "{} Arnoldi steps on N = {} in {:.2} s; |λ_max| = {:.6} (residual {:.1e}); wrote {}",
                    r.steps,
                    op.dim(),
                    t0.elapsed().as_secs_f64(),
                    r.values[0].norm(),
                    r.residuals[0],
                    out.display()
                );
            }
            Ok(())
        }
        Cmd::Simulate {
            net,
            spont,
            stim,
            out,
        } => {
            let fmt = TableFormat::from_path(&out)?;
            neurodyn::io::check_output("out", &out)?;
            let (net, img) = net.build()?;
            let run = net.run(&img, spont, stim)?;
            let mut t = Table::new();
            t.push(
                "step",
                Column::I64((1..=run.layer_sums.len() as i64).collect()),
            );
            for l in 0..net.arch.depth() {
                t.push(
                    format!("sum_r{l}"),
                    Column::F64(run.layer_sums.iter().map(|s| s[l]).collect()),
                );
            }
            t.write(&out, fmt)?;
            if !a.quiet {
                eprintln!(
                    "logits after {} steps: {:?}; wrote {}",
                    spont + stim,
                    run.logits,
                    out.display()
                );
            }
            Ok(())
        }
        Cmd::SteadyState { net, m, k, out } => {
            let fmt = TableFormat::from_path(&out)?;
            neurodyn::io::check_output("out", &out)?;
            let (net, img) = net.build()?;
            let start = net.run(&img, 0, 100)?;
            let h = net.stem_forward(&img)?;
            let flow = net.flow(&h);
            let nk = newton_krylov(&flow, &start.state, &NewtonKrylovOptions::default())?;
            if !nk.converged {
                return Err(Error::failed(
                    "steady-state",
                    format!(
                        "Newton–Krylov stopped at ‖f‖∞ = {:.2e} after {} steps",
                        nk.residual, nk.newton_steps
                    ),
                ));
            }
            // Per layer: D·K^rec at the steady state (D = active units).
            let (mut layer, mut re, mut im, mut res) = (vec![], vec![], vec![], vec![]);
            for (l, sp) in net.layer_spectra(&nk.x, m, k)?.iter().enumerate() {
                for (v, e) in sp {
                    layer.push(l as i64);
                    re.push(v.re);
                    im.push(v.im);
                    res.push(*e);
                }
            }
            let mut t = Table::new();
            t.push("layer", Column::I64(layer));
            t.push("re", Column::F64(re));
            t.push("im", Column::F64(im));
            t.push("residual", Column::F64(res));
            t.write(&out, fmt)?;
            if !a.quiet {
                eprintln!(
                    "steady state of {} units: ‖f‖∞ = {:.1e} after {} Newton steps ({} JVPs); logits {:?}; wrote {} (eigenvalues of D·K_rec per layer)",
                    flow.dim(),
                    nk.residual,
                    nk.newton_steps,
                    nk.jvps,
                    net.logits(&nk.x),
                    out.display()
                );
            }
            Ok(())
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // One-shot commands write all their files or none; a training run keeps every epoch.
    if !matches!(args.command, Cmd::Train(_)) {
        neurodyn::io::stage_outputs();
    }
    let json = args.json;
    neurodyn::io::exit_with(run(args), json)
}
