//! Periodic orbits and their Floquet multipliers, for any system of the crate.
//!
//! **Flows: limit cycles by single shooting.** A cycle of period T through x₀ solves
//! φ_T(x₀) − x₀ = 0, where φ_t is the flow; the phase condition f(x̂)·(x₀ − x̂) = 0 (x̂ the
//! current iterate) removes the freedom of sliding x₀ along the orbit. Newton's method on the
//! n + 1 unknowns (x₀, T) solves the bordered system
//!
//! ```text
//! [ M − I   f(φ_T(x₀)) ] [δx]     [ φ_T(x₀) − x₀ ]
//! [ f(x̂)ᵀ       0      ] [δT] = − [      0       ]
//! ```
//!
//! with the monodromy matrix M = ∂φ_T/∂x₀, the solution at T of the variational equation
//! Φ' = J(x(t)) Φ, Φ(0) = I (Seydel 2010, *Practical Bifurcation and Stability Analysis*, §7.3;
//! Kuznetsov 2004, *Elements of Applied Bifurcation Theory*, §1.5). The flow and its tangents
//! are integrated together by the classical Runge–Kutta method with `steps` steps per period:
//! the tangents use the stage states of the flow's own steps, so M is the exact derivative of
//! the discrete flow map that the shooting residual evaluates.
//!
//! The eigenvalues of M are the Floquet multipliers; one of them is 1 (the direction along the
//! orbit, [`Cycle::trivial`]), and the cycle is stable when every other has modulus below 1.
//! Up to [`CycleOptions::dense_limit`] states, M is formed (n tangent columns); above it the
//! search is matrix-free: each product M v integrates one tangent along the stored trajectory,
//! GMRES solves the bordered system, and Arnoldi on v ↦ M v gives the `leading` multipliers of
//! largest modulus.
//!
//! [`find_cycle_multiple`] cuts the orbit into m segments (multiple shooting) for cycles whose
//! multipliers are too large for one shot.
//!
//! **Maps: period-k points.** F^k(x) = x by Newton with the chain-rule Jacobian
//! D_{k−1} ⋯ D_0 − I, and the multipliers are the eigenvalues of D_{k−1} ⋯ D_0.

use crate::error::{Error, Result};
use crate::krylov::{arnoldi, gmres, LinearOperator};
use crate::model::{Map, Model};
use faer::linalg::solvers::Solve;
use faer::{c64, Mat, MatMut, MatRef};

/// Options of the cycle and periodic-point searches.
#[derive(Debug, Clone)]
pub struct CycleOptions {
    /// Runge–Kutta steps per period (h = T / steps).
    pub steps: usize,
    /// Converged when ‖φ_T(x₀) − x₀‖∞ ≤ tol · (1 + ‖x₀‖∞).
    pub tol: f64,
    /// Newton iterations at most.
    pub max_iter: usize,
    /// Above this dimension the search is matrix-free (GMRES and Arnoldi on M v).
    pub dense_limit: usize,
    /// Multipliers computed on the matrix-free path (largest modulus first).
    pub leading: usize,
}

impl Default for CycleOptions {
    fn default() -> Self {
        CycleOptions {
            steps: 1000,
            tol: 1e-10,
            max_iter: 40,
            dense_limit: 64,
            leading: 6,
        }
    }
}

/// A periodic orbit of a flow.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// A point of the orbit (the one the phase condition fixed).
    pub x0: Vec<f64>,
    /// The period T.
    pub period: f64,
    /// Floquet multipliers, largest modulus first: all n (dense), or the leading ones.
    pub multipliers: Vec<c64>,
    /// Index in `multipliers` of the trivial multiplier (the one nearest 1).
    pub trivial: usize,
    /// Per coordinate, the least and the largest value along the orbit.
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    /// ‖φ_T(x₀) − x₀‖∞ at the end.
    pub residual: f64,
    /// Newton iterations taken.
    pub iterations: usize,
}

impl Cycle {
    /// max − min per coordinate.
    pub fn amplitude(&self) -> Vec<f64> {
        self.max.iter().zip(&self.min).map(|(a, b)| a - b).collect()
    }
    /// The multipliers other than the trivial one.
    pub fn nontrivial(&self) -> Vec<c64> {
        let mut m = self.multipliers.clone();
        m.remove(self.trivial);
        m
    }
    /// Every nontrivial multiplier inside the unit circle.
    pub fn is_stable(&self) -> bool {
        self.nontrivial().iter().all(|m| m.norm() < 1.0)
    }
    /// The distance of the trivial multiplier from 1: a check of the integration's accuracy.
    pub fn trivial_error(&self) -> f64 {
        (self.multipliers[self.trivial] - c64::new(1.0, 0.0)).norm()
    }
}

