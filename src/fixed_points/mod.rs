//! Fixed points of any [`Model`] (f(x) = 0) or discrete map (x = F(x), via [`crate::model::MapResidual`]), in
//! the spirit of FixedPointFinder (Golub & Sussillo 2018) but with the analytic Jacobian:
//!
//! * [`newton`]: damped Newton with backtracking on q(x) = ½‖f(x)‖²; when the Newton direction
//!   fails (singular or non-descent), a Levenberg–Marquardt step on q. Once full Newton steps
//!   contract ‖f‖ tenfold, the factorisation is reused (chord steps) for as long as that holds. Converges quadratically to
//!   true fixed points; stalls at minima of q with q > 0, which it reports as *slow points*.
//! * [`find_fixed_points`]: Newton from many initial states (given, random, or sampled from a
//!   trajectory) in parallel with rayon, keeping points with q below a tolerance, removing
//!   duplicates and outliers, and attaching each point's linear stability.

pub mod search;

use crate::error::{Error, Result};
use crate::model::organics::Organics;
use crate::model::{jacobian_mat, Map, MapResidual, Model, System};
use crate::stability::{analyze_jacobian, Stability, TimeKind};
use faer::linalg::solvers::Solve;
use faer::Mat;
use rayon::prelude::*;

/// Options of [`newton`].
#[derive(Debug, Clone)]
pub struct NewtonOptions {
    /// Converged when ‖f‖∞ ≤ this.
    pub tol: f64,
    pub max_iter: usize,
}

impl Default for NewtonOptions {
    fn default() -> Self {
        NewtonOptions {
            tol: 1e-12,
            max_iter: 100,
        }
    }
}

/// Result of [`newton`].
#[derive(Debug, Clone)]
pub struct NewtonResult {
    pub x: Vec<f64>,
    /// ‖f(x)‖∞.
    pub residual: f64,
    /// q = ½‖f(x)‖².
    pub q: f64,
    pub iterations: usize,
    pub converged: bool,
}

fn q_of(f: &[f64]) -> f64 {
    0.5 * f.iter().map(|v| v * v).sum::<f64>()
}

