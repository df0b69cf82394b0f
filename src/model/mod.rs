//! The systems: continuous-time flows and discrete-time maps, defined together.
//!
//! A **flow** ([`Model`]) is
//!
//! $$ \frac{dx}{dt} = f(t, x), \qquad x \in \mathbb{R}^n, $$
//!
//! with an analytic Jacobian $J_{ij} = \partial f_i / \partial x_j$; a **map** ([`Map`]) is
//! $h_{t+1} = F_t(h_t)$ with its Jacobian $D_t$. Every analysis in neurodyn (integration, fixed
//! points, stability, Lyapunov spectra, continuation, sweeps) takes any flow or map, so a new
//! system gets all of them by implementing three methods — or none: [`FlowFn`] and [`MapFn`] build
//! one from closures, with a finite-difference Jacobian when none is given.
//!
//! This layer imports no analysis: the arrows run from the analyses to the systems only.
//!
//! | module | systems |
//! |---|---|
//! | [`rate_rnn`] | the rate RNN flow `τ ⊙ dx/dt = −x + W φ(x) + b + B u(t)` |
//! | [`map`] | [`Map`], the RNN map [`RnnMap`], [`EulerMap`], [`MapResidual`] |
//! | [`organics`] | the ORGaNICs circuit (Heeger & Mackey 2019; Rawat et al. 2024) |
//! | [`anru`], [`gamma`] | the adaptive gamma nonlinearity and the ANRU map (Geadah et al. 2024) |
//! | [`closure`] | [`FlowFn`], [`MapFn`]: systems from closures; [`fd_jacobian`] |
//! | [`variational`] | [`Variational`]: a flow with its tangent frame, `(x, Y)' = (f, J Y)` |
//!
//! Buffers are owned by the caller: `rhs`, `jacobian` and `jvp` write into slices or a faer
//! [`MatMut`]; the default methods take their temporaries from a per-thread pool
//! ([`scratch::with_scratch`]), so nothing allocates in a hot loop after the first call.

pub mod activation;
pub mod anru;
pub mod closure;
pub mod gamma;
pub mod kernels;
pub mod map;
pub mod organics;
pub mod rate_rnn;
pub mod scratch;
pub mod torch_rnn;
pub mod variational;

pub use activation::Activation;
pub use anru::Anru;
pub use closure::{fd_jacobian, FlowFn, MapFn};
pub use map::{
    check_map_jacobian, map_jacobian_mat, EulerMap, Layer, Map, MapResidual, RnnMap, System,
};
pub use rate_rnn::{InputSignal, RateRnn};
use scratch::with_scratch;
pub use variational::Variational;

use faer::{Mat, MatMut, MatRef};

/// A continuous-time dynamical system `dx/dt = f(t, x)` with an analytic Jacobian.
///
/// Required: [`dim`](Model::dim), [`rhs`](Model::rhs), [`jacobian`](Model::jacobian).
/// Optional: [`jvp`](Model::jvp), [`jac_mul_mat`](Model::jac_mul_mat),
/// [`jacobian_trace`](Model::jacobian_trace) (the defaults assemble the dense Jacobian in a reused
/// per-thread buffer, O(n²) per call with no allocation after the first — large models override
/// them matrix-free).
pub trait Model: Send + Sync {
    /// State dimension n.
    fn dim(&self) -> usize;

    /// Writes `f(t, x)` into `dx` (both of length n).
    fn rhs(&self, t: f64, x: &[f64], dx: &mut [f64]);

    /// f(t_j, x_j) for many states at once: `x` and `dx` hold `t.len()` states of length n as
    /// consecutive columns (column-major n × m). The ensemble integrators call this once per
    /// stage. Default: one [`Model::rhs`] per column. A model whose right-hand side is a
    /// matrix–vector product overrides it with one matrix–matrix product; an override must give
    /// every column the bits [`Model::rhs`] gives it, so that ensemble members equal single runs.
    fn rhs_batch(&self, t: &[f64], x: &[f64], dx: &mut [f64]) {
        let n = self.dim();
        for (j, &tj) in t.iter().enumerate() {
            self.rhs(tj, &x[j * n..(j + 1) * n], &mut dx[j * n..(j + 1) * n]);
        }
    }

