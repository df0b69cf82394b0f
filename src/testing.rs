//! Reference problems with known solutions, and the matrix exponential, for tests and benchmarks.

use crate::model::Model;
use faer::{Mat, MatMut};

/// The linear system `x' = A x`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub a: Mat<f64>,
}

impl Model for Linear {
    fn dim(&self) -> usize {
        self.a.nrows()
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        let n = self.dim();
        for (i, d) in dx.iter_mut().enumerate() {
            *d = (0..n).map(|j| self.a[(i, j)] * x[j]).sum();
        }
    }
    fn jacobian(&self, _t: f64, _x: &[f64], mut jac: MatMut<'_, f64>) {
        jac.copy_from(&self.a);
    }
    fn name(&self) -> String {
        "linear".into()
    }
}

/// The logistic equation `x' = r x (1 − x)`, solution `x(t) = 1 / (1 + (1/x0 − 1) e^{−r t})`.
#[derive(Debug, Clone, Copy)]
pub struct Logistic {
    pub r: f64,
}

impl Logistic {
    pub fn exact(&self, x0: f64, t: f64) -> f64 {
        1.0 / (1.0 + (1.0 / x0 - 1.0) * (-self.r * t).exp())
    }
}

impl Model for Logistic {
    fn dim(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        dx[0] = self.r * x[0] * (1.0 - x[0]);
    }
    fn jacobian(&self, _t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        jac[(0, 0)] = self.r * (1.0 - 2.0 * x[0]);
    }
}

/// A nonlinear 2-D system with a closed-form solution, the rotating-and-decaying spiral
/// `x' = −ω y − x (x² + y²)`, `y' = ω x − y (x² + y²)`; in polar form `r' = −r³`, `θ' = ω`, so
/// `r(t) = r0 / sqrt(1 + 2 r0² t)` and `θ(t) = θ0 + ω t`.
#[derive(Debug, Clone, Copy)]
pub struct Spiral {
    pub omega: f64,
}

impl Spiral {
    pub fn exact(&self, x0: [f64; 2], t: f64) -> [f64; 2] {
        let r0 = x0[0].hypot(x0[1]);
        let th = x0[1].atan2(x0[0]) + self.omega * t;
        let r = r0 / (1.0 + 2.0 * r0 * r0 * t).sqrt();
        [r * th.cos(), r * th.sin()]
    }
}

impl Model for Spiral {
    fn dim(&self) -> usize {
        2
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        let r2 = x[0] * x[0] + x[1] * x[1];
        dx[0] = -self.omega * x[1] - x[0] * r2;
        dx[1] = self.omega * x[0] - x[1] * r2;
    }
    fn jacobian(&self, _t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        let (a, b) = (x[0], x[1]);
        let r2 = a * a + b * b;
        jac[(0, 0)] = -r2 - 2.0 * a * a;
        jac[(0, 1)] = -self.omega - 2.0 * a * b;
        jac[(1, 0)] = self.omega - 2.0 * a * b;
        jac[(1, 1)] = -r2 - 2.0 * b * b;
    }
}

/// Robertson's stiff chemical kinetics (Hairer & Wanner II, §IV.1):
/// `y1' = −0.04 y1 + 1e4 y2 y3`, `y2' = 0.04 y1 − 1e4 y2 y3 − 3e7 y2²`, `y3' = 3e7 y2²`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Robertson;

impl Robertson {
    /// Reference solution at t = 40 (Hairer & Wanner).
    pub const Y40: [f64; 3] = [0.715_827_068_7e0, 0.918_553_476_4e-5, 0.284_163_745_7e0];
}

impl Model for Robertson {
    fn dim(&self) -> usize {
        3
    }
    fn rhs(&self, _t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = -0.04 * y[0] + 1e4 * y[1] * y[2];
        dy[2] = 3e7 * y[1] * y[1];
        dy[1] = -dy[0] - dy[2];
    }
    fn jacobian(&self, _t: f64, y: &[f64], mut j: MatMut<'_, f64>) {
        j[(0, 0)] = -0.04;
        j[(0, 1)] = 1e4 * y[2];
        j[(0, 2)] = 1e4 * y[1];
        j[(2, 0)] = 0.0;
        j[(2, 1)] = 6e7 * y[1];
        j[(2, 2)] = 0.0;
        j[(1, 0)] = 0.04;
        j[(1, 1)] = -1e4 * y[2] - 6e7 * y[1];
        j[(1, 2)] = -1e4 * y[1];
    }
    fn name(&self) -> String {
        "robertson".into()
    }
}

/// `x' = x²`, which blows up at `t = 1/x0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Blowup;

impl Model for Blowup {
    fn dim(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        dx[0] = x[0] * x[0];
    }
    fn jacobian(&self, _t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        jac[(0, 0)] = 2.0 * x[0];
    }
}

/// The matrix exponential `e^A` by scaling and squaring with a Taylor series.
///
/// `A` is scaled by `2^{-s}` until `‖A‖₁ 2^{-s} ≤ 1/2`; the Taylor series is summed until its terms
/// stop changing the result (≤ 30 terms, truncation error < 1e-17 relative for that norm); then the
/// result is squared s times. Accurate to a few ulps times the condition of the problem, which the
/// tests check with `e^{A} e^{−A} = I` and diagonalisable cases.
pub fn expm(a: &Mat<f64>) -> Mat<f64> {
    let n = a.nrows();
    let norm1 = (0..n)
        .map(|j| (0..n).map(|i| a[(i, j)].abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let mut s = 0i32;
    while norm1 * 2f64.powi(-s) > 0.5 {
        s += 1;
    }
    let scale = 2f64.powi(-s);
    let as_ = Mat::<f64>::from_fn(n, n, |i, j| a[(i, j)] * scale);
    let mut result = Mat::<f64>::identity(n, n);
    let mut term = Mat::<f64>::identity(n, n);
    for k in 1..=30 {
        term = &term * &as_ * (1.0 / k as f64);
        result += &term;
        let tn = (0..n)
            .map(|j| (0..n).map(|i| term[(i, j)].abs()).sum::<f64>())
            .fold(0.0, f64::max);
        if tn < 1e-18 {
            break;
        }
    }
    for _ in 0..s {
        result = &result * &result;
    }
    result
}

/// Runs `f` in a fresh rayon pool of `threads` threads and returns its result — for tests that
/// results do not depend on the thread count (run once on one thread, once on several, compare
/// the bits). Panics if the pool cannot be built (a test helper, not for user input).
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("building a rayon pool")
        .install(f)
}