/// One shooting pass: the Runge–Kutta stage states of every step (what the tangents are
/// integrated along), the end point and the range of each coordinate.
pub(crate) struct Pass {
    pub(crate) n: usize,
    h: f64,
    /// steps × 4 stage states of length n.
    stages: Vec<f64>,
    pub(crate) end: Vec<f64>,
    pub(crate) min: Vec<f64>,
    pub(crate) max: Vec<f64>,
}

/// `steps` classical Runge–Kutta steps of size h from x0: `stage(s)` sees every stage state, and
/// `step(k, x)` the state after step k + 1 (a trajectory that leaves the finite numbers is a failed
/// run). Returns the end state.
fn rk4<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    h: f64,
    steps: usize,
    mut stage: impl FnMut(&[f64]),
    mut step: impl FnMut(usize, &[f64]),
) -> Result<Vec<f64>> {
    let n = x0.len();
    let (mut x, mut s) = (x0.to_vec(), vec![0.0; n]);
    let mut k = [vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]];
    for j in 0..steps {
        let t = j as f64 * h;
        for (st, c) in [0.0, 0.5, 0.5, 1.0].into_iter().enumerate() {
            if st == 0 {
                s.copy_from_slice(&x);
            } else {
                for i in 0..n {
                    s[i] = x[i] + c * h * k[st - 1][i];
                }
            }
            stage(&s);
            model.rhs(t + c * h, &s, &mut k[st]);
        }
        for i in 0..n {
            x[i] += h / 6.0 * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i]);
        }
        if !x.iter().all(|v| v.is_finite()) {
            return Err(Error::failed(
                "cycle",
                format!("the trajectory left the finite numbers at t = {}", t + h),
            ));
        }
        step(j, &x);
    }
    Ok(x)
}

pub(crate) fn flow_pass<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    period: f64,
    steps: usize,
) -> Result<Pass> {
    let n = x0.len();
    crate::memory::check("steps", steps as u128 * 4 * n as u128 * 8, None)?;
    let h = period / steps as f64;
    let mut stages = Vec::with_capacity(steps * 4 * n);
    let (mut min, mut max) = (x0.to_vec(), x0.to_vec());
    let end = rk4(
        model,
        x0,
        h,
        steps,
        |s| stages.extend_from_slice(s),
        |_, x| {
            for i in 0..n {
                min[i] = min[i].min(x[i]);
                max[i] = max[i].max(x[i]);
            }
        },
    )?;
    Ok(Pass {
        n,
        h,
        stages,
        end,
        min,
        max,
    })
}

/// Columns per parallel block of [`Pass::tangents`].
const TANGENT_BLOCK: usize = 32;

impl Pass {
    /// Φ(T) V for the n × k block V: the tangents integrated along the stored stages by the same
    /// Runge–Kutta method (the exact derivative of the discrete flow map). The columns are
    /// independent: blocks of [`TANGENT_BLOCK`] columns run in parallel (a fixed width, so the
    /// bits do not depend on the number of threads).
    pub(crate) fn tangents<M: Model + ?Sized>(&self, model: &M, v: MatRef<'_, f64>) -> Mat<f64> {
        use rayon::prelude::*;
        let (n, k) = (self.n, v.ncols());
        if k <= TANGENT_BLOCK {
            return self.tangents_block(model, v);
        }
        let starts: Vec<usize> = (0..k).step_by(TANGENT_BLOCK).collect();
        let blocks: Vec<Mat<f64>> = starts
            .par_iter()
            .map(|&c| self.tangents_block(model, v.subcols(c, TANGENT_BLOCK.min(k - c))))
            .collect();
        let mut out = Mat::<f64>::zeros(n, k);
        for (&c, b) in starts.iter().zip(&blocks) {
            out.as_mut().subcols_mut(c, b.ncols()).copy_from(b);
        }
        out
    }

