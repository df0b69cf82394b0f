//! Lyapunov spectra by the Benettin / QR method (Benettin et al. 1980; Shimada & Nagashima 1979;
//! Engelken, Wolf & Abbott 2023 for RNNs).
//!
//! A frame `Q` of k orthonormal tangent vectors is propagated with the linearised dynamics and
//! re-orthonormalised by a QR factorisation every `reorth` steps; the exponents are the time
//! averages of `ln |R_ii|`:
//!
//! $$ \lambda_i = \lim_{T\to\infty} \frac{1}{T} \sum_{\text{QR}} \ln |R_{ii}|. $$
//!
//! * **Maps** `h_{t+1} = F_t(h_t)` ([`Map`]): `Q ← D_t Q` with `D_t = ∂F_t/∂h (h_t)`. Exponents per
//!   step (divided by [`LyapunovOptions::dt`] when the map is a time discretisation). The maps
//!   themselves live with the flows in [`crate::model`]: [`RnnMap`](crate::model::RnnMap),
//!   [`EulerMap`](crate::model::EulerMap), the ANRU map, any [`MapFn`](crate::model::MapFn).
//! * **Flows** `dx/dt = f(t, x)` ([`lyapunov_flow`]): the variational system
//!   ([`Variational`]: `x' = f`, `Y' = J(x) Y`) stepped by the ordinary classic RK4 stepper
//!   (step `dt`), through [`Model::jac_mul_mat`].
//!
//! Exponents come back sorted, largest first.
//!
//! ```
//! use neurodyn::prelude::*;
//! // A linear map h ← A h: the exponents are ln|eig(A)|.
//! let a = Mat::from_fn(2, 2, |i, j| [[0.5, 0.2], [0.0, 2.0]][i][j]);
//! let map = RnnMap::new(a, Activation::Linear).unwrap();
//! let s = lyapunov_map(&map, &[1.0, 1.0], &LyapunovOptions::new().steps(200)).unwrap();
//! assert!((s.exponents[0] - 2f64.ln()).abs() < 1e-10);
//! assert!((s.exponents[1] - 0.5f64.ln()).abs() < 1e-10);
//! ```
//!
//! With `k < N` only the k leading exponents are computed, at O(N² k) per step instead of O(N³):
//! the first k columns of a Householder QR do not depend on the others, so the partial spectrum is
//! exactly the head of the full one.
//!
//! Diagnostics returned with every [`Spectrum`]: running estimates (convergence), the sum identity
//! (maps: `Σλ = ⟨ln|det D_t|⟩` when k = N, exact up to round-off; flows: `Σλ = ⟨tr J⟩`, up to the
//! integration error), the Kaplan–Yorke dimension and the entropy rate (sum of positive exponents,
//! Pesin).

pub mod clv;
pub mod gpu;
mod qr;
pub mod report;

use crate::error::{Error, Result};
use crate::integrate::{FixedStepper, Rk4};
use crate::model::{Map, Model, Variational};
pub use clv::{covariant_vectors_flow, covariant_vectors_map, ClvOptions, Covariant};
use faer::{Mat, MatRef};
pub use qr::QrWorkspace;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::Arc;

/// The initial tangent frame.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialFrame {
    /// The first k columns of the identity.
    Identity,
    /// The Q factor of an N×k standard-normal matrix drawn with this seed (ChaCha8, column by
    /// column: the frame for k is the head of the frame for any larger k).
    Random(u64),
    /// A given N×k matrix (orthonormalised before use).
    Given(Mat<f64>),
}

/// The longest interval between QRs of the adaptive re-orthonormalisation.
pub const MAX_REORTH: usize = 64;

pub use crate::io::StepCallback;

