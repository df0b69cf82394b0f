//! `train-cnn`: train a convolutional network with divisive normalization, or the static ORGaNICs
//! network, on MNIST or Fashion-MNIST. Argument parsing → `crate::nn::fit::CnnRun` → exit code.

use crate::data::Dataset;
use crate::learn::{OptimizerKind, Schedule};
use crate::nn::fit::{CnnConfig, CnnRun};
use crate::nn::{Arch, Norm};
use crate::Error;
use clap::Parser;
use std::path::PathBuf;

/// Train a feed-forward network on 28 × 28 images (the divisive-normalization ablation).
///
/// Architectures: small-alexnet and small-vgg (conv → optional ReLU → optional normalization
/// blocks, the normalization placed as in Miller, Shou, Martiniani & Heeger: conv → ReLU → divnorm →
/// BatchNorm), static-organics (the steady state of an ORGaNICs circuit as one layer, Rawat,
/// Heeger & Martiniani 2024) and organics-autoencoder (that paper's MNIST network: an
/// autoencoder stem 784→360→120→40 trained on its reconstruction error too, then ORGaNICs layers
/// 40→128→64 and a read-out; raw grey levels in [0, 1]). Each epoch is evaluated on the test split; metrics go to
/// metrics.csv/.parquet (column test_accuracy, a fraction) and learning_curve.png/.svg, the
/// network to checkpoint.safetensors (tensor names conv1.weight, bn1.running_mean, fc2.bias, …).
/// Rerunning with the same --out resumes after the last finished epoch, bit for bit.
///
/// Examples: train-cnn --dataset mnist --arch small-alexnet --norm divnorm --relu off --out cnn/
///           train-cnn --arch static-organics --norm none --data-dir ../mnist --epochs 20 --out organics/
///           train-cnn --arch organics-autoencoder --norm none --data-dir ../mnist --batch 256
///             --lr 0.001 --weight-decay 1e-5 --schedule step:100:0.8 --epochs 100 --out ae/
#[derive(Parser, Debug)]
#[command(name = "train-cnn", version, allow_negative_numbers = true)]
pub struct Args {
    /// mnist or fashion-mnist (the bundled slices: 2000/500 and 1000/500 images).
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: Dataset,
    /// Folder with the four IDX files (train-images-idx3-ubyte[.gz], …) of the full set.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "small-alexnet")]
    arch: Arch,
    /// Normalization after each convolution: none, batchnorm, divnorm (pools of 2^⌊log₂C/2⌋
    /// channels) + BatchNorm, divnorm-all (one pool) + BatchNorm, miller (Ken Miller's window)
    /// + BatchNorm.
    #[arg(long, value_enum, default_value = "divnorm")]
    norm: Norm,
    /// ReLU after each convolution (off: the normalization is the only nonlinearity).
    #[arg(long, default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    relu: bool,
    /// Units of the static ORGaNICs layer (static-organics only; default 256).
    #[arg(long)]
    hidden: Option<usize>,
    /// Dropout before the fully connected layers (small-alexnet only; default 0.5).
    #[arg(long)]
    dropout: Option<f64>,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Learning rate [default: 0.001 for adam, 0.05 for sgd].
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerKind,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Weight decay: L2 added to the gradient (sgd, adam) or decoupled (adamw), as PyTorch's
    /// optimisers.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Learning-rate schedule per epoch: constant, plateau:P[:F], step:S[:G] or cosine:T[:MIN].
    #[arg(long, default_value = "constant")]
    schedule: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on the first N training images only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Refuse runs whose estimated memory exceeds this many bytes [default: what the machine has].
    #[arg(long)]
    max_memory: Option<u64>,
    /// Output folder.
    #[arg(long, default_value = "out/cnn")]
    out: PathBuf,
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("`{s}`: use on or off")),
    }
}

fn run(a: Args) -> Result<(), Error> {
    let mut c = CnnConfig::new(a.dataset, a.arch, a.norm, a.relu);
    c.model = c.model.with_options(a.hidden, a.dropout)?;
    c.epochs = a.epochs;
    c.batch = a.batch;
    c.optimizer = a.optimizer;
    c.lr = a.lr.unwrap_or(match a.optimizer {
        OptimizerKind::Adam | OptimizerKind::AdamW => 1e-3,
        OptimizerKind::Sgd => 0.05,
    });
    c.momentum = a.momentum;
    c.weight_decay = a.weight_decay;
    c.schedule = Schedule::parse(&a.schedule, "schedule")?;
    c.seed = a.seed;
    c.data_dir = a.data_dir.clone();
    c.train_limit = a.train_limit;
    c.test_limit = a.test_limit;
    let mut run = CnnRun::open(c, &a.out, a.max_memory)?;
    crate::learn::fit_with_bar(&mut run, a.quiet)?;
    Ok(())
}

super::command!("train-cnn", RESUMABLE = true);
