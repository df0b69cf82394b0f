//! Spiking networks from trained rate networks (Kim, Li & Sejnowski, PNAS 2019).
//!
//! A rate RNN with Dale's law, trained on a task ([`crate::train`], `--cell rate`), becomes a
//! network of leaky integrate-and-fire neurons by one scaling factor: with $\lambda = 1/s$,
//!
//! $$ W^{spk} = \lambda W, \qquad w^{out}_{spk} = \lambda\, w^{out}, \qquad
//!    W^{in},\ \tau_d \text{ unchanged } (\tau_d = 5\text{ ms} \times \tau \text{ in rate steps}), $$
//!
//! since the LIF rates (Hz) are about $s$ times the sigmoid rates. The network and its per-step
//! algorithm are in [`lif`]; [`grid`] searches $s$ over a grid by the task's accuracy, as the
//! original's `lambda_grid_search` does (ties go to the smaller $s$).
//!
//! - [`RateNetwork`]: the trained rate network (effective $W = \mathrm{relu}(\tilde W)\,D \odot M_{som}$,
//!   τ, $W^{in}$, read-out) read from a checkpoint, and its conversion [`RateNetwork::to_spiking`];
//! - [`lif_trial`], [`lif_correct`]: the tasks' trials as LIF inputs (T + 1 columns of 5 ms) and the
//!   LIF criteria (Go/NoGo judged from 0.5 s, XOR from 1.0 s, Mante from 1.3 s);
//! - [`simulate`]: one trial; sparse spikes (unit, step), the read-out trace.

pub mod grid;
pub mod lif;
pub mod report;

pub use grid::{grid_search, GridOptions, GridResult, GridRow};
pub use lif::{
    simulate, Constants, InitialVoltage, LifState, Neuron, SimOptions, SpikeTrial, SpikingNetwork,
    Stimulation, RATE_STEP,
};

use crate::error::{Error, Result};
use crate::train::cell::{AnyCell, RatePhi};
use crate::train::net::SeqNet;
use crate::train::{rate_batch, Task, Trial};
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A trained Dale rate network, as the LIF conversion needs it.
#[derive(Debug, Clone)]
pub struct RateNetwork {
    /// The trained network (for the rate-side comparison on the same trials).
    pub net: SeqNet<f64, AnyCell>,
    /// Effective recurrent matrix W (N × N; W_ij from unit j to unit i).
    pub w: Mat<f64>,
    /// Input weights (N × N_in).
    pub w_in: Mat<f64>,
    /// Synaptic time constants in rate steps (5 ms each).
    pub tau: Vec<f64>,
    /// Read-out weights (one output) and bias.
    pub w_out: Vec<f64>,
    pub b_out: f64,
    pub phi: RatePhi,
}

impl RateNetwork {
    /// Reads a rate-network checkpoint (`train --cell rate`); any other cell, or a read-out with
    /// more than one output, is an error naming what was found.
    pub fn load(path: &Path) -> Result<Self> {
        let (net, _) = crate::train::checkpoint::load::<f64>(path)?;
        Self::from_net(net)
    }

    /// From a trained network in memory.
    pub fn from_net(net: SeqNet<f64, AnyCell>) -> Result<Self> {
        let AnyCell::Rate(cell) = &net.cell else {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "holds a `{}` cell; the LIF conversion needs a rate network (train --cell rate)",
                    net.cell.kind().name()
                ),
            ));
        };
        if net.outputs != 1 {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "has {} read-out outputs; the LIF conversion takes one (the Go/NoGo, XOR and Mante tasks)",
                    net.outputs
                ),
            ));
        }
        let (n, m) = (cell.n, cell.n_in);
        let (w, tau) = cell.effective(&net.params);
        let wi = net.layout.off("W_in");
        let w_in = Mat::from_fn(n, m, |i, k| net.params[wi + i * m + k]);
        let wo = net.layout.off("W_out");
        let w_out = net.params[wo..wo + n].to_vec();
        let b_out = net.params[net.layout.off("b_out")];
        let phi = cell.phi;
        Ok(RateNetwork {
            w: Mat::from_fn(n, n, |i, j| w[i * n + j]),
            w_in,
            tau,
            w_out,
            b_out,
            phi,
            net,
        })
    }

    pub fn n(&self) -> usize {
        self.w.nrows()
    }

    pub fn n_in(&self) -> usize {
        self.w_in.ncols()
    }

    /// The default grid of s = 1/λ: {20, 25, …, 75} for sigmoid networks, {4, 6, …, 26} for
    /// ReLU/softplus ones (Kim et al., SI).
    pub fn default_scalings(&self) -> Vec<f64> {
        match self.phi {
            RatePhi::Sigmoid => (0..12).map(|k| 20.0 + 5.0 * k as f64).collect(),
            _ => (0..12).map(|k| 4.0 + 2.0 * k as f64).collect(),
        }
    }

    /// The LIF network at scaling factor `s` (λ = 1/s).
    pub fn to_spiking(&self, s: f64) -> Result<SpikingNetwork> {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::invalid(
                "scaling",
                format!("{s}: the scaling factor s = 1/λ must be positive and finite"),
            ));
        }
        let lam = 1.0 / s;
        SpikingNetwork::new(
            Mat::from_fn(self.n(), self.n(), |i, j| lam * self.w[(i, j)]),
            self.w_in.clone(),
            self.tau.iter().map(|t| t * RATE_STEP).collect(),
            self.w_out.iter().map(|v| lam * v).collect(),
        )
    }

    /// The rate network's outputs o_1..o_{T−1} on trials (`noise_seeds`: the recurrent noise of
    /// each trial, None for a noiseless run), `[trial][step]`.
    pub fn outputs(
        &self,
        trials: &[Trial],
        noise_seeds: Option<Vec<u64>>,
    ) -> Result<Vec<Vec<f64>>> {
        let mut batch = rate_batch::<f64>(trials)?;
        let b = trials.len();
        batch.noise_seeds = noise_seeds;
        let mut net = self.net.clone();
        if batch.noise_seeds.is_none() {
            net.noise = 0.0;
        }
        let p = net.pass(&batch, false)?;
        Ok((0..b)
            .map(|k| (0..batch.t).map(|t| p.outputs[t * b + k]).collect())
            .collect())
    }
}

