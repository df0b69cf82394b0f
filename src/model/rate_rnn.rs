//! The continuous-time rate RNN.
//!
//! $$ \tau \odot \frac{dx}{dt} = -x + W\,\varphi(x) + b + B\,u(t) $$
//!
//! with state $x \in \mathbb{R}^N$, recurrent weights $W$ (N×N), bias $b$, per-neuron time
//! constants $\tau_i > 0$, a pointwise nonlinearity $\varphi$ ([`Activation`]) and an optional
//! input $u(t) \in \mathbb{R}^m$ through $B$ (N×m). Its Jacobian (the input does not enter) is
//!
//! $$ J_{ij} = \frac{1}{\tau_i}\left(-\delta_{ij} + W_{ij}\,\varphi'(x_j)\right). $$
//!
//! **Dale's law** (Kim, Li & Sejnowski 2019): given a sign per *sending* unit $d_j = \pm 1$, the effective
//! matrix is $W = \operatorname{relu}(\tilde W)\,\operatorname{diag}(d)$, i.e.
//! $W_{ij} = d_j \max(\tilde W_{ij}, 0)$; [`RateRnn::with_dale`] applies it once at build time.
//!
//! The right-hand side and the Jacobian-vector product never allocate: $W\varphi(x)$ is formed
//! block by block from a stack buffer with the AVX2/FMA matrix-vector kernel of
//! [`kernels`](super::kernels).

use super::kernels::{gemv_add, gemv_add_blocked, gemv_add_many, BLOCK};
use super::scratch::with_scratch;
use super::{Activation, Model};
use crate::error::{ensure_finite, Error, Result};
use faer::linalg::matmul::matmul;
use faer::reborrow::*;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use std::sync::Arc;

/// Largest input dimension m (a stack buffer holds u(t)).
pub const MAX_INPUTS: usize = 64;

/// A time-dependent input u(t) ∈ ℝᵐ.
#[derive(Clone)]
pub enum InputSignal {
    /// u(t) = c.
    Constant(Vec<f64>),
    /// Samples `u[k]` (row k has m entries) at increasing times `t[k]`, linearly interpolated,
    /// held constant outside `[t[0], t[last]]`.
    Table { t: Vec<f64>, u: Vec<Vec<f64>> },
    /// Any function writing u(t) into the slice.
    Func(Arc<dyn Fn(f64, &mut [f64]) + Send + Sync>),
}

impl std::fmt::Debug for InputSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputSignal::Constant(c) => f.debug_tuple("Constant").field(c).finish(),
            InputSignal::Table { t, .. } => write!(f, "Table({} samples)", t.len()),
            InputSignal::Func(_) => write!(f, "Func(..)"),
        }
    }
}

impl InputSignal {
    fn eval(&self, t: f64, out: &mut [f64]) {
        match self {
            InputSignal::Constant(c) => out.copy_from_slice(c),
            InputSignal::Func(f) => f(t, out),
            InputSignal::Table { t: ts, u } => {
                let k = ts.partition_point(|&s| s <= t);
                if k == 0 {
                    out.copy_from_slice(&u[0]);
                } else if k == ts.len() {
                    out.copy_from_slice(&u[ts.len() - 1]);
                } else {
                    let w = (t - ts[k - 1]) / (ts[k] - ts[k - 1]);
                    for (o, (a, b)) in out.iter_mut().zip(u[k - 1].iter().zip(&u[k])) {
                        *o = a + w * (b - a);
                    }
                }
            }
        }
    }
}

/// The continuous-time rate RNN (see the module documentation for its equations).
#[derive(Debug, Clone)]
pub struct RateRnn {
    w: Mat<f64>,
    b: Vec<f64>,
    inv_tau: Vec<f64>,
    act: Activation,
    input: Option<(Mat<f64>, InputSignal)>,
    dale: Option<Vec<f64>>,
    /// Per-neuron gamma parameters (n_i, s_i), overriding `act`.
    gamma_ns: Option<(Vec<f64>, Vec<f64>)>,
}

impl RateRnn {
    /// A network with weights `w` (N×N), zero bias, τ = 1 and no input.
    pub fn new(w: Mat<f64>, act: Activation) -> Result<Self> {
        let n = w.nrows();
        if n == 0 {
            return Err(Error::invalid("W", "the weight matrix is empty (N = 0)"));
        }
        if w.ncols() != n {
            return Err(Error::invalid(
                "W",
                format!("must be square, got {}×{}", w.nrows(), w.ncols()),
            ));
        }
        crate::error::ensure_finite_mat("W", w.as_ref())?;
        Ok(RateRnn {
            w,
            b: vec![0.0; n],
            inv_tau: vec![1.0; n],
            act,
            input: None,
            dale: None,
            gamma_ns: None,
        })
    }

