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
//! `optimizer.v` (float64), and metadata `format` = `neurodyn-cnn-1`, `config` (the TOML of
//! [`CnnConfig`]), `epoch`, `optimizer.t`, `metrics` (the rows, `;`-separated).

use super::arch::{Arch, ArchSpec, Norm, Sequential};
use super::optim::{Optimizer, OptimizerKind};
use super::Shape;
use crate::error::{Error, Result};
use crate::io::{Column, Table, TableFormat};
use crate::plot::LinePlot;
use crate::data::{Dataset, ImageSet};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
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
        if !(0.0..1.0).contains(&self.model.dropout) {
            return Err(Error::invalid(
                "dropout",
                format!("{}: must be in [0, 1)", self.model.dropout),
            ));
        }
        Ok(())
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("config", e.to_string()))
    }

    /// The optimiser this configuration asks for.
    pub fn optimizer(&self) -> Result<Optimizer> {
        let mut o = Optimizer::new(self.optimizer, self.lr)?;
        o.momentum = self.momentum;
        o.weight_decay = self.weight_decay;
        Ok(o)
    }
}

/// One finished epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
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

fn encode_rows(rows: &[CnnRow]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{},{},{:?},{:?},{:?},{:?},{:?}",
                r.epoch,
                r.steps,
                r.train_loss,
                r.train_accuracy,
                r.test_loss,
                r.test_accuracy,
                r.seconds
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn decode_rows(s: &str, path: &Path) -> Result<Vec<CnnRow>> {
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

/// Files of a run.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const CONFIG: &str = "config.toml";

/// What [`CnnRun::train`] reports.
#[derive(Debug, Clone, Copy)]
pub enum CnnProgress {
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
    },
    Epoch(CnnRow),
}

/// A training run bound to its output folder.
pub struct CnnRun {
    pub config: CnnConfig,
    pub out: PathBuf,
    pub rows: Vec<CnnRow>,
    pub net: Sequential<f32>,
    pub optimizer: Optimizer,
    pub train: ImageSet,
    pub test: ImageSet,
}

impl CnnRun {
    /// Opens a run in `out`: fresh, or resumed from `out/checkpoint.safetensors` when it holds
    /// the same configuration (but for `epochs`). Nothing is written before every input has been
    /// checked (the data read, the network built, its memory estimated against what is
    /// available or `max_memory`).
    pub fn open(config: CnnConfig, out: &Path, max_memory: Option<u64>) -> Result<CnnRun> {
        config.validate()?;
        if out.exists() && !out.is_dir() {
            return Err(Error::invalid(
                "out",
                format!("{} exists and is not a folder", out.display()),
            ));
        }
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
        let train = ImageSet::new(&train_d, config.dataset, config.train_limit);
        let test = ImageSet::new(&test_d, config.dataset, config.test_limit);
        net.init(config.seed);
        let mut optimizer = config.optimizer()?;
        let ckpt = out.join(CHECKPOINT);
        let mut rows = vec![];
        if ckpt.exists() {
            let meta = crate::tensor::safetensors::read_metadata(&ckpt)?;
            let other: Option<CnnConfig> = meta.get("config").and_then(|t| toml::from_str(t).ok());
            let same = other.is_some_and(|o| {
                CnnConfig {
                    epochs: config.epochs,
                    ..o
                } == config
            });
            if !same {
                return Err(Error::invalid(
                    "out",
                    format!(
                        "{} holds a run with another configuration (use a new --out)",
                        out.display()
                    ),
                ));
            }
            rows = decode_rows(meta.get("metrics").map_or("", |s| s.as_str()), &ckpt)?;
            let epoch = meta.get("epoch").and_then(|e| e.parse::<usize>().ok());
            if epoch != Some(rows.len()) {
                return Err(Error::invalid(
                    "checkpoint",
                    format!("{}: `epoch` disagrees with `metrics`", ckpt.display()),
                ));
            }
            load_into(&ckpt, &mut net, Some((&mut optimizer, &meta)))?;
        }
        std::fs::create_dir_all(out).map_err(|e| Error::file(out, e))?;
        let text = config.to_toml()?;
        let cpath = out.join(CONFIG);
        crate::io::write_atomic(&cpath, |w| {
            std::io::Write::write_all(w, text.as_bytes()).map_err(|e| Error::file(&cpath, e))
        })?;
        let run = CnnRun {
            config,
            out: out.to_path_buf(),
            rows,
            net,
            optimizer,
            train,
            test,
        };
        if !run.rows.is_empty() {
            run.write_metrics()?;
        }
        Ok(run)
    }

    /// Epochs done.
    pub fn done(&self) -> usize {
        self.rows.len()
    }

    /// Optimiser steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.config.batch)
    }

    /// Trains the remaining epochs; after each, the checkpoint, then the metrics; at the end the
    /// learning curve.
    pub fn train(&mut self, progress: &mut dyn FnMut(CnnProgress)) -> Result<Vec<CnnRow>> {
        let c = self.config.clone();
        let d = self.train.shape.len();
        let steps = self.steps_per_epoch();
        let mask = self.net.train_mask();
        let mut xb = vec![0f32; c.batch * d];
        let mut lb = vec![0u8; c.batch];
        for epoch in self.done()..c.epochs {
            let t0 = std::time::Instant::now();
            let mut order: Vec<usize> = (0..self.train.len()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(crate::seed::trial_seed(
                c.seed, epoch, 0, 1,
            )));
            let (mut loss, mut correct) = (0.0, 0usize);
            for step in 0..steps {
                let idx = &order[step * c.batch..((step + 1) * c.batch).min(order.len())];
                let b = idx.len();
                for (k, &i) in idx.iter().enumerate() {
                    xb[k * d..(k + 1) * d].copy_from_slice(&self.train.x[i * d..(i + 1) * d]);
                    lb[k] = self.train.labels[i];
                }
                let seed = crate::seed::trial_seed(c.seed, epoch, step, 2);
                let (l, cc) = self.net.loss_grad(&xb[..b * d], &lb[..b], seed)?;
                if !l.is_finite() {
                    return Err(Error::invalid(
                        "lr",
                        format!(
                            "the loss became {l} at epoch {}, step {} (try a smaller --lr)",
                            epoch + 1,
                            step + 1
                        ),
                    ));
                }
                self.optimizer
                    .step(&mut self.net.params, &self.net.grad, &mask);
                loss += l * b as f64;
                correct += cc;
                progress(CnnProgress::Step {
                    epoch,
                    step,
                    steps,
                    loss: l,
                });
            }
            let (test_loss, test_correct) =
                self.net.evaluate(&self.test.x, &self.test.labels, 256)?;
            let n = self.train.len() as f64;
            let row = CnnRow {
                epoch: epoch + 1,
                steps: (epoch + 1) * steps,
                train_loss: loss / n,
                train_accuracy: correct as f64 / n,
                test_loss,
                test_accuracy: test_correct as f64 / self.test.len() as f64,
                seconds: t0.elapsed().as_secs_f64(),
            };
            self.rows.push(row);
            self.save(&self.out.join(CHECKPOINT))?;
            self.write_metrics()?;
            progress(CnnProgress::Epoch(row));
        }
        self.learning_curve()?;
        Ok(self.rows.clone())
    }

    /// The metrics table: epoch, steps, train_loss, train_accuracy, test_loss, test_accuracy,
    /// seconds.
    pub fn metrics(&self) -> Table {
        let r = &self.rows;
        let mut t = Table::new();
        t.push(
            "epoch",
            Column::I64(r.iter().map(|r| r.epoch as i64).collect()),
        );
        t.push(
            "steps",
            Column::I64(r.iter().map(|r| r.steps as i64).collect()),
        );
        for (name, f) in [
            (
                "train_loss",
                (|r: &CnnRow| r.train_loss) as fn(&CnnRow) -> f64,
            ),
            ("train_accuracy", |r| r.train_accuracy),
            ("test_loss", |r| r.test_loss),
            ("test_accuracy", |r| r.test_accuracy),
            ("seconds", |r| r.seconds),
        ] {
            t.push(name, Column::F64(r.iter().map(f).collect()));
        }
        t
    }

    fn write_metrics(&self) -> Result<()> {
        let t = self.metrics();
        t.write(&self.out.join("metrics.csv"), TableFormat::Csv)?;
        t.write(&self.out.join("metrics.parquet"), TableFormat::Parquet)
    }

    fn learning_curve(&self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let c = &self.config;
        let pts = |f: fn(&CnnRow) -> f64| -> Vec<(f64, f64)> {
            self.rows.iter().map(|r| (r.epoch as f64, f(r))).collect()
        };
        LinePlot::new(
            format!(
                "{} on {}: norm {:?}, ReLU {}",
                arch_name(c.model.arch),
                c.dataset.name(),
                c.model.norm,
                if c.model.relu { "on" } else { "off" }
            ),
            "epoch",
            "accuracy",
        )
        .series("train", pts(|r| r.train_accuracy))
        .series("test", pts(|r| r.test_accuracy))
        .save(&self.out.join("learning_curve"))?;
        Ok(())
    }

    /// Writes the checkpoint (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let entries = checkpoint_entries(&self.net.layout, &self.net.params, &self.optimizer);
        let o = &self.optimizer;
        let meta: std::collections::BTreeMap<String, String> = [
            ("format".to_string(), "neurodyn-cnn-1".to_string()),
            ("config".to_string(), self.config.to_toml()?),
            ("epoch".to_string(), self.rows.len().to_string()),
            ("metrics".to_string(), encode_rows(&self.rows)),
            ("optimizer.t".to_string(), o.t.to_string()),
        ]
        .into_iter()
        .collect();
        crate::tensor::safetensors::write_safetensors(path, &entries, &meta)
    }
}

