//! A resumable CordsNet training run on MNIST or Fashion-MNIST (what `cordsnet train` calls): the
//! last two stages of the original's recipe (Soo et al. 2024; spec A.8) from a random start, which
//! the original README allows —
//!
//! 1. **linear stage** (A.8 stage 4): slope a = 1 (no nonlinearity inside the update), stimulus
//!    steps only from r = 0, the ramp-weighted cross-entropy;
//! 2. **anneal** (stage 5): the full spontaneous / stimulus / post-stimulus protocol and the A.7
//!    loss, the PReLU slope set at the start of anneal epoch e (of n) to a = 1 − (e + 1)/n —
//!    for n = 20 exactly the original's 0.95, 0.90, …, 0;
//! 3. **ReLU fine-tune** (a = 0): the model itself.
//!
//! Adam with a global L2 gradient clip, minibatches in a seeded order per epoch, the test split
//! evaluated after each epoch at that epoch's slope (the last rows, a = 0, are the model's
//! accuracy). The original trains with AdamW at lr 10⁻⁵, clip 10⁻⁴, for 20 epochs per stage on
//! GPUs; the defaults here (the `mnist-wide` preset, Adam 3·10⁻³, clip 1, 1 + 2 + 1 epochs, 10/20/10
//! steps: 2τ, 4τ, 2τ at α = 0.2) fit 2 cores —
//! `--protocol paper` restores the 100/100/100 steps.
//!
//! The checkpoint (`checkpoint.safetensors`, after every epoch) is the source of truth: float32
//! tensors under [`Bptt`]'s names (which [`CordsNet::load_checkpoint`](super::CordsNet) reads for
//! the f64 analyses), `optimizer.m`/`optimizer.v` (float64) and `optimizer.t`, metadata `format` =
//! `neurodyn-cordsnet-1`, `arch` (TOML), and the shared driver's run state ([`crate::learn`]:
//! `run.kind` = `cordsnet`, `run.config`, `run.epoch`, `run.metrics`; checkpoints from before it,
//! with `config`, `epoch` and `metrics`, still resume). A killed run resumes after its last saved
//! epoch with the same bits.

