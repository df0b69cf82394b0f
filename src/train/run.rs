//! A training run as the `train` binary performs it: the configuration ([`RunConfig`], written to
//! `config.toml`), the engine (CPU in f64 or f32, or the GPU), and the recurrent trainer's side of
//! the shared driver ([`crate::learn`]): epochs of minibatches each followed by an evaluation, the
//! metrics table and learning curve, and the checkpoint — which records the run's state
//! (`run.kind` = `recurrent`, `run.epoch`, `run.metrics`, `run.config`), so that a rerun with the
//! same output folder resumes after the last completed epoch, bit for bit.
//!
//! ```no_run
//! use neurodyn::learn::Learner;
//! use neurodyn::train::run::{RecurrentRun, RunConfig};
//! use neurodyn::train::{cell::CellKind, Task};
//! let cfg = RunConfig::new(Task::GoNoGo, CellKind::Rate);
//! let mut run = RecurrentRun::open(cfg, "out/run".as_ref()).unwrap();
//! let rows = run.train(&mut |_| {}).unwrap();
//! println!("final accuracy {:.1} %", 100.0 * rows.last().unwrap().accuracy);
//! ```

use super::cell::{AnyCell, CellKind, RatePhi};
use super::checkpoint;
use super::gpu::GpuTrainer;
use super::net::SeqNet;
use super::{train_step, CellSpec, DataSource, EvalSet, Task};
use crate::data::Perturbation;
use crate::error::{Error, Result};
use crate::io::{Column, Table, TableFormat};
use crate::learn::{
    self, Config as _, EpochRow, EpochTotals, Learner, Optimizer, Progress, Schedule, StepLoss,
};
use crate::plot::LinePlot;
use crate::tensor::real::Real;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the network trains.
pub use crate::gpu::Device;

/// Floating-point precision of the trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F64,
    F32,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F64 => "f64",
            Precision::F32 => "f32",
        }
    }
}

/// The training protocol on the rate tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskProtocol {
    /// Minibatches, mean-square trajectory loss, x(0) = 0, every epoch run.
    #[default]
    Default,
    /// Kim, Li & Sejnowski (2019): loss √(Σ_t (o_t − z_t)²) per trial, x(0) ~ N(0, 1)/100, and the
    /// stop rule: after an evaluation with mean loss < 7 and accuracy > 0.95 (Go/NoGo: also more
    /// than 1,500 trials seen). `train` then defaults to batch 1, 100 trials per epoch, 100
    /// evaluation trials and at most 60 epochs (6,000 trials). CPU, rate cell, rate tasks.
    Paper,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The configuration of a run (the `train` flags; `config.toml` in the output folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub task: Task,
    pub cell: CellKind,
    pub device: Device,
    pub precision: Precision,
    pub hidden: usize,
    pub controller: usize,
    pub phi: RatePhi,
    pub epochs: usize,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    pub pool: usize,
    pub eval: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wr_max_sv: Option<f64>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub protocol: TaskProtocol,
    /// Rate cell with Dale's law: the first `som` inhibitory units are SST units (Kim et al.'s
    /// SST motif; CPU only).
    #[serde(default, skip_serializing_if = "is_default")]
    pub som: usize,
    /// Rate and ORGaNICs cells: time constants fixed at their initial values.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fixed_tau: bool,
    /// ORGaNICs: κ_max of (y, a, b) = dt/τ at its smallest τ ([`CellSpec::kappa_max`]); None:
    /// the cell's default (0.01, 0.01, 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa_max: Option<[f64; 3]>,
    /// `--task custom`: the arrays and the loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<crate::data::custom::CustomSpec>,
    /// Digits: training images held out as a validation set (the psMNIST protocol's 10,000 of
    /// 60,000, split as the original); the per-epoch `accuracy`/`eval_loss` are then the
    /// validation set's and `test_accuracy` the test set's. 0: none.
    #[serde(default, skip_serializing_if = "is_default")]
    pub val: usize,
    /// ReduceLROnPlateau patience on the held-out loss (factor 0.1; the protocol's 10). 0: off.
    /// The same as `schedule = plateau:P`; kept because runs recorded it so.
    #[serde(default, skip_serializing_if = "is_default")]
    pub plateau: usize,
    /// The learning-rate schedule ([`Schedule`]: step, cosine, plateau; constant when absent).
    #[serde(default, skip_serializing_if = "is_default")]
    pub schedule: Schedule,
    /// After training, the psMNIST robustness tests (clean, sin transform, step drive) →
    /// robustness.csv.
    #[serde(default, skip_serializing_if = "is_default")]
    pub robustness: bool,
    /// Adam's L2 weight decay (PyTorch's `Adam(weight_decay=…)`: λ·θ added to the gradient after
    /// clipping); the ORGaNICs sMNIST protocol's 1e-5. 0: none.
    #[serde(default, skip_serializing_if = "is_default")]
    pub weight_decay: f64,
    /// The run folder this run branched from: its finished epochs (network, Adam state, rows)
    /// continued here under this configuration ([`RunConfig::branches`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
}