    /// Sets the bias b (length N).
    pub fn with_bias(mut self, b: Vec<f64>) -> Result<Self> {
        check_len("b", &b, self.dim())?;
        ensure_finite("b", &b)?;
        self.b = b;
        Ok(self)
    }

    /// Sets per-neuron time constants τ (length N, all > 0).
    pub fn with_tau(mut self, tau: Vec<f64>) -> Result<Self> {
        check_len("tau", &tau, self.dim())?;
        if let Some(i) = tau.iter().position(|&t| !(t > 0.0 && t.is_finite())) {
            return Err(Error::invalid(
                "tau",
                format!(
                    "entry {i} is {} (time constants must be positive and finite)",
                    tau[i]
                ),
            ));
        }
        self.inv_tau = tau.iter().map(|t| 1.0 / t).collect();
        Ok(self)
    }

    /// Applies Dale's law with signs `d` (±1 per sending unit): `W ← relu(W)·diag(d)`.
    pub fn with_dale(mut self, d: Vec<f64>) -> Result<Self> {
        check_len("dale", &d, self.dim())?;
        if let Some(j) = d.iter().position(|&s| s != 1.0 && s != -1.0) {
            return Err(Error::invalid(
                "dale",
                format!("entry {j} is {} (signs must be +1 or −1)", d[j]),
            ));
        }
        let n = self.dim();
        for j in 0..n {
            for i in 0..n {
                self.w[(i, j)] = d[j] * self.w[(i, j)].max(0.0);
            }
        }
        self.dale = Some(d);
        Ok(self)
    }

    /// Uses the gamma nonlinearity with per-neuron gain `n` (all > 0) and saturation `s`:
    /// φ_i(x) = γ(x; n_i, s_i).
    pub fn with_gamma_per_neuron(mut self, n: Vec<f64>, s: Vec<f64>) -> Result<Self> {
        check_len("gamma.n", &n, self.dim())?;
        check_len("gamma.s", &s, self.dim())?;
        if let Some(i) = n.iter().position(|&v| !(v > 0.0 && v.is_finite())) {
            return Err(Error::invalid(
                "gamma.n",
                format!("entry {i} is {} (gains must be positive and finite)", n[i]),
            ));
        }
        ensure_finite("gamma.s", &s)?;
        self.act = Activation::Gamma { n: n[0], s: s[0] };
        self.gamma_ns = Some((n, s));
        Ok(self)
    }

    /// φ_j(x_j) for j = j0 .. j0 + out.len().
    #[inline]
    fn phi_block(&self, j0: usize, x: &[f64], out: &mut [f64]) {
        let x = &x[j0..j0 + out.len()];
        match &self.gamma_ns {
            None => self.act.eval_into(x, out),
            Some((n, s)) => {
                for (k, o) in out.iter_mut().enumerate() {
                    *o = super::gamma::gamma(x[k], n[j0 + k], s[j0 + k]);
                }
            }
        }
    }

    /// φ_j'(x_j) v_j for j = j0 .. j0 + out.len().
    #[inline]
    fn dphi_mul_block(&self, j0: usize, x: &[f64], v: &[f64], out: &mut [f64]) {
        let (x, v) = (&x[j0..j0 + out.len()], &v[j0..j0 + out.len()]);
        match &self.gamma_ns {
            None => self.act.deriv_mul_into(x, v, out),
            Some((n, s)) => {
                for (k, o) in out.iter_mut().enumerate() {
                    *o = super::gamma::gamma_dx(x[k], n[j0 + k], s[j0 + k]) * v[k];
                }
            }
        }
    }

    /// φ_j'(x_j).
    #[inline]
    fn dphi(&self, j: usize, xj: f64) -> f64 {
        match &self.gamma_ns {
            None => self.act.deriv(xj),
            Some((n, s)) => super::gamma::gamma_dx(xj, n[j], s[j]),
        }
    }

