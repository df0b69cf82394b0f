//! The one training driver every trainer runs under (in the spirit of burn's `Learner`: the model
//! supplies the step, the driver owns the loop). A trainer — the recurrent cells
//! ([`crate::train::run`]), the feed-forward networks ([`crate::nn::fit`]), CordsNet
//! ([`crate::cordsnet::fit`]) — implements [`Learner`]: how many epochs and minibatches, one
//! optimiser step, the evaluation that makes an epoch's row, how its network and optimiser go into
//! a checkpoint. [`fit`] does the rest, the same way for all of them:
//!
//! - the learning rate of each epoch from the trainer's [`Schedule`], replayed from the recorded
//!   rows (so a resumed run continues its schedule);
//! - one rule for a loss that stops being finite: the run fails (exit 1) naming the epoch and the
//!   minibatch, and nothing of that epoch is written;
//! - after every epoch, in this order: the checkpoint (network, optimiser state and the run's
//!   state in one file, written atomically), `config.toml`, then `metrics.csv`/`.parquet`
//!   rewritten from it; at the end `learning_curve.png/.svg`. A fresh run writes nothing before
//!   its first checkpoint, so a run that fails in its first epoch leaves nothing behind. A kill at any point loses at most the epoch in progress,
//!   and a rerun resumes bit for bit ([`open`] reads the state back);
//! - failpoints for the tests: `NEURODYN_FAILPOINT=<phase>:<epoch>` ends the process with exit 137,
//!   as a kill would, at `before-checkpoint`, `after-checkpoint` or `after-metrics` of that
//!   epoch.
//!
//! ## The checkpoint's run state (one schema, versioned)
//! Metadata `run.format` = `neurodyn-run-2`, `run.kind` (`recurrent`, `cnn`, `cordsnet`),
//! `run.config` (the configuration as TOML, authoritative; `config.toml` is its copy for people),
//! `run.epoch` (epochs done) and `run.metrics` (the rows as TOML `[[row]]` tables, every number
//! exact), beside the optimiser's `optimizer.t` and the trainer's own entries. Checkpoints written
//! before this schema (`run.metrics` as comma-separated rows in the recurrent trainer's; `config`,
//! `epoch` and `metrics` in the others') still resume: each trainer reads its old form
//! ([`Learner::legacy_state`]).

pub mod optim;
pub mod schedule;

pub use optim::{clip_grad_norm, Optimizer, OptimizerKind};
pub use schedule::Schedule;

use crate::error::{Error, Result};
use crate::io::{Table, TableFormat};
use crate::plot::LinePlot;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The checkpoint inside a run folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The configuration's copy for people inside a run folder.
pub const CONFIG: &str = "config.toml";
/// The version of the run-state schema (`run.format`).
pub const FORMAT: &str = "neurodyn-run-2";

/// One finished epoch's metrics, as a trainer defines them.
pub trait EpochRow: Clone + Serialize + DeserializeOwned {
    /// The metrics table of these rows (`metrics.csv`/`.parquet`).
    fn table(rows: &[Self]) -> Table;
    /// The held-out loss a plateau schedule follows (NaN where there is none).
    fn eval_loss(&self) -> f64;
    /// The epoch in a phrase for the terminal (`epoch 3: train loss 0.1234, test accuracy 91.20 %`).
    fn summary(&self) -> String;
}

/// A metrics table in the shape every trainer writes: the integer columns, then the float ones,
/// each from its getter, one row per epoch.
pub fn metrics_table<R>(
    rows: &[R],
    ints: &[(&str, fn(&R) -> i64)],
    floats: &[(&str, fn(&R) -> f64)],
) -> Table {
    let mut t = Table::new();
    for (name, f) in ints {
        t.push(*name, crate::io::Column::I64(rows.iter().map(f).collect()));
    }
    for (name, f) in floats {
        t.push(*name, crate::io::Column::F64(rows.iter().map(f).collect()));
    }
    t
}