/// Damped Newton / Levenberg–Marquardt on f(x) = 0 from x0 (see the module documentation).
///
/// ```
/// use neurodyn::prelude::*;
/// let f = FlowFn::new(1, |_t, x, dx| dx[0] = x[0] * x[0] - 2.0);
/// let r = newton(&f, &[1.0], &NewtonOptions::default()).unwrap();
/// assert!(r.converged && (r.x[0] - 2f64.sqrt()).abs() < 1e-12);
/// ```
pub fn newton<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    opts: &NewtonOptions,
) -> Result<NewtonResult> {
    let n = model.dim();
    crate::error::ensure_state("x0", x0, n, "model")?;
    let mut x = x0.to_vec();
    let mut f = vec![0.0; n];
    let mut ft = vec![0.0; n];
    let mut xt = vec![0.0; n];
    model.rhs(0.0, &x, &mut f);
    let mut q = q_of(&f);
    let mut mu = 1e-3;
    let mut it = 0;
    let inf = |v: &[f64]| v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    // The last factorisation, kept while chord steps with it contract ‖f‖ at least tenfold.
    let mut chord: Option<faer::linalg::solvers::PartialPivLu<f64>> = None;
    while it < opts.max_iter && !(inf(&f) <= opts.tol) && q.is_finite() {
        it += 1;
        let rhs = Mat::<f64>::from_fn(n, 1, |i, _| -f[i]);
        if let Some(lu) = &chord {
            let dx = lu.solve(&rhs);
            for i in 0..n {
                xt[i] = x[i] + dx[(i, 0)];
            }
            model.rhs(0.0, &xt, &mut ft);
            let qt = q_of(&ft);
            if qt.is_finite() && qt <= 0.25 * q {
                std::mem::swap(&mut x, &mut xt);
                std::mem::swap(&mut f, &mut ft);
                q = qt;
                continue;
            }
            chord = None;
        }
        let j = jacobian_mat(model, 0.0, &x);
        let lu = j.partial_piv_lu();
        let dx = lu.solve(&rhs);
        let mut step: Vec<f64> = (0..n).map(|i| dx[(i, 0)]).collect();
        let mut accepted = false;
        if step.iter().all(|v| v.is_finite()) {
            // Backtracking on q along the Newton direction (a descent direction of q).
            let mut t = 1.0;
            for _ in 0..30 {
                for i in 0..n {
                    xt[i] = x[i] + t * step[i];
                }
                model.rhs(0.0, &xt, &mut ft);
                let qt = q_of(&ft);
                if qt.is_finite() && qt <= (1.0 - 1e-4 * t) * q {
                    accepted = true;
                    if t == 1.0 && qt <= 0.25 * q {
                        chord = Some(lu);
                    }
                    break;
                }
                t *= 0.5;
            }
        }
        if !accepted {
            // Levenberg–Marquardt: (JᵀJ + μ I) dx = −Jᵀ f, μ adapted.
            let g = j.transpose() * &rhs;
            let mut ok = false;
            for _ in 0..30 {
                let mut a = j.transpose() * &j;
                for r in 0..n {
                    a[(r, r)] += mu;
                }
                let d = a.partial_piv_lu().solve(&g);
                step = (0..n).map(|i| d[(i, 0)]).collect();
                for i in 0..n {
                    xt[i] = x[i] + step[i];
                }
                model.rhs(0.0, &xt, &mut ft);
                let qt = q_of(&ft);
                if qt.is_finite() && qt < q {
                    mu = (mu / 3.0).max(1e-12);
                    ok = true;
                    break;
                }
                mu *= 4.0;
            }
            if !ok {
                break; // a (local) minimum of q: a slow point if q > 0
            }
        }
        std::mem::swap(&mut x, &mut xt);
        std::mem::swap(&mut f, &mut ft);
        q = q_of(&f);
    }
    let residual = inf(&f);
    Ok(NewtonResult {
        converged: residual <= opts.tol,
        x,
        residual,
        q,
        iterations: it,
    })
}

/// A fixed point (or slow point) with its stability.
#[derive(Debug, Clone)]
pub struct FixedPoint {
    pub x: Vec<f64>,
    pub q: f64,
    pub residual: f64,
    /// True when ‖f‖∞ ≤ the Newton tolerance (false: a slow point, a minimum of q).
    pub converged: bool,
    pub stability: Stability,
    /// How many initial states led here.
    pub count: usize,
}

/// Options of [`find_fixed_points`].
#[derive(Debug, Clone)]
pub struct FinderOptions {
    pub newton: NewtonOptions,
    /// Keep points with q ≤ this (larger q: not even a slow point).
    pub q_tol: f64,
    /// Points closer than this (∞-norm, relative to 1 + ‖x‖∞) are one point.
    pub dedup_tol: f64,
    /// Drop points farther than this from the median of the initial states (∞-norm; `None`: keep).
    pub outlier_distance: Option<f64>,
    /// Also report slow points (q ≤ q_tol but not converged).
    pub keep_slow: bool,
    pub kind: TimeKind,
    /// Above this dimension the search is matrix-free: Newton–Krylov (GMRES on Jacobian-vector
    /// products) from each start, and the stability from the `leading` eigenvalues of largest
    /// growth rate by Arnoldi, instead of dense Newton and the full spectrum.
    pub dense_limit: usize,
    /// Eigenvalues computed per point on the matrix-free path.
    pub leading: usize,
    /// Called with the number of starts solved so far (a progress bar).
    pub progress: Option<crate::io::StepCallback>,
}

impl FinderOptions {
    /// With `f(starts solved so far)` called as the search goes (a progress bar).
    pub fn progress(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(crate::io::StepCallback(std::sync::Arc::new(f)));
        self
    }
}

impl Default for FinderOptions {
    fn default() -> Self {
        FinderOptions {
            newton: NewtonOptions::default(),
            q_tol: 1e-20,
            dedup_tol: 1e-7,
            outlier_distance: None,
            keep_slow: false,
            kind: TimeKind::Continuous,
            dense_limit: 1024,
            leading: 10,
            progress: None,
        }
    }
}

