//! Optimisers on a flat parameter vector (state in f64 whatever the parameters' precision),
//! with PyTorch's update rules so that runs compare:
//!
//! - SGD: g ← g + λ_wd θ; v ← μ v + g (v = g at the first step); θ ← θ − η v
//!   (Nesterov: θ ← θ − η (g + μ v)).
//! - Adam (Kingma & Ba 2015; L2 weight decay added to the gradient as `torch.optim.Adam`):
//!   m ← β₁ m + (1 − β₁) g, v ← β₂ v + (1 − β₂) g², θ ← θ − η m̂ / (√v̂ + ε).
//!
//! Entries whose `train` flag is false (running statistics, fixed γ/σ) are left alone.

use super::Real;
use crate::error::{Error, Result};

/// Which update rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
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
    /// `kind` with learning rate `lr`: SGD with momentum 0.9, or Adam (0.9, 0.999, 1e-8); no
    /// weight decay.
    pub fn new(kind: OptimizerKind, lr: f64) -> Result<Self> {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::invalid("lr", format!("{lr}: must be positive")));
        }
        Ok(Optimizer {
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
        })
    }

    /// One update of `p` with gradient `g`.
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
            OptimizerKind::Adam => {
                let (b1, b2) = self.betas;
                let c1 = 1.0 - b1.powi(self.t as i32);
                let c2 = 1.0 - b2.powi(self.t as i32);
                for k in 0..p.len() {
                    if !train[k] {
                        continue;
                    }
                    let gk = g[k].f() + wd * p[k].f();
                    self.m[k] = b1 * self.m[k] + (1.0 - b1) * gk;
                    self.v[k] = b2 * self.v[k] + (1.0 - b2) * gk * gk;
                    let upd = self.lr * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + self.eps);
                    p[k] = F::c(p[k].f() - upd);
                }
            }
        }
    }
}
