//! One trial of the sweep: the recurrent matrix and input draws, the chunked forward-Euler
//! simulation with its fixed-point / periodic / diverging criteria, the analytic start.

use super::config::*;
use crate::error::{Error, Result};
use crate::integrate::{Euler, FixedStepper};
use crate::model::organics::Organics;
use crate::model::{jacobian_mat, Model};
use crate::seed::trial_seed;
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

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

/// The recurrent matrix for δ (the stability sweep of Rawat, Heeger & Martiniani 2024).
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

/// The input drive z with norm `norm` (the stability sweep of Rawat, Heeger & Martiniani 2024).
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
/// midpoint rounded down, endpoints never, NaN comparisons false (the stability sweep of Rawat, Heeger & Martiniani 2024).
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

/// The periodic test of the original sweep code on s_n = ‖y_n‖.
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

/// (min τ, max τ) over both populations.
fn tau_range(model: &Organics) -> (f64, f64) {
    let taus = || model.tau_y.iter().chain(&model.tau_a).copied();
    (
        taus().fold(f64::INFINITY, f64::min),
        taus().fold(0.0, f64::max),
    )
}

/// The Euler step h = chunk/(points − 1) and the points of one chunk (§5.5).
pub fn chunk_grid(model: &Organics) -> (f64, usize) {
    let (tau_min, tau_max) = tau_range(model);
    let chunk = 100.0 * tau_max;
    let points = (chunk / (0.05 * tau_min)).floor() as usize;
    (chunk / (points - 1) as f64, points)
}

/// numpy.linspace(0, span, points): t_k = k·step, the last one exactly `span`.
fn linspace(span: f64, points: usize) -> Vec<f64> {
    let step = span / (points - 1) as f64;
    (0..points)
        .map(|k| {
            if k == points - 1 {
                span
            } else {
                k as f64 * step
            }
        })
        .collect()
}

/// Runs one trial on a given recurrent matrix and drive (the library core of the sweep; the
/// spec's deterministic vectors call it directly). Returns (condition, chunks, final state).
pub fn simulate_trial(
    model: &Organics,
    x0: &[f64],
    max_chunks: usize,
) -> (Condition, usize, Vec<f64>) {
    // The sweep's pool is all-to-all (W = 11ᵀ): its drive is one sum per step, not a product.
    match model.uniform_pool() {
        Some(u) => simulate_chunks(&u, model, x0, max_chunks),
        None => simulate_chunks(model, model, x0, max_chunks),
    }
}

