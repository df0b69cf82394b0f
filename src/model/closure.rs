//! Systems from closures, for the model a researcher writes in five lines: [`FlowFn`] (a flow
//! `dx/dt = f(t, x)`) and [`MapFn`] (a map `h ← F_t(h)`). Give the analytic Jacobian with
//! `with_jacobian` when you have it; without it the Jacobian is [`fd_jacobian`]'s second-order
//! central difference (≈ 1e-10 relative for smooth systems of moderate size, n extra pairs of
//! evaluations per Jacobian).
//!
//! ```
//! use neurodyn::prelude::*;
//! // The Lorenz (1963) flow, σ = 10, ρ = 28, β = 8/3, Jacobian by central differences.
//! let lorenz = FlowFn::new(3, |_t, x, dx| {
//!     dx[0] = 10.0 * (x[1] - x[0]);
//!     dx[1] = x[0] * (28.0 - x[2]) - x[1];
//!     dx[2] = x[0] * x[1] - 8.0 / 3.0 * x[2];
//! });
//! let j = jacobian_mat(&lorenz, 0.0, &[1.0, 2.0, 3.0]);
//! assert!((j[(0, 0)] + 10.0).abs() < 1e-8 && (j[(1, 2)] + 1.0).abs() < 1e-8);
//! ```

use super::{Map, Model};
use faer::MatMut;

type RhsFn = dyn Fn(f64, &[f64], &mut [f64]) + Send + Sync;
type JacFn = dyn Fn(f64, &[f64], MatMut<'_, f64>) + Send + Sync;
type StepFn = dyn Fn(usize, &mut [f64]) + Send + Sync;
type MapJacFn = dyn Fn(usize, &[f64], MatMut<'_, f64>) + Send + Sync;

/// Central-difference Jacobian of `f` at x: column j from `(f(x + h e_j) − f(x − h e_j)) / 2h`,
/// `h = ε^{1/3} max(1, |x_j|)` (error O(h²) ≈ 1e-10 relative for smooth f). Allocates three
/// n-vectors per call (its cost is 2n evaluations of f).
pub fn fd_jacobian(n: usize, f: impl Fn(&[f64], &mut [f64]), x: &[f64], mut jac: MatMut<'_, f64>) {
    let mut xp = x.to_vec();
    let (mut fp, mut fm) = (vec![0.0; n], vec![0.0; n]);
    let eps13 = f64::EPSILON.cbrt();
    for j in 0..x.len() {
        let h = eps13 * x[j].abs().max(1.0);
        xp[j] = x[j] + h;
        f(&xp, &mut fp);
        xp[j] = x[j] - h;
        f(&xp, &mut fm);
        xp[j] = x[j];
        for i in 0..n {
            jac[(i, j)] = (fp[i] - fm[i]) / (2.0 * h);
        }
    }
}

/// A flow `dx/dt = f(t, x)` from a closure (see the module documentation).
pub struct FlowFn {
    dim: usize,
    rhs: Box<RhsFn>,
    jac: Option<Box<JacFn>>,
    name: String,
}

impl FlowFn {
    /// A flow of dimension `dim` with right-hand side `rhs(t, x, dx)`.
    pub fn new(dim: usize, rhs: impl Fn(f64, &[f64], &mut [f64]) + Send + Sync + 'static) -> Self {
        FlowFn {
            dim,
            rhs: Box::new(rhs),
            jac: None,
            name: "flow".into(),
        }
    }
    /// The analytic Jacobian `jac(t, x, J)` (every entry of J must be set).
    pub fn with_jacobian(
        mut self,
        jac: impl Fn(f64, &[f64], MatMut<'_, f64>) + Send + Sync + 'static,
    ) -> Self {
        self.jac = Some(Box::new(jac));
        self
    }
    /// The name used in tables and plots.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Model for FlowFn {
    fn dim(&self) -> usize {
        self.dim
    }
    fn rhs(&self, t: f64, x: &[f64], dx: &mut [f64]) {
        (self.rhs)(t, x, dx)
    }
    fn jacobian(&self, t: f64, x: &[f64], jac: MatMut<'_, f64>) {
        match &self.jac {
            Some(j) => j(t, x, jac),
            None => fd_jacobian(self.dim, |x, dx| (self.rhs)(t, x, dx), x, jac),
        }
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// A map `h ← F_t(h)` from a closure (see the module documentation).
///
/// ```
/// use neurodyn::prelude::*;
/// // The Hénon (1976) map, a = 1.4, b = 0.3, with its analytic Jacobian.
/// let henon = MapFn::new(2, |_t, h| {
///     let (x, y) = (h[0], h[1]);
///     h[0] = 1.0 - 1.4 * x * x + y;
///     h[1] = 0.3 * x;
/// })
/// .with_jacobian(|_t, h, mut d| {
///     d[(0, 0)] = -2.8 * h[0];
///     d[(0, 1)] = 1.0;
///     d[(1, 0)] = 0.3;
///     d[(1, 1)] = 0.0;
/// });
/// let mut h = [0.1, 0.1];
/// henon.step(0, &mut h);
/// assert!((h[0] - 1.086).abs() < 1e-12 && (h[1] - 0.03).abs() < 1e-12);
/// ```
pub struct MapFn {
    dim: usize,
    step: Box<StepFn>,
    jac: Option<Box<MapJacFn>>,
    name: String,
}

impl MapFn {
    /// A map of dimension `dim` with update `step(t, h)` (in place).
    pub fn new(dim: usize, step: impl Fn(usize, &mut [f64]) + Send + Sync + 'static) -> Self {
        MapFn {
            dim,
            step: Box::new(step),
            jac: None,
            name: "map".into(),
        }
    }
    /// The analytic Jacobian `jac(t, h, D)` (every entry of D must be set).
    pub fn with_jacobian(
        mut self,
        jac: impl Fn(usize, &[f64], MatMut<'_, f64>) + Send + Sync + 'static,
    ) -> Self {
        self.jac = Some(Box::new(jac));
        self
    }
    /// The name used in tables and plots.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Map for MapFn {
    fn dim(&self) -> usize {
        self.dim
    }
    fn step(&self, t: usize, h: &mut [f64]) {
        (self.step)(t, h)
    }
    fn jacobian(&self, t: usize, h: &[f64], jac: MatMut<'_, f64>) {
        match &self.jac {
            Some(j) => j(t, h, jac),
            None => fd_jacobian(
                self.dim,
                |x, out| {
                    out.copy_from_slice(x);
                    (self.step)(t, out)
                },
                h,
                jac,
            ),
        }
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}
