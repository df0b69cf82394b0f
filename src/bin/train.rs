//! `train`: fit a recurrent circuit on a task and write a checkpoint that the analysis binaries load.
//! A thin shell over `neurodyn::train`.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::plot::LinePlot;
use neurodyn::train::checkpoint;
use neurodyn::train::gpu::GpuTrainer;
use neurodyn::train::net::{AnyCell, SeqNet};
use neurodyn::train::real::Real;
use neurodyn::train::{train_step, Adam, CellSpec, DataSource, Task};
use neurodyn::Error;
use std::path::{Path, PathBuf};

/// Train a recurrent cell (rate, gamma, ANRU, ORGaNICs) by BPTT + Adam, on the CPU or a GPU.
///
/// The Dale rate RNN of Kim, Li & Sejnowski on Go/NoGo, XOR
/// or the context-dependent (Mante) task, or any cell (rate, gamma, anru, organics) on sequential or
/// permuted-sequential digits, on the CPU (float64 or float32) or on a GPU through Vulkan compute
/// shaders. Every epoch (--steps minibatches) is evaluated on held-out trials; metrics
/// go to metrics.csv/.parquet and learning_curve.png/.svg, the network to checkpoint.safetensors
/// (loadable by `fixed-points --checkpoint` and `lyapunov --checkpoint`). Rerunning with the same
/// --out resumes after the last completed epoch, bit for bit.
///
/// Examples: train --task go-nogo --cell rate --device cpu --out run/
///           train --task seq-digits --cell organics --hidden 32 --pool 4 --out digits/
#[derive(Parser, Debug)]
#[command(name = "train", version)]
struct Args {
    /// Task: go-nogo, xor, mante (spiking.md §B.3), seq-digits or perm-digits (one pixel per step).
    #[arg(long, default_value = "go-nogo")]
    task: String,
    /// Cell: rate, gamma, anru or organics.
    #[arg(long, default_value = "rate")]
    cell: String,
    /// cpu or gpu (wgpu/Vulkan compute shaders, float32; every cell).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Precision: f64 (the CPU reference) or f32 [default: f64 on the CPU; the GPU trains in f32].
    #[arg(long)]
    precision: Option<String>,
    /// Hidden units N [default: 40 on the rate tasks, 32 on digits].
    #[arg(long)]
    hidden: Option<usize>,
    /// ANRU controller units M per neuron.
    #[arg(long, default_value_t = 10)]
    controller: usize,
    /// Rate-cell nonlinearity (tanh, relu, sigmoid) [default: sigmoid on the rate tasks, tanh on digits].
    #[arg(long)]
    phi: Option<String>,
    /// Epochs (each --steps minibatches, then an evaluation).
    #[arg(long, default_value_t = 16)]
    epochs: usize,
    /// Minibatches per epoch.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Trials per minibatch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// ORGaNICs: keep the largest singular value of W_r at most this (projected after every
    /// step; organics.md's stability guarantee holds at ≤ 1). CPU only.
    #[arg(long)]
    wr_max_sv: Option<f64>,
    /// Clip the gradient's global norm to this value.
    #[arg(long)]
    clip: Option<f64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder with the four MNIST IDX files (.gz or not) [default: the bundled 2000/500 slice].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Average-pool the digits by this factor (4: 7 × 7 images, 49 steps).
    #[arg(long, default_value_t = 1)]
    pool: usize,
    /// Held-out trials (test images) per evaluation.
    #[arg(long, default_value_t = 200)]
    eval: usize,
    /// Output folder.
    #[arg(long, default_value = "out/run")]
    out: PathBuf,
    #[arg(long, short)]
    quiet: bool,
}

/// Where the network lives while it trains.
enum Trainer {
    Cpu64(SeqNet<f64, AnyCell>, Adam),
    Cpu32(SeqNet<f32, AnyCell>, Adam),
    Gpu(Box<std::cell::RefCell<GpuTrainer>>, f64),
}

