//! The sweep configuration: matrix and input types, initial conditions, grids, validation.

use crate::error::{Error, Result};
use crate::model::organics::Variant;
use serde::{Deserialize, Serialize};

/// The random recurrent matrix and the meaning of δ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatrixType {
    /// W = I + M, M Ginibre with entry std δ/√c (the stability sweep of Rawat, Heeger & Martiniani (2024) `goe`).
    Goe,
    /// W = I + (M₀ + M₀ᵀ)/2 (the 2025 phase diagram; δ an entry-std scale).
    GoeSymmetric,
    /// W_r = δ G/‖G‖₂ with G Ginibre: largest singular value exactly δ (the NeurIPS 2024 claim).
    SingularValue,
    /// The deterministic W = I + δ G, G_ij = sin(0.37 (i+1)(j+1) + 0.5)/√N (the stability sweep of Rawat, Heeger & Martiniani 2024).
    Deterministic,
}

/// Input drive shape (the stability sweep of Rawat, Heeger & Martiniani 2024); the input value is the norm ‖z‖.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    Localized,
    Delocalized,
    Random,
    Gaussian,
}

/// Initial condition (the stability sweep of Rawat, Heeger & Martiniani 2024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialType {
    Norm,
    FirstOrder,
    Zero,
    ZeroEpsilon,
    Random,
}

/// Grid spacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Log,
    Linear,
}

/// A sweep configuration (TOML; every field checked by [`SweepConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Number of principal neurons N.
    pub n: usize,
    pub variant: Variant,
    pub matrix: MatrixType,
    /// Mean of the random part (its outlier eigenvalue ≈ μ).
    pub mu: f64,
    /// Sparsity c (mask Bernoulli(c/N), std δ/√c); default N (dense).
    pub sparsity: Option<f64>,
    pub delta_min: f64,
    pub delta_max: f64,
    pub delta_num: usize,
    pub delta_scale: Scale,
    pub input_min: f64,
    pub input_max: f64,
    pub input_num: usize,
    pub input_scale: Scale,
    pub input_type: InputType,
    pub trials: usize,
    pub sigma: f64,
    pub b0: f64,
    pub b1: f64,
    pub tau_y: f64,
    pub tau_a: f64,
    pub initial: InitialType,
    /// Chunks of 100 τ_max before a trial is "undetermined".
    pub max_chunks: usize,
    pub seed: u64,
}

/// The embedded default: a reduced phase diagram (N = 100, 14 δ × 10 input norms × 10 trials =
/// 1,400 trials, delocalized input) that runs in 15–30 s on 2 cores.
pub const DEFAULT_CONFIG: &str = include_str!("../../models/sweep-default.toml");
/// The published phase diagram (the stability sweep of Rawat, Heeger & Martiniani 2024): 200 δ × 200 inputs × 100 trials.
pub const FULL_CONFIG: &str = include_str!("../../models/sweep-phase-diagram.toml");

impl SweepConfig {
    /// Parses and validates TOML; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let c: SweepConfig = toml::from_str(text).map_err(|e| {
            Error::invalid(
                crate::preset::toml_error_field(&e, text),
                format!("{origin}: {}", e.message()),
            )
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &str, v: f64| {
            if !(v > 0.0 && v.is_finite()) {
                Err(Error::invalid(
                    name,
                    format!("{v} (must be positive and finite)"),
                ))
            } else {
                Ok(())
            }
        };
        if self.n == 0 {
            return Err(Error::invalid("n", "must be at least 1"));
        }
        for (name, v) in [
            ("sigma", self.sigma),
            ("tau_y", self.tau_y),
            ("tau_a", self.tau_a),
        ] {
            pos(name, v)?;
        }
        for (name, v) in [("b0", self.b0), ("b1", self.b1), ("mu", self.mu)] {
            if !v.is_finite() {
                return Err(Error::invalid(name, format!("{v} (must be finite)")));
            }
        }
        if let Some(c) = self.sparsity {
            if !(c > 0.0 && c <= self.n as f64) {
                return Err(Error::invalid(
                    "sparsity",
                    format!("{c} (must lie in (0, n])"),
                ));
            }
        }
        for (p, min, max, num, scale) in [
            (
                "delta",
                self.delta_min,
                self.delta_max,
                self.delta_num,
                self.delta_scale,
            ),
            (
                "input",
                self.input_min,
                self.input_max,
                self.input_num,
                self.input_scale,
            ),
        ] {
            if num == 0 {
                return Err(Error::invalid(format!("{p}_num"), "must be at least 1"));
            }
            if !(min.is_finite() && max.is_finite() && min <= max) {
                return Err(Error::invalid(
                    format!("{p}_min"),
                    format!("{min}..{max} is not a finite range with min ≤ max"),
                ));
            }
            if scale == Scale::Log && min <= 0.0 {
                return Err(Error::invalid(
                    format!("{p}_min"),
                    format!("{min}: a log-scale range needs min > 0"),
                ));
            }
            if min < 0.0 {
                return Err(Error::invalid(
                    format!("{p}_min"),
                    format!("{min} (must be ≥ 0)"),
                ));
            }
        }
        if self.trials == 0 {
            return Err(Error::invalid("trials", "must be at least 1"));
        }
        // Per worker thread: W_r, W, the 2N × 2N Jacobian and its eigen-workspace; per trial a
        // result row. Checked before anything is allocated.
        let threads = rayon::current_num_threads().max(1) as u128;
        let n = self.n as u128;
        crate::memory::check("n", threads * (2 * n * n + 3 * 4 * n * n) * 8, None)?;
        let jobs = (self.delta_num as u128) * (self.input_num as u128) * (self.trials as u128);
        crate::memory::check("trials", jobs * 256, None)?;
        if self.max_chunks == 0 {
            return Err(Error::invalid("max_chunks", "must be at least 1"));
        }
        Ok(())
    }

    fn range(min: f64, max: f64, num: usize, scale: Scale) -> Vec<f64> {
        if num == 1 {
            return vec![min];
        }
        (0..num)
            .map(|i| {
                let f = i as f64 / (num - 1) as f64;
                match scale {
                    Scale::Linear => min + (max - min) * f,
                    Scale::Log => 10f64.powf(min.log10() + (max.log10() - min.log10()) * f),
                }
            })
            .collect()
    }
    /// The δ grid.
    pub fn deltas(&self) -> Vec<f64> {
        Self::range(
            self.delta_min,
            self.delta_max,
            self.delta_num,
            self.delta_scale,
        )
    }
    /// The input-norm grid.
    pub fn inputs(&self) -> Vec<f64> {
        Self::range(
            self.input_min,
            self.input_max,
            self.input_num,
            self.input_scale,
        )
    }
    /// Total number of trials.
    pub fn jobs(&self) -> usize {
        self.delta_num * self.input_num * self.trials
    }
}

/// (i_δ, j_input, k_trial) of a job number (lexicographic, i outermost).
pub fn job_index(cfg: &SweepConfig, job: usize) -> (usize, usize, usize) {
    let per_delta = cfg.input_num * cfg.trials;
    (
        job / per_delta,
        (job % per_delta) / cfg.trials,
        job % cfg.trials,
    )
}