/// A float32 training checkpoint's tensors: the parameters under their [`Layout`] names, then
/// the optimiser's moments `optimizer.m`, `optimizer.v` (float64) once it has stepped — what
/// `train-cnn` and `cordsnet train` write with their own metadata.
pub(crate) fn checkpoint_entries(
    layout: &crate::tensor::Layout,
    params: &[f32],
    o: &Optimizer,
) -> Vec<(String, Vec<usize>, Vec<u8>, Dtype)> {
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = layout
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
    if !o.m.is_empty() {
        for (name, v) in [("optimizer.m", &o.m), ("optimizer.v", &o.v)] {
            entries.push((
                name.into(),
                vec![v.len()],
                bytemuck::cast_slice(v).to_vec(),
                Dtype::F64,
            ));
        }
    }
    entries
}

/// `small-alexnet` etc.
pub fn arch_name(a: Arch) -> &'static str {
    match a {
        Arch::SmallAlexnet => "small-alexnet",
        Arch::SmallVgg => "small-vgg",
        Arch::StaticOrganics => "static-organics",
    }
}

/// Reads a `train-cnn` checkpoint: its configuration and the trained network in precision `F`.
pub fn load<F: super::Real>(path: &Path) -> Result<(CnnConfig, Sequential<F>)> {
    let meta = crate::tensor::safetensors::read_metadata(path)?;
    let config: CnnConfig = meta
        .get("config")
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

/// Fills `net` (and the optimiser state) from the checkpoint at `path`, checking every tensor's
/// presence and shape.
fn load_into<F: super::Real>(
    path: &Path,
    net: &mut Sequential<F>,
    optimizer: Option<(&mut Optimizer, &HashMap<String, String>)>,
) -> Result<()> {
    let tensors = crate::tensor::safetensors::read_tensors(path)?;
    let find = |name: &str| tensors.iter().find(|t| t.0 == name);
    for t in net.layout.tensors.clone() {
        let Some((_, shape, v)) = find(&t.name) else {
            return Err(Error::invalid(
                "checkpoint",
                format!("{}: no tensor `{}`", path.display(), t.name),
            ));
        };
        if *shape != t.shape {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "{}: tensor `{}` has shape {shape:?}, expected {:?}",
                    path.display(),
                    t.name,
                    t.shape
                ),
            ));
        }
        for (d, s) in net.params[t.range()].iter_mut().zip(v) {
            *d = F::c(*s);
        }
    }
    if let Some((o, meta)) = optimizer {
        let p = net.params.len();
        match (find("optimizer.m"), find("optimizer.v")) {
            (Some(m), Some(v)) if m.2.len() == p && v.2.len() == p => {
                o.m = m.2.clone();
                o.v = v.2.clone();
                o.t = meta
                    .get("optimizer.t")
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| {
                        Error::invalid(
                            "checkpoint",
                            format!("{}: no `optimizer.t`", path.display()),
                        )
                    })?;
            }
            (None, None) if meta.get("epoch").map(|e| e.as_str()) == Some("0") => {}
            _ => {
                return Err(Error::invalid(
                    "checkpoint",
                    format!(
                        "{}: optimizer state missing or of the wrong size",
                        path.display()
                    ),
                ))
            }
        }
    }
    Ok(())
}