    /// Writes the dense Jacobian `∂f/∂x (t, x)` into the n×n matrix `jac` (every entry is set).
    fn jacobian(&self, t: f64, x: &[f64], jac: MatMut<'_, f64>);

    /// Writes `J(t, x) v` into `out`. Default: assemble the Jacobian (per-thread scratch) and
    /// multiply.
    fn jvp(&self, t: f64, x: &[f64], v: &[f64], out: &mut [f64]) {
        let n = self.dim();
        with_scratch(n * n, |buf| {
            let mut jac = MatMut::from_column_major_slice_mut(buf, n, n);
            self.jacobian(t, x, jac.as_mut());
            for (i, o) in out.iter_mut().enumerate() {
                *o = (0..n).map(|j| jac[(i, j)] * v[j]).sum();
            }
        });
    }

    /// Writes `J(t, x) Y` into `out` (both n×k). Default: assemble the Jacobian (per-thread
    /// scratch) and multiply; models override it matrix-free (the tangent dynamics of Lyapunov
    /// spectra call it every stage).
    fn jac_mul_mat(&self, t: f64, x: &[f64], y: MatRef<'_, f64>, out: MatMut<'_, f64>) {
        let n = self.dim();
        with_scratch(n * n, |buf| {
            let mut jac = MatMut::from_column_major_slice_mut(buf, n, n);
            self.jacobian(t, x, jac.as_mut());
            faer::linalg::matmul::matmul(
                out,
                faer::Accum::Replace,
                jac.as_ref(),
                y,
                1.0,
                faer::Par::Seq,
            );
        });
    }

    /// `tr J(t, x)` (the phase-space contraction rate; the sum of all Lyapunov exponents of a flow is
    /// its time average). Default: from the Jacobian assembled in per-thread scratch.
    fn jacobian_trace(&self, t: f64, x: &[f64]) -> f64 {
        let n = self.dim();
        with_scratch(n * n, |buf| {
            let mut jac = MatMut::from_column_major_slice_mut(buf, n, n);
            self.jacobian(t, x, jac.as_mut());
            (0..n).map(|i| jac[(i, i)]).sum()
        })
    }

    /// A short human-readable name, used in tables and plot titles.
    fn name(&self) -> String {
        "model".to_string()
    }
}

/// Implements a system trait for `&T` and `Box<T>` by forwarding every method listed, so that a
/// reference or a box is the system it points to. One list per trait, checked against the
/// trait's methods by a test (a method missing here would silently lose its overrides).
macro_rules! forward_impls {
    ($trait:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?;)* }) => {
        impl<T: $trait + ?Sized> $trait for &T {
            $(fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                (**self).$name($($arg),*)
            })*
        }
        impl<T: $trait + ?Sized> $trait for Box<T> {
            $(fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                (**self).$name($($arg),*)
            })*
        }
    };
}
pub(crate) use forward_impls;

forward_impls!(Model {
    fn dim(&self) -> usize;
    fn rhs(&self, t: f64, x: &[f64], dx: &mut [f64]);
    fn rhs_batch(&self, t: &[f64], x: &[f64], dx: &mut [f64]);
    fn jacobian(&self, t: f64, x: &[f64], jac: MatMut<'_, f64>);
    fn jvp(&self, t: f64, x: &[f64], v: &[f64], out: &mut [f64]);
    fn jac_mul_mat(&self, t: f64, x: &[f64], y: MatRef<'_, f64>, out: MatMut<'_, f64>);
    fn jacobian_trace(&self, t: f64, x: &[f64]) -> f64;
    fn name(&self) -> String;
});

/// Convenience: the Jacobian as a newly allocated matrix.
pub fn jacobian_mat<M: Model + ?Sized>(model: &M, t: f64, x: &[f64]) -> Mat<f64> {
    let n = model.dim();
    let mut j = Mat::<f64>::zeros(n, n);
    model.jacobian(t, x, j.as_mut());
    j
}

/// Result of [`check_jacobian`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JacobianCheck {
    /// `max_ij |J_ij − J^fd_ij| / max_ij |J^fd_ij|` (normwise relative error of the analytic Jacobian).
    pub rel_err: f64,
    /// The largest absolute entry error and where it is.
    pub max_abs_err: f64,
    pub worst: (usize, usize),
    /// Largest error of the Jacobian products ([`Model::jvp`], [`Model::jac_mul_mat`],
    /// [`Model::jacobian_trace`]) against the analytic Jacobian, relative to `max |J v|`.
    pub jvp_rel_err: f64,
}

impl JacobianCheck {
    /// True when both the Jacobian and the Jacobian-vector product are within `tol` (relative).
    pub fn passes(&self, tol: f64) -> bool {
        self.rel_err < tol && self.jvp_rel_err < tol
    }
}