    fn tangents_block<M: Model + ?Sized>(&self, model: &M, v: MatRef<'_, f64>) -> Mat<f64> {
        let (n, k, h) = (self.n, v.ncols(), self.h);
        let mut y = v.to_owned();
        let mut ks: [Mat<f64>; 4] = std::array::from_fn(|_| Mat::zeros(n, k));
        let mut arg = Mat::<f64>::zeros(n, k);
        for (step, st) in self.stages.chunks(4 * n).enumerate() {
            let t = step as f64 * h;
            for (stage, c) in [0.0, 0.5, 0.5, 1.0].into_iter().enumerate() {
                let s = &st[stage * n..(stage + 1) * n];
                if stage == 0 {
                    arg.copy_from(&y);
                } else {
                    let prev = &ks[stage - 1];
                    for j in 0..k {
                        for i in 0..n {
                            arg[(i, j)] = y[(i, j)] + c * h * prev[(i, j)];
                        }
                    }
                }
                jac_times(model, t + c * h, s, arg.as_ref(), ks[stage].as_mut());
            }
            for j in 0..k {
                for i in 0..n {
                    y[(i, j)] += h / 6.0
                        * (ks[0][(i, j)]
                            + 2.0 * ks[1][(i, j)]
                            + 2.0 * ks[2][(i, j)]
                            + ks[3][(i, j)]);
                }
            }
        }
        y
    }
}

impl Pass {
    /// ∂φ_T/∂p: the sensitivity s' = J s + ∂f/∂p, s(0) = 0, along the stored stages by the same
    /// Runge–Kutta method (`dp(x, out)` writes ∂f/∂p at x).
    pub(crate) fn sensitivity<M: Model + ?Sized>(
        &self,
        model: &M,
        dp: &dyn Fn(&[f64], &mut [f64]),
    ) -> Vec<f64> {
        let (n, h) = (self.n, self.h);
        let mut y = vec![0.0; n];
        let mut ks = [vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        let (mut arg, mut fp) = (vec![0.0; n], vec![0.0; n]);
        for (step, st) in self.stages.chunks(4 * n).enumerate() {
            let t = step as f64 * h;
            for (stage, c) in [0.0, 0.5, 0.5, 1.0].into_iter().enumerate() {
                let s = &st[stage * n..(stage + 1) * n];
                for i in 0..n {
                    arg[i] = if stage == 0 {
                        y[i]
                    } else {
                        y[i] + c * h * ks[stage - 1][i]
                    };
                }
                model.jvp(t + c * h, s, &arg, &mut ks[stage]);
                dp(s, &mut fp);
                for i in 0..n {
                    ks[stage][i] += fp[i];
                }
            }
            for i in 0..n {
                y[i] += h / 6.0 * (ks[0][i] + 2.0 * ks[1][i] + 2.0 * ks[2][i] + ks[3][i]);
            }
        }
        y
    }
}

/// J(t, x) V: one JVP for a single contiguous column, the model's block product otherwise.
fn jac_times<M: Model + ?Sized>(
    model: &M,
    t: f64,
    x: &[f64],
    v: MatRef<'_, f64>,
    mut out: MatMut<'_, f64>,
) {
    if v.ncols() == 1 {
        if let (Some(vc), Some(oc)) = (
            v.col(0).try_as_col_major(),
            out.as_mut().col_mut(0).try_as_col_major_mut(),
        ) {
            return model.jvp(t, x, vc.as_slice(), oc.as_slice_mut());
        }
    }
    model.jac_mul_mat(t, x, v, out);
}

/// The monodromy matrix M = ∂φ_T/∂x₀ of a flow from x₀ over [0, T] (`steps` Runge–Kutta steps)
/// and the end point φ_T(x₀).
pub fn monodromy<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    period: f64,
    steps: usize,
) -> Result<(Vec<f64>, Mat<f64>)> {
    check_shooting(model.dim(), x0, period, steps)?;
    crate::memory::check("steps", (model.dim() as u128).pow(2) * 8 * 8, None)?;
    let pass = flow_pass(model, x0, period, steps)?;
    let m = pass.tangents(model, Mat::<f64>::identity(x0.len(), x0.len()).as_ref());
    Ok((pass.end, m))
}

fn check_shooting(n: usize, x0: &[f64], period: f64, steps: usize) -> Result<()> {
    if x0.len() != n {
        return Err(Error::invalid(
            "x0",
            format!("has length {}, the system has dimension {n}", x0.len()),
        ));
    }
    crate::error::ensure_finite("x0", x0)?;
    crate::error::ensure_positive("period", period)?;
    if steps == 0 {
        return Err(Error::invalid("steps", "need at least one step per period"));
    }
    Ok(())
}

