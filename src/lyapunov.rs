//! Lyapunov spectra by the Benettin / QR method (Benettin et al. 1980; Shimada & Nagashima 1979;
//! Engelken, Wolf & Abbott 2023 for RNNs; lyapunov.md).
//!
//! A frame `Q` of k orthonormal tangent vectors is propagated with the linearised dynamics and
//! re-orthonormalised by a QR factorisation every `reorth` steps; the exponents are the time
//! averages of `ln |R_ii|`:
//!
//! $$ \lambda_i = \lim_{T\to\infty} \frac{1}{T} \sum_{\text{QR}} \ln |R_{ii}|. $$
//!
//! * **Maps** `h_{t+1} = F_t(h_t)` ([`Map`]): `Q ← D_t Q` with `D_t = ∂F_t/∂h (h_t)`. Exponents per
//!   step (divided by [`LyapunovOptions::dt`] when the map is a time discretisation).
//!   [`RnnMap`] is the discrete RNN `h ← φ(W h + b + U x_t)` (`D_t = diag(φ'(a_t)) W`);
//!   [`EulerMap`] discretises any [`Model`].
//! * **Flows** `dx/dt = f(t, x)` ([`lyapunov_flow`]): the variational equation `dY/dt = J(x) Y`
//!   integrated together with the state by classic RK4 (step `dt`), through [`Model::jac_mul_mat`].
//!
//! With `k < N` only the k leading exponents are computed, at O(N² k) per step instead of O(N³):
//! the first k columns of a Householder QR do not depend on the others, so the partial spectrum is
//! exactly the head of the full one.
//!
//! Diagnostics returned with every [`Spectrum`]: running estimates (convergence), the sum identity
//! (maps: `Σλ = ⟨ln|det D_t|⟩` when k = N, exact up to round-off; flows: `Σλ = ⟨tr J⟩`, up to the
//! integration error), the Kaplan–Yorke dimension and the entropy rate (sum of positive exponents,
//! Pesin).

use crate::error::{Error, Result};
use crate::integrate::{FixedStepper, Rk4};
use crate::model::{Activation, Model};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::householder;
use faer::linalg::matmul::matmul;
use faer::linalg::qr::no_pivoting::factor as qr;
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A discrete-time system `h_{t+1} = F_t(h_t)` with its Jacobian.
pub trait Map: Send + Sync {
    /// State dimension N.
    fn dim(&self) -> usize;
    /// `h ← F_t(h)`.
    fn step(&self, t: usize, h: &mut [f64]);
    /// `h ← F_t(h)` and `out ← D_t q` with `D_t = ∂F_t/∂h` at the old h. Returns
    /// `ln |det D_t|` when it is available cheaply (used for the sum identity), else `None`.
    fn step_tangent(
        &self,
        t: usize,
        h: &mut [f64],
        q: MatRef<'_, f64>,
        out: MatMut<'_, f64>,
    ) -> Option<f64>;
    /// The dense Jacobian `D_t` at h (for checks and small systems).
    fn jacobian(&self, t: usize, h: &[f64], jac: MatMut<'_, f64>);
}

/// The discrete RNN map `h_{t+1} = φ(W h_t + b + U x_t)` (x_t an optional input sequence), with
/// `D_t = diag(φ'(a_t)) W`, `a_t = W h_t + b + U x_t`, and `ln|det D_t| = ln|det W| + Σ ln|φ'(a_t,i)|`.
#[derive(Debug, Clone)]
pub struct RnnMap {
    w: Mat<f64>,
    b: Vec<f64>,
    act: Activation,
    /// Per-neuron gamma (n_i, s_i), overriding `act`.
    gamma_ns: Option<(Vec<f64>, Vec<f64>)>,
    /// `U x_t` for t = 0..T, one column per step.
    drive: Option<Mat<f64>>,
    ln_abs_det_w: f64,
}

impl RnnMap {
    /// `h ← φ(W h)`.
    pub fn new(w: Mat<f64>, act: Activation) -> Result<Self> {
        let n = w.nrows();
        if n == 0 || w.ncols() != n {
            return Err(Error::invalid(
                "W",
                format!(
                    "must be square and non-empty, got {}×{}",
                    w.nrows(),
                    w.ncols()
                ),
            ));
        }
        for j in 0..n {
            for i in 0..n {
                if !w[(i, j)].is_finite() {
                    return Err(Error::invalid(
                        "W",
                        format!("entry ({i}, {j}) is {} (must be finite)", w[(i, j)]),
                    ));
                }
            }
        }
        let lu = w.partial_piv_lu();
        let u = lu.U();
        let ln_abs_det_w = (0..n).map(|i| u[(i, i)].abs().ln()).sum();
        Ok(RnnMap {
            w,
            b: vec![0.0; n],
            act,
            gamma_ns: None,
            drive: None,
            ln_abs_det_w,
        })
    }