/// What one minibatch gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLoss {
    /// The minibatch's mean loss.
    pub loss: f64,
    /// Examples (trials, images) in it.
    pub examples: usize,
    /// Of which classified correctly (0 where the task has no classes).
    pub correct: usize,
}

/// The training side of an epoch, accumulated by [`fit`] in minibatch order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpochTotals {
    /// Σ loss_i / steps: the mean of the minibatch losses.
    pub mean_loss: f64,
    /// Σ loss_i · examples_i: divided by `examples`, the mean over examples.
    pub weighted_loss: f64,
    pub examples: usize,
    pub correct: usize,
}

/// What [`fit`] reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress<R> {
    /// Minibatch `step` of `steps` in `epoch` (0-based) is done: its loss, and the epoch's mean
    /// minibatch loss so far.
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
        running_loss: f64,
    },
    /// An epoch was evaluated (and its checkpoint and metrics written).
    Epoch(R),
}

/// What the driver reads from a trainer's configuration, which every checkpoint stores as TOML
/// (`run.config`, and `config.toml` beside it).
pub trait Config: Serialize + DeserializeOwned {
    /// Epochs the configuration asks for.
    fn epochs(&self) -> usize;
    /// The base learning rate and its schedule.
    fn schedule(&self) -> (f64, Schedule);
    /// Whether a run stored with this configuration may go on as `asked` asks (everything equal
    /// but the epochs).
    fn continues(&self, asked: &Self) -> bool;
    /// The run folder whose finished epochs this configuration continues in a new folder (a
    /// branch: its network, optimiser state and rows, then training under this configuration's
    /// schedule, weight decay, …); None: none, the usual case.
    fn branch_of(&self) -> Option<&Path> {
        None
    }
    /// Whether a run stored with this configuration may be branched into `asked` (the network's
    /// definition and the data equal; what only steers the optimisation may differ).
    fn branches(&self, asked: &Self) -> bool {
        self.continues(asked)
    }
    /// The configuration as TOML.
    fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("config", e.to_string()))
    }
}

/// A trainer, as the driver sees it. The network, its data and its optimiser live in the
/// implementing type; the driver calls these in order for every epoch it runs.
pub trait Learner {
    type Row: EpochRow;
    type Config: Config;
    /// `run.kind`: which trainer wrote a checkpoint.
    const KIND: &'static str;
    /// The run folder.
    fn out(&self) -> &Path;
    /// The rows of the epochs done (restored when resuming).
    fn rows(&self) -> &[Self::Row];
    fn rows_mut(&mut self) -> &mut Vec<Self::Row>;
    /// The run's configuration (epochs, schedule, its TOML in checkpoints and `config.toml`).
    fn config(&self) -> &Self::Config;
    /// Minibatches in epoch `epoch`.
    fn steps(&self, epoch: usize) -> usize;
    /// Called before the first minibatch of an epoch (a new order, a new stage).
    fn begin_epoch(&mut self, _epoch: usize) -> Result<()> {
        Ok(())
    }
    /// One minibatch: the loss, its gradient and one optimiser step at rate `lr`.
    fn step(&mut self, epoch: usize, step: usize, lr: f64) -> Result<StepLoss>;
    /// The evaluation after an epoch, and its row.
    fn end_epoch(
        &mut self,
        epoch: usize,
        lr: f64,
        totals: &EpochTotals,
        seconds: f64,
    ) -> Result<Self::Row>;
    /// Whether a stop rule ends the run before the next epoch.
    fn stop(&self) -> bool {
        false
    }
    /// Writes the network and the optimiser state with the run state `meta`, atomically.
    fn save(&self, path: &Path, meta: Vec<(String, String)>) -> Result<()>;
    /// Trains the remaining epochs ([`fit`]): after each, the checkpoint (with the run state),
    /// then `metrics.csv`/`.parquet` that say it exists; at the end the learning curve.
    /// `progress(event)` is called after every minibatch and every evaluation.
    fn train(&mut self, progress: &mut dyn FnMut(Progress<Self::Row>)) -> Result<Vec<Self::Row>>
    where
        Self: Sized,
    {
        fit(self, progress)
    }
    /// The metrics table of the epochs done (one row per epoch).
    fn metrics(&self) -> Table {
        Self::Row::table(self.rows())
    }
    /// Writes the checkpoint of the epochs done (network, optimiser, run state) to `path`.
    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let meta = run_state(Self::KIND, &self.config().to_toml()?, self.rows())?;
        self.save(path, meta)
    }
    /// The learning curve (None: none to draw).
    fn curve(&self) -> Option<LinePlot>;
    /// Work after the last epoch (e.g. robustness tests).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// The run state of a checkpoint written before `run.format` existed: the configuration's
    /// TOML and the rows, or None when the metadata holds no run state of this trainer.
    fn legacy_state(
        _meta: &HashMap<String, String>,
        _path: &Path,
    ) -> Option<Result<(String, Vec<Self::Row>)>> {
        None
    }
}