impl RunConfig {
    /// The defaults of `train` for this task and cell (the cell's [`CellSpec::default_for`]; 16
    /// epochs of 50 minibatches of 16, Adam 0.01, seed 1, 200 evaluation trials, CPU f64).
    pub fn new(task: Task, cell: CellKind) -> Self {
        let spec = CellSpec::default_for(cell, task);
        RunConfig {
            task,
            cell,
            device: Device::Cpu,
            precision: Precision::F64,
            hidden: spec.hidden,
            controller: spec.controller,
            phi: spec.phi,
            epochs: 16,
            steps: 50,
            batch: 16,
            lr: 0.01,
            seed: 1,
            pool: 1,
            eval: 200,
            clip: None,
            data_dir: None,
            wr_max_sv: None,
            protocol: TaskProtocol::Default,
            som: 0,
            fixed_tau: false,
            kappa_max: None,
            custom: None,
            val: 0,
            plateau: 0,
            schedule: Schedule::Constant,
            robustness: false,
            weight_decay: 0.0,
            from: None,
        }
    }

    /// Whether the paper's stop rule ends the run after an evaluation with this loss and
    /// accuracy, `trials` trials into training.
    pub fn stops(&self, eval_loss: f64, accuracy: f64, trials: usize) -> bool {
        self.protocol == TaskProtocol::Paper
            && eval_loss < 7.0
            && accuracy > 0.95
            && (self.task != Task::GoNoGo || trials > 1500)
    }

    /// The learning-rate schedule: `schedule`, or with `plateau` > 0 ReduceLROnPlateau with that
    /// patience and factor 0.1.
    pub fn lr_schedule(&self) -> Schedule {
        if self.plateau > 0 {
            Schedule::Plateau {
                patience: self.plateau,
                factor: 0.1,
            }
        } else {
            self.schedule
        }
    }

