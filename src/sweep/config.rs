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
    /// A user-supplied state (§5.4): `initial_file` holds one state of length 2N ([y; a]) used by
    /// every trial, or one row per trial (trials in job order × 2N, e.g. the `y_final`/`a_final`
    /// of an earlier sweep joined, to continue it).
    Custom,
}

/// What each trial stores besides its results row (the per-trial arrays of §6), written by
/// [`finish`](super::finish) as `.npy` arrays shaped (δ, input, trial, ·) in f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// eig(J) at the final state, 2N complex values (`eigvals.npy`, complex128; NaN unless the
    /// trial ended at a fixed point).
    Eigvals,
    /// The analytic start: y0, a0 (normalization fixed point) and y1, a1 (first-order
    /// correction) — `y0.npy`, `a0.npy`, `y1.npy`, `a1.npy`.
    Start,
    /// The final state of every trial (`y_final.npy`, `a_final.npy`; for diverging trials
    /// whatever the last Euler step produced).
    Final,
}

impl Store {
    /// The `.npy` file stems of this group (each array N values per trial, `eigvals` 2N complex).
    pub fn arrays(self) -> &'static [&'static str] {
        match self {
            Store::Eigvals => &["eigvals"],
            Store::Start => &["y0", "a0", "y1", "a1"],
            Store::Final => &["y_final", "a_final"],
        }
    }
    /// f64 values per trial for a circuit of N neurons.
    pub fn len(self, n: usize) -> usize {
        match self {
            Store::Eigvals => 4 * n,
            Store::Start => 4 * n,
            Store::Final => 2 * n,
        }
    }
}

/// How a trial is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// The adaptive chunk loop of §5.6 (fixed point / periodic / diverging / undetermined).
    #[default]
    Adaptive,
    /// The legacy non-adaptive test of §10: one run of 200 τ_max; "stable" (reported as a fixed
    /// point) when the last row is finite and every |x[−1] − x[−2]| < 1e-5, otherwise
    /// undetermined. No periodic or diverging classes.
    Legacy,
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
    /// The state file of `initial = "custom"` (.npy, length 2N or trials × 2N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_file: Option<std::path::PathBuf>,
    /// Per-trial arrays to keep (`["eigvals", "start", "final"]`); default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store: Vec<Store>,
    /// `adaptive` (default, §5–7) or `legacy` (§10).
    #[serde(default, skip_serializing_if = "is_adaptive")]
    pub criterion: Criterion,
    /// Chunks of 100 τ_max before a trial is "undetermined".
    pub max_chunks: usize,
    pub seed: u64,
    /// Where the trials run: `cpu` (default; f64) or `gpu` (f32 compute shaders, [`super::gpu`]).
    /// Part of the configuration so that one output folder never mixes the two.
    #[serde(default, skip_serializing_if = "is_cpu")]
    pub device: crate::gpu::Device,
}

fn is_cpu(d: &crate::gpu::Device) -> bool {
    *d == crate::gpu::Device::Cpu
}

fn is_adaptive(c: &Criterion) -> bool {
    *c == Criterion::Adaptive
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
        match (self.initial, &self.initial_file) {
            (InitialType::Custom, None) => {
                return Err(Error::invalid(
                    "initial_file",
                    "initial = \"custom\" needs initial_file (an .npy state of length 2N)",
                ))
            }
            (InitialType::Custom, Some(_)) | (_, None) => {}
            (other, Some(_)) => {
                return Err(Error::invalid(
                    "initial_file",
                    format!(
                    "given, but initial = {other:?} does not read it (use initial = \"custom\")"
                ),
                ))
            }
        }
        let mut seen = vec![];
        for s in &self.store {
            if seen.contains(s) {
                return Err(Error::invalid("store", format!("{s:?} listed twice")));
            }
            seen.push(*s);
        }
        if !self.store.is_empty() {
            // The stored arrays are streamed to disk, never held whole; the per-trial record is.
            let per: u128 = self.store.iter().map(|s| s.len(self.n) as u128).sum();
            crate::memory::check("store", threads * per * 8 * 4, None)?;
        }
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
    /// f64 values each trial stores (the sum of its [`Store`] groups).
    pub fn record_len(&self) -> usize {
        self.store.iter().map(|s| s.len(self.n)).sum()
    }

    /// The initial states of `initial = "custom"`: `None` for the other initial conditions; one
    /// state (length 2N) shared by every trial, or one per trial (jobs × 2N, job order). Errors
    /// name `initial_file` and what is wrong with it.
    pub fn initial_states(&self) -> Result<Option<InitialStates>> {
        let (InitialType::Custom, Some(path)) = (self.initial, &self.initial_file) else {
            return Ok(None);
        };
        let n2 = 2 * self.n;
        crate::memory::check(
            "initial_file",
            (self.jobs() as u128) * (n2 as u128) * 8,
            None,
        )?;
        let a: ndarray::ArrayD<f64> = crate::io::read_float(path, "initial_file")?;
        let shape = a.shape().to_vec();
        let data: Vec<f64> = a.iter().copied().collect();
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "initial_file",
                format!(
                    "{}: value {i} is {} (must be finite)",
                    path.display(),
                    data[i]
                ),
            ));
        }
        match shape.as_slice() {
            [m] if *m == n2 => Ok(Some(InitialStates { data, per_trial: false })),
            [j, m] if *m == n2 && *j == self.jobs() => Ok(Some(InitialStates { data, per_trial: true })),
            _ => Err(Error::invalid(
                "initial_file",
                format!(
                    "{}: shape {shape:?}; expected [{n2}] (one state [y; a] for N = {}) or [{}, {n2}] (one per trial)",
                    path.display(),
                    self.n,
                    self.jobs()
                ),
            )),
        }
    }

    /// Total number of trials.
    pub fn jobs(&self) -> usize {
        self.delta_num * self.input_num * self.trials
    }
}

/// The user's initial states of `initial = "custom"` ([`SweepConfig::initial_states`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InitialStates {
    data: Vec<f64>,
    per_trial: bool,
}

impl InitialStates {
    /// The initial state of trial `job` (length 2N).
    pub fn state(&self, job: usize, n2: usize) -> &[f64] {
        if self.per_trial {
            &self.data[job * n2..(job + 1) * n2]
        } else {
            &self.data[..n2]
        }
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

impl SweepConfig {
    /// Pins this configuration to the output folder `dir`: writes `config.toml` there, or checks
    /// that the one there is the same configuration (another is refused, naming `out`). The
    /// folder is checked first ([`crate::io::check_out_dir`]).
    pub fn pin(&self, dir: &std::path::Path) -> Result<()> {
        crate::io::check_out_dir(dir)?;
        let path = dir.join("config.toml");
        let text = toml::to_string(self).map_err(|e| Error::invalid("config", e.to_string()))?;
        if path.exists() {
            let old = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
            let old_cfg = SweepConfig::from_toml(&old, &path.display().to_string())?;
            if &old_cfg != self {
                return Err(Error::invalid(
                    "out",
                    format!("{} holds results of a different configuration (see its config.toml); use another --out or the same config", dir.display()),
                ));
            }
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        crate::io::write_atomic(&path, |w| {
            std::io::Write::write_all(w, text.as_bytes()).map_err(|e| Error::file(&path, e))
        })
    }
}