    /// Adds the bias b.
    pub fn with_bias(mut self, b: Vec<f64>) -> Result<Self> {
        if b.len() != self.dim() {
            return Err(Error::invalid(
                "b",
                format!("has length {}, expected {}", b.len(), self.dim()),
            ));
        }
        crate::error::ensure_finite("b", &b)?;
        self.b = b;
        Ok(self)
    }

    /// Per-neuron gamma units γ(·; n_i, s_i).
    pub fn with_gamma_per_neuron(mut self, n: Vec<f64>, s: Vec<f64>) -> Result<Self> {
        let d = self.dim();
        if n.len() != d || s.len() != d {
            return Err(Error::invalid(
                "gamma",
                format!(
                    "n and s need {d} entries each, got {} and {}",
                    n.len(),
                    s.len()
                ),
            ));
        }
        if let Some(i) = n.iter().position(|&v| !(v > 0.0 && v.is_finite())) {
            return Err(Error::invalid(
                "gamma.n",
                format!("entry {i} is {} (must be positive)", n[i]),
            ));
        }
        crate::error::ensure_finite("gamma.s", &s)?;
        self.act = Activation::Gamma { n: n[0], s: s[0] };
        self.gamma_ns = Some((n, s));
        Ok(self)
    }

    /// Input drive: `u` (N_in × T, column t is x_t) through `U` (N × N_in); `U x_t` is precomputed.
    pub fn with_input(mut self, u_in: MatRef<'_, f64>, x: MatRef<'_, f64>) -> Result<Self> {
        if u_in.nrows() != self.dim() || u_in.ncols() != x.nrows() {
            return Err(Error::invalid(
                "input",
                format!(
                    "U is {}×{} and the inputs have {} rows; need U: N×N_in, inputs: N_in×T",
                    u_in.nrows(),
                    u_in.ncols(),
                    x.nrows()
                ),
            ));
        }
        let mut d = Mat::<f64>::zeros(self.dim(), x.ncols());
        matmul(d.as_mut(), Accum::Replace, u_in, x, 1.0, Par::Seq);
        self.drive = Some(d);
        Ok(self)
    }

    /// Number of input steps (the longest run allowed), if input-driven.
    pub fn input_len(&self) -> Option<usize> {
        self.drive.as_ref().map(|d| d.ncols())
    }

    pub fn w(&self) -> &Mat<f64> {
        &self.w
    }

    /// a = W h + b + U x_t.
    fn preactivation(&self, t: usize, h: &[f64], a: &mut [f64]) {
        a.copy_from_slice(&self.b);
        if let Some(d) = &self.drive {
            let c = t.min(d.ncols() - 1);
            for (i, ai) in a.iter_mut().enumerate() {
                *ai += d[(i, c)];
            }
        }
        crate::model::kernels::gemv_add(self.w.as_ref(), h, a);
    }

    fn phi(&self, i: usize, a: f64) -> f64 {
        match &self.gamma_ns {
            Some((n, s)) => crate::model::gamma::gamma(a, n[i], s[i]),
            None => self.act.eval(a),
        }
    }

    fn dphi(&self, i: usize, a: f64) -> f64 {
        match &self.gamma_ns {
            Some((n, s)) => crate::model::gamma::gamma_dx(a, n[i], s[i]),
            None => self.act.deriv(a),
        }
    }
}

impl Map for RnnMap {
    fn dim(&self) -> usize {
        self.w.nrows()
    }