/// Options of a spectrum computation. Build them with the chained setters
/// (`LyapunovOptions::new().dt(0.01).warmup_time(10.0).time(1000.0).k(3)`) or as a struct literal
/// with `..Default::default()`.
///
/// Lengths count steps (`warmup`, `transient`, `steps`) or, when [`time`](Self::time) /
/// [`warmup_time`](Self::warmup_time) are set, time (converted to `round(T / dt)` steps, whatever
/// the order the setters were called in).
#[derive(Debug, Clone)]
pub struct LyapunovOptions {
    /// Number of exponents k (default: all N).
    pub k: Option<usize>,
    /// State-only steps before the tangent dynamics start.
    pub warmup: usize,
    /// Tangent steps whose QR is done but not accumulated (lets the frame align; Geist, Parlitz &
    /// Lauterborn 1990's transient of the orthonormal set).
    pub transient: usize,
    /// Accumulated steps.
    pub steps: usize,
    /// QR every this many steps (1 = every step).
    pub reorth: usize,
    /// Adaptive re-orthonormalisation: the interval between QRs is chosen so that the frame's
    /// conditioning, predicted from the exponents so far as exp((λ_1 − λ_k) Δt), stays below
    /// 10^digits (at most [`MAX_REORTH`] steps); `reorth` is then ignored.
    pub adaptive: Option<f64>,
    /// Time per step: the map's time step, or the RK4 step of a flow. Exponents are per unit time
    /// (per step when dt = 1).
    pub dt: f64,
    pub frame: InitialFrame,
    /// Record the running estimate every this many QRs (0: never).
    pub history_every: usize,
    /// Accumulated time; overrides `steps` when set.
    pub time: Option<f64>,
    /// Warm-up time; overrides `warmup` when set.
    pub warmup_time: Option<f64>,
    /// Progress callback, called after every tangent step.
    pub progress: Option<StepCallback>,
    /// Split the accumulated QRs into this many equal blocks and keep each block's exponents
    /// (confidence intervals, [`Spectrum::confidence`]); 0: none.
    pub blocks: usize,
    /// Keep the local (finite-time) exponents ln|R_ii|/Δt of every accumulated QR
    /// ([`Spectrum::local`]).
    pub record_local: bool,
}

impl Default for LyapunovOptions {
    fn default() -> Self {
        LyapunovOptions {
            k: None,
            warmup: 0,
            transient: 0,
            steps: 1000,
            reorth: 1,
            adaptive: None,
            dt: 1.0,
            frame: InitialFrame::Identity,
            history_every: 0,
            time: None,
            warmup_time: None,
            progress: None,
            blocks: 0,
            record_local: false,
        }
    }
}

impl LyapunovOptions {
    /// The defaults: all exponents, no warm-up, 1000 steps of dt = 1, QR every step.
    pub fn new() -> Self {
        Self::default()
    }
    /// Compute the k leading exponents only (O(N k²) per QR).
    pub fn k(mut self, k: usize) -> Self {
        self.k = Some(k);
        self
    }
    /// State-only warm-up steps.
    pub fn warmup(mut self, steps: usize) -> Self {
        self.warmup = steps;
        self.warmup_time = None;
        self
    }
    /// Warm-up time (`round(T / dt)` steps).
    pub fn warmup_time(mut self, t: f64) -> Self {
        self.warmup_time = Some(t);
        self
    }
    /// Frame-alignment steps (QR done, not accumulated).
    pub fn transient(mut self, steps: usize) -> Self {
        self.transient = steps;
        self
    }
    /// Accumulated steps.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self.time = None;
        self
    }
    /// Accumulated time (`round(T / dt)` steps).
    pub fn time(mut self, t: f64) -> Self {
        self.time = Some(t);
        self
    }
    /// QR every this many steps.
    pub fn reorth(mut self, every: usize) -> Self {
        self.reorth = every;
        self.adaptive = None;
        self
    }
    /// Adaptive re-orthonormalisation keeping the frame's conditioning below 10^digits.
    pub fn adaptive(mut self, digits: f64) -> Self {
        self.adaptive = Some(digits);
        self
    }
    /// Time per step (a flow's RK4 step; a map's time step).
    pub fn dt(mut self, dt: f64) -> Self {
        self.dt = dt;
        self
    }
    /// The initial tangent frame.
    pub fn frame(mut self, frame: InitialFrame) -> Self {
        self.frame = frame;
        self
    }
    /// Record a running estimate every this many QRs.
    pub fn history_every(mut self, every: usize) -> Self {
        self.history_every = every;
        self
    }
    /// Block averages in `b` equal blocks (confidence intervals).
    pub fn blocks(mut self, b: usize) -> Self {
        self.blocks = b;
        self
    }
    /// Keep the local (finite-time) exponents of every accumulated QR.
    pub fn record_local(mut self, on: bool) -> Self {
        self.record_local = on;
        self
    }
    /// Call `f(steps done)` after every tangent step.
    pub fn progress(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(StepCallback(Arc::new(f)));
        self
    }
}

