//! Training: recurrent cells fitted by backpropagation through time, on the CPU in f64 (the
//! reference) or f32, and on a GPU through wgpu compute shaders ([`gpu`]); the trained network goes
//! straight to the f64 analyses ([`checkpoint::analysis`]).
//!
//! - [`cell`]: the cells (Dale rate RNN of Kim, Li & Sejnowski (2019), gamma RNN and ANRU of Geadah et al. (2024),
//!   the ORGaNICs Euler RNN of Rawat, Heeger & Martiniani (2024)), each with its hand-derived backward pass;
//! - [`net`]: cell + linear read-out, batched BPTT, cross-entropy or trajectory MSE;
//! - [`checkpoint`]: a network in and out of safetensors (also PyTorch-trained weights with the
//!   same names);
//! - [`shader`]: what a cell gives the GPU trainer; [`gpu`]: the trainer;
//! - below it, shared with the other trainers: the data sets ([`crate::data`]), tensors and files
//!   ([`crate::tensor`]), the driver and optimisers ([`crate::learn`]);
//! - here: the tasks of Kim, Li & Sejnowski (2019) and the digits tasks, minibatch sources, the
//!   training step (the optimiser and gradient clipping of [`crate::learn`]) and evaluation.
//!
//! Reproducibility: the trials and noise of minibatch `it` depend only on (seed, it), and the
//! batch is split into fixed chunks, so a run resumed from a checkpoint continues bit for bit and
//! a seed gives the same bits whatever the thread count.

pub mod cell;
pub mod checkpoint;
pub mod gpu;
pub mod net;
pub mod run;
pub mod shader;

use crate::data::{Batch, Digits, Targets};
use crate::error::{Error, Result};
use crate::learn::{clip_grad_norm, Optimizer};
use crate::tensor::Real;
use cell::{AnyCell, Cell, CellKind, RatePhi};
use net::SeqNet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

/// One Go/NoGo trial (Kim, Li & Sejnowski 2019): T = 200 steps; Go (prob. 0.5): u = 1 on steps 50..74 and
/// target 1 on steps 75..199; NoGo: no input, target 0. Returns (u rows, target, is_go).
pub fn go_nogo_trial(rng: &mut ChaCha8Rng) -> (Vec<Vec<f64>>, Vec<f64>, bool) {
    let go = rng.random::<bool>();
    let u = (0..200)
        .map(|t| {
            vec![if go && (50..75).contains(&t) {
                1.0
            } else {
                0.0
            }]
        })
        .collect();
    let z = (0..200)
        .map(|t| if go && t >= 75 { 1.0 } else { 0.0 })
        .collect();
    (u, z, go)
}

/// The Go/NoGo criterion on outputs o_1..o_{199} (`o[k]` is the output at step k + 1): Go correct if
/// max(o[75..]) > 0.7, NoGo if max |o[75..]| < 0.3 — Kim et al.'s window, `o[75:]` of their output
/// list, i.e. steps 76..199.
pub fn go_nogo_correct(o: &[f64], go: bool) -> bool {
    let tail = &o[75.min(o.len())..];
    if go {
        tail.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v)) > 0.7
    } else {
        tail.iter().fold(0.0f64, |m, v| m.max(v.abs())) < 0.3
    }
}

/// The tasks: those of Kim, Li & Sejnowski (2019) (one step = 5 ms) and the sequential digits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// T = 200, one input; Go (u = 1 on steps 50..74) → output 1 from step 75, NoGo → 0.
    #[value(name = "go-nogo")]
    #[serde(rename = "go-nogo")]
    GoNoGo,
    /// T = 300, two inputs: s1 on steps 50..99, s2 on 110..159 (±1 each); target ±1 (same/different)
    /// on steps 170..269.
    Xor,
    /// T = 500, four inputs: two noisy modalities N(0,1) + μ_m (μ_m = ±0.5) on steps 50..249 and a
    /// context (`u[2]` or `u[3]` = 1); target sign(μ of the cued modality) from step 250.
    #[value(alias = "context")]
    Mante,
    /// Sequential digits: one pixel per step (784 steps for 28 × 28), 10 classes, cross-entropy on
    /// the last step's read-out.
    #[value(alias = "smnist")]
    SeqDigits,
    /// Permuted sequential digits: the pixels in a fixed random order (the seed's π for 28 × 28).
    #[value(alias = "psmnist")]
    PermDigits,
    /// The user's own task: `--inputs u.npy --targets z.npy [--mask m.npy]` (the `data::custom` module).
    Custom,
}