    fn step(&self, t: usize, h: &mut [f64]) {
        let mut a = vec![0.0; h.len()];
        self.preactivation(t, h, &mut a);
        for (i, hi) in h.iter_mut().enumerate() {
            *hi = self.phi(i, a[i]);
        }
    }

    fn step_tangent(
        &self,
        t: usize,
        h: &mut [f64],
        q: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) -> Option<f64> {
        let n = h.len();
        let mut a = vec![0.0; n];
        self.preactivation(t, h, &mut a);
        let par = if n * n * q.ncols() >= 1 << 22 {
            Par::rayon(0)
        } else {
            Par::Seq
        };
        matmul(out.as_mut(), Accum::Replace, self.w.as_ref(), q, 1.0, par);
        let mut logdet = self.ln_abs_det_w;
        for i in 0..n {
            let d = self.dphi(i, a[i]);
            logdet += d.abs().ln();
            h[i] = self.phi(i, a[i]);
            for j in 0..out.ncols() {
                out[(i, j)] *= d;
            }
        }
        Some(logdet)
    }

    fn jacobian(&self, t: usize, h: &[f64], mut jac: MatMut<'_, f64>) {
        let n = h.len();
        let mut a = vec![0.0; n];
        self.preactivation(t, h, &mut a);
        for j in 0..n {
            for i in 0..n {
                jac[(i, j)] = self.dphi(i, a[i]) * self.w[(i, j)];
            }
        }
    }
}

/// The forward-Euler discretisation `h ← h + dt f(t dt, h)` of a continuous [`Model`], with
/// `D = I + dt J` (lyapunov.md §B.1). Its exponents per unit time are those per step divided by dt.
pub struct EulerMap<'a, M: Model + ?Sized> {
    pub model: &'a M,
    pub dt: f64,
}

impl<M: Model + ?Sized> Map for EulerMap<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn step(&self, t: usize, h: &mut [f64]) {
        let mut f = vec![0.0; h.len()];
        self.model.rhs(t as f64 * self.dt, h, &mut f);
        h.iter_mut().zip(&f).for_each(|(x, fx)| *x += self.dt * fx);
    }
    fn step_tangent(
        &self,
        t: usize,
        h: &mut [f64],
        q: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) -> Option<f64> {
        let time = t as f64 * self.dt;
        self.model.jac_mul_mat(time, h, q, out.as_mut());
        for j in 0..q.ncols() {
            for i in 0..q.nrows() {
                out[(i, j)] = q[(i, j)] + self.dt * out[(i, j)];
            }
        }
        self.step(t, h);
        None
    }
    fn jacobian(&self, t: usize, h: &[f64], mut jac: MatMut<'_, f64>) {
        self.model.jacobian(t as f64 * self.dt, h, jac.as_mut());
        for j in 0..h.len() {
            for i in 0..h.len() {
                jac[(i, j)] = self.dt * jac[(i, j)] + if i == j { 1.0 } else { 0.0 };
            }
        }
    }
}

/// The initial tangent frame.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialFrame {
    /// The first k columns of the identity.
    Identity,
    /// The Q factor of an N×k standard-normal matrix drawn with this seed (ChaCha8).
    Random(u64),
    /// A given N×k matrix (orthonormalised before use).
    Given(Mat<f64>),
}

/// Options of a spectrum computation.
#[derive(Debug, Clone)]
pub struct LyapunovOptions {
    /// Number of exponents k (default: all N).
    pub k: Option<usize>,
    /// State-only steps before the tangent dynamics start.
    pub warmup: usize,
    /// Tangent steps whose QR is done but not accumulated (lets the frame align; lyapunov.md's ONS
    /// transient).
    pub transient: usize,
    /// Accumulated steps.
    pub steps: usize,
    /// QR every this many steps (1 = every step).
    pub reorth: usize,
    /// Time per step: the map's time step, or the RK4 step of a flow. Exponents are per unit time
    /// (per step when dt = 1).
    pub dt: f64,
    pub frame: InitialFrame,
    /// Record the running estimate every this many QRs (0: never).
    pub history_every: usize,
}