    /// The cell specification.
    pub fn spec(&self) -> CellSpec {
        let mut s = CellSpec::default_for(self.cell, self.task);
        s.hidden = self.hidden;
        s.controller = self.controller;
        s.phi = self.phi;
        s.pool = self.pool;
        s.wr_max_sv = self.wr_max_sv;
        s.som = self.som;
        s.fixed_tau = self.fixed_tau;
        s.kappa_max = self.kappa_max.map(|[y, a, b]| (y, a, b));
        s
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.hidden == 0 {
            return Err(Error::invalid("hidden", "must be at least 1"));
        }
        if self.device == Device::Gpu && self.precision == Precision::F64 {
            return Err(Error::invalid(
                "precision",
                "f64 with --device gpu: the GPU trainer works in f32",
            ));
        }
        for (field, v) in [
            ("batch", self.batch),
            ("steps", self.steps),
            ("epochs", self.epochs),
            ("eval", self.eval),
        ] {
            if v == 0 {
                return Err(Error::invalid(field, "must be at least 1"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid(
                "lr",
                format!("{} (must be positive)", self.lr),
            ));
        }
        if let Some(c) = self.clip {
            if !(c > 0.0 && c.is_finite()) {
                return Err(Error::invalid("clip", format!("{c} (must be positive)")));
            }
        }
        self.schedule.validate("schedule")?;
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::invalid(
                "weight_decay",
                format!("{} (must be zero or positive)", self.weight_decay),
            ));
        }
        if self.plateau > 0 && self.schedule != Schedule::Constant {
            return Err(Error::invalid(
                "schedule",
                "give either --plateau or --schedule, not both",
            ));
        }
        self.check_memory()?;
        if (self.val > 0 || self.robustness) && !self.task.is_digits() {
            let field = if self.val > 0 { "val" } else { "robustness" };
            return Err(Error::invalid(
                field,
                "the validation split and the robustness tests are for the digits tasks (seq-digits, perm-digits)",
            ));
        }
        match (&self.custom, self.task) {
            (None, Task::Custom) => {
                return Err(Error::invalid(
                    "inputs",
                    "--task custom needs --inputs u.npy and --targets z.npy",
                ))
            }
            (Some(_), t) if t != Task::Custom => {
                return Err(Error::invalid(
                    "inputs",
                    "--inputs/--targets/--mask go with --task custom",
                ))
            }
            (Some(c), _) if c.mask.is_some() && self.device == Device::Gpu => {
                return Err(Error::invalid(
                    "mask",
                    "the GPU trainer has no loss mask (--device cpu)",
                ))
            }
            _ => {}
        }
        if self.som > 0 && (self.cell != CellKind::Rate || self.task.is_digits()) {
            return Err(Error::invalid(
                "som",
                "SST units need the Dale rate network: --cell rate on go-nogo, xor or mante",
            ));
        }
        if self.fixed_tau && !matches!(self.cell, CellKind::Rate | CellKind::Organics) {
            return Err(Error::invalid(
                "fixed-tau",
                "only the rate and ORGaNICs cells have time constants to fix",
            ));
        }
        if let Some(k) = self.kappa_max {
            if self.cell != CellKind::Organics {
                return Err(Error::invalid(
                    "kappa-max",
                    "only the ORGaNICs cell has the rates κ_max",
                ));
            }
            if let Some(v) = k.iter().find(|v| !(**v > 0.0 && **v <= 1.0)) {
                return Err(Error::invalid(
                    "kappa-max",
                    format!("{v} (each of y, a, b must be in (0, 1]: dt/τ of an Euler step)"),
                ));
            }
        }
        if self.som > 0 && self.device != Device::Cpu {
            return Err(Error::invalid(
                "som",
                "the SST mask is trained on the CPU only (--device cpu)",
            ));
        }
        if self.protocol == TaskProtocol::Paper
            && (self.cell != CellKind::Rate
                || self.task.is_digits()
                || self.task == Task::Custom
                || self.device != Device::Cpu)
        {
            return Err(Error::invalid(
                "protocol",
                "`paper` is Kim, Li & Sejnowski's protocol: --cell rate on go-nogo, xor or mante, --device cpu",
            ));
        }
        Ok(())
    }

    /// Refuses sizes whose parameters (with gradient and Adam moments) or whose minibatch of
    /// stored states (BPTT keeps every step) exceed the memory available, naming the field.
    fn check_memory(&self) -> Result<()> {
        let n = self.hidden as u128;
        let m = self.controller as u128;
        let state = match self.cell {
            CellKind::Anru => n * (1 + m),
            CellKind::Organics => 4 * n,
            CellKind::Lstm => 2 * n,
            _ => n,
        };
        let inputs = self.task.n_in() as u128;
        // Upper bound over the cells: ORGaNICs has 5 N × N matrices and 3 N × N_in; the LSTM
        // 4 N × N and 4 N × N_in.
        let params = 6 * n * n + n * (4 * inputs + 2 * m + 16) + 10 * (n + 1);
        crate::memory::check("hidden", params * 8 * 4, None)?;
        let steps = if self.task.is_digits() {
            (784 / (self.pool * self.pool).max(1)) as u128
        } else {
            501
        };
        let per_trial = steps * (6 * state + inputs + 2) * 8;
        crate::memory::check(
            "batch",
            per_trial * (self.batch.max(self.eval) as u128),
            None,
        )
    }
}

/// One evaluated epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecurrentRow {
    pub epoch: usize,
    /// Minibatches done.
    pub iteration: usize,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Held-out accuracy after the epoch.
    pub accuracy: f64,
    /// Held-out loss after the epoch (NaN in runs recorded before it was kept).
    pub eval_loss: f64,
    /// The learning rate the epoch trained at (NaN in runs recorded before it was kept).
    pub lr: f64,
    /// With a validation split (`val`), `accuracy` and `eval_loss` are the validation set's and
    /// this is the test set's accuracy; NaN otherwise.
    pub test_accuracy: f64,
}