    /// Adds an input `B u(t)` with `B` of shape N×m (m ≤ [`MAX_INPUTS`]).
    pub fn with_input(mut self, b_in: Mat<f64>, signal: InputSignal) -> Result<Self> {
        let (n, m) = (self.dim(), b_in.ncols());
        if b_in.nrows() != n {
            return Err(Error::invalid(
                "B",
                format!("has {} rows, expected N = {n}", b_in.nrows()),
            ));
        }
        if m == 0 || m > MAX_INPUTS {
            return Err(Error::invalid(
                "B",
                format!("has {m} columns; 1 to {MAX_INPUTS} inputs are supported"),
            ));
        }
        match &signal {
            InputSignal::Constant(c) => {
                check_len("u", c, m)?;
                ensure_finite("u", c)?;
            }
            InputSignal::Table { t, u } => {
                if t.is_empty() || t.len() != u.len() {
                    return Err(Error::invalid(
                        "u",
                        format!(
                            "{} times but {} samples (need ≥ 1 of each, equal counts)",
                            t.len(),
                            u.len()
                        ),
                    ));
                }
                ensure_finite("u.t", t)?;
                if t.windows(2).any(|p| p[1] <= p[0]) {
                    return Err(Error::invalid(
                        "u.t",
                        "sample times must be strictly increasing",
                    ));
                }
                for (k, row) in u.iter().enumerate() {
                    check_len(&format!("u[{k}]"), row, m)?;
                    ensure_finite(&format!("u[{k}]"), row)?;
                }
            }
            InputSignal::Func(_) => {}
        }
        self.input = Some((b_in, signal));
        Ok(self)
    }

    /// The effective recurrent matrix W (after Dale's law, if any).
    pub fn w(&self) -> &Mat<f64> {
        &self.w
    }
    /// The bias b.
    pub fn bias(&self) -> &[f64] {
        &self.b
    }
    /// Time constants τ.
    pub fn tau(&self) -> Vec<f64> {
        self.inv_tau.iter().map(|v| 1.0 / v).collect()
    }
    /// The nonlinearity φ.
    pub fn activation(&self) -> Activation {
        self.act
    }
    /// The Dale signs, if Dale's law is on.
    pub fn dale(&self) -> Option<&[f64]> {
        self.dale.as_deref()
    }
}

fn check_len(field: &str, v: &[f64], n: usize) -> Result<()> {
    if v.len() != n {
        return Err(Error::invalid(
            field,
            format!("has length {}, expected {n}", v.len()),
        ));
    }
    Ok(())
}

impl Model for RateRnn {
    fn dim(&self) -> usize {
        self.w.nrows()
    }

    fn rhs(&self, t: f64, x: &[f64], dx: &mut [f64]) {
        dx.copy_from_slice(&self.b);
        if let Some((b_in, sig)) = &self.input {
            let m = b_in.ncols();
            let mut u = [0.0f64; MAX_INPUTS];
            sig.eval(t, &mut u[..m]);
            gemv_add(b_in.as_ref(), &u[..m], dx);
        }
        gemv_add_blocked(self.w.as_ref(), |j0, buf| self.phi_block(j0, x, buf), dx);
        for ((d, xi), it) in dx.iter_mut().zip(x).zip(&self.inv_tau) {
            *d = (*d - xi) * it;
        }
    }