impl Default for LyapunovOptions {
    fn default() -> Self {
        LyapunovOptions {
            k: None,
            warmup: 0,
            transient: 0,
            steps: 1000,
            reorth: 1,
            dt: 1.0,
            frame: InitialFrame::Identity,
            history_every: 0,
        }
    }
}

/// A Lyapunov spectrum with its diagnostics.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Exponents in QR column order (descending once converged), natural log per unit time. An
    /// exponent is −∞ when the Jacobian annihilates a direction exactly (dead or saturated units).
    pub exponents: Vec<f64>,
    /// Time over which they were averaged (steps × dt).
    pub time: f64,
    /// The independent value of Σλ when k = N: ⟨ln|det D|⟩/dt for maps (when the map provides it),
    /// ⟨tr J⟩ for flows.
    pub sum_reference: Option<f64>,
    /// Running estimates: (time, exponents so far).
    pub history: Vec<(f64, Vec<f64>)>,
    /// State at the end.
    pub final_state: Vec<f64>,
    /// Dimension N of the system.
    pub n: usize,
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
    /// Kaplan–Yorke dimension (lyapunov.md §B.3); NaN when every partial sum is ≥ 0 (the spectrum
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

/// Householder QR of an N×k frame in place, allocation-free after construction.
struct QrWorkspace {
    coeff: Mat<f64>,
    mem: MemBuffer,
    n: usize,
    k: usize,
    par: Par,
}

impl QrWorkspace {
    fn new(n: usize, k: usize) -> Self {
        let bs = qr::recommended_block_size::<f64>(n, k);
        // Measured (BENCHMARKS.md): faer's threaded Householder factorisation is slower than the
        // sequential one at these sizes (12.2 vs 4.8 ms at N = k = 500), while forming Q gains from
        // two threads only from about N = k = 400 on.
        let par = if n * k * k >= 50_000_000 {
            Par::rayon(0)
        } else {
            Par::Seq
        };
        let req = qr::qr_in_place_scratch::<f64>(n, k, bs, Par::Seq, Default::default()).or(
            householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                n, bs, k,
            ),
        );
        QrWorkspace {
            coeff: Mat::zeros(bs, k.min(n)),
            mem: MemBuffer::new(req),
            n,
            k,
            par,
        }
    }

    /// Factorises `a` (N×k) = Q R; writes Q into `q`, returns nothing; `diag` receives ln|R_ii|.
    fn factor(&mut self, mut a: MatMut<'_, f64>, mut q: MatMut<'_, f64>, diag: &mut [f64]) {
        let stack = MemStack::new(&mut self.mem);
        qr::qr_in_place(
            a.as_mut(),
            self.coeff.as_mut(),
            Par::Seq,
            stack,
            Default::default(),
        );
        for i in 0..self.k {
            diag[i] = a[(i, i)].abs().ln();
        }
        // Q = H_1 ⋯ H_k [I; 0].
        for j in 0..self.k {
            for i in 0..self.n {
                q[(i, j)] = if i == j { 1.0 } else { 0.0 };
            }
        }
        let stack = MemStack::new(&mut self.mem);
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            a.as_ref(),
            self.coeff.as_ref(),
            Conj::No,
            q.as_mut(),
            self.par,
            stack,
        );
    }
}

fn validate(n: usize, opts: &LyapunovOptions) -> Result<usize> {
    let k = opts.k.unwrap_or(n);
    if k == 0 || k > n {
        return Err(Error::invalid(
            "k",
            format!("{k} exponents requested for a system of dimension {n} (need 1 ≤ k ≤ N)"),
        ));
    }
    if opts.steps == 0 {
        return Err(Error::invalid("steps", "must be at least 1"));
    }
    if opts.reorth == 0 {
        return Err(Error::invalid("reorth", "must be at least 1"));
    }
    if !(opts.dt > 0.0 && opts.dt.is_finite()) {
        return Err(Error::invalid(
            "dt",
            format!("{} (must be positive and finite)", opts.dt),
        ));
    }
    if let InitialFrame::Given(m) = &opts.frame {
        if m.nrows() != n || m.ncols() != k {
            return Err(Error::invalid(
                "frame",
                format!("is {}×{}, expected {n}×{k}", m.nrows(), m.ncols()),
            ));
        }
    }
    Ok(k)
}