impl EpochRow for RecurrentRow {
    fn summary(&self) -> String {
        format!(
            "epoch {}: loss {:.5}, accuracy {:.1} %",
            self.epoch,
            self.loss,
            100.0 * self.accuracy
        )
    }
    /// epoch, iteration, loss, accuracy, eval_loss, lr (and test_accuracy when any row has one).
    fn table(r: &[Self]) -> Table {
        let mut t = learn::metrics_table(
            r,
            &[
                ("epoch", |r| r.epoch as i64),
                ("iteration", |r| r.iteration as i64),
            ],
            &[
                ("loss", |r| r.loss),
                ("accuracy", |r| r.accuracy),
                ("eval_loss", |r| r.eval_loss),
                ("lr", |r| r.lr),
            ],
        );
        if r.iter().any(|r| !r.test_accuracy.is_nan()) {
            t.push(
                "test_accuracy",
                Column::F64(r.iter().map(|r| r.test_accuracy).collect()),
            );
        }
        t
    }
    fn eval_loss(&self) -> f64 {
        self.eval_loss
    }
}

/// The rows of a checkpoint written before the shared run state (`run.metrics` as
/// comma-separated rows with `{:?}` floats, `;` between rows).
fn decode_legacy_rows(s: &str, path: &Path) -> Result<Vec<RecurrentRow>> {
    let bad = || {
        Error::invalid(
            "checkpoint",
            format!("{}: corrupt `run.metrics` metadata", path.display()),
        )
    };
    if s.is_empty() {
        return Ok(vec![]);
    }
    s.split(';')
        .map(|r| {
            let f: Vec<&str> = r.split(',').collect();
            if !(4..=7).contains(&f.len()) {
                return Err(bad());
            }
            let opt = |k: usize| -> Result<f64> {
                match f.get(k) {
                    Some(v) => v.parse().map_err(|_| bad()),
                    None => Ok(f64::NAN),
                }
            };
            Ok(RecurrentRow {
                epoch: f[0].parse().map_err(|_| bad())?,
                iteration: f[1].parse().map_err(|_| bad())?,
                loss: f[2].parse().map_err(|_| bad())?,
                accuracy: f[3].parse().map_err(|_| bad())?,
                eval_loss: opt(4)?,
                lr: opt(5)?,
                test_accuracy: opt(6)?,
            })
        })
        .collect()
}

/// Where the network lives while it trains.
enum Engine {
    Cpu64(SeqNet<f64, AnyCell>, Optimizer),
    Cpu32(SeqNet<f32, AnyCell>, Optimizer),
    Gpu(Box<GpuTrainer>),
}

impl Engine {
    fn step(&mut self, src: &DataSource, it: usize, c: &RunConfig, lr: f64) -> Result<f64> {
        fn cpu<F: Real>(
            net: &mut SeqNet<F, AnyCell>,
            opt: &mut Optimizer,
            src: &DataSource,
            it: usize,
            c: &RunConfig,
        ) -> Result<f64> {
            Ok(train_step(net, opt, &src.batch::<F>(it, c.batch, c.seed)?, c.clip)?.loss)
        }
        match self {
            Engine::Cpu64(n, opt) => {
                opt.lr = lr;
                cpu(n, opt, src, it, c)
            }
            Engine::Cpu32(n, opt) => {
                opt.lr = lr;
                cpu(n, opt, src, it, c)
            }
            // A non-finite loss is refused by the driver, with the epoch and minibatch.
            Engine::Gpu(g) => Ok(g.train_step(&src.batch::<f32>(it, c.batch, c.seed)?, lr)?.0),
        }
    }

    fn evaluate(&mut self, src: &DataSource, c: &RunConfig) -> Result<(f64, f64)> {
        if src.task.is_digits() {
            let set = if src.val.is_some() {
                EvalSet::Validation
            } else {
                EvalSet::Test
            };
            return self.evaluate_digits(src, set, c.eval, None);
        }
        let seed = c.seed ^ 0x5eed;
        match self {
            Engine::Cpu64(n, _) => src.evaluate(n, c.eval, seed),
            Engine::Cpu32(n, _) => src.evaluate(n, c.eval, seed),
            // The rate tasks' criteria need the output trajectories: evaluated on the CPU.
            Engine::Gpu(g) => src.evaluate(&g.download()?.0, c.eval, seed),
        }
    }