/// The `[[row]]` tables of `run.metrics`.
#[derive(Serialize, Deserialize)]
struct Rows<R> {
    #[serde(default = "Vec::new")]
    row: Vec<R>,
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid("checkpoint", format!("{}: {msg}", path.display()))
}

/// The run-state metadata of a checkpoint (see the module documentation).
pub fn run_state<R: EpochRow>(
    kind: &str,
    config: &str,
    rows: &[R],
) -> Result<Vec<(String, String)>> {
    let metrics = toml::to_string(&Rows { row: rows.to_vec() })
        .map_err(|e| Error::failed("checkpoint", format!("cannot encode the metrics ({e})")))?;
    Ok(vec![
        ("run.format".into(), FORMAT.into()),
        ("run.kind".into(), kind.into()),
        ("run.config".into(), config.into()),
        ("run.epoch".into(), rows.len().to_string()),
        ("run.metrics".into(), metrics),
    ])
}

/// Reads the run state (configuration TOML and rows) from a checkpoint's metadata, in this
/// schema or the trainer's older one.
pub fn read_run_state<L: Learner>(
    meta: &HashMap<String, String>,
    path: &Path,
) -> Result<(String, Vec<L::Row>)> {
    let (config, rows) = match meta.get("run.format").map(String::as_str) {
        Some(FORMAT) => {
            if meta.get("run.kind").map(String::as_str) != Some(L::KIND) {
                return Err(bad(
                    path,
                    format!(
                        "written by the `{}` trainer, not `{}`",
                        meta.get("run.kind").map_or("?", |s| s.as_str()),
                        L::KIND
                    ),
                ));
            }
            let config = meta
                .get("run.config")
                .ok_or_else(|| bad(path, "no `run.config`"))?
                .clone();
            let rows: Rows<L::Row> = toml::from_str(
                meta.get("run.metrics")
                    .ok_or_else(|| bad(path, "no `run.metrics`"))?,
            )
            .map_err(|e| bad(path, format!("corrupt `run.metrics` ({e})")))?;
            let epoch = meta.get("run.epoch").and_then(|e| e.parse::<usize>().ok());
            if epoch != Some(rows.row.len()) {
                return Err(bad(path, "`run.epoch` disagrees with `run.metrics`"));
            }
            (config, rows.row)
        }
        Some(other) => {
            return Err(bad(
                path,
                format!("run-state format `{other}` is not known to this version ({FORMAT})"),
            ))
        }
        None => L::legacy_state(meta, path).unwrap_or_else(|| {
            Err(Error::invalid(
                "out",
                format!(
                    "{}: the checkpoint records no run state to resume from (use a new --out)",
                    path.display()
                ),
            ))
        })?,
    };
    Ok((config, rows))
}

/// A run folder opened for a trainer: where it is, and what its checkpoint says.
pub struct Opened<C, R> {
    pub out: PathBuf,
    /// The checkpoint to resume from, with the epochs already done (None: a fresh run).
    pub resume: Option<(PathBuf, Vec<R>)>,
    _config: std::marker::PhantomData<C>,
}

