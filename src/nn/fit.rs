//! A resumable training run of a feed-forward network on MNIST or Fashion-MNIST (what
//! `train-cnn` calls): minibatches in a seeded order per epoch, an evaluation on the test split
//! after each epoch, and after each epoch the checkpoint — the single source of truth: weights,
//! optimiser state, configuration and every finished epoch's metrics — then `metrics.csv` /
//! `.parquet` rewritten from it. A killed run resumes after its last saved epoch with the same
//! bits as an uninterrupted one.
//!
//! Checkpoint (`checkpoint.safetensors`): one float32 tensor per parameter under the
//! [`Sequential`] names (`conv1.weight`, `bn1.running_var`, `fc2.bias`, …; PyTorch's
//! `load_state_dict(strict=False)` takes them), the optimiser state `optimizer.m`,
//! `optimizer.v` (float64) and `optimizer.t`, `format` = `neurodyn-cnn-1`, and the run state
//! of the shared driver ([`crate::learn`]: `run.kind` = `cnn`, `run.config` the TOML of
//! [`CnnConfig`], `run.epoch`, `run.metrics`). Checkpoints from before that schema (`config`,
//! `epoch`, `metrics`) still load and resume.

use super::arch::{Arch, ArchSpec, Norm, Sequential};
use super::Shape;
use crate::data::{Dataset, ImageSet};
use crate::error::{Error, Result};
use crate::io::Table;
use crate::learn::{
    self, Config as _, EpochRow, EpochTotals, Learner, Optimizer, OptimizerKind, Progress,
    Schedule, StepLoss,
};
use crate::plot::LinePlot;
use crate::tensor::safetensors::RawTensor;
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Everything that defines a run (`config.toml`; the checkpoint holds a copy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnConfig {
    pub dataset: Dataset,
    pub model: ArchSpec,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    pub momentum: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// The learning-rate schedule ([`Schedule`]; constant when absent).
    #[serde(default, skip_serializing_if = "is_constant")]
    pub schedule: Schedule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Use only the first this many training (test) images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
}

impl CnnConfig {
    /// Defaults: 5 epochs, batch 64, Adam 1e-3, seed 1, the bundled slice.
    pub fn new(dataset: Dataset, arch: Arch, norm: Norm, relu: bool) -> Self {
        CnnConfig {
            dataset,
            model: ArchSpec::new(arch, norm, relu),
            epochs: 5,
            batch: 64,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            weight_decay: 0.0,
            seed: 1,
            schedule: Schedule::Constant,
            data_dir: None,
            train_limit: None,
            test_limit: None,
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("epochs", self.epochs),
            ("batch", self.batch),
            ("hidden", self.model.hidden),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, "must be at least 1"));
            }
        }
        for (f, v) in [
            ("train-limit", self.train_limit),
            ("test-limit", self.test_limit),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(f, "must be at least 1"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid(
                "lr",
                format!("{}: must be positive", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::invalid(
                "momentum",
                format!("{}: must be in [0, 1)", self.momentum),
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::invalid(
                "weight-decay",
                format!("{}: must be ≥ 0", self.weight_decay),
            ));
        }
        self.schedule.validate("schedule")?;
        if !(0.0..1.0).contains(&self.model.dropout) {
            return Err(Error::invalid(
                "dropout",
                format!("{}: must be in [0, 1)", self.model.dropout),
            ));
        }
        Ok(())
    }

    /// The optimiser this configuration asks for.
    pub fn optimizer(&self) -> Result<Optimizer> {
        let mut o = Optimizer::new(self.optimizer, self.lr)?;
        o.momentum = self.momentum;
        o.weight_decay = self.weight_decay;
        Ok(o)
    }
}

fn is_constant(s: &Schedule) -> bool {
    *s == Schedule::Constant
}

/// One finished epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CnnRow {
    pub epoch: usize,
    /// Optimiser steps so far.
    pub steps: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    /// Fraction of the test split classified correctly, in [0, 1].
    pub test_accuracy: f64,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
}

