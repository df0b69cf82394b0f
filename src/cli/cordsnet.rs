//! `cordsnet`: CordsNet convolutional RNNs as dynamical systems — the layer table, matrix-free
//! spectra of convolution operators, the simulation protocol, and steady states with their
//! per-layer spectra. Argument parsing → `crate::cordsnet` / `crate::krylov` → exit code.

use crate::cordsnet::analyze::{analyze_test_set, AnalyzeOptions};
use crate::cordsnet::conv::ConvOperator;
use crate::cordsnet::fit::CordsRun;
use crate::cordsnet::spec::NetSpec;
use crate::cordsnet::Arch;
use crate::data::Dataset;
use crate::io::{progress_bar, Outputs, TableFormat};
use crate::krylov::{arnoldi_leading, LinearOperator, NewtonKrylovOptions};
use crate::Error;
use clap::{Parser, Subcommand};
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
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// Print a machine-readable summary on stdout (status, exit code, files written).
    #[arg(long, global = true)]
    json: bool,
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train on MNIST / Fashion-MNIST: linear stage, PReLU anneal, ReLU fine-tune (spec A.8
    /// stages 4–5, A.7 loss), resumable.
    Train(crate::cordsnet::fit::TrainArgs),
    /// Dissect a trained network image by image: steady states (Newton–Krylov), the leading
    /// spectrum of each layer's D·K^rec there, the stimulus phase's largest Lyapunov exponent,
    /// and traces of chosen units; tables and figures into a folder.
    #[command(allow_negative_numbers = true)]
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
        #[command(flatten)]
        opts: AnalyzeOptions,
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
    #[command(allow_negative_numbers = true)]
    Spectrum {
        /// The kernel (.npy, C × C × k × k, k odd).
        #[arg(long)]
        kernel: PathBuf,
        /// Grid height and width (`--size 10 10` or `--size 10,10`).
        #[arg(long, num_args = 1..=2, value_delimiter = ',', value_names = ["H", "W"], required = true)]
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
    #[command(allow_negative_numbers = true)]
    Simulate {
        #[command(flatten)]
        net: NetSpec,
        #[arg(long, default_value_t = 100)]
        spont: usize,
        #[arg(long, default_value_t = 100)]
        stim: usize,
        #[arg(long, default_value = "out/cordsnet_traj.csv")]
        out: PathBuf,
    },
    /// The stimulus-driven steady state by Newton–Krylov (from the end of the protocol), and the
    /// leading eigenvalues of each layer's D·K^rec there (Arnoldi).
    #[command(allow_negative_numbers = true)]
    SteadyState {
        #[command(flatten)]
        net: NetSpec,
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

fn run(a: Args) -> Result<(), Error> {
    match a.command {
        Cmd::Train(t) => {
            let mut run = CordsRun::open(t.config()?, &t.out, t.max_memory)?;
            crate::learn::fit_with_bar(&mut run, a.quiet)?;
            Ok(())
        }
        Cmd::Analyze {
            checkpoint,
            dataset,
            data_dir,
            images,
            opts,
            out,
        } => {
            let bar = progress_bar(a.quiet, images as u64, "{pos}/{len} images");
            let summary = analyze_test_set(
                &checkpoint,
                dataset,
                data_dir.as_deref(),
                images,
                opts,
                &out,
                &mut || bar.inc(1),
            )?;
            bar.finish_and_clear();
            if !a.quiet {
                eprintln!(
                    "{summary}; wrote {}/images.csv, spectra.csv, traces.csv, eigenvalues.png/.svg, steady_state.png/.svg, traces.png/.svg",
                    out.display()
                );
            }
            Ok(())
        }
        Cmd::Info { arch } => {
            let ar = Arch::preset(&arch)?;
            ar.validate()?;
            println!("{}", ar.layer_table());
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
            if size.len() != 2 {
                return Err(Error::invalid(
                    "size",
                    format!("{size:?}: give the grid's height and width"),
                ));
            }
            let fmt = TableFormat::from_path(&out)?;
            crate::io::check_output("out", &out)?;
            let op = ConvOperator::from_npy(&kernel, size[0], size[1])?;
            crate::krylov::check_ritz_request(m, k, Some(op.dim()))?;
            let t0 = std::time::Instant::now();
            let r = arnoldi_leading(&op, m, k, seed)?;
            r.table(k).write(&out, fmt)?;
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
            crate::io::check_output("out", &out)?;
            let (net, img) = net.build()?;
            let bar = progress_bar(
                a.quiet,
                spont.saturating_add(stim) as u64,
                "{pos}/{len} steps",
            );
            let run =
                net.run_with_progress(&img, spont, stim, &mut |s| bar.set_position(s as u64))?;
            bar.finish_and_clear();
            run.table().write(&out, fmt)?;
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
            crate::krylov::check_ritz_request(m, k, None)?;
            let fmt = TableFormat::from_path(&out)?;
            crate::io::check_output("out", &out)?;
            let (net, img) = net.build()?;
            let bar = crate::io::spinner(a.quiet, "steady state and spectra");
            let ss = net.steady_state(&img, 100, m, k, &NewtonKrylovOptions::default())?;
            bar.finish_and_clear();
            ss.table().write(&out, fmt)?;
            if !a.quiet {
                eprintln!(
                    "{ss}; wrote {} (eigenvalues of D·K_rec per layer)",
                    out.display()
                );
            }
            Ok(())
        }
    }
}

impl super::Command for Args {
    const NAME: &'static str = "cordsnet";
    fn outputs(&self) -> Outputs {
        // One-shot commands write all their files or none; a training run keeps every epoch.
        if matches!(self.command, Cmd::Train(_)) {
            Outputs::AsTheyCome
        } else {
            Outputs::Staged
        }
    }
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<(), Error> {
        run(self)
    }
}
