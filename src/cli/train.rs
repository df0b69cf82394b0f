//! `train`: fit a recurrent circuit on a task and write a checkpoint that the analysis binaries load.
//! Argument parsing → `crate::train::run::Run` → exit code.

use crate::data::custom::{CustomLoss, CustomSpec};
use crate::learn::Schedule;
use crate::train::cell::{CellKind, RatePhi};
use crate::train::run::{Device, Precision, RecurrentRun, RunConfig, TaskProtocol};
use crate::train::Task;
use crate::Error;
use clap::Parser;
use std::path::PathBuf;

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
#[command(name = "train", version, allow_negative_numbers = true)]
pub struct Args {
    /// Task: go-nogo, xor, mante (Kim, Li & Sejnowski 2019), seq-digits or perm-digits (one pixel
    /// per step), or custom (your own arrays: --inputs, --targets, --mask).
    #[arg(long, value_enum, default_value = "go-nogo")]
    task: Task,
    /// Cell (every registered cell: rate, gamma, anru, organics).
    #[arg(long, value_enum, default_value = "rate")]
    cell: CellKind,
    /// cpu or gpu (wgpu/Vulkan compute shaders, float32; every cell).
    #[arg(long, value_enum, default_value = "cpu")]
    device: Device,
    /// Precision: f64 (the CPU reference) or f32 [default: f64 on the CPU; the GPU trains in f32].
    #[arg(long, value_enum)]
    precision: Option<Precision>,
    /// Hidden units N [default: 40 on the rate tasks, 32 on digits].
    #[arg(long)]
    hidden: Option<usize>,
    /// ANRU controller units M per neuron.
    #[arg(long, default_value_t = 10)]
    controller: usize,
    /// Rate-cell nonlinearity [default: sigmoid on the rate tasks, tanh on digits].
    #[arg(long, value_enum)]
    phi: Option<RatePhi>,
    /// Epochs (each --steps minibatches, then an evaluation) [default: 16; 60 with --protocol paper].
    #[arg(long)]
    epochs: Option<usize>,
    /// Minibatches per epoch [default: 50; 100 with --protocol paper].
    #[arg(long)]
    steps: Option<usize>,
    /// Trials per minibatch [default: 16; 1 with --protocol paper].
    #[arg(long)]
    batch: Option<usize>,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// ORGaNICs: keep the largest singular value of W_r at most this (projected after every
    /// step; the stability guarantee of Rawat, Heeger & Martiniani (2024) holds at ≤ 1). CPU only.
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
    /// Held-out trials (test images) per evaluation [default: 200; 100 with --protocol paper].
    #[arg(long)]
    eval: Option<usize>,
    /// Output folder.
    #[arg(long, default_value = "out/run")]
    out: PathBuf,
    /// default, or paper: Kim, Li & Sejnowski's protocol on the rate tasks (loss √Σ(o − z)² per
    /// trial, x(0) ~ N(0, 1)/100, batch 1, evaluation on 100 trials every 100, stop at loss < 7 and
    /// accuracy > 0.95).
    #[arg(long, value_enum, default_value = "default")]
    protocol: TaskProtocol,
    /// SST units som_N of the Dale rate network: the first som_N inhibitory units receive no
    /// inhibition (Kim, Li & Sejnowski 2019's SST motif; rate tasks, CPU).
    #[arg(long, default_value_t = 0)]
    som: usize,
    /// Keep the time constants at their initial values (rate and ORGaNICs cells): the ORGaNICs
    /// paper's fixed-τ runs (Rawat, Heeger & Martiniani 2024: 94.8 % / 84.8 % at 128 units).
    #[arg(long)]
    fixed_tau: bool,
    /// ORGaNICs: the largest rates dt/τ of y, a and the gains b0/b1, as `Y,A,B` [default: the
    /// seed cell's 0.01,0.01,0.1; the paper's trained networks use 0.02,0.005,0.1].
    #[arg(long, value_name = "Y,A,B", value_delimiter = ',')]
    kappa_max: Option<Vec<f64>>,
    /// --task custom: inputs, trials × T × N_in (.npy, float32/64).
    #[arg(long, value_name = "u.npy")]
    inputs: Option<PathBuf>,
    /// --task custom: targets, trials × T × C (mse) or one class label per trial (cross-entropy).
    #[arg(long, value_name = "z.npy")]
    targets: Option<PathBuf>,
    /// --task custom: loss weights, trials × T or trials × T × C (mse only).
    #[arg(long, value_name = "m.npy")]
    mask: Option<PathBuf>,
    /// --task custom: mse (every masked step) or cross-entropy (the last step).
    #[arg(long, value_enum, default_value = "mse")]
    loss: CustomLoss,
    /// --task custom: fraction of the trials held out for evaluation.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Digits: hold this many training images out for validation (the psMNIST protocol of
    /// Geadah et al. 2024: 10000 of MNIST's 60000, split as the original code does); the epoch's
    /// accuracy is then the validation set's and `test_accuracy` the test set's.
    #[arg(long, default_value_t = 0)]
    val: usize,
    /// ReduceLROnPlateau on the held-out loss with this patience (factor 0.1; the psMNIST
    /// protocol: 10). 0: a constant learning rate.
    #[arg(long, default_value_t = 0)]
    plateau: usize,
    /// Learning-rate schedule per epoch: constant, step:S[:G], cosine:T[:MIN] or plateau:P[:F]
    /// (not with --plateau).
    #[arg(long, default_value = "constant")]
    schedule: String,
    /// Digits: after training, test accuracy under the sin transform (A = 0.5, f = 1) and the
    /// step drive (ξ = 1 for 200 < t < 400) beside the clean one → robustness.csv.
    #[arg(long)]
    robustness: bool,
    /// Adam's L2 weight decay (PyTorch's `weight_decay`; the ORGaNICs sMNIST protocol: 1e-5).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Branch: continue the finished epochs of the run in this folder (network, Adam state,
    /// metrics) in --out under this command's learning rate, schedule, weight decay, clipping,
    /// evaluation or device; the network and the task must be the same.
    #[arg(long, value_name = "RUN_DIR")]
    from: Option<PathBuf>,
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

impl Args {
    fn config(&self) -> Result<RunConfig, Error> {
        let mut c = RunConfig::new(self.task, self.cell);
        let paper = self.protocol == TaskProtocol::Paper;
        c.protocol = self.protocol;
        c.device = self.device;
        c.precision = self.precision.unwrap_or(match self.device {
            Device::Cpu => Precision::F64,
            Device::Gpu => Precision::F32,
        });
        c.hidden = self.hidden.unwrap_or(c.hidden);
        c.controller = self.controller;
        c.phi = self.phi.unwrap_or(c.phi);
        c.epochs = self.epochs.unwrap_or(if paper { 60 } else { 16 });
        c.steps = self.steps.unwrap_or(if paper { 100 } else { 50 });
        c.batch = self.batch.unwrap_or(if paper { 1 } else { 16 });
        c.lr = self.lr;
        c.seed = self.seed;
        c.pool = self.pool;
        c.eval = self.eval.unwrap_or(if paper { 100 } else { 200 });
        c.clip = self.clip;
        c.data_dir = self.data_dir.clone();
        c.wr_max_sv = self.wr_max_sv;
        c.som = self.som;
        c.fixed_tau = self.fixed_tau;
        c.kappa_max = match self.kappa_max.as_deref() {
            None => None,
            Some(&[y, a, b]) => Some([y, a, b]),
            Some(_) => return Err(Error::invalid("kappa-max", "three numbers Y,A,B")),
        };
        c.val = self.val;
        c.plateau = self.plateau;
        c.schedule = Schedule::parse(&self.schedule, "schedule")?;
        c.robustness = self.robustness;
        c.weight_decay = self.weight_decay;
        c.from = self.from.clone();
        if self.inputs.is_some() || self.targets.is_some() || self.mask.is_some() {
            c.custom = Some(CustomSpec {
                inputs: self.inputs.clone().unwrap_or_default(),
                targets: self.targets.clone().unwrap_or_default(),
                mask: self.mask.clone(),
                loss: self.loss,
                holdout: self.holdout,
            });
        }
        Ok(c)
    }
}

fn run(a: Args) -> Result<(), Error> {
    let cfg = a.config()?;
    let mut run = RecurrentRun::open(cfg, &a.out)?;
    crate::learn::fit_with_bar(&mut run, a.quiet)?;
    Ok(())
}

super::command!("train", RESUMABLE = true);