/// A Lyapunov spectrum with its diagnostics.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Exponents, largest first, natural log per unit time. An exponent is −∞ when the Jacobian
    /// annihilates a direction exactly (dead or saturated units).
    pub exponents: Vec<f64>,
    /// Time over which they were averaged (steps × dt).
    pub time: f64,
    /// The independent value of Σλ when k = N: ⟨ln|det D|⟩/dt for maps (when the map provides it),
    /// ⟨tr J⟩ for flows.
    pub sum_reference: Option<f64>,
    /// Running estimates: (time, exponents so far, in the frame's QR column order).
    pub history: Vec<(f64, Vec<f64>)>,
    /// State at the end.
    pub final_state: Vec<f64>,
    /// Dimension N of the system.
    pub n: usize,
    /// Per block (`blocks` > 0), its exponents, in the order of `exponents`.
    pub block_exponents: Vec<Vec<f64>>,
    /// Local exponents (`record_local`): (time at the end of the QR interval, ln|R_ii|/Δt in the
    /// order of `exponents`).
    pub local: Vec<(f64, Vec<f64>)>,
    /// QR factorisations done (transient and accumulated).
    pub factorizations: usize,
    /// Participation ratio P_j = 1/Σ_i q_ij⁴ of the final backward (Gram–Schmidt) vector of each
    /// exponent, in the order of `exponents`: 1 for a vector on one unit, N for one spread evenly
    /// (the localisation of Lyapunov vectors; Engelken, Wolf & Abbott 2023).
    pub participation: Vec<f64>,
}