/// A trial: inputs (T rows of N_in), target (T), and the label the criterion needs
/// (Go/NoGo: 1 = Go; XOR and Mante: ±1).
pub type Trial = (Vec<Vec<f64>>, Vec<f64>, f64);

impl std::str::FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "go-nogo" => Ok(Task::GoNoGo),
            "xor" => Ok(Task::Xor),
            "mante" | "context" => Ok(Task::Mante),
            "seq-digits" | "smnist" => Ok(Task::SeqDigits),
            "perm-digits" | "psmnist" => Ok(Task::PermDigits),
            "custom" => Ok(Task::Custom),
            _ => Err(Error::invalid(
                "task",
                format!(
                    "unknown task `{s}` (go-nogo, xor, mante, seq-digits, perm-digits or custom)"
                ),
            )),
        }
    }
}

impl Task {
    /// Number of inputs (a custom task's come from its data: 0 here).
    pub fn n_in(self) -> usize {
        match self {
            Task::Custom => 0,
            Task::GoNoGo | Task::SeqDigits | Task::PermDigits => 1,
            Task::Xor => 2,
            Task::Mante => 4,
        }
    }

    /// Read-out size (1 for the rate tasks, 10 classes for digits).
    pub fn outputs(self) -> usize {
        if self.is_digits() {
            10
        } else {
            1
        }
    }

    pub fn is_digits(self) -> bool {
        matches!(self, Task::SeqDigits | Task::PermDigits)
    }

    pub fn name(self) -> &'static str {
        match self {
            Task::GoNoGo => "go-nogo",
            Task::Xor => "xor",
            Task::Mante => "mante",
            Task::SeqDigits => "seq-digits",
            Task::PermDigits => "perm-digits",
            Task::Custom => "custom",
        }
    }

    /// Draws a trial of a rate-network task; the digits tasks have no generator (their images
    /// come from [`DataSource`]) and give an error.
    pub fn trial(self, rng: &mut ChaCha8Rng) -> Result<Trial> {
        Ok(match self {
            Task::SeqDigits | Task::PermDigits | Task::Custom => {
                return Err(Error::invalid(
                    "task",
                    format!(
                        "`{}` draws images from a DataSource, not generated trials",
                        self.name()
                    ),
                ))
            }
            Task::GoNoGo => {
                let (u, z, go) = go_nogo_trial(rng);
                (u, z, if go { 1.0 } else { 0.0 })
            }
            Task::Xor => {
                let s1 = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let s2 = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let label = s1 * s2;
                let u = (0..300)
                    .map(|t| {
                        vec![
                            if (50..100).contains(&t) { s1 } else { 0.0 },
                            if (110..160).contains(&t) { s2 } else { 0.0 },
                        ]
                    })
                    .collect();
                let z = (0..300)
                    .map(|t| if (170..270).contains(&t) { label } else { 0.0 })
                    .collect();
                (u, z, label)
            }
            Task::Mante => {
                let mu: [f64; 2] = [
                    if rng.random::<bool>() { 0.5 } else { -0.5 },
                    if rng.random::<bool>() { 0.5 } else { -0.5 },
                ];
                let cue = usize::from(rng.random::<bool>());
                let label = mu[cue].signum();
                let u = (0..500)
                    .map(|t| {
                        let mut row = vec![0.0; 4];
                        if (50..250).contains(&t) {
                            for m in 0..2 {
                                let z: f64 = StandardNormal.sample(rng);
                                row[m] = z + mu[m];
                            }
                        }
                        row[2 + cue] = 1.0;
                        row
                    })
                    .collect();
                let z = (0..500)
                    .map(|t| if t >= 250 { label } else { 0.0 })
                    .collect();
                (u, z, label)
            }
        })
    }

    /// The paper's criterion on outputs o_1..o_{T−1} (`o[k]` is the output at step k + 1).
    pub fn correct(self, o: &[f64], label: f64) -> bool {
        let max = |s: &[f64]| s.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
        let min = |s: &[f64]| s.iter().fold(f64::INFINITY, |m, v| m.min(*v));
        match self {
            // Digits are scored by arg-max in the network pass, custom tasks by their data.
            Task::SeqDigits | Task::PermDigits | Task::Custom => false,
            Task::GoNoGo => go_nogo_correct(o, label > 0.5),
            // XOR: o[200..] (steps 201..299, Kim et al.'s `o[200:]`); Mante: the last 200 outputs.
            Task::Xor | Task::Mante => {
                let tail = if self == Task::Xor {
                    &o[200.min(o.len())..]
                } else {
                    &o[o.len().saturating_sub(200)..]
                };
                if label > 0.0 {
                    max(tail) > 0.7
                } else {
                    min(tail) < -0.7
                }
            }
        }
    }
}

