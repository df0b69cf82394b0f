//! Discrete-time systems (maps) `h_{t+1} = F_t(h_t)`, next to the flows of [`Model`]: the
//! [`Map`] contract, the RNN map [`RnnMap`], the forward-Euler discretisation [`EulerMap`] of any
//! flow, and [`MapResidual`], the flow `F(x) − x` whose zeros are a map's fixed points.
//!
//! The RNN map (Engelken, Wolf & Abbott 2023; Golub & Sussillo 2018 for its fixed points) is
//!
//! $$ h_{t+1} = \varphi(W h_t + b + U x_t), \qquad D_t = \mathrm{diag}(\varphi'(a_t))\, W, $$
//!
//! with $a_t = W h_t + b + U x_t$ and $\ln|\det D_t| = \ln|\det W| + \sum_i \ln|\varphi'(a_{t,i})|$.

use super::scratch::with_scratch;
use super::{Activation, Model};
use crate::error::{Error, Result};
use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// A discrete-time system `h_{t+1} = F_t(h_t)` with its Jacobian `D_t = ∂F_t/∂h (h_t)`.
///
/// Required: [`dim`](Map::dim), [`step`](Map::step), [`jacobian`](Map::jacobian). Optional:
/// [`step_tangent`](Map::step_tangent), which propagates a frame of tangent vectors with the step
/// (the default assembles `D_t` in a per-thread scratch matrix and multiplies; large maps override
/// it matrix-free, as [`RnnMap`] does), and [`step_jacobian`](Map::step_jacobian), the step with
/// its dense Jacobian in one call (what the full Lyapunov spectrum multiplies by its reflectors;
/// override it to return `ln |det D_t|` or to share work between the two), and
/// [`structured_tangent`](Map::structured_tangent) for maps whose tangent step is far cheaper
/// than a dense product.
///
/// Time is the step index `t` (a `usize`, where a flow's [`Model`] takes a real time): a map is
/// iterated, and input-driven maps index their input sequence by it.
pub trait Map: Send + Sync {
    /// State dimension N.
    fn dim(&self) -> usize;
    /// `h ← F_t(h)`.
    fn step(&self, t: usize, h: &mut [f64]);
    /// Writes the dense Jacobian `D_t` at h into the N×N matrix `jac` (every entry is set).
    fn jacobian(&self, t: usize, h: &[f64], jac: MatMut<'_, f64>);
    /// `h ← F_t(h)` and `out ← D_t q` (N×k) with `D_t` at the old h. Returns `ln |det D_t|` when
    /// it is available cheaply (used for the sum identity of Lyapunov spectra), else `None`.
    ///
    /// Default: `D_t` assembled by [`jacobian`](Map::jacobian) into a reused per-thread buffer
    /// (no allocation after the first call on a thread), then one matrix product.
    fn step_tangent(
        &self,
        t: usize,
        h: &mut [f64],
        q: MatRef<'_, f64>,
        out: MatMut<'_, f64>,
    ) -> Option<f64> {
        let n = self.dim();
        with_scratch(n * n, |buf| {
            let mut jac = MatMut::from_column_major_slice_mut(buf, n, n);
            self.jacobian(t, h, jac.as_mut());
            matmul(out, Accum::Replace, jac.as_ref(), q, 1.0, Par::Seq);
        });
        self.step(t, h);
        None
    }
    /// `h ← F_t(h)` and `jac ← D_t` at the old h (every entry set), returning `ln |det D_t|` as
    /// [`step_tangent`](Map::step_tangent) does: what the full Lyapunov spectrum multiplies by a
    /// frame it keeps as Householder reflectors instead of forming it.
    ///
    /// Default: [`jacobian`](Map::jacobian), then [`step`](Map::step), and no determinant.
    fn step_jacobian(&self, t: usize, h: &mut [f64], jac: MatMut<'_, f64>) -> Option<f64> {
        self.jacobian(t, h, jac);
        self.step(t, h);
        None
    }
    /// Whether [`step_tangent`](Map::step_tangent) costs far less than a dense N×N×k product (a
    /// structured Jacobian, as ANRU's blocks). The full Lyapunov spectrum then forms Q and calls
    /// `step_tangent`, instead of multiplying the dense Jacobian by Q's reflectors (2 N³ flops,
    /// which pays only when the tangent step is itself a dense product). Default: `false`.
    fn structured_tangent(&self) -> bool {
        false
    }
    /// This map as one recurrent layer h ← φ(W h + b) (no input drive), when it is one: what the
    /// GPU spectra ([`crate::lyapunov::gpu`]) run. Default: `None`.
    fn layer(&self) -> Option<Layer<'_>> {
        None
    }
    /// A short human-readable name, used in tables and plot titles.
    fn name(&self) -> String {
        "map".to_string()
    }
}