fn initial_frame(n: usize, k: usize, frame: &InitialFrame) -> Mat<f64> {
    let a = match frame {
        InitialFrame::Identity => return Mat::from_fn(n, k, |i, j| if i == j { 1.0 } else { 0.0 }),
        InitialFrame::Random(seed) => {
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            let z: Vec<f64> = (0..n * k)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            Mat::from_fn(n, k, |i, j| z[i * k + j])
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

/// −∞ is a legitimate exponent (a direction annihilated in finite time: an exactly singular
/// Jacobian, e.g. a dead ReLU or fully saturated unit); NaN or +∞ is a failure.
fn check_exponents(exps: &[f64]) -> Result<()> {
    if exps.iter().any(|v| v.is_nan() || *v == f64::INFINITY) {
        return Err(Error::invalid(
            "x0",
            "the tangent dynamics produced NaN or +∞ exponents (diverging trajectory?)",
        ));
    }
    Ok(())
}

fn check_finite_state(h: &[f64], step: usize) -> Result<()> {
    if h.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "x0",
            format!("the trajectory became non-finite at step {step} (diverging system?)"),
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
        if self.every > 0 && self.nqr % self.every == 0 {
            self.history
                .push((self.time, self.sum.iter().map(|s| s / self.time).collect()));
        }
    }
}

/// The Benettin/QR loop shared by maps and flows. `advance(s, x, q, scratch)` takes the state and
/// the frame one step forward (the new frame left in `q`; `scratch` is free N×k space) and returns
/// the step's contribution to the sum identity (ln|det D| for maps, tr J·dt for flows), if known.
fn benettin(
    n: usize,
    mut x: Vec<f64>,
    k: usize,
    opts: &LyapunovOptions,
    on_step: Option<&(dyn Fn(usize) + Sync)>,
    mut advance: impl FnMut(usize, &mut [f64], &mut Mat<f64>, &mut Mat<f64>) -> Option<f64>,
) -> Result<Spectrum> {
    check_finite_state(&x, opts.warmup)?;
    let mut q = initial_frame(n, k, &opts.frame);
    let mut scratch = Mat::<f64>::zeros(n, k);
    let mut ws = QrWorkspace::new(n, k);
    let mut acc = Accumulator {
        sum: vec![0.0; k],
        diag: vec![0.0; k],
        time: 0.0,
        nqr: 0,
        history: vec![],
        every: opts.history_every,
    };
    let (mut identity_sum, mut identity_ok) = (0.0, k == n);
    let total = opts.transient + opts.steps;
    let mut since = 0usize;
    for s in 0..total {
        // With reorth > 1 the product accumulates in q between QRs.
        let contribution = advance(opts.warmup + s, &mut x, &mut q, &mut scratch);
        since += 1;
        let accumulate = s >= opts.transient;
        if accumulate {
            match contribution {
                Some(v) => identity_sum += v,
                None => identity_ok = false,
            }
        }
        if since == opts.reorth || s + 1 == total {
            ws.factor(q.as_mut(), scratch.as_mut(), &mut acc.diag);
            std::mem::swap(&mut q, &mut scratch);
            acc.add(since as f64 * opts.dt, accumulate);
            since = 0;
            check_finite_state(&x, opts.warmup + s)?;
        }
        if let Some(cb) = on_step {
            cb(s + 1);
        }
    }
    let exponents: Vec<f64> = acc.sum.iter().map(|s| s / acc.time).collect();
    check_exponents(&exponents)?;
    Ok(Spectrum {
        exponents,
        time: acc.time,
        sum_reference: identity_ok.then(|| identity_sum / (opts.steps as f64 * opts.dt)),
        history: acc.history,
        final_state: x,
        n,
    })
}

/// Lyapunov spectrum of a map (see the module documentation).
///
/// `on_step` is called after every tangent step with the number of steps done (progress bars).
pub fn lyapunov_map<F: Map + ?Sized>(
    map: &F,
    h0: &[f64],
    opts: &LyapunovOptions,
    on_step: Option<&(dyn Fn(usize) + Sync)>,
) -> Result<Spectrum> {
    let n = map.dim();
    crate::error::ensure_state("x0", h0, n, "map")?;
    let k = validate(n, opts)?;
    let mut h = h0.to_vec();
    for t in 0..opts.warmup {
        map.step(t, &mut h);
    }
    benettin(n, h, k, opts, on_step, |t, h, q, a| {
        let logdet = map.step_tangent(t, h, q.as_ref(), a.as_mut());
        std::mem::swap(q, a);
        logdet
    })
}

/// Lyapunov spectrum of a continuous flow: state and variational equation integrated together by
/// RK4 with step `opts.dt`; `warmup`, `transient` and `steps` count RK4 steps. The sum identity's
/// reference is the time average of tr J (left-point rule).
pub fn lyapunov_flow<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    opts: &LyapunovOptions,
    on_step: Option<&(dyn Fn(usize) + Sync)>,
) -> Result<Spectrum> {
    let n = model.dim();
    crate::error::ensure_state("x0", x0, n, "model")?;
    let k = validate(n, opts)?;
    let dt = opts.dt;
    let mut x = x0.to_vec();
    let mut rk = Rk4::new(n);
    for s in 0..opts.warmup {
        rk.step(model, s as f64 * dt, &mut x, dt);
    }
    let mut tan = TangentRk4::new(n, k);
    benettin(n, x, k, opts, on_step, |s, x, y, _| {
        let t = s as f64 * dt;
        let trace = model.jacobian_trace(t, x);
        tan.step(model, t, x, y.as_mut(), dt);
        Some(trace * dt)
    })
}

/// Classic RK4 on the joint system (x' = f(t, x), Y' = J(t, x) Y), preallocated.
struct TangentRk4 {
    k: [Vec<f64>; 4],
    xs: Vec<f64>,
    kk: [Mat<f64>; 4],
    ys: Mat<f64>,
}

impl TangentRk4 {
    fn new(n: usize, k: usize) -> Self {
        let m = || Mat::<f64>::zeros(n, k);
        TangentRk4 {
            k: std::array::from_fn(|_| vec![0.0; n]),
            xs: vec![0.0; n],
            kk: [m(), m(), m(), m()],
            ys: m(),
        }
    }

    fn step<M: Model + ?Sized>(
        &mut self,
        model: &M,
        t: f64,
        x: &mut [f64],
        mut y: MatMut<'_, f64>,
        h: f64,
    ) {
        let (n, kc) = (x.len(), y.ncols());
        let c = [0.0, 0.5, 0.5, 1.0];
        for st in 0..4 {
            if st == 0 {
                self.xs.copy_from_slice(x);
                self.ys.copy_from(y.as_ref());
            } else {
                let a = c[st] * h;
                for i in 0..n {
                    self.xs[i] = x[i] + a * self.k[st - 1][i];
                }
                let prev = &self.kk[st - 1];
                for j in 0..kc {
                    for i in 0..n {
                        self.ys[(i, j)] = y[(i, j)] + a * prev[(i, j)];
                    }
                }
            }
            let ts = t + c[st] * h;
            model.rhs(ts, &self.xs, &mut self.k[st]);
            model.jac_mul_mat(ts, &self.xs, self.ys.as_ref(), self.kk[st].as_mut());
        }
        let h6 = h / 6.0;
        for i in 0..n {
            x[i] += h6 * (self.k[0][i] + 2.0 * (self.k[1][i] + self.k[2][i]) + self.k[3][i]);
        }
        for j in 0..kc {
            for i in 0..n {
                y[(i, j)] += h6
                    * (self.kk[0][(i, j)]
                        + 2.0 * (self.kk[1][(i, j)] + self.kk[2][(i, j)])
                        + self.kk[3][(i, j)]);
            }
        }
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