/// The bordered shooting operator (v, τ) ↦ ((M − I) v + g τ, cᵀ v), M v by one tangent pass.
struct Bordered<'a, M: Model + ?Sized> {
    model: &'a M,
    pass: &'a Pass,
    g: Vec<f64>,
    c: Vec<f64>,
}

impl<M: Model + ?Sized> LinearOperator for Bordered<'_, M> {
    fn dim(&self) -> usize {
        self.pass.n + 1
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        let n = self.pass.n;
        let mv = self
            .pass
            .tangents(self.model, MatRef::from_column_major_slice(&x[..n], n, 1));
        for i in 0..n {
            y[i] = mv[(i, 0)] - x[i] + self.g[i] * x[n];
        }
        y[n] = self.c.iter().zip(&x[..n]).map(|(a, b)| a * b).sum();
    }
}

/// v ↦ M v along a stored pass.
struct MonodromyOperator<'a, M: Model + ?Sized> {
    model: &'a M,
    pass: &'a Pass,
}

impl<M: Model + ?Sized> LinearOperator for MonodromyOperator<'_, M> {
    fn dim(&self) -> usize {
        self.pass.n
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        let n = self.pass.n;
        let mv = self
            .pass
            .tangents(self.model, MatRef::from_column_major_slice(x, n, 1));
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = mv[(i, 0)];
        }
    }
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// The limit cycle of `model` through a point near `x0`, of period near `period`, by Newton's
/// method on the shooting system (see the module documentation). Errors: invalid input names its
/// field; no convergence within `max_iter` iterations is a failed run.
pub fn find_cycle<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    period: f64,
    opts: &CycleOptions,
) -> Result<Cycle> {
    let n = model.dim();
    check_shooting(n, x0, period, opts.steps)?;
    let dense = n <= opts.dense_limit;
    let (mut x, mut t) = (x0.to_vec(), period);
    let mut f0 = vec![0.0; n];
    let mut g = vec![0.0; n];
    for it in 0..=opts.max_iter {
        // T → 0 solves φ_T(x) = x at any x: a period collapsing that way is no cycle.
        if t < 1e-3 * period {
            return Err(Error::failed(
                "cycle",
                format!(
                    "the period collapsed from {period} to {t} (T → 0 solves φ_T(x) = x \
                     trivially): start nearer the cycle, or for a strongly repelling one use \
                     multiple shooting (find_cycle_multiple)"
                ),
            ));
        }
        let pass = flow_pass(model, &x, t, opts.steps)?;
        let r: Vec<f64> = pass.end.iter().zip(&x).map(|(a, b)| a - b).collect();
        let res = inf_norm(&r);
        let m = dense.then(|| pass.tangents(model, Mat::<f64>::identity(n, n).as_ref()));
        if res <= opts.tol * (1.0 + inf_norm(&x)) {
            let multipliers = match &m {
                Some(m) => {
                    let mut e = crate::stability::eigenvalues(m.as_ref())?;
                    e.sort_by(|a, b| b.norm().total_cmp(&a.norm()));
                    e
                }
                None => {
                    let op = MonodromyOperator { model, pass: &pass };
                    let steps = (3 * opts.leading).max(20).min(n);
                    let mut ritz = arnoldi(&op, steps, 0)?.values;
                    ritz.truncate(opts.leading.min(ritz.len()));
                    ritz
                }
            };
            let trivial = trivial_index(&multipliers);
            return Ok(Cycle {
                x0: x,
                period: t,
                multipliers,
                trivial,
                min: pass.min,
                max: pass.max,
                residual: res,
                iterations: it,
            });
        }
        if it == opts.max_iter {
            break;
        }
        model.rhs(0.0, &x, &mut f0);
        model.rhs(t, &pass.end, &mut g);
        let mut b: Vec<f64> = r.iter().map(|v| -v).collect();
        b.push(0.0);
        let step: Vec<f64> = match &m {
            Some(m) => {
                let mut a = Mat::<f64>::zeros(n + 1, n + 1);
                for j in 0..n {
                    for i in 0..n {
                        a[(i, j)] = m[(i, j)] - if i == j { 1.0 } else { 0.0 };
                    }
                    a[(n, j)] = f0[j];
                    a[(j, n)] = g[j];
                }
                let rhs = Mat::<f64>::from_fn(n + 1, 1, |i, _| b[i]);
                let sol = a.partial_piv_lu().solve(&rhs);
                (0..=n).map(|i| sol[(i, 0)]).collect()
            }
            None => {
                let op = Bordered {
                    model,
                    pass: &pass,
                    g: g.clone(),
                    c: f0.clone(),
                };
                gmres(&op, &b, 1e-10, 60, 600).x
            }
        };
        if !step.iter().all(|v| v.is_finite()) {
            break;
        }
        // Keep the period positive: halve a step that would make it ≤ 0.
        let mut lambda = 1.0;
        while t + lambda * step[n] <= 0.0 && lambda > 1e-6 {
            lambda *= 0.5;
        }
        for i in 0..n {
            x[i] += lambda * step[i];
        }
        t += lambda * step[n];
    }
    Err(Error::failed(
        "cycle",
        format!(
            "no periodic orbit found near T = {period} within {} Newton iterations (start on the cycle: the end of a long simulation; give a better period)",
            opts.max_iter
        ),
    ))
}