impl Spectrum {
    /// Σ λ_i.
    pub fn sum(&self) -> f64 {
        self.exponents.iter().sum()
    }
    /// Exponents sorted in descending order.
    pub fn sorted(&self) -> Vec<f64> {
        let mut v = self.exponents.clone();
        v.sort_by(|a, b| b.total_cmp(a));
        v
    }
    /// Exponents in bits (log base 2) per unit time.
    pub fn bits(&self) -> Vec<f64> {
        self.exponents
            .iter()
            .map(|l| l / std::f64::consts::LN_2)
            .collect()
    }
    /// The largest exponent.
    pub fn max(&self) -> f64 {
        self.exponents
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
    /// Entropy rate (Pesin): the sum of the positive exponents, nats per unit time.
    pub fn entropy(&self) -> f64 {
        self.exponents
            .iter()
            .filter(|&&l| l > 0.0)
            .fold(0.0, |a, l| a + l)
    }
    /// Two-sided confidence intervals of the exponents at `level` (e.g. 0.95) from the block
    /// averages: mean ± t_{B−1} s/√B (B blocks, Student's t); None without blocks (B < 2).
    pub fn confidence(&self, level: f64) -> Option<Vec<(f64, f64)>> {
        let b = self.block_exponents.len();
        if b < 2 {
            return None;
        }
        let t = student_t_quantile(0.5 + level / 2.0, (b - 1) as f64);
        Some(
            (0..self.exponents.len())
                .map(|i| {
                    let xs: Vec<f64> = self.block_exponents.iter().map(|v| v[i]).collect();
                    let m = xs.iter().sum::<f64>() / b as f64;
                    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (b - 1) as f64;
                    let h = t * (var / b as f64).sqrt();
                    (m - h, m + h)
                })
                .collect(),
        )
    }
    /// Kaplan–Yorke dimension (Engelken, Wolf & Abbott 2023); NaN when every partial sum is ≥ 0 (the spectrum
    /// does not reach the contracting directions: compute more exponents).
    pub fn kaplan_yorke(&self) -> f64 {
        kaplan_yorke(&self.sorted())
    }
}

/// Kaplan–Yorke dimension of a spectrum sorted in descending order.
pub fn kaplan_yorke(sorted: &[f64]) -> f64 {
    if sorted.is_empty() || sorted[0] < 0.0 {
        return 0.0;
    }
    let mut s = 0.0;
    for (j, &l) in sorted.iter().enumerate() {
        if s + l < 0.0 {
            return j as f64 + s / l.abs();
        }
        s += l;
    }
    f64::NAN
}

/// Checks the options against a system of dimension n and resolves `k` and the time-based lengths
/// into step counts (the returned options have `k` set and `time`/`warmup_time` cleared).
fn validate(n: usize, opts: &LyapunovOptions) -> Result<LyapunovOptions> {
    let k = opts.k.unwrap_or(n);
    if k == 0 || k > n {
        return Err(Error::invalid(
            "k",
            format!("{k} exponents requested for a system of dimension {n} (need 1 ≤ k ≤ N)"),
        ));
    }
    if !(opts.dt > 0.0 && opts.dt.is_finite()) {
        return Err(Error::invalid(
            "dt",
            format!("{} (must be positive and finite)", opts.dt),
        ));
    }
    let to_steps = |field: &str, t: f64| -> Result<usize> {
        let s = (t / opts.dt).round();
        if !(t >= 0.0 && s.is_finite() && s < 1e15) {
            return Err(Error::invalid(
                field,
                format!(
                    "{t} (must be ≥ 0 and at most 1e15 steps of dt = {})",
                    opts.dt
                ),
            ));
        }
        Ok(s as usize)
    };
    let mut r = opts.clone();
    r.k = Some(k);
    if let Some(t) = opts.time {
        r.steps = to_steps("time", t)?;
        r.time = None;
    }
    if let Some(t) = opts.warmup_time {
        r.warmup = to_steps("warmup_time", t)?;
        r.warmup_time = None;
    }
    if r.steps == 0 {
        return Err(Error::invalid("steps", "must be at least 1"));
    }
    if let Some(d) = r.adaptive {
        if r.blocks > 0 {
            return Err(Error::invalid(
                "blocks",
                "block confidence intervals need a fixed QR interval (--reorth N)",
            ));
        }
        if !(1.0..=12.0).contains(&d) {
            return Err(Error::invalid(
                "reorth",
                format!("adaptive digits {d}: use 1 to 12 (the frame keeps 16)"),
            ));
        }
    }
    if r.reorth == 0 {
        return Err(Error::invalid("reorth", "must be at least 1"));
    }
    if let InitialFrame::Given(m) = &opts.frame {
        if m.nrows() != n || m.ncols() != k {
            return Err(Error::invalid(
                "frame",
                format!("is {}×{}, expected {n}×{k}", m.nrows(), m.ncols()),
            ));
        }
    }
    Ok(r)
}

fn initial_frame(n: usize, k: usize, frame: &InitialFrame) -> Mat<f64> {
    let a = match frame {
        InitialFrame::Identity => return Mat::from_fn(n, k, |i, j| if i == j { 1.0 } else { 0.0 }),
        InitialFrame::Random(seed) => {
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            let z: Vec<f64> = (0..n * k)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            // Column by column, so the first k columns of a wider draw are this draw: a partial
            // spectrum starts from the head of the full frame and stays its head.
            Mat::from_fn(n, k, |i, j| z[j * n + i])
        }
        InitialFrame::Given(m) => m.clone(),
    };
    let mut ws = QrWorkspace::new(n, k);
    let mut q = Mat::zeros(n, k);
    let mut d = vec![0.0; k];
    let mut a = a;
    ws.factor(a.as_mut(), q.as_mut(), &mut d);
    q
}

/// What a non-finite value in the state or the exponents is blamed on: a map diverged, or a flow
/// diverged or its RK4 step was too large.
#[derive(Clone, Copy)]
enum Kind {
    Map,
    Flow { dt: f64 },
}

impl Kind {
    fn hint(self) -> String {
        match self {
            Kind::Map => "the map's trajectory diverges from this initial state".into(),
            Kind::Flow { dt } => format!(
                "the flow diverges, or the RK4 step dt = {dt} is too large for it (try a smaller dt)"
            ),
        }
    }
}

/// −∞ is a legitimate exponent (a direction annihilated in finite time: an exactly singular
/// Jacobian, e.g. a dead ReLU or fully saturated unit); NaN or +∞ is a failure of the run.
fn check_exponents(exps: &[f64], kind: Kind) -> Result<()> {
    if exps.iter().any(|v| v.is_nan() || *v == f64::INFINITY) {
        return Err(Error::failed(
            "lyapunov",
            format!(
                "the tangent dynamics produced NaN or +∞ exponents: {}",
                kind.hint()
            ),
        ));
    }
    Ok(())
}

fn check_finite_state(h: &[f64], step: usize, kind: Kind) -> Result<()> {
    if h.iter().any(|v| !v.is_finite()) {
        return Err(Error::failed(
            "lyapunov",
            format!(
                "the trajectory became non-finite at step {step}: {}",
                kind.hint()
            ),
        ));
    }
    Ok(())
}

/// Accumulates ln|R_ii| and the history; shared by maps and flows.
struct Accumulator {
    sum: Vec<f64>,
    diag: Vec<f64>,
    time: f64,
    nqr: usize,
    history: Vec<(f64, Vec<f64>)>,
    every: usize,
    /// QRs per block (0: no blocks), the current block's sums and time, finished blocks.
    block_len: usize,
    block_sum: Vec<f64>,
    block_time: f64,
    blocks: Vec<Vec<f64>>,
    local: Option<Vec<(f64, Vec<f64>)>>,
}

impl Accumulator {
    fn add(&mut self, dt_since: f64, accumulate: bool) {
        if !accumulate {
            return;
        }
        for (s, d) in self.sum.iter_mut().zip(&self.diag) {
            *s += d;
        }
        self.time += dt_since;
        self.nqr += 1;
        if let Some(l) = &mut self.local {
            l.push((self.time, self.diag.iter().map(|d| d / dt_since).collect()));
        }
        if self.block_len > 0 {
            for (s, d) in self.block_sum.iter_mut().zip(&self.diag) {
                *s += d;
            }
            self.block_time += dt_since;
            if self.nqr % self.block_len == 0 {
                let bt = self.block_time;
                self.blocks
                    .push(self.block_sum.iter().map(|s| s / bt).collect());
                self.block_sum.iter_mut().for_each(|s| *s = 0.0);
                self.block_time = 0.0;
            }
        }
        if self.every > 0 && self.nqr % self.every == 0 {
            self.history
                .push((self.time, self.sum.iter().map(|s| s / self.time).collect()));
        }
    }
}

/// A system with its tangent frame, as the Benettin loop sees it: one step forward of the state
/// and the frame, the frame's re-orthonormalisation, the frame and the state.
trait Tangent {
    /// One step from step index `s`; returns the step's contribution to the sum identity
    /// (ln|det D| for maps, tr J·dt for flows), if known.
    fn advance(&mut self, s: usize) -> Option<f64>;
    /// Replaces the frame by the Q of its QR factorisation; `diag` receives ln|R_ii|.
    fn reorthonormalise(&mut self, diag: &mut [f64]);
    /// The frame (orthonormal right after [`reorthonormalise`](Tangent::reorthonormalise)).
    fn frame(&mut self) -> MatRef<'_, f64>;
    fn state(&self) -> &[f64];
}

/// The Benettin/QR loop shared by maps and flows (`opts` resolved by [`validate`]).
fn benettin(
    t: &mut impl Tangent,
    n: usize,
    opts: &LyapunovOptions,
    kind: Kind,
) -> Result<Spectrum> {
    let k = opts.k.unwrap_or(n);
    check_finite_state(t.state(), opts.warmup, kind)?;
    // QRs that accumulate: one per `reorth` steps (and one at the end); adaptive runs block by
    // steps instead (blocks of steps/B steps, closed at the first QR past each boundary).
    let nqr = if opts.adaptive.is_some() {
        opts.steps
    } else {
        opts.steps.div_ceil(opts.reorth.max(1))
    };
    let mut acc = Accumulator {
        sum: vec![0.0; k],
        diag: vec![0.0; k],
        time: 0.0,
        nqr: 0,
        history: vec![],
        every: opts.history_every,
        block_len: if opts.blocks > 0 {
            (nqr / opts.blocks).max(1)
        } else {
            0
        },
        block_sum: vec![0.0; k],
        block_time: 0.0,
        blocks: vec![],
        local: opts.record_local.then(Vec::new),
    };
    let (mut identity_sum, mut identity_ok) = (0.0, k == n);
    let total = opts.transient + opts.steps;
    let mut since = 0usize;
    let mut interval = if opts.adaptive.is_some() {
        1
    } else {
        opts.reorth
    };
    let mut factorizations = 0usize;
    for s in 0..total {
        // With reorth > 1 the product accumulates in the frame between QRs.
        let contribution = t.advance(opts.warmup + s);
        since += 1;
        let accumulate = s >= opts.transient;
        if accumulate {
            match contribution {
                Some(v) => identity_sum += v,
                None => identity_ok = false,
            }
        }
        // (Adaptive intervals also close at the end of the transient, so that no QR interval
        // mixes discarded and accumulated steps.)
        let boundary = opts.adaptive.is_some() && s + 1 == opts.transient;
        if since >= interval || s + 1 == total || boundary {
            t.reorthonormalise(&mut acc.diag);
            factorizations += 1;
            if let Some(digits) = opts.adaptive {
                // Rates of growth: the running exponents once accumulating, else this interval's.
                let span = since as f64 * opts.dt;
                let rates: Vec<f64> = if acc.time > 0.0 {
                    acc.sum.iter().map(|v| v / acc.time).collect()
                } else {
                    acc.diag.iter().map(|d| d / span).collect()
                };
                let (hi, lo) = rates
                    .iter()
                    .fold((f64::NEG_INFINITY, f64::INFINITY), |(a, b), r| {
                        (a.max(*r), b.min(*r))
                    });
                let spread = hi - lo;
                let growth = rates.iter().fold(0.0f64, |m, r| m.max(r.abs()));
                interval = if !(spread.is_finite() && growth.is_finite()) {
                    1
                } else {
                    let by_cond = digits * std::f64::consts::LN_10 / (spread * opts.dt).max(1e-300);
                    // Columns must not overflow between QRs: growth·m·dt ≤ 300.
                    let by_size = 300.0 / (growth * opts.dt).max(1e-300);
                    (by_cond.min(by_size).floor() as usize).clamp(1, MAX_REORTH)
                };
            }
            acc.add(since as f64 * opts.dt, accumulate);
            since = 0;
            check_finite_state(t.state(), opts.warmup + s, kind)?;
        }
        if let Some(cb) = &opts.progress {
            (cb.0)(s + 1);
            crate::io::check_interrupt("Lyapunov spectrum stopped")?;
        }
    }
    let raw: Vec<f64> = acc.sum.iter().map(|s| s / acc.time).collect();
    check_exponents(&raw, kind)?;
    // Sorted descending; the diagnostics follow the same order.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| raw[b].total_cmp(&raw[a]));
    let perm = |v: &[f64]| -> Vec<f64> { order.iter().map(|&i| v[i]).collect() };
    let q = t.frame();
    let participation: Vec<f64> = order
        .iter()
        .map(|&j| {
            let (s2, s4) = (0..n).fold((0.0, 0.0), |(a, b), i| {
                let v = q[(i, j)] * q[(i, j)];
                (a + v, b + v * v)
            });
            s2 * s2 / s4
        })
        .collect();
    Ok(Spectrum {
        exponents: perm(&raw),
        time: acc.time,
        sum_reference: identity_ok.then(|| identity_sum / (opts.steps as f64 * opts.dt)),
        history: acc.history,
        final_state: t.state().to_vec(),
        n,
        factorizations,
        block_exponents: acc.blocks.iter().map(|b| perm(b)).collect(),
        local: acc
            .local
            .unwrap_or_default()
            .into_iter()
            .map(|(t, v)| (t, perm(&v)))
            .collect(),
        participation,
    })
}

/// A map with its frame: `q` is the frame, `a` the product buffer (swapped after each step).
///
/// The full spectrum (k = N, from [`REFLECTORS_MIN_N`] on) never forms Q: after a
/// factorisation `q` holds R and the Householder reflectors (`implicit`), and the next step
/// multiplies the Jacobian by them from the right, 2 N³ flops where forming Q and multiplying by
/// it cost 4/3 N³ + 2 N³ — unless the map's tangent step is structured and far cheaper than a
/// dense product ([`Map::structured_tangent`]), when Q is formed as for partial spectra.
struct MapTangent<'a, F: Map + ?Sized> {
    map: &'a F,
    h: Vec<f64>,
    q: Mat<f64>,
    a: Mat<f64>,
    ws: QrWorkspace,
    /// Whether factorisations keep Q as reflectors (the full spectrum of a large map).
    reflectors: bool,
    /// Whether `q` holds reflectors now (the last step ended in a factorisation).
    implicit: bool,
}