/// Fixed points reached by Newton from each of `starts`, deduplicated, with stability (sorted by
/// the first coordinate, then the second, for reproducible output).
///
/// ```
/// use neurodyn::prelude::*;
/// // x' = x − x³ has three fixed points: −1 and 1 (stable), 0 (unstable).
/// let f = FlowFn::new(1, |_t, x, dx| dx[0] = x[0] - x[0].powi(3))
///     .with_jacobian(|_t, x, mut j| j[(0, 0)] = 1.0 - 3.0 * x[0] * x[0]);
/// let pts = find_fixed_points(&f, &random_starts(1, 50, -2.0, 2.0, 7), &FinderOptions::default())
///     .unwrap();
/// let xs: Vec<f64> = pts.iter().map(|p| p.x[0]).collect();
/// assert_eq!(pts.len(), 3);
/// assert!((xs[0] + 1.0).abs() < 1e-12 && xs[1].abs() < 1e-12 && (xs[2] - 1.0).abs() < 1e-12);
/// assert!(pts[0].stability.class.is_stable() && !pts[1].stability.class.is_stable());
/// ```
pub fn find_fixed_points<M: Model + ?Sized>(
    model: &M,
    starts: &[Vec<f64>],
    opts: &FinderOptions,
) -> Result<Vec<FixedPoint>> {
    let n = model.dim();
    if starts.is_empty() {
        return Err(Error::invalid("starts", "no initial states"));
    }
    if let Some(s) = starts.iter().find(|s| s.len() != n) {
        return Err(Error::invalid(
            "starts",
            format!(
                "an initial state has length {}, the model has dimension {n}",
                s.len()
            ),
        ));
    }
    let matrix_free = n > opts.dense_limit;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let tick = || {
        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(cb) = &opts.progress {
            (cb.0)(k);
        }
    };
    let results: Vec<NewtonResult> = if matrix_free {
        // Each solve parallelises its own Jacobian-vector products.
        starts
            .iter()
            .map(|s| {
                crate::io::check_interrupt("fixed-point search stopped")?;
                newton_krylov_point(model, s, &opts.newton).inspect(|_| tick())
            })
            .collect::<Result<_>>()?
    } else {
        starts
            .par_iter()
            .map(|s| {
                crate::io::check_interrupt("fixed-point search stopped")?;
                newton(model, s, &opts.newton).inspect(|_| tick())
            })
            .collect::<Result<_>>()?
    };
    let median: Vec<f64> = (0..n)
        .map(|i| {
            let mut v: Vec<f64> = starts.iter().map(|s| s[i]).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        })
        .collect();
    let mut pts: Vec<FixedPoint> = vec![];
    for r in results {
        if !(r.q <= opts.q_tol) || !(r.converged || opts.keep_slow) {
            continue;
        }
        if let Some(d) = opts.outlier_distance {
            if r.x.iter().zip(&median).any(|(a, b)| (a - b).abs() > d) {
                continue;
            }
        }
        let scale = 1.0 + r.x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if let Some(p) = pts.iter_mut().find(|p| {
            p.x.iter()
                .zip(&r.x)
                .all(|(a, b)| (a - b).abs() <= opts.dedup_tol * scale)
        }) {
            p.count += 1;
            continue;
        }
        let stability = if matrix_free {
            leading_stability(model, &r.x, opts.kind, opts.leading)?
        } else {
            dense_stability(model, &r.x, opts.kind)?
        };
        pts.push(FixedPoint {
            x: r.x,
            q: r.q,
            residual: r.residual,
            converged: r.converged,
            stability,
            count: 1,
        });
    }
    pts.sort_by(|a, b| {
        a.x.iter()
            .zip(&b.x)
            .map(|(u, v)| u.total_cmp(v))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(pts)
}

/// The stability at `x` from the whole spectrum of the dense Jacobian (for a map's residual
/// F(x) − x, of the map's Jacobian J + I).
fn dense_stability<M: Model + ?Sized>(model: &M, x: &[f64], kind: TimeKind) -> Result<Stability> {
    let n = model.dim();
    let j = jacobian_mat(model, 0.0, x);
    match kind {
        TimeKind::Continuous => analyze_jacobian(j.as_ref(), TimeKind::Continuous, 1e-10),
        TimeKind::Discrete => {
            let d = Mat::<f64>::from_fn(n, n, |a, b| j[(a, b)] + if a == b { 1.0 } else { 0.0 });
            analyze_jacobian(d.as_ref(), TimeKind::Discrete, 1e-10)
        }
    }
}

/// Newton–Krylov from `x0` to the tolerance of `opts`, as a [`NewtonResult`].
fn newton_krylov_point<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    opts: &NewtonOptions,
) -> Result<NewtonResult> {
    let nk = crate::krylov::newton_krylov(
        model,
        x0,
        &crate::krylov::NewtonKrylovOptions {
            tol: opts.tol,
            max_newton: opts.max_iter,
            ..Default::default()
        },
    )?;
    let mut f = vec![0.0; x0.len()];
    model.rhs(0.0, &nk.x, &mut f);
    Ok(NewtonResult {
        q: q_of(&f),
        x: nk.x,
        residual: nk.residual,
        iterations: nk.newton_steps,
        converged: nk.converged,
    })
}

/// The `k` eigenvalues of largest growth rate at `x`, matrix-free, and the stability they
/// imply ([`classify`](crate::stability::classify)).
///
/// Continuous time: Arnoldi on J finds ρ ≈ |λ|max, then Arnoldi on I + J/ρ, whose eigenvalues
/// 1 + λ/ρ lie in the unit disc around 1 and are largest in modulus where Re λ is largest (to
/// first order in λ/ρ); the Ritz values map back as λ = ρ(μ − 1). Discrete time (the model is
/// F(x) − x): Arnoldi on J + I, the map's Jacobian, whose largest moduli are the growth rates.
pub fn leading_stability<M: Model + ?Sized>(
    model: &M,
    x: &[f64],
    kind: TimeKind,
    k: usize,
) -> Result<Stability> {
    use crate::krylov::{arnoldi, JacobianOperator, LinearOperator};
    struct Shifted<'a, M: Model + ?Sized> {
        jac: JacobianOperator<'a, M>,
        scale: f64,
    }
    impl<M: Model + ?Sized> LinearOperator for Shifted<'_, M> {
        fn dim(&self) -> usize {
            self.jac.dim()
        }
        fn apply(&self, v: &[f64], y: &mut [f64]) {
            self.jac.apply(v, y);
            for (yi, vi) in y.iter_mut().zip(v) {
                *yi = *yi * self.scale + vi;
            }
        }
    }
    let n = model.dim();
    let m = (250).min(n);
    let jac = JacobianOperator {
        model,
        x: x.to_vec(),
    };
    let values = match kind {
        TimeKind::Continuous => {
            let rho = arnoldi(&jac, 20.min(n), 1)?
                .values
                .first()
                .map_or(1.0, |v| v.norm());
            let rho = if rho > 0.0 && rho.is_finite() {
                rho
            } else {
                1.0
            };
            let r = arnoldi(
                &Shifted {
                    jac,
                    scale: 1.0 / rho,
                },
                m,
                2,
            )?;
            r.values
                .iter()
                .map(|mu| (mu - 1.0) * rho)
                .collect::<Vec<_>>()
        }
        TimeKind::Discrete => arnoldi(&Shifted { jac, scale: 1.0 }, m, 2)?.values,
    };
    // Sorted by growth, the k leading Ritz values (the best converged) decide.
    let mut lead = crate::stability::classify(values, kind, 1e-10).eigenvalues;
    lead.truncate(k.max(1));
    Ok(crate::stability::classify(lead, kind, 1e-10))
}