impl Trainer {
    fn step(&mut self, src: &DataSource, it: usize, a: &Args) -> Result<f64, Error> {
        fn cpu<F: Real>(
            net: &mut SeqNet<F, AnyCell>,
            adam: &mut Adam,
            src: &DataSource,
            it: usize,
            a: &Args,
        ) -> Result<f64, Error> {
            Ok(train_step(net, adam, &src.batch::<F>(it, a.batch, a.seed)?, a.clip)?.loss)
        }
        match self {
            Trainer::Cpu64(n, ad) => cpu(n, ad, src, it, a),
            Trainer::Cpu32(n, ad) => cpu(n, ad, src, it, a),
            Trainer::Gpu(g, lr) => {
                let loss = g
                    .get_mut()
                    .train_step(&src.batch::<f32>(it, a.batch, a.seed)?, *lr)?
                    .0;
                if !loss.is_finite() {
                    return Err(Error::invalid("lr", "the loss became non-finite"));
                }
                Ok(loss)
            }
        }
    }

    fn evaluate(&self, src: &DataSource, a: &Args) -> Result<(f64, f64), Error> {
        let seed = a.seed ^ 0x5eed;
        match self {
            Trainer::Cpu64(n, _) => src.evaluate(n, a.eval, seed),
            Trainer::Cpu32(n, _) => src.evaluate(n, a.eval, seed),
            // Digits: evaluated on the device, only losses and hits come back.
            Trainer::Gpu(g, _) if src.task.is_digits() => {
                let (mut loss, mut hits, mut k) = (0.0, 0usize, 0usize);
                let mut g = g.borrow_mut();
                for b in src.test_batches::<f32>(a.eval)? {
                    let (l, h) = g.evaluate(&b)?;
                    loss += l * b.b as f64;
                    hits += h;
                    k += b.b;
                }
                Ok((loss / k as f64, hits as f64 / k as f64))
            }
            // The rate tasks' criteria need the output trajectories: evaluated on the CPU.
            Trainer::Gpu(g, _) => src.evaluate(&g.borrow().download()?.0, a.eval, seed),
        }
    }

    fn save(&self, path: &Path) -> Result<(), Error> {
        match self {
            Trainer::Cpu64(n, ad) => checkpoint::save(n, ad, path),
            Trainer::Cpu32(n, ad) => checkpoint::save(n, ad, path),
            Trainer::Gpu(g, _) => {
                let (n, ad) = g.borrow().download()?;
                checkpoint::save(&n, &ad, path)
            }
        }
    }

    fn sizes(&self) -> (usize, usize) {
        use neurodyn::train::cell::Cell;
        match self {
            Trainer::Cpu64(n, _) => (Cell::<f64>::hidden(&n.cell), Cell::<f64>::n_in(&n.cell)),
            Trainer::Cpu32(n, _) => (Cell::<f32>::hidden(&n.cell), Cell::<f32>::n_in(&n.cell)),
            Trainer::Gpu(..) => (0, 0),
        }
    }
}