/// The cells `train --cell` accepts, with their options.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSpec {
    /// Which registered cell.
    pub kind: CellKind,
    pub hidden: usize,
    /// ANRU controller size M.
    pub controller: usize,
    /// Rate cell: φ and Dale's law (the Kim et al. network: sigmoid, Dale, fixed W_in).
    pub phi: RatePhi,
    pub dale: bool,
    /// Rate cell τ range in steps.
    pub tau: (f64, f64),
    /// Digits pooled by this factor: one step covers pool² pixels' time, so the ORGaNICs rates
    /// κ_max are scaled by pool² (at most 1) to span the same time as the 784-step task.
    pub pool: usize,
    /// ORGaNICs: keep σ_max(W_r) ≤ this during training (None: unconstrained, as the seed).
    pub wr_max_sv: Option<f64>,
    /// Rate cell with Dale's law: SST units (som_N; 0 = no mask).
    pub som: usize,
    /// Rate and ORGaNICs cells: keep the time constants at their initial values (the ORGaNICs
    /// paper's fixed-τ runs; Kim et al.'s single τ).
    pub fixed_tau: bool,
    /// ORGaNICs: κ_max = dt/τ_min of (y, a, the gains b0 and b1); None: the seed's cell default
    /// (0.01, 0.01, 0.1). The paper's trained networks use (0.02, 0.005, 0.1).
    pub kappa_max: Option<(f64, f64, f64)>,
}

impl CellSpec {
    /// The default of each cell for a task: Kim et al.'s Dale rate network (N = 40, sigmoid,
    /// τ ∈ `[4, 20]` steps, noise 0.1) on the rate tasks; the seeds' sizes scaled down otherwise.
    pub fn default_for(kind: CellKind, task: Task) -> Self {
        let digits = task.is_digits();
        CellSpec {
            kind,
            hidden: if digits { 32 } else { 40 },
            controller: 10,
            phi: if digits {
                RatePhi::Tanh
            } else {
                RatePhi::Sigmoid
            },
            dale: !digits,
            tau: if digits { (1.0, 4.0) } else { (4.0, 20.0) },
            pool: 1,
            wr_max_sv: None,
            som: 0,
            fixed_tau: false,
            kappa_max: None,
        }
    }

    /// Builds the cell and its seeded initial parameters (read-out included).
    pub fn build<F: Real>(&self, task: Task, seed: u64) -> Result<SeqNet<F, AnyCell>> {
        self.build_sized(task.n_in(), task.outputs(), task.is_digits(), seed)
    }

    /// [`CellSpec::build`] for `n_in` inputs and `outputs` read-outs; `classes`: the digits
    /// tasks' read-out initialisation (PyTorch's), else Kim et al.'s (N(0, 1)/100, noise 0.1).
    pub fn build_sized<F: Real>(
        &self,
        n_in: usize,
        outputs: usize,
        classes: bool,
        seed: u64,
    ) -> Result<SeqNet<F, AnyCell>> {
        let (n, k) = (self.hidden, n_in);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        if n == 0 {
            return Err(Error::invalid("hidden", "must be at least 1"));
        }
        let cell = self.kind.build(self, k, &mut rng)?;
        let mut net = SeqNet::<F, AnyCell>::new(cell.clone(), outputs)?;
        cell.init(&mut net.params, &mut rng);
        if classes {
            net.init_readout(&mut rng, 1.0);
        } else {
            // Kim, Li & Sejnowski (2019): w_out ~ N(0, 1)/100, b_out = 0, recurrent noise 0.1.
            let t = net.layout.get("W_out").expect("read-out").range();
            for v in &mut net.params[t] {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v = F::c(z / 100.0);
            }
            net.noise = 0.1;
        }
        Ok(net)
    }
}