/// `count` initial states uniformly in the box `[lo, hi]^n`, seeded (ChaCha8).
pub fn random_starts(n: usize, count: usize, lo: f64, hi: f64, seed: u64) -> Vec<Vec<f64>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| (0..n).map(|_| rng.random_range(lo..=hi)).collect())
        .collect()
}

/// The ORGaNICs fixed point for general W_r (Heeger & Mackey 2019; Rawat et al. 2024): the
/// model's iterative scheme ([`Organics::fixed_point_iteration`]) polished by [`newton`] on the
/// ODE. Returns the state (y, a); when Newton does not converge, the scheme's iterate.
pub fn organics_iterative(model: &Organics, iterations: usize) -> Result<Vec<f64>> {
    let x = model.fixed_point_iteration(iterations)?;
    let nr = newton(model, &x, &NewtonOptions::default());
    Ok(nr.map(|r| r.x).unwrap_or(x))
}

/// The ORGaNICs-specific ways to a fixed point (Rawat, Heeger & Martiniani 2024), beside the
/// multi-start Newton search every model gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OrganicsMethod {
    /// The closed form for W_r = I: a* = (σ b0)² + W (b1 z)², y* = b1 z / √a*.
    ClosedForm,
    /// Every positive root of the quartic in s = √a of the one-unit (2-D) circuit.
    Quartic,
    /// The iterative scheme y ← (I − diag(1 − √a) W_r)⁻¹ b1 z, a ← (σ b0)² + W(a ⊙ y²), then
    /// Newton on the ODE (any W_r; the unrectified model).
    Iterative,
}