fn run(a: Args) -> Result<(), Error> {
    let task: Task = a.task.parse()?;
    let mut spec = CellSpec::default_for(&a.cell, task);
    if let Some(h) = a.hidden {
        if h == 0 {
            return Err(Error::invalid("hidden", "must be at least 1"));
        }
        spec.hidden = h;
    }
    spec.controller = a.controller;
    spec.pool = a.pool;
    spec.wr_max_sv = a.wr_max_sv;
    if let Some(p) = &a.phi {
        spec.phi = neurodyn::train::cell::RatePhi::parse(p)?;
    }
    if !["rate", "gamma", "anru", "organics"].contains(&a.cell.as_str()) {
        return Err(Error::invalid(
            "cell",
            format!("unknown cell `{}` (rate, gamma, anru or organics)", a.cell),
        ));
    }
    let gpu = match a.device.as_str() {
        "cpu" => false,
        "gpu" => true,
        d => return Err(Error::invalid("device", format!("`{d}`: cpu or gpu"))),
    };
    let f32_cpu = match a.precision.as_deref() {
        None | Some("f64") if !gpu => false,
        Some("f64") => {
            return Err(Error::invalid(
                "precision",
                "f64 with --device gpu: the GPU trainer works in f32",
            ))
        }
        None | Some("f32") => true,
        Some(p) => return Err(Error::invalid("precision", format!("`{p}`: f64 or f32"))),
    };
    if a.batch == 0 || a.steps == 0 || a.epochs == 0 || a.eval == 0 {
        return Err(Error::invalid(
            "batch",
            "batch, steps, epochs and eval must be at least 1",
        ));
    }
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        return Err(Error::invalid("lr", format!("{} (must be positive)", a.lr)));
    }
    if let Some(c) = a.clip {
        if !(c > 0.0 && c.is_finite()) {
            return Err(Error::invalid("clip", format!("{c} (must be positive)")));
        }
    }
    let src = DataSource::new(task, a.data_dir.as_deref(), a.pool, a.seed)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::file(&a.out, e))?;
    let ckpt = a.out.join("checkpoint.safetensors");
    let metrics_path = a.out.join("metrics.csv");
    // The run's configuration as TOML (optional settings only when given).
    let quote = |v: &str| toml::Value::String(v.to_string()).to_string();
    let mut config = format!(
        "task = {}\ncell = {}\ndevice = {}\nprecision = {}\nhidden = {}\ncontroller = {}\nphi = {}\nepochs = {}\nsteps = {}\nbatch = {}\nlr = {:?}\nseed = {}\npool = {}\neval = {}\n",
        quote(task.name()),
        quote(&a.cell),
        quote(&a.device),
        quote(if f32_cpu { "f32" } else { "f64" }),
        spec.hidden,
        spec.controller,
        quote(spec.phi.name()),
        a.epochs,
        a.steps,
        a.batch,
        a.lr,
        a.seed,
        a.pool,
        a.eval
    );
    if let Some(c) = a.clip {
        config += &format!("clip = {c:?}\n");
    }
    if let Some(d) = &a.data_dir {
        config += &format!("data_dir = {}\n", quote(&d.display().to_string()));
    }
    if let Some(m) = a.wr_max_sv {
        config += &format!("wr_max_sv = {m:?}\n");
    }
    let config_path = a.out.join("config.toml");
    let resume = ckpt.exists() && metrics_path.exists();
    // Resume: same configuration (epochs may grow), checkpoint and metrics present.
    let mut rows: Vec<(i64, i64, f64, f64)> = vec![];
    if resume {
        let old = std::fs::read_to_string(&config_path).unwrap_or_default();
        let strip = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("epochs"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if strip(&old) != strip(&config) {
            return Err(Error::invalid(
                "out",
                format!("{} holds a run with another configuration", a.out.display()),
            ));
        }
        let text =
            std::fs::read_to_string(&metrics_path).map_err(|e| Error::file(&metrics_path, e))?;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if let (Some(e), Some(i), Some(l), Some(acc)) =
                (f.first(), f.get(1), f.get(2), f.get(3))
            {
                if let (Ok(e), Ok(i), Ok(l), Ok(acc)) =
                    (e.parse(), i.parse(), l.parse(), acc.parse())
                {
                    rows.push((e, i, l, acc));
                }
            }
        }
    }
    let mut trainer = if gpu {
        let (net, adam) = if resume {
            checkpoint::load::<f32>(&ckpt)?
        } else {
            (spec.build::<f32>(task, a.seed)?, Adam::new(a.lr))
        };
        let mut g = GpuTrainer::new(&net, &adam)?;
        g.set_clip(a.clip)?;
        Trainer::Gpu(Box::new(std::cell::RefCell::new(g)), a.lr)
    } else if f32_cpu {
        let (net, mut adam) = if resume {
            checkpoint::load::<f32>(&ckpt)?
        } else {
            (spec.build::<f32>(task, a.seed)?, Adam::new(a.lr))
        };
        adam.lr = a.lr;
        Trainer::Cpu32(net, adam)
    } else {
        let (net, mut adam) = if resume {
            checkpoint::load::<f64>(&ckpt)?
        } else {
            (spec.build::<f64>(task, a.seed)?, Adam::new(a.lr))
        };
        adam.lr = a.lr;
        Trainer::Cpu64(net, adam)
    };
    let (h, k) = trainer.sizes();
    if resume && h != 0 && (h != spec.hidden || k != task.n_in()) {
        return Err(Error::invalid(
            "out",
            format!(
                "{}: the checkpoint does not fit --task/--hidden",
                ckpt.display()
            ),
        ));
    }
    neurodyn::io::write_atomic(&config_path, |w| {
        std::io::Write::write_all(w, config.as_bytes()).map_err(|e| Error::file(&config_path, e))
    })?;
    let done = rows.len();
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((a.epochs * a.steps) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position((done * a.steps) as u64);
    let mut last_acc: Option<f64> = rows.last().map(|r| r.3);
    for epoch in done..a.epochs {
        let mut loss = 0.0;
        for s in 0..a.steps {
            let it = epoch * a.steps + s;
            loss += trainer.step(&src, it, &a)? / a.steps as f64;
            bar.inc(1);
            let acc = last_acc.map_or(String::new(), |v| {
                format!(", last accuracy {:.1} %", 100.0 * v)
            });
            bar.set_message(format!(
                "epoch {} loss {:.4}{acc}",
                epoch + 1,
                loss * a.steps as f64 / (s + 1) as f64
            ));
        }
        let (_, acc) = trainer.evaluate(&src, &a)?;
        last_acc = Some(acc);
        bar.set_message(format!(
            "epoch {} loss {loss:.4} accuracy {:.1} %",
            epoch + 1,
            100.0 * acc
        ));
        rows.push((
            (epoch + 1) as i64,
            ((epoch + 1) * a.steps) as i64,
            loss,
            acc,
        ));
        // Checkpoint first, then the metrics that say it exists.
        trainer.save(&ckpt)?;
        let mut t = Table::new();
        t.push("epoch", Column::I64(rows.iter().map(|r| r.0).collect()));
        t.push("iteration", Column::I64(rows.iter().map(|r| r.1).collect()));
        t.push("loss", Column::F64(rows.iter().map(|r| r.2).collect()));
        t.push("accuracy", Column::F64(rows.iter().map(|r| r.3).collect()));
        t.write(&metrics_path, TableFormat::Csv)?;
        t.write(&a.out.join("metrics.parquet"), TableFormat::Parquet)?;
    }
    bar.finish_and_clear();
    LinePlot::new(
        format!(
            "{} learning curve ({} cell, {})",
            task.name(),
            a.cell,
            a.device
        ),
        "iteration",
        "loss / accuracy",
    )
    .series(
        if task.is_digits() {
            "loss (cross-entropy)"
        } else {
            "loss (MSE)"
        },
        rows.iter().map(|r| (r.1 as f64, r.2)).collect(),
    )
    .series("accuracy", rows.iter().map(|r| (r.1 as f64, r.3)).collect())
    .save(&a.out.join("learning_curve"))?;
    if !a.quiet {
        if let Some(last) = rows.last() {
            eprintln!("epoch {}: loss {:.5}, accuracy {:.1} %; wrote {}/checkpoint.safetensors, metrics.csv/.parquet, learning_curve.png/.svg", last.0, last.2, 100.0 * last.3, a.out.display());
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    neurodyn::error::exit(run(Args::parse()))
}