super::forward_impls!(Map {
    fn layer(&self) -> Option<Layer<'_>>;
    fn dim(&self) -> usize;
    fn step(&self, t: usize, h: &mut [f64]);
    fn jacobian(&self, t: usize, h: &[f64], jac: MatMut<'_, f64>);
    fn step_tangent(&self, t: usize, h: &mut [f64], q: MatRef<'_, f64>, out: MatMut<'_, f64>) -> Option<f64>;
    fn step_jacobian(&self, t: usize, h: &mut [f64], jac: MatMut<'_, f64>) -> Option<f64>;
    fn structured_tangent(&self) -> bool;
    fn name(&self) -> String;
});

/// The dense Jacobian of a map as a newly allocated matrix.
pub fn map_jacobian_mat<F: Map + ?Sized>(map: &F, t: usize, h: &[f64]) -> Mat<f64> {
    let n = map.dim();
    let mut j = Mat::<f64>::zeros(n, n);
    map.jacobian(t, h, j.as_mut());
    j
}

/// A map that is one recurrent layer h ← φ(W h + b), borrowed from it ([`Map::layer`]): φ is
/// `act`, or per unit γ(·; n_i, s_i) when `gamma` holds (n, s).
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub w: MatRef<'a, f64>,
    pub b: &'a [f64],
    pub act: Activation,
    pub gamma: Option<(&'a [f64], &'a [f64])>,
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
        crate::error::ensure_finite_mat("W", w.as_ref())?;
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
        super::kernels::gemv_add(self.w.as_ref(), h, a);
    }

    fn phi(&self, i: usize, a: f64) -> f64 {
        match &self.gamma_ns {
            Some((n, s)) => super::gamma::gamma(a, n[i], s[i]),
            None => self.act.eval(a),
        }
    }

    fn dphi(&self, i: usize, a: f64) -> f64 {
        match &self.gamma_ns {
            Some((n, s)) => super::gamma::gamma_dx(a, n[i], s[i]),
            None => self.act.deriv(a),
        }
    }

    /// From the pre-activation `a`: `d ← φ'(a)`, `h ← φ(a)`; returns ln|det D| = ln|det W| +
    /// Σ ln|d_i|.
    fn advance(&self, a: &[f64], d: &mut [f64], h: &mut [f64]) -> f64 {
        let mut logdet = self.ln_abs_det_w;
        for i in 0..a.len() {
            d[i] = self.dphi(i, a[i]);
            logdet += d[i].abs().ln();
            h[i] = self.phi(i, a[i]);
        }
        logdet
    }

    /// `jac ← diag(d) W`, column by column.
    fn scaled_w(&self, d: &[f64], mut jac: MatMut<'_, f64>) {
        for j in 0..self.w.ncols() {
            let w = self.w.col(j);
            let w = w.try_as_col_major().map(|c| c.as_slice());
            match (jac.as_mut().col_mut(j).try_as_col_major_mut(), w) {
                (Some(c), Some(w)) => {
                    for ((o, wi), di) in c.as_slice_mut().iter_mut().zip(w).zip(d) {
                        *o = di * wi;
                    }
                }
                _ => {
                    for (i, di) in d.iter().enumerate() {
                        jac[(i, j)] = di * self.w[(i, j)];
                    }
                }
            }
        }
    }
}

