//! `train`: fit a recurrent circuit on a task and write a checkpoint that the analysis binaries load.
//! A thin shell over `neurodyn::train` (CPU f64 reference trainer so far).

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::plot::LinePlot;
use neurodyn::train::{
    accuracy, load_checkpoint, save_checkpoint, train_task_step, Adam, RateNet, Task,
};
use neurodyn::Error;
use std::path::PathBuf;

/// Train a rate RNN with Dale's law (Kim, Li & Sejnowski 2019) on Go/NoGo, XOR or the
/// context-dependent (Mante) task by BPTT + Adam, on the
/// CPU in float64. Every epoch (--steps minibatches) is evaluated on 200 fresh noisy trials; metrics
/// go to metrics.csv/.parquet and learning_curve.png/.svg, the network to checkpoint.safetensors
/// (loadable by `fixed-points --checkpoint` and `lyapunov --checkpoint`). Rerunning with the same
/// --out resumes after the last completed epoch, bit for bit.
///
/// Example: train --task go-nogo --cell rate --device cpu --out run/
#[derive(Parser, Debug)]
#[command(name = "train", version, about, long_about = None)]
struct Args {
    /// Task: go-nogo, xor or mante (spiking.md §B.3; the digits tasks are not implemented yet).
    #[arg(long, default_value = "go-nogo")]
    task: String,
    /// Cell (rate; gamma, anru and organics cells are not implemented yet).
    #[arg(long, default_value = "rate")]
    cell: String,
    /// cpu (the wgpu trainer is not implemented yet).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Hidden units N.
    #[arg(long, default_value_t = 40)]
    hidden: usize,
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
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder.
    #[arg(long, default_value = "out/run")]
    out: PathBuf,
    #[arg(long, short)]
    quiet: bool,
}

fn run(a: Args) -> Result<(), Error> {
    let task: Task = a.task.parse()?;
    if a.cell != "rate" {
        return Err(Error::invalid(
            "cell",
            format!(
                "`{}`: only the Dale rate cell is implemented so far",
                a.cell
            ),
        ));
    }
    if a.device != "cpu" {
        return Err(Error::invalid(
            "device",
            format!("`{}`: only cpu is implemented so far", a.device),
        ));
    }
    if a.hidden == 0 {
        return Err(Error::invalid("hidden", "must be at least 1"));
    }
    if a.batch == 0 || a.steps == 0 || a.epochs == 0 {
        return Err(Error::invalid(
            "batch",
            "batch, steps and epochs must be at least 1",
        ));
    }
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        return Err(Error::invalid("lr", format!("{} (must be positive)", a.lr)));
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::file(&a.out, e))?;
    let ckpt = a.out.join("checkpoint.safetensors");
    let metrics_path = a.out.join("metrics.csv");
    let config = format!(
        "task = \"{}\"\ncell = \"{}\"\ndevice = \"{}\"\nhidden = {}\nepochs = {}\nsteps = {}\nbatch = {}\nlr = {:?}\nseed = {}\n",
        a.task, a.cell, a.device, a.hidden, a.epochs, a.steps, a.batch, a.lr, a.seed
    );
    let config_path = a.out.join("config.toml");
    // Resume: same configuration (epochs may grow), checkpoint and metrics present.
    let mut rows: Vec<(i64, i64, f64, f64)> = vec![];
    let (mut net, mut adam) = if ckpt.exists() && metrics_path.exists() {
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
        let (n, mut ad) = load_checkpoint(&ckpt)?;
        if n.w_in.ncols() != task.n_in() || n.n() != a.hidden {
            return Err(Error::invalid(
                "out",
                format!(
                    "{}: the checkpoint does not fit --task/--hidden",
                    ckpt.display()
                ),
            ));
        }
        ad.lr = a.lr;
        (n, ad)
    } else {
        (
            RateNet::init(a.hidden, task.n_in(), (4.0, 20.0), a.seed)?,
            Adam::new(a.lr),
        )
    };
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
    for epoch in done..a.epochs {
        let mut loss = 0.0;
        for s in 0..a.steps {
            let it = epoch * a.steps + s;
            loss +=
                train_task_step(&mut net, task, &mut adam, it, a.batch, a.seed) / a.steps as f64;
            bar.inc(1);
        }
        let acc = accuracy(&net, task, 200, a.seed ^ 0x5eed);
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
        save_checkpoint(&net, &adam, &ckpt)?;
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
        "Go/NoGo learning curve (rate RNN, Dale's law)",
        "iteration",
        "loss / accuracy",
    )
    .series(
        "loss (MSE)",
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