impl OrganicsMethod {
    pub fn name(self) -> &'static str {
        match self {
            OrganicsMethod::ClosedForm => "closed-form",
            OrganicsMethod::Quartic => "quartic",
            OrganicsMethod::Iterative => "iterative",
        }
    }
}

/// The candidate fixed points (states (y, a)) one ORGaNICs method gives; an error says why the
/// method does not apply (W_r ≠ I for the closed form, N ≠ 1 for the quartic, a rectified model
/// for the iterative scheme).
pub fn organics_candidates(model: &Organics, method: OrganicsMethod) -> Result<Vec<Vec<f64>>> {
    match method {
        OrganicsMethod::ClosedForm => {
            let (mut y, a) = model.fixed_point_identity()?;
            y.extend(a);
            Ok(vec![y])
        }
        OrganicsMethod::Quartic => {
            let n = model.n();
            let w_r = model.w_r[(0, 0)];
            if n != 1 {
                return Err(Error::invalid(
                    "method",
                    format!("the quartic is the one-unit (2-D) circuit's; this one has N = {n}"),
                ));
            }
            Ok(crate::model::organics::scalar_fixed_points(
                w_r,
                model.w[(0, 0)],
                model.b0[0],
                model.b1[0],
                model.sigma[0],
                model.z[0],
            )
            .into_iter()
            .map(|(y, a)| vec![y, a])
            .collect())
        }
        OrganicsMethod::Iterative => Ok(vec![organics_iterative(model, 50)?]),
    }
}

/// Fixed points `h = F_t(h)` of a map (Newton on the residual [`MapResidual`] `F_t(h) − h`), with
/// their stability as a map (|λ| of `D_t`): [`find_fixed_points`] with `opts.kind` set to
/// [`TimeKind::Discrete`].
pub fn find_map_fixed_points<F: Map + ?Sized>(
    map: &F,
    t: usize,
    starts: &[Vec<f64>],
    opts: &FinderOptions,
) -> Result<Vec<FixedPoint>> {
    let opts = FinderOptions {
        kind: TimeKind::Discrete,
        ..opts.clone()
    };
    find_fixed_points(&MapResidual { map, t }, starts, &opts)
}

/// Fixed points of a flow or a map ([`System`]): [`find_fixed_points`] or
/// [`find_map_fixed_points`] (at step 0).
pub fn find_system_fixed_points(
    system: &System,
    starts: &[Vec<f64>],
    opts: &FinderOptions,
) -> Result<Vec<FixedPoint>> {
    match system {
        System::Flow(m) => find_fixed_points(m, starts, opts),
        System::Map(m) => find_map_fixed_points(m, 0, starts, opts),
    }
}