/// The mean loss and accuracy of minibatch results (mean loss, hits, trials), weighted by size.
pub(crate) fn pooled(parts: impl IntoIterator<Item = (f64, usize, usize)>) -> (f64, f64) {
    let (mut loss, mut hits, mut k) = (0.0, 0usize, 0usize);
    for (l, h, b) in parts {
        loss += l * b as f64;
        hits += h;
        k += b;
    }
    (loss / k.max(1) as f64, hits as f64 / k.max(1) as f64)
}

/// Where minibatches and evaluation sets come from.
#[derive(Debug, Clone)]
pub struct DataSource {
    pub task: Task,
    pub train: Option<Digits>,
    pub test: Option<Digits>,
    pub perm: Option<Vec<usize>>,
    /// Digits held out of the training set for validation ([`DataSource::with_validation`]).
    pub val: Option<Digits>,
    /// The user's own task.
    pub custom: Option<crate::data::custom::CustomData>,
}

/// Which held-out digits to evaluate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalSet {
    Validation,
    Test,
}

impl DataSource {
    /// A source for `task`; digits from `data_dir` (the four IDX files) or the bundled slice,
    /// average-pooled by `pool` (1: 784 steps; 4: 7 × 7 = 49 steps). The permutation is the seed's
    /// π for 28 × 28 images, a seeded one otherwise.
    pub fn new(task: Task, data_dir: Option<&Path>, pool: usize, seed: u64) -> Result<Self> {
        if !task.is_digits() {
            return Ok(DataSource {
                task,
                train: None,
                test: None,
                perm: None,
                val: None,
                custom: None,
            });
        }
        let (mut tr, mut te) = match data_dir {
            Some(d) => (Digits::load_dir(d, true)?, Digits::load_dir(d, false)?),
            None => (Digits::bundled(true)?, Digits::bundled(false)?),
        };
        if pool != 1 {
            tr = tr.pooled(pool)?;
            te = te.pooled(pool)?;
        }
        let perm = if task == Task::PermDigits {
            Some(if tr.pixels() == 784 {
                crate::data::seed_permutation()?
            } else {
                crate::data::permutation(tr.pixels(), seed)
            })
        } else {
            None
        };
        Ok(DataSource {
            task,
            train: Some(tr),
            test: Some(te),
            perm,
            val: None,
            custom: None,
        })
    }

    /// Holds `val` training images out as a validation set (the psMNIST protocol: 10,000 of the
    /// 60,000, split by RandomState(400)'s second permutation as the original;
    /// [`crate::data::validation_split`]). 0: no split. Only for the digits tasks.
    pub fn with_validation(mut self, val: usize, seed: u64) -> Result<Self> {
        if val == 0 {
            return Ok(self);
        }
        let Some(tr) = &self.train else {
            return Err(Error::invalid(
                "val",
                "a validation split needs the digits tasks (seq-digits, perm-digits)",
            ));
        };
        if val >= tr.len() {
            return Err(Error::invalid(
                "val",
                format!(
                    "{val} of {} training images leaves none to train on",
                    tr.len()
                ),
            ));
        }
        let (train_idx, val_idx) = crate::data::validation_split(tr.len(), val, seed);
        self.val = Some(tr.select(&val_idx));
        self.train = Some(tr.select(&train_idx));
        Ok(self)
    }