    /// Loss and accuracy on up to `trials` images of a digits set, optionally perturbed (on the
    /// device for the GPU engine: only losses and hits come back).
    fn evaluate_digits(
        &mut self,
        src: &DataSource,
        set: EvalSet,
        trials: usize,
        perturb: Option<Perturbation>,
    ) -> Result<(f64, f64)> {
        match self {
            Engine::Cpu64(n, _) => src.evaluate_digits(n, set, trials, perturb),
            Engine::Cpu32(n, _) => src.evaluate_digits(n, set, trials, perturb),
            Engine::Gpu(g) => Ok(crate::train::pooled(
                src.digit_batches::<f32>(set, trials, perturb)?
                    .iter()
                    .map(|b| g.evaluate(b).map(|(l, h)| (l, h, b.b)))
                    .collect::<Result<Vec<_>>>()?,
            )),
        }
    }

    fn save(&self, path: &Path, meta: &[(String, String)]) -> Result<()> {
        match self {
            Engine::Cpu64(n, opt) => checkpoint::save_with(n, opt, path, meta),
            Engine::Cpu32(n, opt) => checkpoint::save_with(n, opt, path, meta),
            Engine::Gpu(g) => {
                let (n, opt) = g.download()?;
                checkpoint::save_with(&n, &opt, path, meta)
            }
        }
    }
}

/// Loads a checkpoint into the configured engine, or builds a fresh network.
fn engine(cfg: &RunConfig, resume: Option<&Path>, dims: (usize, usize, bool)) -> Result<Engine> {
    fn net_for<F: Real>(
        cfg: &RunConfig,
        resume: Option<&Path>,
        dims: (usize, usize, bool),
    ) -> Result<(SeqNet<F, AnyCell>, Optimizer)> {
        let (net, mut opt) = match resume {
            Some(p) => checkpoint::load::<F>(p)?,
            None => {
                let mut net = cfg
                    .spec()
                    .build_sized::<F>(dims.0, dims.1, dims.2, cfg.seed)?;
                if cfg.protocol == TaskProtocol::Paper {
                    net.traj_loss = super::net::TrajLoss::RootSum;
                    net.x0_noise = 0.01;
                }
                (net, Optimizer::adam(cfg.lr))
            }
        };
        opt.lr = cfg.lr;
        opt.weight_decay = cfg.weight_decay;
        if resume.is_some() {
            use super::cell::Cell;
            let (h, k) = (Cell::<F>::hidden(&net.cell), Cell::<F>::n_in(&net.cell));
            if net.cell.kind() != cfg.cell || h != cfg.hidden || k != dims.0 {
                return Err(Error::invalid(
                    "out",
                    format!(
                        "{}: the checkpoint does not fit --task/--cell/--hidden",
                        resume.unwrap_or(Path::new("")).display()
                    ),
                ));
            }
        }
        Ok((net, opt))
    }
    Ok(match (cfg.device, cfg.precision) {
        (Device::Gpu, _) => {
            let (n, opt) = net_for::<f32>(cfg, resume, dims)?;
            let mut g = GpuTrainer::new(&n, &opt)?;
            g.set_clip(cfg.clip)?;
            g.set_weight_decay(cfg.weight_decay)?;
            Engine::Gpu(Box::new(g))
        }
        (Device::Cpu, Precision::F32) => {
            let (n, opt) = net_for::<f32>(cfg, resume, dims)?;
            Engine::Cpu32(n, opt)
        }
        (Device::Cpu, Precision::F64) => {
            let (n, opt) = net_for::<f64>(cfg, resume, dims)?;
            Engine::Cpu64(n, opt)
        }
    })
}

/// A training run of a recurrent cell bound to its output folder.
pub struct RecurrentRun {
    pub config: RunConfig,
    pub out: PathBuf,
    /// The epochs done so far (restored from the checkpoint when resuming).
    pub rows: Vec<RecurrentRow>,
    engine: Engine,
    data: DataSource,
}

/// Files of a run inside its output folder.
pub use crate::learn::{CHECKPOINT, CONFIG};

/// What [`RecurrentRun::train`] reports as it goes.
pub type RecurrentProgress = Progress<RecurrentRow>;