/// A trial of `task` as LIF input: the rate trial's T columns plus a copy of the last one (the
/// original's 201 / 301 / 501 columns, giving 20,000 / 30,000 / 50,000 steps of 0.05 ms).
pub fn lif_trial(task: Task, rng: &mut ChaCha8Rng) -> Result<(Vec<Vec<f64>>, Trial)> {
    rate_task(task)?;
    let trial = task.trial(rng)?;
    let mut cols = trial.0.clone();
    cols.push(cols.last().cloned().unwrap_or_default());
    Ok((cols, trial))
}

/// The time (s) from which the LIF read-out is judged: Go/NoGo 0.5, XOR 1.0, Mante 1.3.
pub fn criterion_start(task: Task) -> f64 {
    match task {
        Task::Xor => 1.0,
        Task::Mante => 1.3,
        _ => 0.5,
    }
}

/// The LIF criteria of Kim et al.'s grid search on the read-out `output` (sample i − 1 is step i),
/// from step round(start/dt): Go/NoGo: Go if max > 0.7, NoGo if max < 0.3 (no absolute value, as
/// the original's LIF criterion); XOR and Mante: label +1 if max > 0.7, −1 if min < −0.7.
pub fn lif_correct(task: Task, output: &[f64], dt: f64, label: f64) -> bool {
    let from = ((criterion_start(task) / dt).round() as usize).max(1) - 1;
    let tail = &output[from.min(output.len())..];
    let max = tail.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
    let min = tail.iter().fold(f64::INFINITY, |m, v| m.min(*v));
    match task {
        Task::GoNoGo => {
            if label > 0.5 {
                max > 0.7
            } else {
                max < 0.3
            }
        }
        _ => {
            if label > 0.0 {
                max > 0.7
            } else {
                min < -0.7
            }
        }
    }
}

/// Trial `k` of a seeded set: its inputs and label (from `trial_seed(seed, k, 0, 0)`) and the seed
/// of its noise (`trial_seed(seed, k, 0, 1)`); the same for every scaling factor, so the grid
/// compares the factors on identical trials.
pub fn seeded_trial(task: Task, seed: u64, k: usize) -> Result<(Vec<Vec<f64>>, Trial, u64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(crate::seed::trial_seed(seed, k, 0, 0));
    let (cols, trial) = lif_trial(task, &mut rng)?;
    Ok((cols, trial, crate::seed::trial_seed(seed, k, 0, 1)))
}

/// The LIF read-out sampled on the rate network's 5-ms grid: the value after LIF step 100·(k + 1)
/// (time (k + 1)·5 ms), aligned with the rate output o_{k+1} (`o[k]`), for k = 0..T−2.
pub fn on_rate_grid(trial: &SpikeTrial, rate_steps: usize) -> Vec<f64> {
    let per = (RATE_STEP / trial.dt).round() as usize;
    (0..rate_steps)
        .filter_map(|k| trial.output.get(per * (k + 1) - 1).copied())
        .collect()
}

/// Pearson's correlation coefficient of two equally long series (NaN if either is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return f64::NAN;
    }
    let (ma, mb) = (
        a[..n].iter().sum::<f64>() / n as f64,
        b[..n].iter().sum::<f64>() / n as f64,
    );
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for k in 0..n {
        let (x, y) = (a[k] - ma, b[k] - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

/// One trial at scaling factor `s` beside the rate network's output on the same input.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub label: f64,
    pub trial: SpikeTrial,
    /// The rate output o_1..o_{T−1} (with its recurrent noise).
    pub rate_output: Vec<f64>,
    /// The LIF read-out on the rate grid ([`on_rate_grid`]).
    pub lif_on_grid: Vec<f64>,
    /// Pearson r of the two.
    pub r: f64,
    pub lif_correct: bool,
    pub rate_correct: bool,
}

/// Seeded trial `k` run through the LIF network at `s` and through the rate network.
pub fn compare(
    rate: &RateNetwork,
    task: Task,
    s: f64,
    opts: &SimOptions,
    seed: u64,
    k: usize,
) -> Result<Comparison> {
    let net = rate.to_spiking(s)?;
    let (cols, trial, noise) = seeded_trial(task, seed, k)?;
    let lif = simulate(&net, &cols, opts, noise)?;
    let rate_output = rate
        .outputs(std::slice::from_ref(&trial), Some(vec![noise]))?
        .remove(0);
    let lif_on_grid = on_rate_grid(&lif, rate_output.len());
    Ok(Comparison {
        label: trial.2,
        r: pearson(&lif_on_grid, &rate_output),
        lif_correct: lif_correct(task, &lif.output, lif.dt, trial.2),
        rate_correct: task.correct(&rate_output, trial.2),
        trial: lif,
        rate_output,
        lif_on_grid,
    })
}

/// The tasks a rate network converted to spiking neurons performs (go-nogo, xor, mante), not
/// the digit tasks: an error naming `task` otherwise.
pub fn rate_task(task: Task) -> Result<()> {
    if task.is_digits() {
        return Err(Error::invalid(
            "task",
            format!(
                "`{}` is not a rate-network task (go-nogo, xor or mante)",
                task.name()
            ),
        ));
    }
    Ok(())
}