    /// One matrix–matrix product for all columns ([`gemv_add_many`]), each column's arithmetic
    /// that of [`Model::rhs`] (φ formed over the same column blocks), so the columns equal
    /// single evaluations bit for bit.
    fn rhs_batch(&self, t: &[f64], x: &[f64], dx: &mut [f64]) {
        thread_local! {
            static PHI: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let (n, m) = (self.dim(), t.len());
        for (j, &tj) in t.iter().enumerate() {
            let d = &mut dx[j * n..(j + 1) * n];
            d.copy_from_slice(&self.b);
            if let Some((b_in, sig)) = &self.input {
                let k = b_in.ncols();
                let mut u = [0.0f64; MAX_INPUTS];
                sig.eval(tj, &mut u[..k]);
                gemv_add(b_in.as_ref(), &u[..k], d);
            }
        }
        PHI.with(|cell| {
            let mut phi = cell.borrow_mut();
            let mut j0 = 0;
            while j0 < n {
                let nb = BLOCK.min(n - j0);
                phi.resize(nb * m, 0.0);
                for j in 0..m {
                    self.phi_block(j0, &x[j * n..(j + 1) * n], &mut phi[j * nb..(j + 1) * nb]);
                }
                gemv_add_many(self.w.as_ref().subcols(j0, nb), &phi[..nb * m], dx);
                j0 += nb;
            }
        });
        for j in 0..m {
            let (d, xj) = (&mut dx[j * n..(j + 1) * n], &x[j * n..(j + 1) * n]);
            for ((di, xi), it) in d.iter_mut().zip(xj).zip(&self.inv_tau) {
                *di = (*di - xi) * it;
            }
        }
    }

    fn jacobian(&self, _t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        let n = self.dim();
        for j in 0..n {
            let dphi = self.dphi(j, x[j]);
            for i in 0..n {
                jac[(i, j)] = self.inv_tau[i] * self.w[(i, j)] * dphi;
            }
            jac[(j, j)] -= self.inv_tau[j];
        }
    }

    fn jvp(&self, _t: f64, x: &[f64], v: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        gemv_add_blocked(
            self.w.as_ref(),
            |j0, buf| self.dphi_mul_block(j0, x, v, buf),
            out,
        );
        for ((o, vi), it) in out.iter_mut().zip(v).zip(&self.inv_tau) {
            *o = (*o - vi) * it;
        }
    }

    fn jac_mul_mat(&self, _t: f64, x: &[f64], y: MatRef<'_, f64>, mut out: MatMut<'_, f64>) {
        // J Y = diag(1/τ) (−Y + W diag(φ'(x)) Y): one n×n by n×k product (the scaled copy of Y is
        // O(nk), small next to the O(n²k) product).
        // The scaled copy lives in the thread's scratch pool (a Lyapunov run calls this four
        // times per RK4 step with the same sizes: no allocation after the first). Both O(nk)
        // passes go column by column, over all threads for large frames (elementwise: the same
        // bits on any number of threads).
        use rayon::prelude::*;
        let (n, k) = (self.dim(), y.ncols());
        let parallel = n * k >= 1 << 16;
        with_scratch(n * (k + 2), |buf| {
            let (d, rest) = buf.split_at_mut(n);
            let (ones, sy) = rest.split_at_mut(n);
            ones.fill(1.0);
            self.dphi_mul_block(0, x, ones, d);
            let d = &*d;
            let scale = |j: usize, sc: &mut [f64]| {
                let yc = y.col(j);
                match yc.try_as_col_major() {
                    Some(yc) => {
                        for ((s, di), yi) in sc.iter_mut().zip(d).zip(yc.as_slice()) {
                            *s = di * yi;
                        }
                    }
                    None => {
                        for i in 0..n {
                            sc[i] = d[i] * yc[i];
                        }
                    }
                }
            };
            let sy = &mut sy[..n * k];
            if parallel {
                sy.par_chunks_mut(n)
                    .enumerate()
                    .for_each(|(j, sc)| scale(j, sc));
            } else {
                sy.chunks_mut(n)
                    .enumerate()
                    .for_each(|(j, sc)| scale(j, sc));
            }
            let par = if n * n * k >= 1 << 22 {
                Par::rayon(0)
            } else {
                Par::Seq
            };
            matmul(
                out.as_mut(),
                Accum::Replace,
                self.w.as_ref(),
                MatRef::from_column_major_slice(sy, n, k),
                1.0,
                par,
            );
        });
        let finish = |j: usize, mut oc: faer::ColMut<'_, f64>| {
            let yc = y.col(j);
            match (oc.rb_mut().try_as_col_major_mut(), yc.try_as_col_major()) {
                (Some(o), Some(yv)) => {
                    let it = o.as_slice_mut().iter_mut().zip(yv.as_slice());
                    for ((o, yi), t) in it.zip(&self.inv_tau) {
                        *o = (*o - yi) * t;
                    }
                }
                _ => {
                    for i in 0..n {
                        oc[i] = (oc[i] - yc[i]) * self.inv_tau[i];
                    }
                }
            }
        };
        if parallel {
            out.par_col_iter_mut()
                .enumerate()
                .for_each(|(j, oc)| finish(j, oc));
        } else {
            for j in 0..k {
                finish(j, out.as_mut().col_mut(j));
            }
        }
    }

    fn jacobian_trace(&self, _t: f64, x: &[f64]) -> f64 {
        (0..self.dim())
            .map(|i| self.inv_tau[i] * (self.w[(i, i)] * self.dphi(i, x[i]) - 1.0))
            .sum()
    }

    fn name(&self) -> String {
        format!("rate-rnn (N = {}, φ = {})", self.dim(), self.act.name())
    }
}