/// The smallest N whose full map spectrum keeps Q as reflectors (a gain measured at N = 100 and
/// 500, BENCHMARKS.md; smaller frames keep the explicit path, whose cost is call overhead).
const REFLECTORS_MIN_N: usize = 64;

impl<'a, F: Map + ?Sized> MapTangent<'a, F> {
    fn new(map: &'a F, h: Vec<f64>, q: Mat<f64>) -> Self {
        let (n, k) = (q.nrows(), q.ncols());
        MapTangent {
            map,
            h,
            a: Mat::zeros(n, k),
            q,
            ws: QrWorkspace::new(n, k),
            reflectors: k == n && n >= REFLECTORS_MIN_N && !map.structured_tangent(),
            implicit: false,
        }
    }
}

impl<F: Map + ?Sized> Tangent for MapTangent<'_, F> {
    fn advance(&mut self, s: usize) -> Option<f64> {
        let logdet = if self.implicit {
            // D_s Q = (D_s H_1) ⋯ H_N.
            let logdet = self.map.step_jacobian(s, &mut self.h, self.a.as_mut());
            self.ws.mul_q(self.q.as_ref(), self.a.as_mut());
            self.implicit = false;
            logdet
        } else {
            self.map
                .step_tangent(s, &mut self.h, self.q.as_ref(), self.a.as_mut())
        };
        std::mem::swap(&mut self.q, &mut self.a);
        logdet
    }
    fn reorthonormalise(&mut self, diag: &mut [f64]) {
        if self.reflectors {
            self.ws.factor_in_place(self.q.as_mut(), diag);
            self.implicit = true;
        } else {
            self.ws.factor(self.q.as_mut(), self.a.as_mut(), diag);
            std::mem::swap(&mut self.q, &mut self.a);
        }
    }
    fn frame(&mut self) -> MatRef<'_, f64> {
        if self.implicit {
            self.ws.form_q(self.q.as_ref(), self.a.as_mut());
            std::mem::swap(&mut self.q, &mut self.a);
            self.implicit = false;
        }
        self.q.as_ref()
    }
    fn state(&self) -> &[f64] {
        &self.h
    }
}

