//! The ORGaNICs stability sweep (sweep.md): random recurrent matrices at a grid of scales δ, a grid
//! of input strengths, trials per cell; each circuit is simulated in chunks of forward-Euler steps
//! and classified as fixed point / periodic / diverging / undetermined by the spec's criteria; at
//! fixed points the Jacobian spectrum is recorded (so both "stationary" and "linearly stable" are
//! reported) with the distance to the analytical normalization fixed point.
//!
//! Reproducibility: every trial (i_δ, j_input, k_trial) draws from its own ChaCha8 stream seeded by
//! a hash of (seed, i, j, k), so results are bitwise identical whatever the number of threads,
//! shards or restarts. [`run_jobs`] appends each finished trial to a journal (one CSV line, flushed),
//! so a killed run resumes where it stopped; [`finish`] turns the journals into the final table.

use crate::error::{Error, Result};
use crate::io::{Column, Table, TableFormat};
use crate::model::organics::{Organics, Variant};
use crate::model::{jacobian_mat, Model};
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The random recurrent matrix and the meaning of δ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatrixType {
    /// W = I + M, M Ginibre with entry std δ/√c (sweep.md §3 `goe`).
    Goe,
    /// W = I + (M₀ + M₀ᵀ)/2 (the 2025 phase diagram; δ an entry-std scale).
    GoeSymmetric,
    /// W_r = δ G/‖G‖₂ with G Ginibre: largest singular value exactly δ (the NeurIPS 2024 claim).
    SingularValue,
    /// The deterministic W = I + δ G, G_ij = sin(0.37 (i+1)(j+1) + 0.5)/√N (sweep.md §11).
    Deterministic,
}

/// Input drive shape (sweep.md §4); the input value is the norm ‖z‖.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    Localized,
    Delocalized,
    Random,
    Gaussian,
}

/// Initial condition (sweep.md §5.4).
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

/// The embedded default: a reduced phase diagram (N = 100, 8 δ × 6 inputs × 10 trials,
/// delocalized input) that runs in about a minute on 2 cores.
pub const DEFAULT_CONFIG: &str = include_str!("../models/sweep-default.toml");
/// The published phase diagram (sweep.md §8): 200 δ × 200 inputs × 100 trials.
pub const FULL_CONFIG: &str = include_str!("../models/sweep-phase-diagram.toml");

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

/// Trial classes (the original codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Undetermined = 0,
    Diverging = 1,
    FixedPoint = 2,
    Periodic = 3,
}

impl Condition {
    pub fn label(self) -> &'static str {
        match self {
            Condition::Undetermined => "undetermined",
            Condition::Diverging => "diverging",
            Condition::FixedPoint => "fixed_point",
            Condition::Periodic => "periodic",
        }
    }
}

/// What one trial records.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialResult {
    pub job: usize,
    pub i_delta: usize,
    pub j_input: usize,
    pub k_trial: usize,
    pub delta: f64,
    pub input: f64,
    pub seed: u64,
    pub condition: Condition,
    pub chunks: usize,
    /// max |eig(W)| of the recurrent matrix.
    pub spectral_radius: f64,
    /// ‖y‖ at the final state (NaN when diverging).
    pub y_norm: f64,
    /// max Re eig(J) at the final state (fixed points only, else NaN), 1/s.
    pub max_re_eig: f64,
    /// ‖y* − y0‖/‖y0‖ against the normalization fixed point (fixed points only, else NaN).
    pub dist_y0: f64,
}