/// Checks a model's analytic Jacobian against central finite differences at `(t, x)`.
///
/// Column j uses the step `h_j = ε^{1/3} max(1, |x_j|)` and the fourth-order central formula
/// `(−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h`, so a correct Jacobian of a smooth model
/// agrees to ~1e-10 and the test threshold 1e-6 separates right from wrong by orders of magnitude.
/// Also compares [`Model::jvp`] with the analytic `J v`.
///
/// ```
/// use neurodyn::prelude::*;
/// let w = Mat::from_fn(4, 4, |i, j| ((i * 4 + j) as f64 * 0.7).sin());
/// let rnn = RateRnn::new(w, Activation::Tanh).unwrap();
/// let c = check_jacobian(&rnn, 0.0, &[0.1, -0.3, 0.5, 0.2]);
/// assert!(c.passes(1e-8), "{c:?}");
/// ```
pub fn check_jacobian<M: Model + ?Sized>(model: &M, t: f64, x: &[f64]) -> JacobianCheck {
    let n = model.dim();
    assert_eq!(
        x.len(),
        n,
        "check_jacobian: x has length {} but the model has dimension {n}",
        x.len()
    );
    let ja = jacobian_mat(model, t, x);
    let mut jfd = Mat::<f64>::zeros(n, n);
    let mut xp = x.to_vec();
    let (mut f1, mut f2, mut f3, mut f4) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let eps13 = f64::EPSILON.cbrt();
    for j in 0..n {
        let h = eps13 * x[j].abs().max(1.0);
        let eval = |d: f64, xp: &mut Vec<f64>, out: &mut Vec<f64>| {
            xp[j] = x[j] + d;
            model.rhs(t, xp, out);
        };
        eval(2.0 * h, &mut xp, &mut f1);
        eval(h, &mut xp, &mut f2);
        eval(-h, &mut xp, &mut f3);
        eval(-2.0 * h, &mut xp, &mut f4);
        xp[j] = x[j];
        for i in 0..n {
            jfd[(i, j)] = (-f1[i] + 8.0 * f2[i] - 8.0 * f3[i] + f4[i]) / (12.0 * h);
        }
    }
    let mut scale = 0.0f64;
    let mut max_abs = 0.0f64;
    let mut worst = (0, 0);
    for j in 0..n {
        for i in 0..n {
            scale = scale.max(jfd[(i, j)].abs());
            let e = (ja[(i, j)] - jfd[(i, j)]).abs();
            if e > max_abs || e.is_nan() {
                max_abs = e;
                worst = (i, j);
            }
        }
    }
    // jvp against the analytic Jacobian, for a deterministic, non-degenerate v.
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.618_033_988_75).fract() - 0.5)
        .collect();
    let mut jv = vec![0.0; n];
    model.jvp(t, x, &v, &mut jv);
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    for i in 0..n {
        let r: f64 = (0..n).map(|j| ja[(i, j)] * v[j]).sum();
        let d = (jv[i] - r).abs();
        if d > num || d.is_nan() {
            num = d;
        }
        den = den.max(r.abs());
    }
    // jac_mul_mat on a 3-column block (column 0 = v) and the trace, against the analytic Jacobian.
    let y = Mat::<f64>::from_fn(n, 3, |i, c| {
        if c == 0 {
            v[i]
        } else {
            (((i + 7 * c) as f64) * 0.754_877_666).fract() - 0.5
        }
    });
    let mut jy = Mat::<f64>::zeros(n, 3);
    model.jac_mul_mat(t, x, y.as_ref(), jy.as_mut());
    for c in 0..3 {
        for i in 0..n {
            let r: f64 = (0..n).map(|j| ja[(i, j)] * y[(j, c)]).sum();
            let d = (jy[(i, c)] - r).abs();
            if d > num || d.is_nan() {
                num = d;
            }
            den = den.max(r.abs());
        }
    }
    let tr: f64 = (0..n).map(|i| ja[(i, i)]).sum();
    let dtr = (model.jacobian_trace(t, x) - tr).abs();
    if dtr > num || dtr.is_nan() {
        num = dtr;
    }
    JacobianCheck {
        rel_err: max_abs / scale.max(f64::MIN_POSITIVE),
        max_abs_err: max_abs,
        worst,
        jvp_rel_err: num / den.max(f64::MIN_POSITIVE),
    }
}

#[cfg(test)]
mod tests {
    /// The methods a trait declares (`fn` lines at trait depth) and those its `forward_impls!`
    /// list forwards, read from the source: they must be the same, or a `&T`/`Box<T>` would
    /// silently lose a model's override of a method left out.
    fn trait_and_forwarded(src: &str, trait_name: &str) -> (Vec<String>, Vec<String>) {
        let names = |block: &str| -> Vec<String> {
            let mut v: Vec<String> = block
                .lines()
                .filter_map(|l| l.strip_prefix("    fn "))
                .map(|l| l.split('(').next().unwrap_or("").to_string())
                .collect();
            v.sort();
            v
        };
        let start = src
            .find(&format!("pub trait {trait_name}:"))
            .or_else(|| src.find(&format!("pub trait {trait_name} {{")))
            .unwrap();
        let end = start + src[start..].find("\n}\n").unwrap();
        let fstart = src
            .find(&format!("forward_impls!({trait_name} {{"))
            .unwrap();
        let fend = fstart + src[fstart..].find("\n});").unwrap();
        (names(&src[start..end]), names(&src[fstart..fend]))
    }

    #[test]
    fn every_trait_method_is_forwarded() {
        for (src, name) in [
            (include_str!("mod.rs"), "Model"),
            (include_str!("map.rs"), "Map"),
        ] {
            let (declared, forwarded) = trait_and_forwarded(src, name);
            assert!(declared.len() >= 6, "{name}: {declared:?}");
            assert_eq!(declared, forwarded, "{name}");
        }
    }
}