    /// Batches of 256 of up to `trials` images of a digits set (in order), perturbed if asked.
    pub fn digit_batches<F: Real>(
        &self,
        set: EvalSet,
        trials: usize,
        perturb: Option<crate::data::Perturbation>,
    ) -> Result<Vec<Batch<F>>> {
        let d = match set {
            EvalSet::Validation => self.val.as_ref(),
            EvalSet::Test => self.test.as_ref(),
        }
        .ok_or_else(|| Error::invalid("task", "this task has no such held-out set"))?;
        let k = trials.min(d.len()).max(1);
        (0..k)
            .step_by(256)
            .map(|start| {
                let idx: Vec<usize> = (start..(start + 256).min(k)).collect();
                let mut b = d.batch::<F>(&idx, self.perm.as_deref())?;
                if let Some(p) = perturb {
                    p.apply(&mut b);
                }
                Ok(b)
            })
            .collect()
    }

    /// A custom task's source.
    pub fn custom(data: crate::data::custom::CustomData) -> Self {
        DataSource {
            task: Task::Custom,
            train: None,
            test: None,
            perm: None,
            val: None,
            custom: Some(data),
        }
    }

    /// Inputs per step, read-out size, and whether the read-out is a classifier.
    pub fn dims(&self) -> (usize, usize, bool) {
        match &self.custom {
            Some(c) => (c.n_in, c.outputs, c.z.is_err()),
            None => (self.task.n_in(), self.task.outputs(), self.task.is_digits()),
        }
    }

    /// Minibatch `it` of size `b`: digits in a seeded shuffle per pass over the training set;
    /// rate tasks as fresh trials with per-trial noise seeds.
    pub fn batch<F: Real>(&self, it: usize, b: usize, seed: u64) -> Result<Batch<F>> {
        if let Some(c) = &self.custom {
            // A seeded shuffle of the training trials per pass, with recurrent-noise seeds.
            let idx: Vec<usize> = shuffled_positions(c.train.len(), it, b, seed)
                .into_iter()
                .map(|k| c.train[k])
                .collect();
            let mut batch = c.batch::<F>(&idx);
            batch.noise_seeds = Some(
                (0..b)
                    .map(|k| crate::seed::trial_seed(seed, it, k, 0))
                    .collect(),
            );
            return Ok(batch);
        }
        if let Some(tr) = &self.train {
            let idx = shuffled_positions(tr.len(), it, b, seed);
            return tr.batch(&idx, self.perm.as_deref());
        }
        let trials: Vec<Trial> = (0..b)
            .map(|k| {
                self.task
                    .trial(&mut ChaCha8Rng::seed_from_u64(crate::seed::trial_seed(
                        seed, it, k, 2,
                    )))
            })
            .collect::<Result<_>>()?;
        let mut batch = rate_batch(&trials)?;
        batch.noise_seeds = Some(
            (0..b)
                .map(|k| crate::seed::trial_seed(seed, it, k, 0))
                .collect(),
        );
        Ok(batch)
    }

    /// Mean loss and accuracy of `net` on the first `trials` images (at least one) of a digits
    /// set, perturbed if asked.
    pub fn evaluate_digits<F: Real, C: Cell<F>>(
        &self,
        net: &SeqNet<F, C>,
        set: EvalSet,
        trials: usize,
        perturb: Option<crate::data::Perturbation>,
    ) -> Result<(f64, f64)> {
        let parts = self
            .digit_batches::<F>(set, trials, perturb)?
            .iter()
            .map(|b| net.pass(b, false).map(|p| (p.loss, p.correct, b.b)))
            .collect::<Result<Vec<_>>>()?;
        Ok(pooled(parts))
    }