/// A period guess from a trajectory: integrate from `x` with `dt` (Runge–Kutta) for `time`,
/// and return the time of the first return to the section through x orthogonal to f(x)
/// (crossed in the same direction) that comes about as close to x as the closest one (within
/// 10⁻³ of the orbit's size). None when the trajectory never returns.
pub fn estimate_period<M: Model + ?Sized>(
    model: &M,
    x: &[f64],
    time: f64,
    dt: f64,
) -> Result<Option<f64>> {
    crate::error::ensure_positive("dt", dt)?;
    crate::error::ensure_positive("time", time)?;
    let n = model.dim();
    let steps = (time / dt).ceil() as usize;
    let mut f0 = vec![0.0; n];
    model.rhs(0.0, x, &mut f0);
    let section = |s: &[f64]| -> f64 {
        s.iter()
            .zip(x)
            .zip(&f0)
            .map(|((a, b), f)| (a - b) * f)
            .sum()
    };
    // Upward crossings of the section (time, distance from x), and the orbit's size.
    let mut crossings: Vec<(f64, f64)> = vec![];
    let (mut prev, mut size) = (0.0, 0.0f64);
    rk4(
        model,
        x,
        dt,
        steps,
        |_| {},
        |j, s| {
            let v = section(s);
            let d = s
                .iter()
                .zip(x)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            size = size.max(d);
            if j > 0 && prev < 0.0 && v >= 0.0 {
                crossings.push(((j as f64 + 1.0 - v / (v - prev)) * dt, d));
            }
            prev = v;
        },
    )?;
    // The first return about as close as the closest one (later ones are multiples of it).
    let closest = crossings.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
    Ok(crossings
        .iter()
        .find(|c| c.1 <= closest + 1e-3 * size)
        .map(|c| c.0))
}

/// A periodic point of a map: F^k(x) = x.
#[derive(Debug, Clone)]
pub struct PeriodicPoint {
    pub x: Vec<f64>,
    /// The period k.
    pub k: usize,
    /// Eigenvalues of D_{k−1} ⋯ D_0, largest modulus first.
    pub multipliers: Vec<c64>,
    /// ‖F^k(x) − x‖∞.
    pub residual: f64,
    pub iterations: usize,
}

impl PeriodicPoint {
    /// Every multiplier inside the unit circle.
    pub fn is_stable(&self) -> bool {
        self.multipliers.iter().all(|m| m.norm() < 1.0)
    }
}

/// The index of the multiplier nearest 1 (the trivial one, along the orbit).
pub(crate) fn trivial_index(multipliers: &[c64]) -> usize {
    let d = |m: &c64| (*m - c64::new(1.0, 0.0)).norm();
    (0..multipliers.len())
        .min_by(|&a, &b| d(&multipliers[a]).total_cmp(&d(&multipliers[b])))
        .unwrap_or(0)
}