/// Opens the run folder `out` for a trainer with configuration `config`: refuses an `out` that is
/// not a folder, and when it holds a checkpoint reads its run state and refuses another
/// configuration (`continues(stored, asked)` says whether the asked one continues the stored one,
/// e.g. equal but for the epoch count). Writes nothing.
pub fn open<L: Learner>(out: &Path, config: &L::Config) -> Result<Opened<L::Config, L::Row>> {
    crate::io::check_out_dir(out)?;
    // Every file the driver writes, before any work: a bad one fails the run with nothing written.
    let files = [
        CHECKPOINT,
        CONFIG,
        "metrics.csv",
        "metrics.parquet",
        "learning_curve.png",
        "learning_curve.svg",
    ];
    crate::io::check_outputs("out", &files.map(|f| out.join(f)))?;
    let ckpt = out.join(CHECKPOINT);
    let resume = if ckpt.exists() {
        let why = "holds a run with another configuration (use a new --out)";
        Some(stored_run::<L>(&ckpt, "out", why, config, |s| {
            s.continues(config)
        })?)
    } else if let Some(src) = config.branch_of() {
        Some(branch_source::<L>(src, config)?)
    } else {
        None
    };
    Ok(Opened {
        out: out.to_path_buf(),
        resume,
        _config: std::marker::PhantomData,
    })
}

/// The run state in checkpoint `ckpt` when its stored configuration passes `fits`; otherwise an
/// invalid-input error on `field` saying the run's folder `why`, and which settings of `asked`
/// it differs in ([`blocking_settings`]).
fn stored_run<L: Learner>(
    ckpt: &Path,
    field: &str,
    why: &str,
    asked: &L::Config,
    fits: impl Fn(&L::Config) -> bool,
) -> Result<(PathBuf, Vec<L::Row>)> {
    let meta = crate::tensor::safetensors::read_metadata(ckpt)?;
    let (text, rows) = read_run_state::<L>(&meta, ckpt)?;
    let stored = toml::from_str::<L::Config>(&text).ok();
    if !stored.is_some_and(|s| fits(&s)) {
        let dir = ckpt.parent().unwrap_or(Path::new("."));
        let which = blocking_settings::<L>(&text, asked, &fits);
        return Err(Error::invalid(
            field,
            format!("{} {why}{which}", dir.display()),
        ));
    }
    Ok((ckpt.to_path_buf(), rows))
}

/// The settings that keep a stored run (its configuration as TOML) from going on under `asked`:
/// each top-level key whose stored value, put into `asked`, makes `fits` fail — so the keys a
/// resume or branch may change (epochs, the schedule, …) are left out. Empty when none is found
/// (an unreadable stored configuration); else `"; it differs in key (stored …, asked …), …"`.
fn blocking_settings<L: Learner>(
    stored: &str,
    asked: &L::Config,
    fits: &impl Fn(&L::Config) -> bool,
) -> String {
    let (Ok(stored), Some(asked)) = (
        toml::from_str::<toml::Table>(stored),
        asked
            .to_toml()
            .ok()
            .and_then(|t| toml::from_str::<toml::Table>(&t).ok()),
    ) else {
        return String::new();
    };
    let shown = |v: Option<&toml::Value>| v.map_or("not set".to_string(), |v| v.to_string());
    let mut keys: Vec<&String> = stored.keys().chain(asked.keys()).collect();
    keys.sort();
    keys.dedup();
    let blocking: Vec<String> = keys
        .into_iter()
        .filter(|k| stored.get(*k) != asked.get(*k))
        .filter(|k| {
            let mut t = asked.clone();
            match stored.get(*k) {
                Some(v) => t.insert((*k).clone(), v.clone()),
                None => t.remove(*k),
            };
            toml::Value::Table(t)
                .try_into::<L::Config>()
                .is_ok_and(|c| !fits(&c))
        })
        .flat_map(|k| match (stored.get(k), asked.get(k)) {
            // Two tables (a CNN's `model`): the entries that differ, as `model.norm`.
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                let mut sub: Vec<&String> = a.keys().chain(b.keys()).collect();
                sub.sort();
                sub.dedup();
                sub.into_iter()
                    .filter(|s| a.get(*s) != b.get(*s))
                    .map(|s| {
                        format!(
                            "{k}.{s} (stored {}, asked {})",
                            shown(a.get(s)),
                            shown(b.get(s))
                        )
                    })
                    .collect::<Vec<_>>()
            }
            (x, y) => vec![format!("{k} (stored {}, asked {})", shown(x), shown(y))],
        })
        .collect();
    if blocking.is_empty() {
        String::new()
    } else {
        format!("; it differs in {}", blocking.join(", "))
    }
}

