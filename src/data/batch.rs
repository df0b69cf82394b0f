//! A minibatch of sequences, as every recurrent task (built-in, digits, custom) hands it to a
//! trainer: inputs laid out `[t][b][k]`, class labels or trajectory targets, per-trial noise seeds
//! and an optional loss mask.

use crate::error::{Error, Result};
use crate::tensor::Real;

/// What a batch is scored against.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class label per trial (cross-entropy on the last step's read-out).
    Class(Vec<usize>),
    /// z_t for every step and output, laid out `[t][b][c]` (T × B × C).
    Trajectory(Vec<f64>),
}

/// A batch of B sequences of T steps with N_in inputs, laid out `[t][b][k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<F> {
    pub t: usize,
    pub b: usize,
    pub n_in: usize,
    pub u: Vec<F>,
    pub targets: Targets,
    /// Seeds of the recurrent noise per trial (None: no noise).
    pub noise_seeds: Option<Vec<u64>>,
    /// Weights of the trajectory loss per step, trial and output (`[t][b][c]`, like the
    /// targets; None: all 1) — PsychRNN's output mask.
    pub mask: Option<Vec<f64>>,
}

impl<F: Real> Batch<F> {
    /// Builds a batch from per-trial input rows (`trials[b][t]` has N_in entries).
    pub fn from_trials(trials: &[Vec<Vec<f64>>], targets: Targets) -> Result<Self> {
        let b = trials.len();
        let t = trials.first().map(|x| x.len()).unwrap_or(0);
        let n_in = trials
            .first()
            .and_then(|x| x.first())
            .map(|r| r.len())
            .unwrap_or(0);
        if b == 0 || t == 0 || n_in == 0 {
            return Err(Error::invalid("batch", "empty batch"));
        }
        let mut u = vec![F::zero(); t * b * n_in];
        for (bi, tr) in trials.iter().enumerate() {
            if tr.len() != t || tr.iter().any(|r| r.len() != n_in) {
                return Err(Error::invalid("batch", "trials of different shapes"));
            }
            for (ti, row) in tr.iter().enumerate() {
                for (k, v) in row.iter().enumerate() {
                    u[(ti * b + bi) * n_in + k] = F::c(*v);
                }
            }
        }
        Ok(Batch {
            t,
            b,
            n_in,
            u,
            targets,
            noise_seeds: None,
            mask: None,
        })
    }
}