impl Map for RnnMap {
    fn dim(&self) -> usize {
        self.w.nrows()
    }
    fn layer(&self) -> Option<Layer<'_>> {
        self.drive.is_none().then(|| Layer {
            w: self.w.as_ref(),
            b: &self.b,
            act: self.act,
            gamma: self
                .gamma_ns
                .as_ref()
                .map(|(n, s)| (n.as_slice(), s.as_slice())),
        })
    }

    fn step(&self, t: usize, h: &mut [f64]) {
        with_scratch(h.len(), |a| {
            self.preactivation(t, h, a);
            for (i, hi) in h.iter_mut().enumerate() {
                *hi = self.phi(i, a[i]);
            }
        });
    }

    fn step_tangent(
        &self,
        t: usize,
        h: &mut [f64],
        q: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) -> Option<f64> {
        let n = h.len();
        with_scratch(2 * n, |buf| {
            let (a, d) = buf.split_at_mut(n);
            self.preactivation(t, h, a);
            let par = if n * n * q.ncols() >= 1 << 22 {
                Par::rayon(0)
            } else {
                Par::Seq
            };
            matmul(out.as_mut(), Accum::Replace, self.w.as_ref(), q, 1.0, par);
            let logdet = self.advance(a, d, h);
            // D (W Q), column by column (contiguous in the column-major frame).
            for j in 0..out.ncols() {
                let col = out.as_mut().col_mut(j);
                match col.try_as_col_major_mut() {
                    Some(c) => c
                        .as_slice_mut()
                        .iter_mut()
                        .zip(d.iter())
                        .for_each(|(o, di)| *o *= di),
                    None => {
                        let mut col = out.as_mut().col_mut(j);
                        for (i, di) in d.iter().enumerate() {
                            col[i] *= di;
                        }
                    }
                }
            }
            Some(logdet)
        })
    }

    fn jacobian(&self, t: usize, h: &[f64], jac: MatMut<'_, f64>) {
        let n = h.len();
        with_scratch(2 * n, |buf| {
            let (a, d) = buf.split_at_mut(n);
            self.preactivation(t, h, a);
            for i in 0..n {
                d[i] = self.dphi(i, a[i]);
            }
            self.scaled_w(d, jac);
        });
    }

    fn step_jacobian(&self, t: usize, h: &mut [f64], jac: MatMut<'_, f64>) -> Option<f64> {
        let n = h.len();
        with_scratch(2 * n, |buf| {
            let (a, d) = buf.split_at_mut(n);
            self.preactivation(t, h, a);
            let logdet = self.advance(a, d, h);
            self.scaled_w(d, jac);
            Some(logdet)
        })
    }

    fn name(&self) -> String {
        format!("RNN map (N = {})", self.w.nrows())
    }
}

/// The forward-Euler discretisation `h ← h + dt f(t dt, h)` of a continuous [`Model`], with
/// `D = I + dt J` (Engelken, Wolf & Abbott 2023). Its exponents per unit time are those per step divided by dt.
pub struct EulerMap<M: Model> {
    /// The flow (owned, or a reference: `&M` is a model too).
    pub model: M,
    pub dt: f64,
}

impl<M: Model> Map for EulerMap<M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn step(&self, t: usize, h: &mut [f64]) {
        with_scratch(h.len(), |f| {
            self.model.rhs(t as f64 * self.dt, h, f);
            h.iter_mut()
                .zip(f.iter())
                .for_each(|(x, fx)| *x += self.dt * fx);
        });
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
    fn name(&self) -> String {
        format!("Euler map of {} (dt = {})", self.model.name(), self.dt)
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

/// The residual `F(x) − x` of a discrete map, as a [`Model`] whose zeros are the map's fixed points
/// (FixedPointFinder's setting for trained RNN updates; Golub & Sussillo 2018). Analyse its
/// stability as a map (the eigenvalues of `D = J + I`).
pub struct MapResidual<'a, F: Map + ?Sized> {
    pub map: &'a F,
    /// The step index t passed to the map (for input-driven maps: a constant input).
    pub t: usize,
}

impl<F: Map + ?Sized> Model for MapResidual<'_, F> {
    fn dim(&self) -> usize {
        self.map.dim()
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        dx.copy_from_slice(x);
        self.map.step(self.t, dx);
        for (d, xi) in dx.iter_mut().zip(x) {
            *d -= xi;
        }
    }
    fn jacobian(&self, _t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        self.map.jacobian(self.t, x, jac.as_mut());
        for i in 0..x.len() {
            jac[(i, i)] -= 1.0;
        }
    }
    fn name(&self) -> String {
        format!("{} (F(x) − x)", self.map.name())
    }
}