/// A limit cycle by **multiple shooting**: the orbit cut into m = `starts.len()` segments of
/// T/m, each integrated from its own start, for cycles whose multipliers are too large for
/// single shooting (an unstable cycle with multiplier 10¹⁶ loses every digit in φ_T(x₀) − x₀;
/// over T/m each segment amplifies errors by only the m-th root). Newton's method on the
/// m n + 1 unknowns (x₀, …, x_{m−1}, T):
///
/// ```text
/// φ_{T/m}(x_i) − x_{i+1 mod m} = 0   (i = 0 … m − 1),    f(x̂₀)·(x₀ − x̂₀) = 0,
/// ```
///
/// each row block [M_i, −I, f(φ_{T/m}(x_i))/m] with M_i the segment's monodromy (Seydel 2010,
/// §7.3; Ascher, Mattheij & Russell 1995, *Numerical Solution of Boundary Value Problems*, §4.3).
/// `starts`: the segments' first points around the orbit in time order (a guess: from a
/// simulation, or points on an approximate closed curve); `opts.steps` RK4 steps per period in
/// all. The multipliers are the eigenvalues of M_{m−1} ⋯ M₀ (its largest ones are accurate; the
/// trivial one carries an absolute error of ε ‖M‖, so on a strongly unstable cycle it is not 1).
pub fn find_cycle_multiple<M: Model + ?Sized>(
    model: &M,
    starts: &[Vec<f64>],
    period: f64,
    opts: &CycleOptions,
) -> Result<Cycle> {
    let n = model.dim();
    let m = starts.len();
    if m < 2 {
        return Err(Error::invalid(
            "starts",
            "multiple shooting needs at least 2 segments (use find_cycle for one)",
        ));
    }
    for s in starts {
        check_shooting(n, s, period, opts.steps)?;
    }
    let size = m as u128 * n as u128 + 1;
    crate::memory::check(
        "starts",
        size * size * 8 * 2 + (m * n * n) as u128 * 8,
        None,
    )?;
    let seg_steps = opts.steps.div_ceil(m).max(1);
    let mut xs: Vec<Vec<f64>> = starts.to_vec();
    let mut t = period;
    let (mut f0, mut g) = (vec![0.0; n], vec![0.0; n]);
    // The segments' passes and residual at (xs, t), or None where a trajectory leaves the
    // finite numbers (a Newton step too long for a repelling cycle).
    let evaluate = |xs: &[Vec<f64>], t: f64| -> Option<(Vec<Pass>, Vec<f64>)> {
        if !(t > 0.0 && t.is_finite()) {
            return None;
        }
        let passes: Vec<Pass> = xs
            .iter()
            .map(|x| flow_pass(model, x, t / m as f64, seg_steps))
            .collect::<Result<_>>()
            .ok()?;
        let mut r = vec![0.0; m * n];
        for i in 0..m {
            let next = &xs[(i + 1) % m];
            for k in 0..n {
                r[i * n + k] = passes[i].end[k] - next[k];
            }
        }
        r.iter().all(|v| v.is_finite()).then_some((passes, r))
    };
    let (mut passes, mut r) = evaluate(&xs, t).ok_or_else(|| {
        Error::failed(
            "cycle",
            "the trajectory from a start left the finite numbers",
        )
    })?;
    for it in 0..=opts.max_iter {
        let res = inf_norm(&r);
        let scale = 1.0 + xs.iter().map(|x| inf_norm(x)).fold(0.0, f64::max);
        let ms: Vec<Mat<f64>> = passes
            .iter()
            .map(|p| p.tangents(model, Mat::<f64>::identity(n, n).as_ref()))
            .collect();
        if res <= opts.tol * scale {
            let mut prod = Mat::<f64>::identity(n, n);
            for mi in &ms {
                prod = mi * &prod;
            }
            let mut multipliers = crate::stability::eigenvalues(prod.as_ref())?;
            multipliers.sort_by(|a, b| b.norm().total_cmp(&a.norm()));
            let trivial = trivial_index(&multipliers);
            let (mut min, mut max) = (passes[0].min.clone(), passes[0].max.clone());
            for p in &passes[1..] {
                for k in 0..n {
                    min[k] = min[k].min(p.min[k]);
                    max[k] = max[k].max(p.max[k]);
                }
            }
            return Ok(Cycle {
                x0: xs[0].clone(),
                period: t,
                multipliers,
                trivial,
                min,
                max,
                residual: res,
                iterations: it,
            });
        }
        if it == opts.max_iter {
            break;
        }
        // The bordered block system, dense: rows i n .. (i+1) n for segment i, then the phase row.
        let dim = m * n + 1;
        let mut a = Mat::<f64>::zeros(dim, dim);
        for i in 0..m {
            let j = (i + 1) % m;
            model.rhs(0.0, &passes[i].end, &mut g);
            for row in 0..n {
                for col in 0..n {
                    a[(i * n + row, i * n + col)] += ms[i][(row, col)];
                }
                a[(i * n + row, j * n + row)] -= 1.0;
                a[(i * n + row, m * n)] = g[row] / m as f64;
            }
        }
        model.rhs(0.0, &xs[0], &mut f0);
        for col in 0..n {
            a[(m * n, col)] = f0[col];
        }
        let rhs = Mat::<f64>::from_fn(dim, 1, |i, _| if i < m * n { -r[i] } else { 0.0 });
        let d = a.partial_piv_lu().solve(&rhs);
        if !(0..dim).all(|i| d[(i, 0)].is_finite()) {
            break;
        }
        // Damped: the step is halved while a trajectory blows up or the residual more than
        // doubles (a repelling cycle punishes overshoot with finite-time escape).
        let mut lambda = 1.0;
        let accepted = loop {
            let trial: Vec<Vec<f64>> = xs
                .iter()
                .enumerate()
                .map(|(i, x)| (0..n).map(|k| x[k] + lambda * d[(i * n + k, 0)]).collect())
                .collect();
            let tt = t + lambda * d[(m * n, 0)];
            if let Some((p, rr)) = evaluate(&trial, tt) {
                if inf_norm(&rr) <= 2.0 * res || lambda < 1e-3 {
                    break Some((trial, tt, p, rr));
                }
            }
            lambda *= 0.5;
            if lambda < 1e-3 {
                break None;
            }
        };
        let Some((trial, tt, p, rr)) = accepted else {
            break;
        };
        (xs, t, passes, r) = (trial, tt, p, rr);
    }
    Err(Error::failed(
        "cycle",
        format!(
            "multiple shooting ({m} segments) did not converge in {} Newton iterations",
            opts.max_iter
        ),
    ))
}