/// SplitMix64 finaliser: the per-trial seed from (seed, i, j, k).
pub fn trial_seed(seed: u64, i: usize, j: usize, k: usize) -> u64 {
    let mut x = seed;
    for v in [i as u64, j as u64, k as u64] {
        x = x
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(v.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}

/// The recurrent matrix for δ (sweep.md §3).
pub fn make_matrix(cfg: &SweepConfig, delta: f64, rng: &mut ChaCha8Rng) -> Mat<f64> {
    let n = cfg.n;
    let nf = n as f64;
    match cfg.matrix {
        MatrixType::Deterministic => Mat::from_fn(n, n, |i, j| {
            let g = (0.37 * ((i + 1) * (j + 1)) as f64 + 0.5).sin() / nf.sqrt();
            (if i == j { 1.0 } else { 0.0 }) + delta * g
        }),
        MatrixType::Goe | MatrixType::GoeSymmetric => {
            let c = cfg.sparsity.unwrap_or(nf);
            let (mean, std) = (cfg.mu / c, delta / c.sqrt());
            let p = c / nf;
            let mut m0 = Mat::<f64>::zeros(n, n);
            for i in 0..n {
                for j in 0..n {
                    let z: f64 = StandardNormal.sample(rng);
                    let keep = if p >= 1.0 {
                        true
                    } else {
                        rand::Rng::random::<f64>(rng) < p
                    };
                    m0[(i, j)] = if keep { mean + std * z } else { 0.0 };
                }
            }
            Mat::from_fn(n, n, |i, j| {
                let m = if cfg.matrix == MatrixType::GoeSymmetric {
                    0.5 * (m0[(i, j)] + m0[(j, i)])
                } else {
                    m0[(i, j)]
                };
                (if i == j { 1.0 } else { 0.0 }) + m
            })
        }
        MatrixType::SingularValue => {
            let g = Mat::<f64>::from_fn(n, n, |_, _| {
                let z: f64 = StandardNormal.sample(rng);
                z / nf.sqrt()
            });
            let smax = g
                .singular_values()
                .map(|s| s.iter().copied().fold(0.0, f64::max))
                .unwrap_or(1.0);
            Mat::from_fn(n, n, |i, j| delta * g[(i, j)] / smax)
        }
    }
}

/// The input drive z with norm `norm` (sweep.md §4).
pub fn make_input(cfg: &SweepConfig, norm: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = cfg.n;
    let mut z = match cfg.input_type {
        InputType::Localized => {
            let mut z = vec![0.0; n];
            z[0] = 1.0;
            z
        }
        InputType::Delocalized => vec![1.0 / (n as f64).sqrt(); n],
        InputType::Random => (0..n).map(|_| StandardNormal.sample(rng)).collect(),
        InputType::Gaussian => {
            let s = n as f64 / 10.0;
            (0..n)
                .map(|i| (-((i * i) as f64) / (2.0 * s * s)).exp())
                .collect()
        }
    };
    let nz = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    if nz > 0.0 {
        for v in z.iter_mut() {
            *v *= norm / nz;
        }
    }
    z
}

/// scipy.signal.find_peaks (no options) on `x`: indices of local maxima, plateaus at their
/// midpoint rounded down, endpoints never, NaN comparisons false (sweep.md §5.6).
pub fn find_peaks(x: &[f64]) -> Vec<usize> {
    let n = x.len();
    let mut peaks = vec![];
    if n < 3 {
        return peaks;
    }
    let mut i = 1;
    while i < n - 1 {
        if x[i - 1] < x[i] {
            let mut j = i + 1;
            while j < n - 1 && x[j] == x[i] {
                j += 1;
            }
            if x[j] < x[i] {
                peaks.push((i + j - 1) / 2);
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    peaks
}

/// The periodic test of sweep.md §5.6 on s_n = ‖y_n‖.
pub fn is_periodic(s: &[f64]) -> bool {
    let mut e = find_peaks(s);
    let neg: Vec<f64> = s.iter().map(|v| -v).collect();
    e.extend(find_peaks(&neg));
    e.sort_unstable();
    if e.len() < 4 {
        return false;
    }
    let starts: Vec<usize> = e.iter().step_by(2).copied().collect();
    let periods: Vec<f64> = starts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    if periods.is_empty() {
        return false;
    }
    let mean = periods.iter().sum::<f64>() / periods.len() as f64;
    let var = periods.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / periods.len() as f64;
    if !(var.sqrt() / mean < 1e-2) {
        return false;
    }
    let amps: Vec<f64> = e.windows(2).map(|w| (s[w[1]] - s[w[0]]).abs()).collect();
    let ma = amps.iter().sum::<f64>() / amps.len() as f64;
    amps.iter()
        .all(|a| (a - ma).abs() <= 1e-8 + 1e-2 * ma.abs())
}

/// Runs one trial on a given recurrent matrix and drive (the library core of the sweep; the
/// spec's deterministic vectors call it directly). Returns (condition, chunks, final state).
pub fn simulate_trial(
    model: &Organics,
    x0: &[f64],
    max_chunks: usize,
) -> (Condition, usize, Vec<f64>) {
    let n2 = model.dim();
    let n = n2 / 2;
    let tau_max = model
        .tau_y
        .iter()
        .chain(&model.tau_a)
        .fold(0.0f64, |m, v| m.max(*v));
    let tau_min = model
        .tau_y
        .iter()
        .chain(&model.tau_a)
        .fold(f64::INFINITY, |m, v| m.min(*v));
    let chunk = 100.0 * tau_max;
    let dt = 0.05 * tau_min;
    let points = (chunk / dt).floor() as usize;
    // numpy.linspace(0, chunk, points): t_k = k·step, the last one exactly `chunk`.
    let step = chunk / (points - 1) as f64;
    let t: Vec<f64> = (0..points)
        .map(|k| {
            if k == points - 1 {
                chunk
            } else {
                k as f64 * step
            }
        })
        .collect();
    let window_start = points - points / 2; // the last floor(points/2) rows
    let mut x = x0.to_vec();
    let mut f = vec![0.0; n2];
    let mut s = vec![0.0; points];
    for c in 1..=max_chunks {
        let mut diverged = false;
        let mut max_diff = 0.0f64;
        let check = |x: &[f64]| x.iter().any(|v| v.is_nan() || v.abs() > 1e10);
        diverged |= check(&x);
        s[0] = x[..n].iter().map(|v| v * v).sum::<f64>().sqrt();
        for k in 0..points - 1 {
            let h = t[k + 1] - t[k];
            model.rhs(0.0, &x, &mut f);
            let record = k >= window_start;
            for i in 0..n2 {
                let d = h * f[i];
                let xn = x[i] + d;
                if record {
                    // |x_{n+1} − x_n| as computed from the stored rows.
                    let diff = (xn - x[i]).abs();
                    if diff > max_diff || diff.is_nan() {
                        max_diff = diff;
                    }
                }
                x[i] = xn;
            }
            if check(&x) {
                diverged = true;
            }
            s[k + 1] = x[..n].iter().map(|v| v * v).sum::<f64>().sqrt();
            if diverged && x.iter().all(|v| v.is_nan()) {
                break;
            }
        }
        if diverged {
            return (Condition::Diverging, c, x);
        }
        if max_diff < 1e-6 {
            return (Condition::FixedPoint, c, x);
        }
        if is_periodic(&s) {
            return (Condition::Periodic, c, x);
        }
    }
    (Condition::Undetermined, max_chunks, x)
}

/// The normalization fixed point (y0, a0) and the first-order correction (y1, a1) in K = W − I
/// (sweep.md §5.2–5.3), for the sweep's all-ones pool W_ay.
pub fn analytic_start(model: &Organics) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = model.n();
    let drive2: Vec<f64> = (0..n).map(|i| (model.b1[i] * model.z[i]).powi(2)).collect();
    let mut a0: Vec<f64> = (0..n)
        .map(|i| (model.sigma[i] * model.b0[i]).powi(2))
        .collect();
    crate::model::kernels::gemv_add(model.w.as_ref(), &drive2, &mut a0);
    let y0: Vec<f64> = (0..n)
        .map(|i| model.b1[i] * model.z[i] / a0[i].sqrt())
        .collect();
    let mut ky0 = vec![0.0; n];
    crate::model::kernels::gemv_add(model.w_r.as_ref(), &y0, &mut ky0);
    for i in 0..n {
        ky0[i] -= y0[i];
    }
    let p: Vec<f64> = (0..n)
        .map(|i| 2.0 * model.b1[i] * model.z[i] * (1.0 - a0[i].sqrt()) * ky0[i])
        .collect();
    let mut a1 = vec![0.0; n];
    crate::model::kernels::gemv_add(model.w.as_ref(), &p, &mut a1);
    let y1: Vec<f64> = (0..n)
        .map(|i| (1.0 - a0[i].sqrt()) / a0[i].sqrt() * ky0[i] - y0[i] * a1[i] / (2.0 * a0[i]))
        .collect();
    (y0, a0, y1, a1)
}

/// One full trial of the sweep for job (i, j, k).
pub fn run_trial(
    cfg: &SweepConfig,
    deltas: &[f64],
    inputs: &[f64],
    job: usize,
) -> Result<TrialResult> {
    let (i, j, k) = job_index(cfg, job);
    let seed = trial_seed(cfg.seed, i, j, k);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w_r = make_matrix(cfg, deltas[i], &mut rng);
    let z = make_input(cfg, inputs[j], &mut rng);
    let n = cfg.n;
    let spectral_radius = w_r
        .eigenvalues()
        .map(|e| e.iter().map(|l| l.norm()).fold(0.0, f64::max))
        .unwrap_or(f64::NAN);
    let model = Organics::new(
        cfg.variant,
        w_r,
        Mat::from_fn(n, n, |_, _| 1.0),
        vec![cfg.b0; n],
        vec![cfg.b1; n],
        vec![cfg.sigma; n],
        vec![cfg.tau_y; n],
        vec![cfg.tau_a; n],
        z,
    )?;
    let (y0, a0, y1, a1) = analytic_start(&model);
    let x0: Vec<f64> = match cfg.initial {
        InitialType::Norm => y0.iter().chain(&a0).copied().collect(),
        InitialType::FirstOrder => y0
            .iter()
            .zip(&y1)
            .map(|(a, b)| a + b)
            .chain(a0.iter().zip(&a1).map(|(a, b)| a + b))
            .collect(),
        InitialType::Zero => vec![0.0; 2 * n],
        InitialType::ZeroEpsilon => vec![1e-3; 2 * n],
        InitialType::Random => (0..2 * n)
            .map(|_| rand::Rng::random::<f64>(&mut rng))
            .collect(),
    };
    let (condition, chunks, x) = simulate_trial(&model, &x0, cfg.max_chunks);
    let y_norm = if condition == Condition::Diverging {
        f64::NAN
    } else {
        x[..n].iter().map(|v| v * v).sum::<f64>().sqrt()
    };
    let (max_re_eig, dist_y0) = if condition == Condition::FixedPoint {
        let j = jacobian_mat(&model, 0.0, &x);
        let m = j
            .eigenvalues()
            .map(|e| e.iter().map(|l| l.re).fold(f64::NEG_INFINITY, f64::max))
            .unwrap_or(f64::NAN);
        let n0 = y0.iter().map(|v| v * v).sum::<f64>().sqrt();
        let d = x[..n]
            .iter()
            .zip(&y0)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        (m, d / n0)
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(TrialResult {
        job,
        i_delta: i,
        j_input: j,
        k_trial: k,
        delta: deltas[i],
        input: inputs[j],
        seed,
        condition,
        chunks,
        spectral_radius,
        y_norm,
        max_re_eig,
        dist_y0,
    })
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

/// The jobs of shard `i` of `n` (numpy.array_split: the first `len % n` shards get one more).
pub fn shard_jobs(total: usize, i: usize, n: usize) -> std::ops::Range<usize> {
    let (q, r) = (total / n, total % n);
    let start = i * q + i.min(r);
    start..start + q + usize::from(i < r)
}

const JOURNAL_HEADER: &str = "job,i_delta,j_input,k_trial,delta,input,seed,condition,chunks,spectral_radius,y_norm,max_re_eig,dist_y0";

fn journal_line(r: &TrialResult) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{}",
        r.job,
        r.i_delta,
        r.j_input,
        r.k_trial,
        r.delta,
        r.input,
        r.seed,
        r.condition as u8,
        r.chunks,
        r.spectral_radius,
        r.y_norm,
        r.max_re_eig,
        r.dist_y0
    )
}

fn parse_line(line: &str) -> Option<TrialResult> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 13 {
        return None;
    }
    let u = |k: usize| f[k].parse::<usize>().ok();
    let x = |k: usize| f[k].parse::<f64>().ok();
    let condition = match f[7] {
        "0" => Condition::Undetermined,
        "1" => Condition::Diverging,
        "2" => Condition::FixedPoint,
        "3" => Condition::Periodic,
        _ => return None,
    };
    Some(TrialResult {
        job: u(0)?,
        i_delta: u(1)?,
        j_input: u(2)?,
        k_trial: u(3)?,
        delta: x(4)?,
        input: x(5)?,
        seed: f[6].parse().ok()?,
        condition,
        chunks: u(8)?,
        spectral_radius: x(9)?,
        y_norm: x(10)?,
        max_re_eig: x(11)?,
        dist_y0: x(12)?,
    })
}

/// Reads every journal (`rows.*.csv`) in `dir`; complete lines only (a line cut by a kill is
/// dropped and its trial recomputed), first occurrence of a job wins.
pub fn read_journals(dir: &Path) -> Result<Vec<TrialResult>> {
    let mut out: Vec<TrialResult> = vec![];
    let mut seen = std::collections::HashSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return Ok(out),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rows.") && n.ends_with(".csv"))
        })
        .collect();
    files.sort();
    for p in files {
        let text = std::fs::read_to_string(&p).map_err(|e| Error::file(&p, e))?;
        let complete = text.rfind('\n').map(|i| &text[..i]).unwrap_or("");
        for line in complete.lines().skip(1) {
            if let Some(r) = parse_line(line) {
                if seen.insert(r.job) {
                    out.push(r);
                }
            }
        }
    }
    out.sort_by_key(|r| r.job);
    Ok(out)
}

/// Runs the jobs of shard `shard = (i, n)` not yet in the journals of `dir`, appending each result
/// to `dir/rows.<i>of<n>.csv` as it completes. `progress(done, total)` is called after each trial.
pub fn run_jobs(
    cfg: &SweepConfig,
    dir: &Path,
    shard: (usize, usize),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    cfg.validate()?;
    let (si, sn) = shard;
    if sn == 0 || si >= sn {
        return Err(Error::invalid(
            "shard",
            format!("{si}/{sn}: need 0 ≤ i < n"),
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the output folder: {e}")))?;
    let done: std::collections::HashSet<usize> =
        read_journals(dir)?.into_iter().map(|r| r.job).collect();
    let jobs: Vec<usize> = shard_jobs(cfg.jobs(), si, sn)
        .filter(|j| !done.contains(j))
        .collect();
    let total = shard_jobs(cfg.jobs(), si, sn).len();
    let path = dir.join(format!("rows.{si}of{sn}.csv"));
    let fresh = !path.exists()
        || std::fs::metadata(&path)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::file(&path, e))?;
    if fresh {
        writeln!(file, "{JOURNAL_HEADER}").map_err(|e| Error::file(&path, e))?;
    } else {
        // A kill may have cut the last line: end it so new rows start on a fresh line.
        let text = std::fs::read(&path).map_err(|e| Error::file(&path, e))?;
        if text.last() != Some(&b'\n') {
            writeln!(file).map_err(|e| Error::file(&path, e))?;
        }
    }
    let file = Mutex::new(file);
    let counter = std::sync::atomic::AtomicUsize::new(total - jobs.len());
    progress(total - jobs.len(), total);
    let (deltas, inputs) = (cfg.deltas(), cfg.inputs());
    jobs.par_iter().try_for_each(|&job| -> Result<()> {
        let r = run_trial(cfg, &deltas, &inputs, job)?;
        let line = journal_line(&r);
        {
            let mut f = file
                .lock()
                .map_err(|_| Error::invalid("journal", "lock poisoned"))?;
            writeln!(f, "{line}")
                .and_then(|_| f.flush())
                .map_err(|e| Error::file(&path, e))?;
        }
        let d = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(d, total);
        Ok(())
    })
}

/// Per-cell summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSummary {
    pub delta: f64,
    pub input: f64,
    pub trials: usize,
    pub pct_fixed_point: f64,
    pub pct_periodic: f64,
    pub pct_diverging: f64,
    pub pct_undetermined: f64,
    /// Fixed points with max Re eig(J) < 0.
    pub pct_linearly_stable: f64,
}

/// Summaries per (δ, input) cell, δ outermost.
pub fn summarize(cfg: &SweepConfig, rows: &[TrialResult]) -> Vec<CellSummary> {
    let (deltas, inputs) = (cfg.deltas(), cfg.inputs());
    let mut out = vec![];
    for (i, &d) in deltas.iter().enumerate() {
        for (j, &z) in inputs.iter().enumerate() {
            let cell: Vec<&TrialResult> = rows
                .iter()
                .filter(|r| r.i_delta == i && r.j_input == j)
                .collect();
            let m = cell.len().max(1) as f64;
            let pct =
                |c: Condition| 100.0 * cell.iter().filter(|r| r.condition == c).count() as f64 / m;
            out.push(CellSummary {
                delta: d,
                input: z,
                trials: cell.len(),
                pct_fixed_point: pct(Condition::FixedPoint),
                pct_periodic: pct(Condition::Periodic),
                pct_diverging: pct(Condition::Diverging),
                pct_undetermined: pct(Condition::Undetermined),
                pct_linearly_stable: 100.0
                    * cell
                        .iter()
                        .filter(|r| r.condition == Condition::FixedPoint && r.max_re_eig < 0.0)
                        .count() as f64
                    / m,
            });
        }
    }
    out
}

/// The results table (one row per trial, sorted by job).
pub fn results_table(rows: &[TrialResult]) -> Table {
    let mut t = Table::new();
    let f = |g: fn(&TrialResult) -> f64| Column::F64(rows.iter().map(g).collect());
    let i = |g: fn(&TrialResult) -> i64| Column::I64(rows.iter().map(g).collect());
    t.push("job", i(|r| r.job as i64));
    t.push("i_delta", i(|r| r.i_delta as i64));
    t.push("j_input", i(|r| r.j_input as i64));
    t.push("k_trial", i(|r| r.k_trial as i64));
    t.push("delta", f(|r| r.delta));
    t.push("input", f(|r| r.input));
    t.push(
        "seed",
        Column::Str(rows.iter().map(|r| r.seed.to_string()).collect()),
    );
    t.push("condition", i(|r| r.condition as i64));
    t.push(
        "class",
        Column::Str(
            rows.iter()
                .map(|r| r.condition.label().to_string())
                .collect(),
        ),
    );
    t.push("chunks", i(|r| r.chunks as i64));
    t.push("spectral_radius", f(|r| r.spectral_radius));
    t.push("y_norm", f(|r| r.y_norm));
    t.push("max_re_eig", f(|r| r.max_re_eig));
    t.push(
        "linearly_stable",
        i(|r| i64::from(r.condition == Condition::FixedPoint && r.max_re_eig < 0.0)),
    );
    t.push("dist_y0", f(|r| r.dist_y0));
    t
}

/// The critical curve Δ_c(z) = √2 √(σ² + z²)/(1 − √(σ² + z²)) for μ = 0 (sweep.md §7); NaN where
/// the denominator is ≤ 0.
pub fn critical_delta(sigma: f64, z: f64) -> f64 {
    let r = (sigma * sigma + z * z).sqrt();
    if r >= 1.0 {
        f64::NAN
    } else {
        2f64.sqrt() * r / (1.0 - r)
    }
}

/// Joins the journals of `dir` into the final tables when every job of the configuration is
/// present: `results.parquet` and `results.csv` (one row per trial), `summary.csv` (one per cell).
/// Returns the rows, or an error naming how many jobs are missing.
pub fn finish(cfg: &SweepConfig, dir: &Path) -> Result<Vec<TrialResult>> {
    let rows = read_journals(dir)?;
    let rows: Vec<TrialResult> = rows.into_iter().filter(|r| r.job < cfg.jobs()).collect();
    if rows.len() != cfg.jobs() {
        return Err(Error::invalid(
            "shard",
            format!(
                "{} of {} trials present in {}: run the missing shards first",
                rows.len(),
                cfg.jobs(),
                dir.display()
            ),
        ));
    }
    let t = results_table(&rows);
    t.write(&dir.join("results.parquet"), TableFormat::Parquet)?;
    t.write(&dir.join("results.csv"), TableFormat::Csv)?;
    let s = summarize(cfg, &rows);
    let mut st = Table::new();
    st.push("delta", Column::F64(s.iter().map(|c| c.delta).collect()));
    st.push("input", Column::F64(s.iter().map(|c| c.input).collect()));
    st.push(
        "trials",
        Column::I64(s.iter().map(|c| c.trials as i64).collect()),
    );
    st.push(
        "pct_fixed_point",
        Column::F64(s.iter().map(|c| c.pct_fixed_point).collect()),
    );
    st.push(
        "pct_periodic",
        Column::F64(s.iter().map(|c| c.pct_periodic).collect()),
    );
    st.push(
        "pct_diverging",
        Column::F64(s.iter().map(|c| c.pct_diverging).collect()),
    );
    st.push(
        "pct_undetermined",
        Column::F64(s.iter().map(|c| c.pct_undetermined).collect()),
    );
    st.push(
        "pct_linearly_stable",
        Column::F64(s.iter().map(|c| c.pct_linearly_stable).collect()),
    );
    st.write(&dir.join("summary.csv"), TableFormat::Csv)?;
    Ok(rows)
}