/// The checkpoint and rows of the run in `src` that `config` branches from, after checking that
/// the stored run may go on under `config` ([`Config::branches`]).
fn branch_source<L: Learner>(src: &Path, config: &L::Config) -> Result<(PathBuf, Vec<L::Row>)> {
    let ckpt = src.join(CHECKPOINT);
    if !ckpt.is_file() {
        return Err(Error::invalid(
            "from",
            format!("{}: no {CHECKPOINT} (not a run folder)", src.display()),
        ));
    }
    let why = "holds a run of another network or task (a branch may change only the \
               optimisation: learning rate, schedule, weight decay, clipping, epochs, \
               evaluation, device, precision)";
    let (ckpt, rows) = stored_run::<L>(&ckpt, "from", why, config, |s| s.branches(config))?;
    if rows.len() >= config.epochs() {
        return Err(Error::invalid(
            "epochs",
            format!(
                "{}: the run to branch from has done {} epochs already; ask for more",
                src.display(),
                rows.len()
            ),
        ));
    }
    Ok((ckpt, rows))
}

/// Prepares a checked run folder: when resuming (`rows` not empty), `config.toml` and the
/// metrics are rewritten from the checkpoint's state (a kill between saving it and writing them
/// must not leave them an epoch behind); a fresh run writes nothing until its first checkpoint
/// ([`fit`]), so that a run that fails in its first epoch leaves no folder behind.
pub fn create<R: EpochRow>(out: &Path, config_toml: &str, rows: &[R]) -> Result<()> {
    if !rows.is_empty() {
        write_config(out, config_toml)?;
        write_metrics(out, rows)?;
    }
    Ok(())
}

fn write_config(out: &Path, config_toml: &str) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, e))?;
    let path = out.join(CONFIG);
    crate::io::write_atomic(&path, |w| {
        std::io::Write::write_all(w, config_toml.as_bytes()).map_err(|e| Error::file(&path, e))
    })
}

fn write_metrics<R: EpochRow>(out: &Path, rows: &[R]) -> Result<()> {
    let t = R::table(rows);
    t.write(&out.join("metrics.csv"), TableFormat::Csv)?;
    t.write(&out.join("metrics.parquet"), TableFormat::Parquet)
}