use super::train::{Bptt, StimulusProtocol};
use super::Arch;
use crate::data::{Dataset, ImageSet};
use crate::error::{Error, Result};
use crate::io::Table;
use crate::learn::{
    self, Config as _, EpochRow, EpochTotals, Learner, Optimizer, OptimizerKind, Progress,
    Schedule, StepLoss,
};
use crate::plot::LinePlot;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Everything that defines a run (`config.toml`; the checkpoint holds a copy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CordsConfig {
    /// Architecture preset (`mnist`).
    pub arch: String,
    pub dataset: Dataset,
    pub protocol: StimulusProtocol,
    pub linear_epochs: usize,
    pub anneal_epochs: usize,
    pub relu_epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// Global L2 norm the gradient is clipped to.
    pub clip: f64,
    /// Scale of the random recurrent kernels (N(0, gain²/fan-in)).
    pub rec_gain: f64,
    pub seed: u64,
    /// The optimiser (Adam; the original trains with AdamW).
    #[serde(default, skip_serializing_if = "is_adam")]
    pub optimizer: OptimizerKind,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// The learning-rate schedule (constant when absent).
    #[serde(default, skip_serializing_if = "is_constant")]
    pub schedule: Schedule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
}

impl CordsConfig {
    /// The 2-core defaults (see the module documentation).
    pub fn new(dataset: Dataset) -> Self {
        CordsConfig {
            arch: "mnist-wide".into(),
            dataset,
            protocol: StimulusProtocol {
                spont: 10,
                stim: 20,
                post: 10,
                ramp: 30,
                window: 10,
                stability: 1e-3,
            },
            linear_epochs: 1,
            anneal_epochs: 2,
            relu_epochs: 1,
            batch: 32,
            lr: 3e-3,
            clip: 1.0,
            rec_gain: 0.5,
            seed: 1,
            optimizer: OptimizerKind::Adam,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            data_dir: None,
            train_limit: None,
            test_limit: None,
        }
    }

    /// The PReLU slope and the protocol of epoch `e` (0-based).
    pub fn stage(&self, e: usize) -> (f64, StimulusProtocol) {
        if e < self.linear_epochs {
            (1.0, self.protocol.stimulus_only())
        } else if e < self.linear_epochs + self.anneal_epochs {
            let k = e - self.linear_epochs + 1;
            (
                (1.0 - k as f64 / self.anneal_epochs as f64).max(0.0),
                self.protocol,
            )
        } else {
            (0.0, self.protocol)
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<Arch> {
        let arch = Arch::preset(&self.arch)?;
        arch.validate()?;
        if (arch.img_channels, arch.img_size) != (1, 28) {
            return Err(Error::invalid(
                "arch",
                format!(
                    "`{}` takes {}×{}×{} images; MNIST is 1×28×28 (use --arch mnist)",
                    self.arch, arch.img_channels, arch.img_size, arch.img_size
                ),
            ));
        }
        self.protocol.validate()?;
        if self.epochs() == 0 {
            return Err(Error::invalid("epochs", "no epochs in any stage"));
        }
        if self.batch == 0 {
            return Err(Error::invalid("batch", "must be positive"));
        }
        for (f, v) in [
            ("lr", self.lr),
            ("clip", self.clip),
            ("rec-gain", self.rec_gain),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::invalid(
                    f,
                    format!("{v}: must be positive and finite"),
                ));
            }
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::invalid(
                "weight-decay",
                format!("{}: must be ≥ 0", self.weight_decay),
            ));
        }
        self.schedule.validate("schedule")?;
        for (f, v) in [
            ("train-limit", self.train_limit),
            ("test-limit", self.test_limit),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(f, "must be positive"));
            }
        }
        Ok(arch)
    }
}

fn is_adam(k: &OptimizerKind) -> bool {
    *k == OptimizerKind::Adam
}
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
fn is_constant(s: &Schedule) -> bool {
    *s == Schedule::Constant
}

/// One finished epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CordsRow {
    pub epoch: usize,
    /// PReLU slope a of the epoch (1: linear stage, 0: the ReLU model).
    pub slope: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    /// Fraction of test images classified correctly at the last stimulus step.
    pub test_accuracy: f64,
    pub seconds: f64,
}

impl EpochRow for CordsRow {
    fn summary(&self) -> String {
        format!(
            "epoch {} (slope {}): train loss {:.4}, test accuracy {:.2} %",
            self.epoch,
            self.slope,
            self.train_loss,
            100.0 * self.test_accuracy
        )
    }
    /// epoch, slope, train_loss, train_accuracy, test_loss, test_accuracy, seconds.
    fn table(r: &[Self]) -> Table {
        learn::metrics_table(
            r,
            &[("epoch", |r| r.epoch as i64)],
            &[
                ("slope", |r| r.slope),
                ("train_loss", |r| r.train_loss),
                ("train_accuracy", |r| r.train_accuracy),
                ("test_loss", |r| r.test_loss),
                ("test_accuracy", |r| r.test_accuracy),
                ("seconds", |r| r.seconds),
            ],
        )
    }
    fn eval_loss(&self) -> f64 {
        self.test_loss
    }
}

/// What [`CordsRun::train`] reports.
pub type CordsProgress = Progress<CordsRow>;

pub use crate::learn::CHECKPOINT;

/// A training run bound to its output folder.
pub struct CordsRun {
    pub config: CordsConfig,
    pub out: PathBuf,
    pub rows: Vec<CordsRow>,
    pub net: Bptt<f32>,
    pub optimizer: Optimizer,
    pub train: ImageSet,
    pub test: ImageSet,
    batches: crate::data::Batches,
    stage: (f64, StimulusProtocol),
    mask: Vec<bool>,
}