/// A flow with its frame: the joint state `z = (x, Y)` of the [`Variational`] system, stepped by
/// RK4; Q is formed in `scratch` and copied into the joint state.
struct FlowTangent<'a, M: Model + ?Sized> {
    var: Variational<'a, M>,
    z: Vec<f64>,
    rk: Rk4,
    dt: f64,
    ws: QrWorkspace,
    scratch: Mat<f64>,
}

impl<M: Model + ?Sized> Tangent for FlowTangent<'_, M> {
    fn advance(&mut self, s: usize) -> Option<f64> {
        let n = self.var.model.dim();
        let t = s as f64 * self.dt;
        let trace = self.var.model.jacobian_trace(t, &self.z[..n]);
        self.rk.step(&self.var, t, &mut self.z, self.dt);
        Some(trace * self.dt)
    }
    fn reorthonormalise(&mut self, diag: &mut [f64]) {
        let mut q = self.var.frame_mut(&mut self.z);
        self.ws.factor(q.as_mut(), self.scratch.as_mut(), diag);
        q.copy_from(self.scratch.as_ref());
    }
    fn frame(&mut self) -> MatRef<'_, f64> {
        self.var.frame(&self.z)
    }
    fn state(&self) -> &[f64] {
        &self.z[..self.var.model.dim()]
    }
}

