//! The user's own task (`train --task custom`), as NeuroGym and PsychRNN users bring theirs:
//! inputs `u.npy` (trials × T × N_in) and either trajectory targets `z.npy` (trials × T × C, the
//! mean-square loss on every step, weighted by an optional mask `m.npy` of shape trials × T or
//! trials × T × C — PsychRNN's output mask) or class labels `z.npy` (one integer per trial,
//! cross-entropy on the last step's read-out). float32 or float64 (labels may also be integer
//! arrays). A seeded split holds out a fraction of the trials for evaluation; minibatches run
//! over the rest in a seeded order per pass.
//!
//! Unlike the built-in tasks, input u_t drives step t and the read-out after it is scored
//! against z_t (the same pairing as the digits tasks).

use super::batch::{Batch, Targets};
use crate::error::{Error, Result};
use crate::tensor::Real;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The loss of a custom task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CustomLoss {
    /// Mean-square error on the (masked) steps: (1/T) Σ_t Σ_c m_tc (o_tc − z_tc)².
    #[default]
    Mse,
    /// Cross-entropy of the last step's read-out against one label per trial.
    CrossEntropy,
}

/// Where a custom task's arrays are and how to use them (part of the run's configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSpec {
    pub inputs: PathBuf,
    pub targets: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<PathBuf>,
    pub loss: CustomLoss,
    /// Fraction of the trials held out for evaluation.
    pub holdout: f64,
}