impl CordsRun {
    /// Opens a run in `out`: fresh, or resumed from its checkpoint when that holds the same
    /// configuration (but for `relu_epochs`, which may grow). Nothing is written before every
    /// input has been checked and the memory estimated.
    pub fn open(config: CordsConfig, out: &Path, max_memory: Option<u64>) -> Result<CordsRun> {
        let arch = config.validate()?;
        let opened = learn::open::<CordsRun>(out, &config)?;
        let dir = config.data_dir.as_deref();
        let train_d = config.dataset.load(dir, true)?;
        let test_d = config.dataset.load(dir, false)?;
        for d in [&train_d, &test_d] {
            if (d.rows, d.cols) != (28, 28) {
                return Err(Error::invalid(
                    "data-dir",
                    format!("images are {}×{}; the network takes 28×28", d.rows, d.cols),
                ));
            }
        }
        let mut net = Bptt::<f32>::new(arch)?;
        let data = (train_d.len() + test_d.len()) as u128 * 784 * 4;
        crate::memory::check(
            "batch",
            net.tape_bytes(config.batch.max(256), config.protocol.steps())
                + net.params.len() as u128 * 24
                + data,
            max_memory,
        )?;
        net.init(config.seed, config.rec_gain);
        let train = ImageSet::new(&train_d, config.dataset.mean_std(), config.train_limit);
        let test = ImageSet::new(&test_d, config.dataset.mean_std(), config.test_limit);
        let mut optimizer = Optimizer::new(config.optimizer, config.lr)?;
        optimizer.weight_decay = config.weight_decay;
        let mut rows = vec![];
        if let Some((ckpt, done)) = opened.resume {
            let meta = crate::tensor::safetensors::read_metadata(&ckpt)?;
            let tensors =
                crate::tensor::safetensors::load_params(&ckpt, &net.layout, &mut net.params)?;
            optimizer.restore(&tensors, &meta, net.params.len(), &ckpt)?;
            rows = done;
        }
        learn::create(out, &config.to_toml()?, &rows)?;
        Ok(CordsRun {
            batches: crate::data::Batches::new(config.batch, 784),
            stage: config.stage(0),
            mask: net.layout.train_mask(),
            config,
            out: opened.out,
            rows,
            net,
            optimizer,
            train,
            test,
        })
    }

    pub fn done(&self) -> usize {
        self.rows.len()
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.batches.steps(self.train.len())
    }

    /// Test loss and accuracy at slope `slope` (batches of 256).
    pub fn evaluate(&self, slope: f64, proto: &StimulusProtocol) -> Result<(f64, f64)> {
        let (mut loss, mut correct) = (0.0, 0);
        let n = self.test.len();
        for b0 in (0..n).step_by(256) {
            let b1 = (b0 + 256).min(n);
            let r = self.net.evaluate(
                &self.test.x[b0 * 784..b1 * 784],
                &self.test.labels[b0..b1],
                slope,
                proto,
            )?;
            loss += r.loss * (b1 - b0) as f64;
            correct += r.correct;
        }
        Ok((loss / n as f64, correct as f64 / n as f64))
    }
}

impl learn::Config for CordsConfig {
    fn epochs(&self) -> usize {
        self.linear_epochs + self.anneal_epochs + self.relu_epochs
    }
    fn schedule(&self) -> (f64, Schedule) {
        (self.lr, self.schedule)
    }
    /// Everything equal but `relu_epochs`, which may grow.
    fn continues(&self, asked: &Self) -> bool {
        CordsConfig {
            relu_epochs: asked.relu_epochs,
            ..self.clone()
        } == *asked
    }
}

