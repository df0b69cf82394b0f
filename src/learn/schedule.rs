//! Learning-rate schedules, stepped once per epoch. Each is a pure function of the base rate, the
//! epoch and the held-out losses recorded so far, so a resumed run replays its schedule from the
//! checkpoint's metrics and continues it exactly.
//!
//! - `constant`: η.
//! - `plateau:P[:F]`: torch's ReduceLROnPlateau (mode min, threshold 10⁻⁴ relative, cooldown 0):
//!   η multiplied by F (default 0.1) after more than P epochs without improvement of the held-out
//!   loss (NaN counts as none).
//! - `step:S[:G]`: torch's StepLR: η · G^⌊e / S⌋ (default G = 0.1).
//! - `cosine:T[:MIN]`: torch's CosineAnnealingLR: MIN + (η − MIN)(1 + cos(π e / T)) / 2 for
//!   e ≤ T, MIN after (default MIN = 0).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A learning-rate schedule (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Constant,
    Plateau {
        patience: usize,
        factor: f64,
    },
    Step {
        every: usize,
        gamma: f64,
    },
    Cosine {
        epochs: usize,
        min_lr: f64,
    },
}

impl Schedule {
    /// The learning rate of epoch `epoch` (0-based) from base rate `lr`, given the held-out
    /// losses of the epochs before it.
    pub fn lr(&self, lr: f64, epoch: usize, losses: &[f64]) -> f64 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Plateau { patience, factor } => {
                let (mut lr, mut best, mut bad) = (lr, f64::INFINITY, 0usize);
                for &l in losses {
                    if l < best * (1.0 - 1e-4) {
                        best = l;
                        bad = 0;
                    } else {
                        bad += 1;
                    }
                    if bad > patience {
                        lr *= factor;
                        bad = 0;
                    }
                }
                lr
            }
            Schedule::Step { every, gamma } => lr * gamma.powi((epoch / every) as i32),
            Schedule::Cosine { epochs, min_lr } => {
                let e = epoch.min(epochs) as f64;
                min_lr
                    + (lr - min_lr) * (1.0 + (std::f64::consts::PI * e / epochs as f64).cos()) / 2.0
            }
        }
    }

    /// Parses `constant`, `plateau:P[:F]`, `step:S[:G]` or `cosine:T[:MIN]`, naming `field`.
    pub fn parse(s: &str, field: &str) -> Result<Schedule> {
        let p: Vec<&str> = s.split(':').map(str::trim).collect();
        let bad = |why: &str| {
            Error::invalid(
                field,
                format!("`{s}`: {why} (constant, plateau:P[:F], step:S[:G] or cosine:T[:MIN])"),
            )
        };
        let int = |k: usize| -> Result<usize> {
            p.get(k)
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| bad("needs a positive whole number"))
        };
        let num = |k: usize, default: f64| -> Result<f64> {
            match p.get(k) {
                None => Ok(default),
                Some(v) => v.parse::<f64>().map_err(|_| bad("not a number")),
            }
        };
        let sched = match p[0] {
            "constant" if p.len() == 1 => Schedule::Constant,
            "plateau" if (2..=3).contains(&p.len()) => Schedule::Plateau {
                patience: int(1)?,
                factor: num(2, 0.1)?,
            },
            "step" if (2..=3).contains(&p.len()) => Schedule::Step {
                every: int(1)?,
                gamma: num(2, 0.1)?,
            },
            "cosine" if (2..=3).contains(&p.len()) => Schedule::Cosine {
                epochs: int(1)?,
                min_lr: num(2, 0.0)?,
            },
            _ => return Err(bad("unknown schedule")),
        };
        sched.validate(field)?;
        Ok(sched)
    }

    /// Checks the factors (in (0, 1]) and the floor (finite, ≥ 0), naming `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        let ok = match *self {
            Schedule::Constant => true,
            Schedule::Plateau { patience, factor } => patience > 0 && factor > 0.0 && factor <= 1.0,
            Schedule::Step { every, gamma } => every > 0 && gamma > 0.0 && gamma <= 1.0,
            Schedule::Cosine { epochs, min_lr } => {
                epochs > 0 && min_lr >= 0.0 && min_lr.is_finite()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                field,
                format!("{self:?}: factors must lie in (0, 1], counts be positive, the floor ≥ 0"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_match_torch() {
        // ReduceLROnPlateau(patience=1): two epochs without improvement → × 0.1.
        let p = Schedule::parse("plateau:1", "s").unwrap();
        assert_eq!(p.lr(1.0, 0, &[]), 1.0);
        assert_eq!(p.lr(1.0, 3, &[3.0, 2.0, 2.0]), 1.0);
        assert_eq!(p.lr(1.0, 4, &[3.0, 2.0, 2.0, 2.5]), 0.1);
        assert_eq!(p.lr(1.0, 4, &[3.0, f64::NAN, f64::NAN]), 0.1);
        // StepLR(step_size=2, gamma=0.5): 1, 1, 0.5, 0.5, 0.25.
        let s = Schedule::parse("step:2:0.5", "s").unwrap();
        let got: Vec<f64> = (0..5).map(|e| s.lr(1.0, e, &[])).collect();
        assert_eq!(got, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        // CosineAnnealingLR(T_max=4, eta_min=0.1): the closed form, the floor after T.
        let c = Schedule::parse("cosine:4:0.1", "s").unwrap();
        assert_eq!(c.lr(1.0, 0, &[]), 1.0);
        assert!((c.lr(1.0, 2, &[]) - 0.55).abs() < 1e-15);
        assert!((c.lr(1.0, 4, &[]) - 0.1).abs() < 1e-15);
        assert!((c.lr(1.0, 9, &[]) - 0.1).abs() < 1e-15);
        for bad in [
            "",
            "plateau",
            "step:0",
            "cosine:4:-1",
            "step:2:1.5",
            "warm:3",
        ] {
            let e = Schedule::parse(bad, "schedule").unwrap_err().to_string();
            assert!(e.contains("schedule"), "{bad}: {e}");
        }
    }
}