/// Lyapunov spectrum of a map (see the module documentation).
pub fn lyapunov_map<F: Map + ?Sized>(
    map: &F,
    h0: &[f64],
    opts: &LyapunovOptions,
) -> Result<Spectrum> {
    let (mut tan, opts) = map_tangent(map, h0, opts)?;
    benettin(&mut tan, map.dim(), &opts, Kind::Map)
}

/// The map after its warm-up with its initial frame, and the resolved options.
fn map_tangent<'a, F: Map + ?Sized>(
    map: &'a F,
    h0: &[f64],
    opts: &LyapunovOptions,
) -> Result<(MapTangent<'a, F>, LyapunovOptions)> {
    let n = map.dim();
    crate::error::ensure_state("x0", h0, n, "map")?;
    let opts = validate(n, opts)?;
    let k = opts.k.unwrap_or(n);
    let mut h = h0.to_vec();
    for t in 0..opts.warmup {
        map.step(t, &mut h);
    }
    let tan = MapTangent::new(map, h, initial_frame(n, k, &opts.frame));
    Ok((tan, opts))
}

/// Lyapunov spectrum of a continuous flow: state and variational equation ([`Variational`])
/// integrated together by RK4 with step `opts.dt`; `warmup`, `transient` and `steps` count RK4
/// steps (or set [`LyapunovOptions::time`]). The sum identity's reference is the time average of
/// tr J (left-point rule).
pub fn lyapunov_flow<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    opts: &LyapunovOptions,
) -> Result<Spectrum> {
    let (mut tan, opts) = flow_tangent(model, x0, opts)?;
    let dt = opts.dt;
    benettin(&mut tan, model.dim(), &opts, Kind::Flow { dt })
}

/// The flow after its warm-up (RK4) with its initial frame, and the resolved options.
fn flow_tangent<'a, M: Model + ?Sized>(
    model: &'a M,
    x0: &[f64],
    opts: &LyapunovOptions,
) -> Result<(FlowTangent<'a, M>, LyapunovOptions)> {
    let n = model.dim();
    crate::error::ensure_state("x0", x0, n, "model")?;
    let opts = validate(n, opts)?;
    let k = opts.k.unwrap_or(n);
    let dt = opts.dt;
    let mut x = x0.to_vec();
    let mut rk = Rk4::new(n);
    for s in 0..opts.warmup {
        rk.step(model, s as f64 * dt, &mut x, dt);
    }
    let var = Variational::new(model, k);
    let mut z = x;
    z.resize(n * (1 + k), 0.0);
    var.frame_mut(&mut z)
        .copy_from(initial_frame(n, k, &opts.frame).as_ref());
    let tan = FlowTangent {
        var,
        z,
        rk: Rk4::new(n * (1 + k)),
        dt,
        ws: QrWorkspace::new(n, k),
        scratch: Mat::zeros(n, k),
    };
    Ok((tan, opts))
}