/// The loaded task.
#[derive(Debug, Clone)]
pub struct CustomData {
    pub trials: usize,
    pub t: usize,
    pub n_in: usize,
    /// Read-out size: C for trajectories, the number of classes for labels.
    pub outputs: usize,
    /// Inputs `[trial][t][k]`.
    pub u: Vec<f64>,
    /// Targets `[trial][t][c]`, or labels.
    pub z: Result<Vec<f64>, Vec<usize>>,
    /// Weights `[trial][t][c]`.
    pub mask: Option<Vec<f64>>,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

fn read(path: &Path, field: &str) -> Result<ndarray::ArrayD<f64>> {
    match crate::io::read_float::<ndarray::IxDyn>(path, field) {
        Ok(a) => Ok(a),
        Err(e) => {
            // Integer labels.
            let Ok(f) = crate::io::open_npy(path, field) else {
                return Err(e);
            };
            match <ndarray::ArrayD<i64> as ndarray_npy::ReadNpyExt>::read_npy(f) {
                Ok(a) => Ok(a.mapv(|v| v as f64)),
                Err(_) => Err(e),
            }
        }
    }
}

impl CustomData {
    /// Loads and checks the arrays (shapes, finiteness, labels, mask ≥ 0), estimating their
    /// memory first, and splits the trials with `seed`.
    pub fn load(spec: &CustomSpec, seed: u64) -> Result<Self> {
        if !(spec.holdout > 0.0 && spec.holdout < 1.0) {
            return Err(Error::invalid(
                "holdout",
                format!("{}: must lie strictly between 0 and 1", spec.holdout),
            ));
        }
        for (field, p) in [("inputs", &spec.inputs), ("targets", &spec.targets)] {
            if p.as_os_str().is_empty() {
                return Err(Error::invalid(
                    field,
                    "--task custom needs --inputs u.npy and --targets z.npy",
                ));
            }
            let len = std::fs::metadata(p)
                .map_err(|e| Error::invalid(field, format!("{}: {e}", p.display())))?
                .len();
            crate::memory::check(field, len as u128 * 3, None)?;
        }
        let u = read(&spec.inputs, "inputs")?;
        let &[trials, t, n_in] = u.shape() else {
            return Err(Error::invalid(
                "inputs",
                format!("has shape {:?}; need trials × T × N_in (3 axes)", u.shape()),
            ));
        };
        if trials < 2 || t == 0 || n_in == 0 {
            return Err(Error::invalid(
                "inputs",
                format!(
                    "has shape {:?}; need at least 2 trials, 1 step and 1 input",
                    u.shape()
                ),
            ));
        }
        if u.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("inputs", "has non-finite values"));
        }
        let zt = read(&spec.targets, "targets")?;
        let (z, outputs) = match spec.loss {
            CustomLoss::Mse => {
                let &[zt_n, zt_t, c] = zt.shape() else {
                    return Err(Error::invalid(
                        "targets",
                        format!(
                            "has shape {:?}; the mse loss needs trials × T × C",
                            zt.shape()
                        ),
                    ));
                };
                if (zt_n, zt_t) != (trials, t) || c == 0 {
                    return Err(Error::invalid(
                        "targets",
                        format!(
                            "has shape {:?}; the inputs have {trials} trials of {t} steps",
                            zt.shape()
                        ),
                    ));
                }
                if zt.iter().any(|v| !v.is_finite()) {
                    return Err(Error::invalid("targets", "has non-finite values"));
                }
                (Ok(zt.iter().copied().collect()), c)
            }
            CustomLoss::CrossEntropy => {
                if zt.shape() != [trials] {
                    return Err(Error::invalid(
                        "targets",
                        format!(
                            "has shape {:?}; the cross-entropy loss needs one label per trial ({trials})",
                            zt.shape()
                        ),
                    ));
                }
                let mut labels = vec![];
                for v in zt.iter() {
                    if !(v.fract() == 0.0 && *v >= 0.0 && *v < 1e6) {
                        return Err(Error::invalid(
                            "targets",
                            format!("label {v} is not a class index (0, 1, 2, …)"),
                        ));
                    }
                    labels.push(*v as usize);
                }
                let classes = labels.iter().max().map_or(0, |m| m + 1).max(2);
                (Err(labels), classes)
            }
        };
        let mask = match &spec.mask {
            None => None,
            Some(p) => {
                if spec.loss != CustomLoss::Mse {
                    return Err(Error::invalid(
                        "mask",
                        "applies to the mse loss (cross-entropy reads the last step only)",
                    ));
                }
                let m = read(p, "mask")?;
                let full: Vec<f64> = match m.shape() {
                    [a, b] if (*a, *b) == (trials, t) => m
                        .iter()
                        .flat_map(|v| std::iter::repeat_n(*v, outputs))
                        .collect(),
                    [a, b, c] if (*a, *b, *c) == (trials, t, outputs) => {
                        m.iter().copied().collect()
                    }
                    s => {
                        return Err(Error::invalid(
                            "mask",
                            format!(
                            "has shape {s:?}; need trials × T ({trials} × {t}) or trials × T × C"
                        ),
                        ))
                    }
                };
                if full.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(Error::invalid("mask", "needs finite weights ≥ 0"));
                }
                Some(full)
            }
        };
        let perm = super::digits::permutation(trials, seed ^ 0xc057);
        let n_test = ((trials as f64 * spec.holdout).round() as usize).clamp(1, trials - 1);
        let test = perm[..n_test].to_vec();
        let train = perm[n_test..].to_vec();
        Ok(CustomData {
            trials,
            t,
            n_in,
            outputs,
            u: u.iter().copied().collect(),
            z,
            mask,
            train,
            test,
        })
    }

    /// The batch of trials `idx` (layout `[t][b][·]`).
    pub fn batch<F: Real>(&self, idx: &[usize]) -> Batch<F> {
        let (t, k, b) = (self.t, self.n_in, idx.len());
        let c = self.outputs;
        let mut u = vec![F::zero(); t * b * k];
        for (bi, &tr) in idx.iter().enumerate() {
            for s in 0..t {
                for q in 0..k {
                    u[(s * b + bi) * k + q] = F::c(self.u[(tr * t + s) * k + q]);
                }
            }
        }
        let per_step = |src: &[f64]| -> Vec<f64> {
            let mut out = vec![0.0; t * b * c];
            for (bi, &tr) in idx.iter().enumerate() {
                for s in 0..t {
                    for q in 0..c {
                        out[(s * b + bi) * c + q] = src[(tr * t + s) * c + q];
                    }
                }
            }
            out
        };
        let targets = match &self.z {
            Ok(z) => Targets::Trajectory(per_step(z)),
            Err(labels) => Targets::Class(idx.iter().map(|&i| labels[i]).collect()),
        };
        Batch {
            t,
            b,
            n_in: k,
            u,
            targets,
            noise_seeds: None,
            mask: self.mask.as_deref().map(per_step),
        }
    }

    /// Held-out loss and score: for labels the fraction classified correctly, for trajectories
    /// R² = 1 − Σ m (o − z)² / Σ m (z − z̄)² over the held-out trials (z̄ the masked mean per
    /// output).
    pub fn score(&self, idx: &[usize], outputs: &[f64], correct: usize) -> f64 {
        match &self.z {
            Err(_) => correct as f64 / idx.len() as f64,
            Ok(z) => {
                let (t, c, b) = (self.t, self.outputs, idx.len());
                let w = |tr: usize, s: usize, q: usize| {
                    self.mask.as_ref().map_or(1.0, |m| m[(tr * t + s) * c + q])
                };
                let mut mean = vec![(0.0, 0.0); c];
                for &tr in idx {
                    for s in 0..t {
                        for (q, m) in mean.iter_mut().enumerate() {
                            let ww = w(tr, s, q);
                            m.0 += ww * z[(tr * t + s) * c + q];
                            m.1 += ww;
                        }
                    }
                }
                let (mut sse, mut sst) = (0.0, 0.0);
                for (bi, &tr) in idx.iter().enumerate() {
                    for s in 0..t {
                        for q in 0..c {
                            let ww = w(tr, s, q);
                            let zv = z[(tr * t + s) * c + q];
                            let zbar = mean[q].0 / mean[q].1.max(f64::MIN_POSITIVE);
                            sse += ww * (outputs[(s * b + bi) * c + q] - zv).powi(2);
                            sst += ww * (zv - zbar).powi(2);
                        }
                    }
                }
                if sst > 0.0 {
                    1.0 - sse / sst
                } else {
                    f64::NAN
                }
            }
        }
    }
}