fn simulate_chunks<M: Model>(
    sys: &M,
    model: &Organics,
    x0: &[f64],
    max_chunks: usize,
) -> (Condition, usize, Vec<f64>) {
    let n2 = model.dim();
    let n = n2 / 2;
    let (tau_min, tau_max) = tau_range(model);
    let chunk = 100.0 * tau_max;
    let points = (chunk / (0.05 * tau_min)).floor() as usize;
    let t = linspace(chunk, points);
    let window_start = points - points / 2; // the last floor(points/2) rows
    let mut x = x0.to_vec();
    let mut f = vec![0.0; n2];
    let mut s = vec![0.0; points];
    for c in 1..=max_chunks {
        let mut max_diff = 0.0f64;
        // NaN, ±∞ or |x| > 1e10 anywhere (branch-free, so it vectorises).
        let mut diverged = x.iter().fold(false, |b, v| b | !(v.abs() <= 1e10));
        s[0] = norm(&x[..n]);
        for k in 0..points - 1 {
            // The grid is numpy.linspace's, not uniform to the last bit: one forward-Euler step
            // x ← x + h f(x) per interval with its own h, fused with the chunk's statistics in
            // one pass: the divergence test, max |x_{n+1} − x_n| over the last floor(points/2)
            // rows (as computed from the stored rows; a NaN there means a NaN state, which the
            // divergence test reports first) and ‖y‖ of every row.
            let h = t[k + 1] - t[k];
            sys.rhs(0.0, &x, &mut f);
            let (bad, diff) = euler_pass(&mut x, &f, h);
            if k >= window_start {
                max_diff = max_diff.max(diff);
            }
            diverged |= bad;
            s[k + 1] = norm(&x[..n]);
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

/// x ← x + h f, returning (any entry NaN, ±∞ or beyond 1e10; max |x_new − x_old|) — four lanes
/// of accumulators so that the pass vectorises (a NaN difference may be dropped: the state is
/// then NaN and the first value says so).
#[inline]
fn euler_pass(x: &mut [f64], f: &[f64], h: f64) -> (bool, f64) {
    let (mut d4, mut b4) = ([0.0f64; 4], [false; 4]);
    let mut xc = x.chunks_exact_mut(4);
    let mut fc = f.chunks_exact(4);
    for (xq, fq) in (&mut xc).zip(&mut fc) {
        for l in 0..4 {
            let new = xq[l] + h * fq[l];
            let d = (new - xq[l]).abs();
            d4[l] = if d > d4[l] { d } else { d4[l] };
            b4[l] |= !(new.abs() <= 1e10);
            xq[l] = new;
        }
    }
    let (mut d, mut b) = (
        d4[0].max(d4[1]).max(d4[2].max(d4[3])),
        b4.iter().any(|&v| v),
    );
    for (xi, fi) in xc.into_remainder().iter_mut().zip(fc.remainder()) {
        let new = *xi + h * fi;
        d = d.max((new - *xi).abs());
        b |= !(new.abs() <= 1e10);
        *xi = new;
    }
    (b, d)
}

/// ‖v‖₂ with four interleaved partial sums (vectorised; one rounding order, fixed).
fn norm(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            acc[k] += c[k] * c[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for r in chunks.remainder() {
        s += r * r;
    }
    s.sqrt()
}

/// The normalization fixed point (y0, a0) and the first-order correction (y1, a1) in K = W − I
/// (the stability sweep of Rawat, Heeger & Martiniani 2024), for the sweep's all-ones pool W_ay.
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

/// Everything one trial is built from: its draws, the circuit, the analytic start and the initial
/// state (what [`run_trial`] simulates; the analysis scripts rebuild a trial with it to continue
/// or dissect it).
#[derive(Debug, Clone)]
pub struct TrialSetup {
    pub job: usize,
    pub i_delta: usize,
    pub j_input: usize,
    pub k_trial: usize,
    pub seed: u64,
    pub model: Organics,
    /// max |eig(W)| of the recurrent matrix.
    pub spectral_radius: f64,
    /// Normalization fixed point (y0, a0) and first-order correction (y1, a1), §5.2–3.
    pub y0: Vec<f64>,
    pub a0: Vec<f64>,
    pub y1: Vec<f64>,
    pub a1: Vec<f64>,
    /// The initial state [y; a] of the configured initial type.
    pub x0: Vec<f64>,
}

/// max |eig(W)|. When W is exactly symmetric (the 2025 sweep's ensemble and the deterministic
/// matrix) only its two extreme eigenvalues matter: a Householder tridiagonalisation (faer) and
/// Sturm-sequence bisection for the smallest and the largest eigenvalue of the tridiagonal
/// matrix, to the last bits (the full symmetric eigensolver spent two thirds of its time in the
/// QR iterations for all N eigenvalues). Otherwise the general eigensolver.
pub fn spectral_radius(w: faer::MatRef<'_, f64>) -> f64 {
    let n = w.nrows();
    let symmetric = (0..n).all(|i| (0..i).all(|j| w[(i, j)] == w[(j, i)]));
    if !symmetric {
        return w
            .eigenvalues()
            .map(|e| e.iter().map(|l| l.norm()).fold(0.0, f64::max))
            .unwrap_or(f64::NAN);
    }
    if n == 0 || w.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) {
        return f64::NAN;
    }
    let (d, e) = tridiagonal(w);
    let (lo, hi) = extreme_eigenvalues(&d, &e);
    lo.abs().max(hi.abs())
}

/// The diagonal and subdiagonal of the tridiagonal matrix similar to the symmetric `w`.
fn tridiagonal(w: faer::MatRef<'_, f64>) -> (Vec<f64>, Vec<f64>) {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd::tridiag::{tridiag_in_place, tridiag_in_place_scratch};
    let n = w.nrows();
    let mut a = w.to_owned();
    if n > 1 {
        let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(n, n);
        let mut hh = Mat::<f64>::zeros(bs, n - 1);
        let mut mem = MemBuffer::new(tridiag_in_place_scratch::<f64>(
            n,
            faer::Par::Seq,
            Default::default(),
        ));
        tridiag_in_place(
            a.as_mut(),
            hh.as_mut(),
            faer::Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        );
    }
    let d = (0..n).map(|i| a[(i, i)]).collect();
    let e = (1..n).map(|i| a[(i, i - 1)]).collect();
    (d, e)
}

/// The number of eigenvalues below `x` of the symmetric tridiagonal matrix (d, e), by the signs
/// of the LDLᵀ pivots of T − x I (Sturm sequence; a zero pivot is nudged to a tiny negative
/// value, the usual convention).
fn sturm_count(d: &[f64], e: &[f64], x: f64) -> usize {
    let tiny = f64::MIN_POSITIVE / f64::EPSILON;
    let mut count = 0;
    let mut q = d[0] - x;
    for i in 0..d.len() {
        if i > 0 {
            q = d[i] - x - e[i - 1] * e[i - 1] / q;
        }
        if q == 0.0 {
            q = -tiny;
        }
        if q < 0.0 {
            count += 1;
        }
    }
    count
}

/// (smallest, largest) eigenvalue of the symmetric tridiagonal (d, e) by bisection from the
/// Gershgorin interval, each to where the interval stops shrinking (adjacent doubles).
fn extreme_eigenvalues(d: &[f64], e: &[f64]) -> (f64, f64) {
    let n = d.len();
    let (mut glo, mut ghi) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..n {
        let r = if i > 0 { e[i - 1].abs() } else { 0.0 } + if i + 1 < n { e[i].abs() } else { 0.0 };
        glo = glo.min(d[i] - r);
        ghi = ghi.max(d[i] + r);
    }
    let pad = f64::EPSILON * (glo.abs().max(ghi.abs())).max(f64::MIN_POSITIVE);
    let (glo, ghi) = (glo - pad, ghi + pad);
    // The k-th smallest eigenvalue (k = 1: the smallest; k = n: the largest).
    let kth = |k: usize| {
        let (mut lo, mut hi) = (glo, ghi);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if sturm_count(d, e, mid) >= k {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        0.5 * (lo + hi)
    };
    (kth(1), kth(n))
}

/// Draws trial `job` of the configuration: W from the trial's own stream, then z, then (for
/// `initial = "random"`) the start. `custom` holds the states of `initial = "custom"`
/// ([`SweepConfig::initial_states`]).
pub fn setup_trial(
    cfg: &SweepConfig,
    deltas: &[f64],
    inputs: &[f64],
    job: usize,
    custom: Option<&InitialStates>,
) -> Result<TrialSetup> {
    let (i, j, k) = job_index(cfg, job);
    let seed = trial_seed(cfg.seed, i, j, k);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w_r = make_matrix(cfg, deltas[i], &mut rng);
    let z = make_input(cfg, inputs[j], &mut rng);
    let n = cfg.n;
    let spectral_radius = spectral_radius(w_r.as_ref());
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
        InitialType::Custom => custom
            .ok_or_else(|| {
                Error::invalid(
                    "initial_file",
                    "initial = \"custom\": the states were not loaded (SweepConfig::initial_states)",
                )
            })?
            .state(job, 2 * n)
            .to_vec(),
    };
    Ok(TrialSetup {
        job,
        i_delta: i,
        j_input: j,
        k_trial: k,
        seed,
        model,
        spectral_radius,
        y0,
        a0,
        y1,
        a1,
        x0,
    })
}

/// A finished trial with its arrays (§6): the results row, what it was built from, the final
/// state and, at fixed points, eig(J) there (empty otherwise).
#[derive(Debug, Clone)]
pub struct TrialOutput {
    pub result: TrialResult,
    pub setup: TrialSetup,
    pub final_state: Vec<f64>,
    pub eigvals: Vec<faer::c64>,
}

impl TrialOutput {
    /// The stored record of this trial: the groups of `store` in order, f64 (eigenvalues as
    /// interleaved re, im — the bytes of complex128; NaN where the trial has none).
    pub fn record(&self, store: &[Store]) -> Vec<f64> {
        let n = self.setup.y0.len();
        let mut out = Vec::with_capacity(store.iter().map(|s| s.len(n)).sum());
        for s in store {
            match s {
                Store::Eigvals => {
                    if self.eigvals.len() == 2 * n {
                        for l in &self.eigvals {
                            out.push(l.re);
                            out.push(l.im);
                        }
                    } else {
                        out.extend(std::iter::repeat_n(f64::NAN, 4 * n));
                    }
                }
                Store::Start => {
                    for v in [
                        &self.setup.y0,
                        &self.setup.a0,
                        &self.setup.y1,
                        &self.setup.a1,
                    ] {
                        out.extend_from_slice(v);
                    }
                }
                Store::Final => out.extend_from_slice(&self.final_state),
            }
        }
        out
    }
}

/// The eigenvalues of the circuit's Jacobian at `x` (1/s, 2N values, unordered). With the sweep's
/// all-to-all pool (W = c 11ᵀ) and one τ_a, J = [[J_yy, diag(d)], [1 vᵀ, −I/τ_a + 1 wᵀ]]: the
/// subspace {[p; c 1]} is invariant, with the (N + 1) × (N + 1) matrix
/// K = [[J_yy, d], [vᵀ, Σw − 1/τ_a]], and J acts as −1/τ_a on the quotient. So
/// eig J = eig K ∪ {−1/τ_a} × (N − 1): one (N + 1)-dimensional eigenproblem instead of a 2N one
/// (≈ 8× less work), and the degenerate −1/τ_a cluster exact. Otherwise the full 2N problem.
pub fn jacobian_spectrum(model: &Organics, x: &[f64]) -> Vec<faer::c64> {
    let n = model.n();
    let j = jacobian_mat(model, 0.0, x);
    let tau_a = model.tau_a[0];
    let structured =
        n >= 2 && model.pool_weight().is_some() && model.tau_a.iter().all(|&t| t == tau_a);
    if !structured {
        return j.eigenvalues().unwrap_or_default();
    }
    // Row i of J_ay is vᵀ for every i; off the diagonal, J_aa[i, k] = w_k.
    let w = |k: usize| j[(n + (k + 1) % n, n + k)];
    let sum_w: f64 = (0..n).map(w).sum();
    let k = faer::Mat::<f64>::from_fn(n + 1, n + 1, |r, c| match (r < n, c < n) {
        (true, true) => j[(r, c)],
        (true, false) => j[(r, n + r)],
        (false, true) => j[(n, c)],
        (false, false) => sum_w - 1.0 / tau_a,
    });
    let mut out = k.eigenvalues().unwrap_or_default();
    if out.len() != n + 1 {
        return j.eigenvalues().unwrap_or_default();
    }
    out.extend(std::iter::repeat_n(
        faer::c64::new(-1.0 / tau_a, 0.0),
        n - 1,
    ));
    out
}

/// The legacy non-adaptive test (§10): 200 τ_max of Euler steps on numpy.linspace's grid with
/// the adaptive path's dt; "stable" (a fixed point) when the last row is finite and every
/// |x[−1] − x[−2]| < 1e-5, otherwise undetermined. Returns (condition, 1, final state).
pub fn simulate_legacy(model: &Organics, x0: &[f64]) -> (Condition, usize, Vec<f64>) {
    let (tau_min, tau_max) = tau_range(model);
    let span = 200.0 * tau_max;
    let points = (span / (0.05 * tau_min)).floor() as usize;
    let t = linspace(span, points);
    let mut x = x0.to_vec();
    let mut prev = x.clone();
    let mut euler = Euler::new(x.len());
    let pool = model.uniform_pool();
    let sys: &dyn Model = match &pool {
        Some(u) => u,
        None => model,
    };
    for k in 0..points - 1 {
        prev.copy_from_slice(&x);
        euler.step(sys, 0.0, &mut x, t[k + 1] - t[k]);
    }
    let stable =
        x.iter().all(|v| !v.is_nan()) && x.iter().zip(&prev).all(|(a, b)| (a - b).abs() < 1e-5);
    let c = if stable {
        Condition::FixedPoint
    } else {
        Condition::Undetermined
    };
    (c, 1, x)
}

/// One full trial of the sweep for job (i, j, k).
///
/// ```
/// use neurodyn::sweep::{run_trial, SweepConfig, DEFAULT_CONFIG, Condition};
/// let cfg = SweepConfig::from_toml(DEFAULT_CONFIG, "default").unwrap();
/// let (deltas, inputs) = (cfg.deltas(), cfg.inputs());
/// // The smallest recurrent perturbation δ at the smallest input: the circuit settles.
/// let r = run_trial(&cfg, &deltas, &inputs, 0).unwrap();
/// assert_eq!(r.condition, Condition::FixedPoint);
/// ```
pub fn run_trial(
    cfg: &SweepConfig,
    deltas: &[f64],
    inputs: &[f64],
    job: usize,
) -> Result<TrialResult> {
    let custom = cfg.initial_states()?;
    Ok(run_trial_full(cfg, deltas, inputs, job, custom.as_ref())?.result)
}

/// [`run_trial`] with the trial's arrays, for preloaded custom initial states.
pub fn run_trial_full(
    cfg: &SweepConfig,
    deltas: &[f64],
    inputs: &[f64],
    job: usize,
    custom: Option<&InitialStates>,
) -> Result<TrialOutput> {
    let setup = setup_trial(cfg, deltas, inputs, job, custom)?;
    let (condition, chunks, x) = match cfg.criterion {
        Criterion::Adaptive => simulate_trial(&setup.model, &setup.x0, cfg.max_chunks),
        Criterion::Legacy => simulate_legacy(&setup.model, &setup.x0),
    };
    Ok(finish_trial(setup, deltas, inputs, condition, chunks, x))
}

/// The row and arrays of a simulated trial (whichever device ran it): ‖y‖, and at a fixed point
/// eig(J) there in f64 and the distance to the normalization fixed point.
pub fn finish_trial(
    setup: TrialSetup,
    deltas: &[f64],
    inputs: &[f64],
    condition: Condition,
    chunks: usize,
    x: Vec<f64>,
) -> TrialOutput {
    let n = setup.model.n();
    let y_norm = if condition == Condition::Diverging {
        f64::NAN
    } else {
        x[..n].iter().map(|v| v * v).sum::<f64>().sqrt()
    };
    let mut eigvals = vec![];
    let (max_re_eig, dist_y0) = if condition == Condition::FixedPoint {
        eigvals = jacobian_spectrum(&setup.model, &x);
        let m = if eigvals.is_empty() {
            f64::NAN
        } else {
            eigvals
                .iter()
                .map(|l| l.re)
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let n0 = setup.y0.iter().map(|v| v * v).sum::<f64>().sqrt();
        let d = x[..n]
            .iter()
            .zip(&setup.y0)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        (m, d / n0)
    } else {
        (f64::NAN, f64::NAN)
    };
    let result = TrialResult {
        job: setup.job,
        i_delta: setup.i_delta,
        j_input: setup.j_input,
        k_trial: setup.k_trial,
        delta: deltas[setup.i_delta],
        input: inputs[setup.j_input],
        seed: setup.seed,
        condition,
        chunks,
        spectral_radius: setup.spectral_radius,
        y_norm,
        max_re_eig,
        dist_y0,
    };
    TrialOutput {
        result,
        setup,
        final_state: x,
        eigvals,
    }
}