impl EpochRow for CnnRow {
    fn summary(&self) -> String {
        format!(
            "epoch {}: train loss {:.4}, test accuracy {:.2} %",
            self.epoch,
            self.train_loss,
            100.0 * self.test_accuracy
        )
    }
    /// epoch, steps, train_loss, train_accuracy, test_loss, test_accuracy, seconds.
    fn table(r: &[Self]) -> Table {
        learn::metrics_table(
            r,
            &[("epoch", |r| r.epoch as i64), ("steps", |r| r.steps as i64)],
            &[
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

/// The rows of a checkpoint written before the shared run state (`metrics`: comma-separated
/// rows, `;` between them).
fn decode_legacy_rows(s: &str, path: &Path) -> Result<Vec<CnnRow>> {
    if s.is_empty() {
        return Ok(vec![]);
    }
    s.split(';')
        .map(|r| {
            let v: Vec<&str> = r.split(',').collect();
            let f = |k: usize| v.get(k).and_then(|t| t.parse::<f64>().ok());
            let u = |k: usize| v.get(k).and_then(|t| t.parse::<usize>().ok());
            match (u(0), u(1), f(2), f(3), f(4), f(5), f(6)) {
                (Some(epoch), Some(steps), Some(a), Some(b), Some(c), Some(d), Some(e)) => {
                    Ok(CnnRow {
                        epoch,
                        steps,
                        train_loss: a,
                        train_accuracy: b,
                        test_loss: c,
                        test_accuracy: d,
                        seconds: e,
                    })
                }
                _ => Err(Error::invalid(
                    "checkpoint",
                    format!("{}: unreadable metrics row `{r}`", path.display()),
                )),
            }
        })
        .collect()
}

/// What [`CnnRun::train`] reports.
pub type CnnProgress = Progress<CnnRow>;

/// A training run bound to its output folder.
pub struct CnnRun {
    pub config: CnnConfig,
    pub out: PathBuf,
    pub rows: Vec<CnnRow>,
    pub net: Sequential<f32>,
    pub optimizer: Optimizer,
    pub train: ImageSet,
    pub test: ImageSet,
    batches: crate::data::Batches,
    mask: Vec<bool>,
}

impl CnnRun {
    /// Opens a run in `out`: fresh, or resumed from `out/checkpoint.safetensors` when it holds
    /// the same configuration (but for `epochs`). Nothing is written before every input has been
    /// checked (the data read, the network built, its memory estimated against what is
    /// available or `max_memory`).
    pub fn open(config: CnnConfig, out: &Path, max_memory: Option<u64>) -> Result<CnnRun> {
        config.validate()?;
        let opened = learn::open::<CnnRun>(out, &config)?;
        let dir = config.data_dir.as_deref();
        let train_d = config.dataset.load(dir, true)?;
        let test_d = config.dataset.load(dir, false)?;
        for d in [&train_d, &test_d] {
            if (d.rows, d.cols) != (28, 28) {
                return Err(Error::invalid(
                    "data-dir",
                    format!("images are {}×{}; the networks take 28×28", d.rows, d.cols),
                ));
            }
        }
        let shape = Shape::new(1, 28, 28);
        // The network's size and a batch's activations, checked before allocating them.
        let probe = {
            let mut spec = config.model.clone();
            if spec.arch == Arch::StaticOrganics {
                let (n, d) = (spec.hidden as u128, shape.len() as u128);
                let params = 2 * n * d + n * n + n + 11 * n;
                crate::memory::check("hidden", params * (4 + 8 + 8 + 4), max_memory)?;
            }
            spec.classes = 10;
            spec
        };
        let mut net = probe.build::<f32>(shape)?;
        let params = net.params.len() as u128;
        let data = (train_d.len() + test_d.len()) as u128 * shape.len() as u128 * 4;
        crate::memory::check(
            "batch",
            net.batch_bytes(config.batch) + params * (4 + 4 + 16) + data,
            max_memory,
        )?;
        let scaling = config.model.arch.input_scaling(config.dataset);
        let train = ImageSet::new(&train_d, scaling, config.train_limit);
        let test = ImageSet::new(&test_d, scaling, config.test_limit);
        net.init(config.seed);
        let mut optimizer = config.optimizer()?;
        let mut rows = vec![];
        if let Some((ckpt, done)) = opened.resume {
            let meta = crate::tensor::safetensors::read_metadata(&ckpt)?;
            load_into(&ckpt, &mut net, Some((&mut optimizer, &meta)))?;
            rows = done;
        }
        learn::create(out, &config.to_toml()?, &rows)?;
        let d = shape.len();
        Ok(CnnRun {
            mask: net.train_mask(),
            batches: crate::data::Batches::new(config.batch, d),
            config,
            out: opened.out,
            rows,
            net,
            optimizer,
            train,
            test,
        })
    }

    /// Epochs done.
    pub fn done(&self) -> usize {
        self.rows.len()
    }

    /// Optimiser steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.batches.steps(self.train.len())
    }
}

impl learn::Config for CnnConfig {
    fn epochs(&self) -> usize {
        self.epochs
    }
    fn schedule(&self) -> (f64, Schedule) {
        (self.lr, self.schedule)
    }
    fn continues(&self, asked: &Self) -> bool {
        CnnConfig {
            epochs: asked.epochs,
            ..self.clone()
        } == *asked
    }
}

impl Learner for CnnRun {
    type Row = CnnRow;
    type Config = CnnConfig;
    const KIND: &'static str = "cnn";
    fn out(&self) -> &Path {
        &self.out
    }
    fn rows(&self) -> &[CnnRow] {
        &self.rows
    }
    fn rows_mut(&mut self) -> &mut Vec<CnnRow> {
        &mut self.rows
    }
    fn config(&self) -> &CnnConfig {
        &self.config
    }
    fn steps(&self, _epoch: usize) -> usize {
        self.steps_per_epoch()
    }
    fn begin_epoch(&mut self, epoch: usize) -> Result<()> {
        self.batches
            .shuffle(self.train.len(), self.config.seed, epoch);
        Ok(())
    }
    fn step(&mut self, epoch: usize, step: usize, lr: f64) -> Result<StepLoss> {
        let (x, labels) = self.batches.gather(&self.train, step);
        let b = labels.len();
        let seed = crate::seed::trial_seed(self.config.seed, epoch, step, 2);
        let (loss, correct) = self.net.loss_grad(x, labels, seed)?;
        if loss.is_finite() {
            self.optimizer.lr = lr;
            self.optimizer
                .step(&mut self.net.params, &self.net.grad, &self.mask);
        }
        Ok(StepLoss {
            loss,
            examples: b,
            correct,
        })
    }
    fn end_epoch(
        &mut self,
        epoch: usize,
        _lr: f64,
        totals: &EpochTotals,
        seconds: f64,
    ) -> Result<CnnRow> {
        let (test_loss, test_correct) = self.net.evaluate(&self.test.x, &self.test.labels, 256)?;
        let n = self.train.len() as f64;
        Ok(CnnRow {
            epoch: epoch + 1,
            steps: (epoch + 1) * self.steps_per_epoch(),
            train_loss: totals.weighted_loss / n,
            train_accuracy: totals.correct as f64 / n,
            test_loss,
            test_accuracy: test_correct as f64 / self.test.len() as f64,
            seconds,
        })
    }
    fn save(&self, path: &Path, mut meta: Vec<(String, String)>) -> Result<()> {
        let (entries, opt_meta) =
            checkpoint_entries(&self.net.layout, &self.net.params, &self.optimizer);
        meta.extend(opt_meta);
        meta.push(("format".into(), "neurodyn-cnn-1".into()));
        crate::tensor::safetensors::write_safetensors(path, &entries, &meta.into_iter().collect())
    }
    fn curve(&self) -> Option<LinePlot> {
        let c = &self.config;
        let pts = |f: fn(&CnnRow) -> f64| -> Vec<(f64, f64)> {
            self.rows.iter().map(|r| (r.epoch as f64, f(r))).collect()
        };
        Some(
            LinePlot::new(
                format!(
                    "{} on {}: norm {:?}, ReLU {}",
                    c.model.arch.name(),
                    c.dataset.name(),
                    c.model.norm,
                    if c.model.relu { "on" } else { "off" }
                ),
                "epoch",
                "accuracy",
            )
            .series("train", pts(|r| r.train_accuracy))
            .series("test", pts(|r| r.test_accuracy)),
        )
    }
    fn legacy_state(
        meta: &HashMap<String, String>,
        path: &Path,
    ) -> Option<Result<(String, Vec<CnnRow>)>> {
        if meta.get("format").map(String::as_str) != Some("neurodyn-cnn-1") {
            return None;
        }
        let config = meta.get("config")?.clone();
        Some((|| {
            let rows = decode_legacy_rows(meta.get("metrics").map_or("", |s| s.as_str()), path)?;
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

/// A float32 training checkpoint's tensors: the parameters under their [`Layout`] names, then
/// the optimiser's state ([`Optimizer::state`]) — what `train-cnn` and `cordsnet train` write,
/// with the optimiser's metadata to add to theirs.
pub(crate) fn checkpoint_entries(
    layout: &crate::tensor::Layout,
    params: &[f32],
    o: &Optimizer,
) -> (Vec<RawTensor>, Vec<(String, String)>) {
    let mut entries: Vec<RawTensor> = layout
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                bytemuck::cast_slice(&params[t.range()]).to_vec(),
                Dtype::F32,
            )
        })
        .collect();
    let (opt, meta) = o.state();
    entries.extend(opt);
    (entries, meta)
}

/// Reads a `train-cnn` checkpoint: its configuration and the trained network in precision `F`.
pub fn load<F: super::Real>(path: &Path) -> Result<(CnnConfig, Sequential<F>)> {
    let meta = crate::tensor::safetensors::read_metadata(path)?;
    let config: CnnConfig = meta
        .get("run.config")
        .or_else(|| meta.get("config"))
        .ok_or_else(|| {
            Error::invalid(
                "checkpoint",
                format!(
                    "{}: no `config` metadata (not a train-cnn checkpoint)",
                    path.display()
                ),
            )
        })
        .and_then(|t| {
            toml::from_str(t).map_err(|e| {
                Error::invalid(
                    "checkpoint",
                    format!("{}: bad `config` ({e})", path.display()),
                )
            })
        })?;
    let mut net = config.model.build::<F>(Shape::new(1, 28, 28))?;
    load_into(path, &mut net, None)?;
    Ok((config, net))
}

/// Logits (`b × classes`, row-major) of the `train-cnn` checkpoint at `path` on `b` 28 × 28
/// images given as grey levels in [0, 1], scaled here as in training (standardised with the
/// training set's mean and deviation, raw for `organics-autoencoder`); evaluation mode (running BatchNorm statistics, no dropout).
pub fn predict(path: &Path, pixels: &[f64], b: usize) -> Result<Vec<f64>> {
    if pixels.len() != b * 28 * 28 {
        return Err(Error::invalid(
            "images",
            format!("{} values for {b} images of 28 × 28", pixels.len()),
        ));
    }
    if let Some(v) = pixels.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::invalid(
            "images",
            format!("grey level {v} outside [0, 1] (divide 8-bit images by 255)"),
        ));
    }
    let (config, mut net) = load::<f32>(path)?;
    let (m, s) = config.model.arch.input_scaling(config.dataset);
    let x: Vec<f32> = pixels.iter().map(|&v| ((v - m) / s) as f32).collect();
    let mut out = Vec::with_capacity(b * 10);
    const CHUNK: usize = 256;
    for (i, chunk) in x.chunks(CHUNK * 28 * 28).enumerate() {
        let k = chunk.len() / (28 * 28);
        let logits = net.forward(chunk, k, false, i as u64);
        out.extend(logits.iter().map(|&v| v as f64));
    }
    Ok(out)
}

/// Fills `net` (and the optimiser state) from the checkpoint at `path`, checking every tensor's
/// presence and shape.
fn load_into<F: super::Real>(
    path: &Path,
    net: &mut Sequential<F>,
    optimizer: Option<(&mut Optimizer, &HashMap<String, String>)>,
) -> Result<()> {
    let tensors = crate::tensor::safetensors::load_params(path, &net.layout, &mut net.params)?;
    if let Some((o, meta)) = optimizer {
        o.restore(&tensors, meta, net.params.len(), path)?;
    }
    Ok(())
}