impl RecurrentRun {
    /// Opens a run in `out`: a fresh one, or — when `out` holds a checkpoint — the same run
    /// resumed after its last completed epoch (the configuration must match but for `epochs`).
    /// Writes `config.toml`.
    pub fn open(config: RunConfig, out: &Path) -> Result<RecurrentRun> {
        config.validate()?;
        let opened = learn::open::<RecurrentRun>(out, &config)?;
        let data = match &config.custom {
            Some(spec) => {
                let d = crate::data::custom::CustomData::load(spec, config.seed)?;
                // A minibatch of stored states for this T (check_memory assumed ≤ 501 steps).
                let per_trial = d.t as u128 * (6 * config.hidden as u128 + d.n_in as u128 + 2) * 8;
                crate::memory::check(
                    "batch",
                    per_trial * config.batch.max(config.eval.min(d.test.len())) as u128,
                    None,
                )?;
                DataSource::custom(d)
            }
            None => DataSource::new(
                config.task,
                config.data_dir.as_deref(),
                config.pool,
                config.seed,
            )?
            .with_validation(config.val, config.seed)?,
        };
        let (ckpt, rows) = match opened.resume {
            Some((ckpt, rows)) => (Some(ckpt), rows),
            None => (None, vec![]),
        };
        let engine = engine(&config, ckpt.as_deref(), data.dims())?;
        // Only now, with every input checked, does the run folder come into being.
        learn::create(out, &config.to_toml()?, &rows)?;
        Ok(RecurrentRun {
            config,
            out: opened.out,
            rows,
            engine,
            data,
        })
    }

    /// Epochs done.
    pub fn done(&self) -> usize {
        self.rows.len()
    }

    /// Whether the stop rule ended the run (the paper protocol).
    pub fn stopped(&self) -> bool {
        self.rows.last().is_some_and(|r| {
            self.config
                .stops(r.eval_loss, r.accuracy, r.iteration * self.config.batch)
        })
    }

    /// The learning rate of the next epoch: `lr` under the configured schedule (with `plateau`
    /// > 0, torch's ReduceLROnPlateau) replayed over the recorded held-out losses — so a resumed
    /// run continues the schedule.
    pub fn learning_rate(&self) -> f64 {
        let losses: Vec<f64> = self.rows.iter().map(|r| r.eval_loss).collect();
        self.config
            .lr_schedule()
            .lr(self.config.lr, self.rows.len(), &losses)
    }

    /// The psMNIST robustness tests (Geadah et al. 2024) on the test images: clean, the sin
    /// transform (A = 0.5, f = 1, φ = 0) and the step drive; `robustness.csv` (condition, loss,
    /// accuracy). Returns the rows.
    pub fn robustness(&mut self) -> Result<Vec<(String, f64, f64)>> {
        if !self.data.task.is_digits() {
            return Err(Error::invalid(
                "robustness",
                "the robustness tests perturb the digit sequences: --task seq-digits or perm-digits",
            ));
        }
        let mut rows = vec![];
        for (name, p) in [
            ("clean", None),
            (
                "sin",
                Some(Perturbation::Sin {
                    amplitude: 0.5,
                    frequency: 1.0,
                    phase: 0.0,
                }),
            ),
            ("step", Some(Perturbation::Step)),
        ] {
            let (l, a) =
                self.engine
                    .evaluate_digits(&self.data, EvalSet::Test, self.config.eval, p)?;
            rows.push((name.to_string(), l, a));
        }
        let mut t = Table::new();
        t.push(
            "condition",
            Column::Str(rows.iter().map(|r| r.0.clone()).collect()),
        );
        t.push("loss", Column::F64(rows.iter().map(|r| r.1).collect()));
        t.push("accuracy", Column::F64(rows.iter().map(|r| r.2).collect()));
        t.write(&self.out.join("robustness.csv"), TableFormat::Csv)?;
        Ok(rows)
    }
}

impl learn::Config for RunConfig {
    fn epochs(&self) -> usize {
        self.epochs
    }
    fn schedule(&self) -> (f64, Schedule) {
        (self.lr, self.lr_schedule())
    }
    /// The same run asked for more (or as many) epochs; the data folder may have moved (a run
    /// resumed on another machine reads the same IDX files from wherever they are there).
    fn continues(&self, asked: &Self) -> bool {
        RunConfig {
            epochs: asked.epochs,
            data_dir: asked.data_dir.clone(),
            from: asked.from.clone(),
            ..self.clone()
        } == *asked
    }
    fn branch_of(&self) -> Option<&Path> {
        self.from.as_deref()
    }
    /// A branch keeps the network (task, cell, sizes, seed, data, constraints) and may change
    /// what only steers the optimisation from here on.
    fn branches(&self, asked: &Self) -> bool {
        RunConfig {
            device: asked.device,
            precision: asked.precision,
            lr: asked.lr,
            clip: asked.clip,
            eval: asked.eval,
            plateau: asked.plateau,
            schedule: asked.schedule,
            weight_decay: asked.weight_decay,
            robustness: asked.robustness,
            ..self.clone()
        }
        .continues(asked)
    }
}