impl Learner for CordsRun {
    type Row = CordsRow;
    type Config = CordsConfig;
    const KIND: &'static str = "cordsnet";
    fn out(&self) -> &Path {
        &self.out
    }
    fn rows(&self) -> &[CordsRow] {
        &self.rows
    }
    fn rows_mut(&mut self) -> &mut Vec<CordsRow> {
        &mut self.rows
    }
    fn config(&self) -> &CordsConfig {
        &self.config
    }
    fn steps(&self, _epoch: usize) -> usize {
        self.steps_per_epoch()
    }
    fn begin_epoch(&mut self, epoch: usize) -> Result<()> {
        self.stage = self.config.stage(epoch);
        self.batches
            .shuffle(self.train.len(), self.config.seed, epoch);
        Ok(())
    }
    fn step(&mut self, _epoch: usize, step: usize, lr: f64) -> Result<StepLoss> {
        let (x, labels) = self.batches.gather(&self.train, step);
        let b = labels.len();
        let (slope, proto) = self.stage;
        let r = self.net.loss_grad(x, labels, slope, &proto)?;
        if r.loss.is_finite() {
            learn::clip_grad_norm(&mut self.net.grad, &self.mask, self.config.clip);
            self.optimizer.lr = lr;
            self.optimizer
                .step(&mut self.net.params, &self.net.grad, &self.mask);
        }
        Ok(StepLoss {
            loss: r.loss,
            examples: b,
            correct: r.correct,
        })
    }
    fn end_epoch(
        &mut self,
        epoch: usize,
        _lr: f64,
        totals: &EpochTotals,
        seconds: f64,
    ) -> Result<CordsRow> {
        let (slope, proto) = self.stage;
        let (test_loss, test_accuracy) = self.evaluate(slope, &proto)?;
        let n = self.train.len() as f64;
        Ok(CordsRow {
            epoch: epoch + 1,
            slope,
            train_loss: totals.weighted_loss / n,
            train_accuracy: totals.correct as f64 / n,
            test_loss,
            test_accuracy,
            seconds,
        })
    }
    fn save(&self, path: &Path, mut meta: Vec<(String, String)>) -> Result<()> {
        let (entries, opt_meta) =
            crate::nn::fit::checkpoint_entries(&self.net.layout, &self.net.params, &self.optimizer);
        meta.extend(opt_meta);
        meta.push(("format".into(), "neurodyn-cordsnet-1".into()));
        meta.push(("arch".into(), to_toml(&self.net.arch)?));
        crate::tensor::safetensors::write_safetensors(path, &entries, &meta.into_iter().collect())
    }
    fn curve(&self) -> Option<LinePlot> {
        let pts = |f: fn(&CordsRow) -> f64| -> Vec<(f64, f64)> {
            self.rows.iter().map(|r| (r.epoch as f64, f(r))).collect()
        };
        Some(
            LinePlot::new(
                format!(
                    "CordsNet `{}` on {}: linear → PReLU anneal → ReLU",
                    self.config.arch,
                    self.config.dataset.name()
                ),
                "epoch",
                "accuracy / slope",
            )
            .series("train accuracy", pts(|r| r.train_accuracy))
            .series("test accuracy", pts(|r| r.test_accuracy))
            .series("PReLU slope a", pts(|r| r.slope)),
        )
    }
    /// Before the shared run state: `config`, `epoch`, and `metrics` as TOML rows joined by `;`.
    fn legacy_state(
        meta: &HashMap<String, String>,
        path: &Path,
    ) -> Option<Result<(String, Vec<CordsRow>)>> {
        if meta.get("format").map(String::as_str) != Some("neurodyn-cordsnet-1") {
            return None;
        }
        let config = meta.get("config")?.clone();
        Some((|| {
            let rows = meta
                .get("metrics")
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.split(';')
                        .map(|r| {
                            toml::from_str::<CordsRow>(r).map_err(|e| {
                                Error::invalid(
                                    "checkpoint",
                                    format!("{}: unreadable metrics row ({e})", path.display()),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default();
            if meta.get("epoch").and_then(|e| e.parse::<usize>().ok()) != Some(rows.len()) {
                return Err(Error::invalid(
                    "checkpoint",
                    format!("{}: `epoch` disagrees with `metrics`", path.display()),
                ));
            }
            Ok((config, rows))
        })())
    }
}

/// TOML text of a value (a metrics row has no `;`, which separates the rows).
fn to_toml<T: Serialize>(v: &T) -> Result<String> {
    toml::to_string(v).map_err(|e| Error::invalid("checkpoint", format!("cannot serialise ({e})")))
}

/// The command-line arguments of `cordsnet train` (clap), turned into a [`CordsConfig`] by
/// [`TrainArgs::config`].
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: Dataset,
    /// Folder with the four IDX files (default: the bundled slice, 2,000 / 500 images).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Architecture preset (28 × 28 input): mnist-wide (stem 16; 16, 16, 32, 32 channels) or
    /// mnist (half the width).
    #[arg(long, default_value = "mnist-wide")]
    pub arch: String,
    /// Epochs of the linear stage (slope 1, stimulus only; spec A.8 stage 4).
    #[arg(long, default_value_t = 1)]
    pub linear_epochs: usize,
    /// Epochs of the PReLU anneal (slope 1 − (e+1)/n; stage 5).
    #[arg(long, default_value_t = 2)]
    pub anneal_epochs: usize,
    /// Epochs of ReLU fine-tuning (slope 0; may be raised when resuming).
    #[arg(long, default_value_t = 1)]
    pub relu_epochs: usize,
    /// Steps of the spontaneous / stimulus / post-stimulus phases.
    #[arg(long, default_value_t = 10)]
    pub spont: usize,
    #[arg(long, default_value_t = 20)]
    pub stim: usize,
    #[arg(long, default_value_t = 10)]
    pub post: usize,
    /// Stimulus states in the ramp-weighted cross-entropy (the last R; default 30, the paper's,
    /// or the whole stimulus when it is shorter). At most --stim.
    #[arg(long)]
    pub ramp: Option<usize>,
    /// Post-stimulus states in the stability term (the last W; default 10, or the whole
    /// post-stimulus phase when shorter). At most --post.
    #[arg(long)]
    pub window: Option<usize>,
    /// `paper`: 100 / 100 / 100 steps (overrides --spont/--stim/--post).
    #[arg(long, value_parser = ["paper"])]
    pub protocol: Option<String>,
    /// Weight λ of the stability term.
    #[arg(long, default_value_t = 1e-3)]
    pub stability: f64,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Global L2 gradient-norm clip (over the trained tensors).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Optimiser: adam, adamw (the original's) or sgd.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerKind,
    /// Weight decay (L2 for adam and sgd, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Learning-rate schedule per epoch: constant, plateau:P[:F], step:S[:G] or cosine:T[:MIN].
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Scale of the random recurrent kernels.
    #[arg(long, default_value_t = 0.5)]
    pub rec_gain: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub train_limit: Option<usize>,
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Refuse runs whose memory estimate exceeds this many bytes.
    #[arg(long)]
    pub max_memory: Option<u64>,
    /// Run folder: checkpoint.safetensors, config.toml, metrics.csv/.parquet,
    /// learning_curve.png/.svg (resumed when it holds the same run).
    #[arg(long, default_value = "out/cordsnet")]
    pub out: PathBuf,
}

impl TrainArgs {
    /// The run's configuration (the schedule parsed, `--protocol paper` applied).
    pub fn config(&self) -> Result<CordsConfig> {
        let t = self.clone();

        for (field, v, limit, phase) in [
            ("ramp", t.ramp, t.stim, "stim"),
            ("window", t.window, t.post, "post"),
        ] {
            if let Some(v) = v.filter(|&v| v > limit) {
                return Err(Error::invalid(
                    field,
                    format!("{v}: more states than the {limit} steps of --{phase}"),
                ));
            }
        }
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
            ramp: t.ramp.unwrap_or(30),
            window: t.window.unwrap_or(10),
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
        Ok(c)
    }
}