/// F^k and its Jacobian D_{k−1} ⋯ D_0 at x (from step t0).
fn map_power<F: Map + ?Sized>(map: &F, t0: usize, x: &[f64], k: usize) -> (Vec<f64>, Mat<f64>) {
    let n = x.len();
    let mut h = x.to_vec();
    let mut p = Mat::<f64>::identity(n, n);
    let mut d = Mat::<f64>::zeros(n, n);
    for s in 0..k {
        map.step_jacobian(t0 + s, &mut h, d.as_mut());
        p = &d * &p;
    }
    (h, p)
}

/// A period-`k` point of `map` near `x0` by Newton's method on F^k(x) − x = 0.
pub fn periodic_point<F: Map + ?Sized>(
    map: &F,
    x0: &[f64],
    k: usize,
    opts: &CycleOptions,
) -> Result<PeriodicPoint> {
    let n = map.dim();
    if k == 0 {
        return Err(Error::invalid("period", "must be at least 1"));
    }
    check_shooting(n, x0, 1.0, 1)?;
    crate::memory::check("x0", (n as u128).pow(2) * 8 * 4, None)?;
    let mut x = x0.to_vec();
    for it in 0..=opts.max_iter {
        let (fx, p) = map_power(map, 0, &x, k);
        let r: Vec<f64> = fx.iter().zip(&x).map(|(a, b)| a - b).collect();
        let res = inf_norm(&r);
        if res <= opts.tol * (1.0 + inf_norm(&x)) {
            let mut multipliers = crate::stability::eigenvalues(p.as_ref())?;
            multipliers.sort_by(|a, b| b.norm().total_cmp(&a.norm()));
            return Ok(PeriodicPoint {
                x,
                k,
                multipliers,
                residual: res,
                iterations: it,
            });
        }
        let a = Mat::<f64>::from_fn(n, n, |i, j| p[(i, j)] - if i == j { 1.0 } else { 0.0 });
        let rhs = Mat::<f64>::from_fn(n, 1, |i, _| -r[i]);
        let dx = a.partial_piv_lu().solve(&rhs);
        if !(0..n).all(|i| dx[(i, 0)].is_finite()) {
            break;
        }
        for i in 0..n {
            x[i] += dx[(i, 0)];
        }
    }
    Err(Error::failed(
        "periodic point",
        format!(
            "no period-{k} point found within {} Newton iterations",
            opts.max_iter
        ),
    ))
}