/// [`fit`] as the training commands run it: a progress bar over the remaining minibatches (the
/// running loss, the last epoch's summary; hidden with `quiet`), then the last epoch's summary
/// and the files written, on stderr.
pub fn fit_with_bar<L: Learner>(learner: &mut L, quiet: bool) -> Result<Vec<L::Row>> {
    let steps = |l: &L, r: std::ops::Range<usize>| r.map(|e| l.steps(e) as u64).sum::<u64>();
    let bar = crate::io::progress_bar(
        quiet,
        steps(learner, 0..learner.config().epochs()),
        "{pos}/{len} {msg}",
    );
    bar.set_position(steps(learner, 0..learner.rows().len()));
    // A resumed run's restored steps took no time here: the estimate starts from them.
    crate::io::restart_eta(&bar);
    let mut last = learner.rows().last().map(EpochRow::summary);
    let rows = fit(learner, &mut |p| match p {
        Progress::Step {
            epoch,
            running_loss,
            ..
        } => {
            bar.inc(1);
            let after = last
                .as_ref()
                .map_or(String::new(), |s| format!(" (after {s})"));
            bar.set_message(format!("epoch {} loss {running_loss:.4}{after}", epoch + 1));
        }
        Progress::Epoch(r) => last = Some(r.summary()),
    });
    bar.finish_and_clear();
    let rows = rows?;
    if let (false, Some(r)) = (quiet, rows.last()) {
        eprintln!(
            "{}; wrote {}/checkpoint.safetensors, config.toml, metrics.csv/.parquet, learning_curve.png/.svg",
            r.summary(),
            learner.out().display()
        );
    }
    Ok(rows)
}

/// Trains the remaining epochs of `learner` (see the module documentation) and returns every
/// row, the restored ones first. Before every minibatch it honours [`crate::io::interrupt`]: the
/// partial epoch is dropped, the completed ones stay in `out`, and rerunning resumes.
pub fn fit<L: Learner>(
    learner: &mut L,
    progress: &mut dyn FnMut(Progress<L::Row>),
) -> Result<Vec<L::Row>> {
    let (base, schedule) = learner.config().schedule();
    for epoch in learner.rows().len()..learner.config().epochs() {
        if learner.stop() {
            break;
        }
        let t0 = std::time::Instant::now();
        let losses: Vec<f64> = learner.rows().iter().map(EpochRow::eval_loss).collect();
        let lr = schedule.lr(base, epoch, &losses);
        learner.begin_epoch(epoch)?;
        let steps = learner.steps(epoch);
        let mut totals = EpochTotals::default();
        for step in 0..steps {
            crate::io::check_interrupt(
                "training stopped; the completed epochs are in the output folder (rerun to resume)",
            )?;
            let s = learner.step(epoch, step, lr)?;
            if !s.loss.is_finite() {
                return Err(Error::failed(
                    "training",
                    format!(
                        "the loss became {} at epoch {}, minibatch {} (learning rate too large? \
                         try a smaller --lr or --clip)",
                        s.loss,
                        epoch + 1,
                        step + 1
                    ),
                ));
            }
            totals.mean_loss += s.loss / steps as f64;
            totals.weighted_loss += s.loss * s.examples as f64;
            totals.examples += s.examples;
            totals.correct += s.correct;
            progress(Progress::Step {
                epoch,
                step,
                steps,
                loss: s.loss,
                running_loss: totals.mean_loss * steps as f64 / (step + 1) as f64,
            });
        }
        let row = learner.end_epoch(epoch, lr, &totals, t0.elapsed().as_secs_f64())?;
        learner.rows_mut().push(row.clone());
        failpoint("before-checkpoint", epoch + 1);
        let out = learner.out();
        std::fs::create_dir_all(out).map_err(|e| Error::file(out, e))?;
        learner.save_checkpoint(&out.join(CHECKPOINT))?;
        failpoint("after-checkpoint", epoch + 1);
        write_config(learner.out(), &learner.config().to_toml()?)?;
        write_metrics(learner.out(), learner.rows())?;
        failpoint("after-metrics", epoch + 1);
        progress(Progress::Epoch(row));
    }
    if let Some(plot) = learner.curve() {
        if !learner.rows().is_empty() {
            plot.save(&learner.out().join("learning_curve"))?;
        }
    }
    learner.finish()?;
    Ok(learner.rows().to_vec())
}

/// A test hook: with `NEURODYN_FAILPOINT=<name>:<epoch>` the process ends (exit 137, as a kill)
/// at that point of that epoch.
pub fn failpoint(name: &str, epoch: usize) {
    if let Ok(v) = std::env::var("NEURODYN_FAILPOINT") {
        if v == format!("{name}:{epoch}") {
            std::process::exit(137);
        }
    }
}