    /// Loss and accuracy on `trials` held-out trials (the test images, or fresh noisy trials of a
    /// rate task drawn from `seed`).
    pub fn evaluate<F: Real, C: Cell<F>>(
        &self,
        net: &SeqNet<F, C>,
        trials: usize,
        seed: u64,
    ) -> Result<(f64, f64)> {
        if let Some(c) = &self.custom {
            // Every held-out trial (up to `trials`), in batches of 256, with fixed noise seeds.
            let idx = &c.test[..trials.clamp(1, c.test.len())];
            let (mut loss, mut score, mut k) = (0.0, 0.0, 0usize);
            for (g, chunk) in idx.chunks(256).enumerate() {
                let mut b = c.batch::<F>(chunk);
                b.noise_seeds = Some(
                    (0..chunk.len())
                        .map(|j| crate::seed::trial_seed(seed, 1 << 30, g * 256 + j, 1))
                        .collect(),
                );
                let p = net.pass(&b, false)?;
                loss += p.loss * chunk.len() as f64;
                score += c.score(chunk, &p.outputs, p.correct) * chunk.len() as f64;
                k += chunk.len();
            }
            return Ok((loss / k as f64, score / k as f64));
        }
        if self.test.is_some() {
            return self.evaluate_digits(net, EvalSet::Test, trials, None);
        }
        let set: Vec<Trial> = (0..trials)
            .map(|k| {
                self.task
                    .trial(&mut ChaCha8Rng::seed_from_u64(crate::seed::trial_seed(
                        seed,
                        1 << 30,
                        k,
                        3,
                    )))
            })
            .collect::<Result<_>>()?;
        let mut batch = rate_batch::<F>(&set)?;
        batch.noise_seeds = Some(
            (0..trials)
                .map(|k| crate::seed::trial_seed(seed, 1 << 30, k, 1))
                .collect(),
        );
        let p = net.pass(&batch, false)?;
        let t = batch.t;
        let ok = (0..trials)
            .filter(|&b| {
                let o: Vec<f64> = (0..t).map(|s| p.outputs[s * trials + b]).collect();
                self.task.correct(&o, set[b].2)
            })
            .count();
        Ok((p.loss, ok as f64 / trials as f64))
    }
}

/// Positions (in `0..len`) of minibatch `it` of size `b`: passes over the set, each in its own
/// seeded order (the digits tasks and custom tasks).
fn shuffled_positions(len: usize, it: usize, b: usize, seed: u64) -> Vec<usize> {
    let mut cached: Option<(usize, Vec<usize>)> = None;
    (0..b)
        .map(|j| {
            let g = it * b + j;
            let (epoch, pos) = (g / len, g % len);
            if cached.as_ref().map(|c| c.0) != Some(epoch) {
                cached = Some((
                    epoch,
                    crate::data::permutation(len, seed ^ (epoch as u64) << 20),
                ));
            }
            cached.as_ref().map(|c| c.1[pos]).unwrap_or(pos)
        })
        .collect()
}

/// A batch of rate-task trials: steps 1..T−1 driven by u_0..u_{T−2}, scored against z_1..z_{T−1}
/// (Kim, Li & Sejnowski (2019) pairs o_t with z_t).
pub fn rate_batch<F: Real>(trials: &[Trial]) -> Result<Batch<F>> {
    let inputs: Vec<Vec<Vec<f64>>> = trials
        .iter()
        .map(|(u, _, _)| u[..u.len().saturating_sub(1)].to_vec())
        .collect();
    let t = inputs.first().map(|u| u.len()).unwrap_or(0);
    let b = trials.len();
    let mut z = vec![0.0; t * b];
    for (bi, (_, zt, _)) in trials.iter().enumerate() {
        for s in 0..t {
            z[s * b + bi] = zt[s + 1];
        }
    }
    Batch::from_trials(&inputs, Targets::Trajectory(z))
}

/// One optimiser step on `batch`: gradient, optional clipping of its global norm over the
/// trained tensors to `clip` ([`clip_grad_norm`]), the optimiser on the trained tensors. Returns
/// the pass (loss, accuracy counts, gradient); a pass whose loss is not finite leaves the network
/// as it was.
pub fn train_step<F: Real, C: Cell<F>>(
    net: &mut SeqNet<F, C>,
    opt: &mut Optimizer,
    batch: &Batch<F>,
    clip: Option<f64>,
) -> Result<net::Pass<F>> {
    let mut pass = net.pass(batch, true)?;
    if !pass.loss.is_finite() {
        // Left as it was: the caller decides (the driver fails the run, `crate::learn`).
        return Ok(pass);
    }
    let mask = net.layout.train_mask();
    if let Some(c) = clip {
        clip_grad_norm(&mut pass.grad, &mask, c);
    }
    opt.step(&mut net.params, &pass.grad, &mask);
    net.cell.project(&mut net.params);
    Ok(pass)
}
