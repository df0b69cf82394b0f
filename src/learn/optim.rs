//! The optimisers every trainer steps with, on a flat parameter vector (state in f64 whatever the
//! parameters' precision), with PyTorch's update rules so that runs compare:
//!
//! - SGD: g ← g + λ_wd θ; v ← μ v + g (v = g at the first step); θ ← θ − η v
//!   (Nesterov: θ ← θ − η (g + μ v)).
//! - Adam (Kingma & Ba 2015; L2 weight decay added to the gradient, as `torch.optim.Adam`):
//!   m ← β₁ m + (1 − β₁) g, v ← β₂ v + (1 − β₂) g², θ ← θ − η m̂ / (√v̂ + ε),
//!   m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ).
//! - AdamW (Loshchilov & Hutter 2019, `torch.optim.AdamW`): the decay decoupled from the
//!   gradient, θ ← θ (1 − η λ_wd) before the Adam update of the raw gradient.
//!
//! Entries whose `train` flag is false (running statistics, fixed buffers, frozen tensors) are
//! left alone, and [`clip_grad_norm`] measures and scales only the trained entries.
//!
//! In a checkpoint the state is `optimizer.m`, `optimizer.v` (float64 tensors, once stepped) and
//! the metadata `optimizer.t`; [`Optimizer::restore`] also reads the recurrent trainer's older
//! `adam_m`, `adam_v`, `adam_t` tensors.

use crate::error::{Error, Result};
use crate::tensor::safetensors::{NamedTensor, RawTensor};
use crate::tensor::Real;
use std::collections::HashMap;

/// Which update rule.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Adam,
    /// Adam with decoupled weight decay.
    #[value(name = "adamw")]
    #[serde(rename = "adamw")]
    AdamW,
}

/// An optimiser and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// SGD momentum μ (0: plain SGD).
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// Momentum buffer (SGD) or first moment (Adam).
    pub m: Vec<f64>,
    /// Second moment (Adam).
    pub v: Vec<f64>,
    /// Steps taken.
    pub t: u64,
}

impl Optimizer {
    /// `kind` with learning rate `lr`: SGD with momentum 0.9, or Adam/AdamW (0.9, 0.999, 1e-8);
    /// no weight decay.
    pub fn new(kind: OptimizerKind, lr: f64) -> Result<Self> {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::invalid("lr", format!("{lr}: must be positive")));
        }
        Ok(Self::unchecked(kind, lr))
    }

    /// Adam at learning rate `lr` (not checked: a schedule may set any rate before each step).
    pub fn adam(lr: f64) -> Self {
        Self::unchecked(OptimizerKind::Adam, lr)
    }

    fn unchecked(kind: OptimizerKind, lr: f64) -> Self {
        Optimizer {
            kind,
            lr,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            betas: (0.9, 0.999),
            eps: 1e-8,
            m: vec![],
            v: vec![],
            t: 0,
        }
    }

    /// One update of `p` with gradient `g` (entries with `train[k] == false` are left alone).
    pub fn step<F: Real>(&mut self, p: &mut [F], g: &[F], train: &[bool]) {
        if self.m.len() != p.len() {
            self.m = vec![0.0; p.len()];
            self.v = vec![0.0; p.len()];
        }
        self.t += 1;
        let wd = self.weight_decay;
        match self.kind {
            OptimizerKind::Sgd => {
                let mu = self.momentum;
                for k in 0..p.len() {
                    if !train[k] {
                        continue;
                    }
                    let gk = g[k].f() + wd * p[k].f();
                    let d = if mu == 0.0 {
                        gk
                    } else {
                        self.m[k] = if self.t == 1 { gk } else { mu * self.m[k] + gk };
                        if self.nesterov {
                            gk + mu * self.m[k]
                        } else {
                            self.m[k]
                        }
                    };
                    p[k] = F::c(p[k].f() - self.lr * d);
                }
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let decoupled = self.kind == OptimizerKind::AdamW;
                let (b1, b2) = self.betas;
                let c1 = 1.0 - b1.powi(self.t as i32);
                let c2 = 1.0 - b2.powi(self.t as i32);
                for k in 0..p.len() {
                    if !train[k] {
                        continue;
                    }
                    let (gk, pk) = if decoupled {
                        (g[k].f(), p[k].f() * (1.0 - self.lr * wd))
                    } else {
                        (g[k].f() + wd * p[k].f(), p[k].f())
                    };
                    self.m[k] = b1 * self.m[k] + (1.0 - b1) * gk;
                    self.v[k] = b2 * self.v[k] + (1.0 - b2) * gk * gk;
                    let upd = self.lr * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + self.eps);
                    p[k] = F::c(pk - upd);
                }
            }
        }
    }

    /// The state as checkpoint tensors (`optimizer.m`, `optimizer.v`; none before the first step)
    /// and its metadata (`optimizer.t`).
    pub fn state(&self) -> (Vec<RawTensor>, Vec<(String, String)>) {
        let mut tensors = vec![];
        if !self.m.is_empty() {
            for (name, v) in [("optimizer.m", &self.m), ("optimizer.v", &self.v)] {
                tensors.push((
                    name.to_string(),
                    vec![v.len()],
                    bytemuck::cast_slice(v).to_vec(),
                    safetensors::Dtype::F64,
                ));
            }
        }
        (tensors, vec![("optimizer.t".into(), self.t.to_string())])
    }

    /// Restores the state of an optimiser over `p` parameters from a checkpoint's tensors and
    /// metadata (`path` for the messages). No state at all leaves a fresh optimiser; a partial or
    /// mis-sized state is an error naming the file.
    pub fn restore(
        &mut self,
        tensors: &[NamedTensor],
        meta: &HashMap<String, String>,
        p: usize,
        path: &std::path::Path,
    ) -> Result<()> {
        let find = |name: &str| tensors.iter().find(|t| t.0 == name).map(|t| &t.2);
        let bad = |msg: &str| Error::invalid("checkpoint", format!("{}: {msg}", path.display()));
        let (m, v, t) = match (find("optimizer.m"), find("optimizer.v")) {
            (Some(m), Some(v)) => {
                let t = meta
                    .get("optimizer.t")
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| bad("no `optimizer.t`"))?;
                (m, v, t)
            }
            (None, None) => match (find("adam_m"), find("adam_v"), find("adam_t")) {
                (Some(m), Some(v), Some(t)) => (m, v, t.first().copied().unwrap_or(0.0) as u64),
                (None, None, None) => return Ok(()),
                _ => {
                    return Err(bad(
                        "the Adam state (`adam_m`, `adam_v`, `adam_t`) is partial",
                    ))
                }
            },
            _ => return Err(bad("the optimizer state is partial")),
        };
        if m.len() != p || v.len() != p {
            return Err(bad("the optimizer state has the wrong size"));
        }
        self.m = m.clone();
        self.v = v.clone();
        self.t = t;
        Ok(())
    }
}

/// Scales the trained entries of `grad` so that their global L2 norm is at most `max`
/// (`torch.nn.utils.clip_grad_norm_` over the trained tensors); frozen entries are neither
/// counted nor scaled. Returns the norm before clipping.
pub fn clip_grad_norm<F: Real>(grad: &mut [F], train: &[bool], max: f64) -> f64 {
    let norm = grad
        .iter()
        .zip(train)
        .filter(|(_, &m)| m)
        .map(|(g, _)| g.f() * g.f())
        .sum::<f64>()
        .sqrt();
    if norm > max {
        let s = F::c(max / norm);
        for (g, _) in grad.iter_mut().zip(train).filter(|(_, &m)| m) {
            *g *= s;
        }
    }
    norm
}