impl Learner for RecurrentRun {
    type Row = RecurrentRow;
    type Config = RunConfig;
    const KIND: &'static str = "recurrent";
    fn out(&self) -> &Path {
        &self.out
    }
    fn rows(&self) -> &[RecurrentRow] {
        &self.rows
    }
    fn rows_mut(&mut self) -> &mut Vec<RecurrentRow> {
        &mut self.rows
    }
    fn config(&self) -> &RunConfig {
        &self.config
    }
    fn steps(&self, _epoch: usize) -> usize {
        self.config.steps
    }
    fn step(&mut self, epoch: usize, step: usize, lr: f64) -> Result<StepLoss> {
        let it = epoch * self.config.steps + step;
        let loss = self.engine.step(&self.data, it, &self.config, lr)?;
        Ok(StepLoss {
            loss,
            examples: self.config.batch,
            correct: 0,
        })
    }
    fn end_epoch(
        &mut self,
        epoch: usize,
        lr: f64,
        totals: &EpochTotals,
        _seconds: f64,
    ) -> Result<RecurrentRow> {
        let c = &self.config;
        let (eval_loss, accuracy) = self.engine.evaluate(&self.data, c)?;
        let test_accuracy = if self.data.val.is_some() {
            self.engine
                .evaluate_digits(&self.data, EvalSet::Test, c.eval, None)?
                .1
        } else {
            f64::NAN
        };
        Ok(RecurrentRow {
            epoch: epoch + 1,
            iteration: (epoch + 1) * c.steps,
            loss: totals.mean_loss,
            accuracy,
            eval_loss,
            lr,
            test_accuracy,
        })
    }
    fn stop(&self) -> bool {
        self.stopped()
    }
    fn save(&self, path: &Path, meta: Vec<(String, String)>) -> Result<()> {
        self.engine.save(path, &meta)
    }
    fn curve(&self) -> Option<LinePlot> {
        let c = &self.config;
        Some(
            LinePlot::new(
                format!(
                    "{} learning curve ({} cell, {})",
                    c.task.name(),
                    c.cell.name(),
                    match c.device {
                        Device::Cpu => "cpu",
                        Device::Gpu => "gpu",
                    }
                ),
                "iteration",
                "loss / accuracy",
            )
            .series(
                if c.task.is_digits() {
                    "loss (cross-entropy)"
                } else if c.protocol == TaskProtocol::Paper {
                    "loss (root sum of squares)"
                } else {
                    "loss (MSE)"
                },
                self.rows
                    .iter()
                    .map(|r| (r.iteration as f64, r.loss))
                    .collect(),
            )
            .series(
                "accuracy",
                self.rows
                    .iter()
                    .map(|r| (r.iteration as f64, r.accuracy))
                    .collect(),
            ),
        )
    }
    fn finish(&mut self) -> Result<()> {
        if self.config.robustness {
            self.robustness()?;
        }
        Ok(())
    }
    /// Before the shared run state: `run.epoch`, `run.metrics` as comma-separated rows, and
    /// `run.config` (or, older still, only `config.toml` beside the checkpoint).
    fn legacy_state(
        meta: &HashMap<String, String>,
        path: &Path,
    ) -> Option<Result<(String, Vec<RecurrentRow>)>> {
        let (epoch, metrics) = (meta.get("run.epoch")?, meta.get("run.metrics")?);
        let config = match meta.get("run.config") {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(path.with_file_name(CONFIG)).ok()?,
        };
        Some(decode_legacy_rows(metrics, path).and_then(|rows| {
            if epoch.parse::<usize>().ok() != Some(rows.len()) {
                return Err(Error::invalid(
                    "checkpoint",
                    format!(
                        "{}: `run.epoch` disagrees with `run.metrics`",
                        path.display()
                    ),
                ));
            }
            Ok((config, rows))
        }))
    }
}