/// The largest exponent by the original two-trajectory method (Benettin et al. 1976), as an
/// independent check of the QR method: a reference trajectory x and a neighbour y = x + d0·u,
/// both stepped by the system itself (a map's step, or RK4 of step `dt` for a flow); every
/// `renorm` steps the separation d = ‖y − x‖ is measured, ln(d/d0) accumulated and y pulled back
/// to distance d0 along y − x. λ₁ = Σ ln(d/d0) / (steps · dt). `warmup` state-only steps first.
pub fn lyapunov_two_trajectories(
    system: &crate::model::System,
    x0: &[f64],
    dt: f64,
    warmup: usize,
    steps: usize,
    d0: f64,
    renorm: usize,
) -> Result<f64> {
    use crate::model::System;
    let n = system.dim();
    crate::error::ensure_state("x0", x0, n, "system")?;
    if !(d0 > 0.0 && d0 < 1.0) || renorm == 0 || steps == 0 || !(dt > 0.0) {
        return Err(Error::invalid(
            "brute-force",
            "need 0 < d0 < 1, renorm ≥ 1, steps ≥ 1 and dt > 0",
        ));
    }
    let mut rk = Rk4::new(n);
    let mut advance = |x: &mut Vec<f64>, s: usize| match system {
        System::Map(m) => m.step(s, x),
        System::Flow(m) => rk.step(m.as_ref(), s as f64 * dt, x, dt),
    };
    let mut x = x0.to_vec();
    for s in 0..warmup {
        advance(&mut x, s);
    }
    // The initial offset: a fixed, spread-out direction.
    let u: Vec<f64> = (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.618_033_988_75).fract() - 0.5)
        .collect();
    let un = u.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut y: Vec<f64> = x.iter().zip(&u).map(|(a, b)| a + d0 * b / un).collect();
    let mut sum = 0.0;
    for s in 0..steps {
        advance(&mut x, warmup + s);
        advance(&mut y, warmup + s);
        if (s + 1) % renorm == 0 || s + 1 == steps {
            let d = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            if !(d > 0.0 && d.is_finite()) {
                return Err(Error::failed(
                    "brute-force",
                    format!(
                        "the two trajectories' separation became {d} at step {}",
                        s + 1
                    ),
                ));
            }
            sum += (d / d0).ln();
            for (yi, xi) in y.iter_mut().zip(&x) {
                *yi = xi + (*yi - xi) * d0 / d;
            }
        }
    }
    Ok(sum / (steps as f64 * dt))
}

/// The quantile of Student's t distribution with `nu` degrees of freedom (p in (0.5, 1)): the
/// normal quantile (Acklam's rational approximation) refined by the Cornish–Fisher expansion
/// (Abramowitz & Stegun 26.7.5); relative error below 1e-3 for ν ≥ 3, exact enough for intervals.
pub fn student_t_quantile(p: f64, nu: f64) -> f64 {
    let z = normal_quantile(p);
    let g1 = (z.powi(3) + z) / 4.0;
    let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
    let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
    let g4 = (79.0 * z.powi(9) + 776.0 * z.powi(7) + 1482.0 * z.powi(5)
        - 1920.0 * z.powi(3)
        - 945.0 * z)
        / 92160.0;
    z + g1 / nu + g2 / nu.powi(2) + g3 / nu.powi(3) + g4 / nu.powi(4)
}

fn normal_quantile(p: f64) -> f64 {
    // Acklam's algorithm (relative error < 1.2e-9).
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506_628_277_459_24,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Lyapunov spectrum of a flow or a map ([`System`](crate::model::System)).
pub fn lyapunov_system(
    system: &crate::model::System,
    x0: &[f64],
    opts: &LyapunovOptions,
) -> Result<Spectrum> {
    match system {
        crate::model::System::Flow(m) => lyapunov_flow(m, x0, opts),
        crate::model::System::Map(m) => lyapunov_map(m, x0, opts),
    }
}

/// Spectra over a scalar parameter (e.g. the gain g), computed in parallel with rayon; `spectrum(p)`
/// builds and analyses the system for parameter value p. Results come back in the order of
/// `values`, identical whatever the number of threads (each value is computed independently).
pub fn sweep<F>(values: &[f64], spectrum: F) -> Result<Vec<Spectrum>>
where
    F: Fn(f64) -> Result<Spectrum> + Sync,
{
    use rayon::prelude::*;
    values.par_iter().map(|&p| spectrum(p)).collect()
}

/// One row of a parameter sweep summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSummary {
    pub value: f64,
    pub lambda_max: f64,
    pub sum: f64,
    pub kaplan_yorke: f64,
    pub entropy: f64,
    pub n_positive: usize,
}

impl SweepSummary {
    /// The row of a spectrum known only by its exponents, largest first (the GPU spectra).
    pub fn from_exponents(value: f64, sorted: &[f64]) -> Self {
        SweepSummary {
            value,
            lambda_max: sorted.first().copied().unwrap_or(f64::NAN),
            sum: sorted.iter().sum(),
            kaplan_yorke: kaplan_yorke(sorted),
            entropy: sorted.iter().filter(|&&l| l > 0.0).fold(0.0, |a, l| a + l),
            n_positive: sorted.iter().filter(|&&l| l > 0.0).count(),
        }
    }
}

impl From<(f64, &Spectrum)> for SweepSummary {
    fn from((value, s): (f64, &Spectrum)) -> Self {
        SweepSummary {
            value,
            lambda_max: s.max(),
            sum: s.sum(),
            kaplan_yorke: s.kaplan_yorke(),
            entropy: s.entropy(),
            n_positive: s.exponents.iter().filter(|&&l| l > 0.0).count(),
        }
    }
}