/// Checks a map's analytic Jacobian against finite differences at `(t, h)` (through
/// [`MapResidual`] and [`check_jacobian`](super::check_jacobian)), and its
/// [`step_tangent`](Map::step_tangent) against `D_t Q` and `F_t(h)`: `jvp_rel_err` is the larger
/// of the residual's product error and the tangent step's.
pub fn check_map_jacobian<F: Map + ?Sized>(map: &F, t: usize, h: &[f64]) -> super::JacobianCheck {
    let mut c = super::check_jacobian(&MapResidual { map, t }, 0.0, h);
    let n = map.dim();
    let d = map_jacobian_mat(map, t, h);
    let q = Mat::<f64>::from_fn(n, 2, |i, c| {
        (((i + 3 * c + 1) as f64) * 0.618_033_988_75).fract() - 0.5
    });
    let mut out = Mat::<f64>::zeros(n, 2);
    let mut h1 = h.to_vec();
    map.step_tangent(t, &mut h1, q.as_ref(), out.as_mut());
    let mut h2 = h.to_vec();
    map.step(t, &mut h2);
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for c in 0..2 {
        for i in 0..n {
            let r: f64 = (0..n).map(|j| d[(i, j)] * q[(j, c)]).sum();
            let e = (out[(i, c)] - r).abs();
            num = if e > num || e.is_nan() { e } else { num };
            den = den.max(r.abs());
        }
    }
    for i in 0..n {
        let e = (h1[i] - h2[i]).abs();
        num = if e > num || e.is_nan() { e } else { num };
        den = den.max(h2[i].abs());
    }
    let e = num / den.max(f64::MIN_POSITIVE);
    if e > c.jvp_rel_err || e.is_nan() {
        c.jvp_rel_err = e;
    }
    c
}

/// A flow or a map, as the resolver ([`crate::source`]) and the system-generic analyses take it.
pub enum System {
    Flow(Box<dyn Model>),
    Map(Box<dyn Map>),
}

impl System {
    /// State dimension.
    pub fn dim(&self) -> usize {
        match self {
            System::Flow(m) => m.dim(),
            System::Map(m) => m.dim(),
        }
    }
    /// The system's name.
    pub fn name(&self) -> String {
        match self {
            System::Flow(m) => m.name(),
            System::Map(m) => m.name(),
        }
    }
    /// True for a map.
    pub fn is_map(&self) -> bool {
        matches!(self, System::Map(_))
    }
    /// The system at `x`, time 0: the vector field f(x) of a flow, the image F(x) of a map.
    pub fn eval(&self, x: &[f64], out: &mut [f64]) {
        match self {
            System::Flow(m) => m.rhs(0.0, x, out),
            System::Map(m) => {
                out.copy_from_slice(x);
                m.step(0, out);
            }
        }
    }
    /// The Jacobian of [`eval`](Self::eval) into `jac`: J = ∂f/∂x of a flow, D = ∂F/∂x of a
    /// map — the matrix whose spectrum decides stability (Re λ < 0, |λ| < 1).
    pub fn jacobian_into(&self, x: &[f64], jac: MatMut<'_, f64>) {
        match self {
            System::Flow(m) => m.jacobian(0.0, x, jac),
            System::Map(m) => m.jacobian(0, x, jac),
        }
    }
    /// [`jacobian_into`](Self::jacobian_into), newly allocated.
    pub fn jacobian(&self, x: &[f64]) -> Mat<f64> {
        let n = self.dim();
        let mut j = Mat::zeros(n, n);
        self.jacobian_into(x, j.as_mut());
        j
    }
    /// The fixed-point residual at `x`: f(x) for a flow, F(x) − x for a map.
    pub fn residual(&self, x: &[f64], out: &mut [f64]) {
        self.eval(x, out);
        if self.is_map() {
            for (o, xi) in out.iter_mut().zip(x) {
                *o -= xi;
            }
        }
    }
    /// The Jacobian of [`residual`](Self::residual) into `jac`: J for a flow, D − I for a map.
    pub fn residual_jacobian(&self, x: &[f64], mut jac: MatMut<'_, f64>) {
        self.jacobian_into(x, jac.rb_mut());
        if self.is_map() {
            for i in 0..x.len() {
                jac[(i, i)] -= 1.0;
            }
        }
    }
}
