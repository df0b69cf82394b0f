//! Continuation of limit cycles in one parameter, and the switch onto a cycle branch at a Hopf
//! point.
//!
//! A branch point is (x₀, T, p) with φ_T(x₀; p) = x₀ (the shooting of [`crate::cycles`]), the
//! phase condition f(x̂; p̂)·(x₀ − x̂) = 0 against the previous point, and the pseudo-arclength
//! condition τ·(y − y_prev) = Δs along the branch's unit tangent τ (Keller 1977; Seydel 2010,
//! §7.4). The Newton corrector solves the (n + 2)-square system
//!
//! ```text
//! [ M − I   f(φ_T)   ∂φ_T/∂p ] [δx]     [ φ_T(x₀) − x₀ ]
//! [ f̂ᵀ        0        0     ] [δT] = − [ f̂·(x₀ − x̂)   ]
//! [ τ_xᵀ     τ_T      τ_p    ] [δp]     [ τ·(y − y₀) − Δs ]
//! ```
//!
//! with the monodromy matrix M and the parameter sensitivity ∂φ_T/∂p integrated with the flow (the
//! same Runge–Kutta steps), so the branch passes cycle folds. At every point: the period, the range
//! of each coordinate along the orbit and the Floquet multipliers. Between two points the
//! multipliers say what happened, located by linear interpolation in |μ| − 1 (or in τ_p for folds):
//! a **cycle fold** (τ_p changes sign), **period doubling** (a real multiplier through −1) and a
//! **Neimark–Sacker** point (a complex pair through the unit circle); a branch whose period blows
//! up while the parameter stands still ends at an **infinite-period** point (a homoclinic orbit or
//! a saddle-node on the cycle). Dense at every size: each Newton step integrates the n tangent
//! columns of M with the flow (O(steps · n³) for a dense Jacobian, the products through the
//! model's `jac_mul_mat`); the memory it needs (the stored Runge–Kutta stages and a few n × n
//! matrices) is checked before it starts.

use super::Parametrised;
use crate::cycles::{find_cycle, flow_pass, Cycle, CycleOptions};
use crate::error::{Error, Result};
use crate::io::{Column, Table};
use crate::model::Model;
use crate::stability::TimeKind;
use faer::linalg::solvers::Solve;
use faer::{c64, Mat};

/// A parametrised flow at a fixed parameter, as a [`Model`].
struct AtParam<'a, P: Parametrised + ?Sized> {
    sys: &'a P,
    p: f64,
}

impl<P: Parametrised + ?Sized> Model for AtParam<'_, P> {
    fn dim(&self) -> usize {
        self.sys.dim()
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        self.sys.eval(x, self.p, dx)
    }
    fn jacobian(&self, _t: f64, x: &[f64], jac: faer::MatMut<'_, f64>) {
        self.sys.jacobian(x, self.p, jac)
    }
}

/// The flow of `sys` at the parameter value `p` (what [`find_cycle`] takes).
pub fn flow_at<P: Parametrised + ?Sized>(sys: &P, p: f64) -> impl Model + '_ {
    AtParam { sys, p }
}

/// Options of [`continue_cycles`].
#[derive(Debug, Clone)]
pub struct CycleContinuationOptions {
    /// Shooting: steps per period, tolerance, Newton iterations.
    pub cycle: CycleOptions,
    /// The parameter interval: the branch stops when p leaves [min(from, to), max(from, to)].
    pub to: f64,
    /// First, smallest and largest arclength step.
    pub ds: f64,
    pub ds_min: f64,
    pub ds_max: f64,
    /// Points at most.
    pub max_points: usize,
}

impl Default for CycleContinuationOptions {
    fn default() -> Self {
        CycleContinuationOptions {
            cycle: CycleOptions::default(),
            to: 1.0,
            ds: 0.01,
            ds_min: 1e-6,
            ds_max: 0.1,
            max_points: 200,
        }
    }
}

/// One point of a cycle branch.
#[derive(Debug, Clone)]
pub struct CyclePoint {
    pub p: f64,
    pub cycle: Cycle,
}

/// What a change of the multipliers between two points means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleEventKind {
    /// The branch turns back in the parameter (a multiplier through +1).
    Fold,
    /// A real multiplier through −1: a cycle of twice the period is born.
    PeriodDoubling,
    /// A complex pair through the unit circle: a torus is born.
    NeimarkSacker,
    /// The period grows without bound while the parameter stands still: the cycle ends in a
    /// homoclinic orbit or a saddle-node on the cycle (where the branch stops).
    InfinitePeriod,
}

impl CycleEventKind {
    pub fn name(self) -> &'static str {
        match self {
            CycleEventKind::Fold => "cycle_fold",
            CycleEventKind::PeriodDoubling => "period_doubling",
            CycleEventKind::NeimarkSacker => "neimark_sacker",
            CycleEventKind::InfinitePeriod => "infinite_period",
        }
    }
}

/// A detected event: between points `index − 1` and `index`, at about parameter `p`.
#[derive(Debug, Clone)]
pub struct CycleEvent {
    pub kind: CycleEventKind,
    pub p: f64,
    pub index: usize,
    /// The period there (interpolated).
    pub period: f64,
}

/// A continued cycle branch.
#[derive(Debug, Clone)]
pub struct CycleBranch {
    pub points: Vec<CyclePoint>,
    pub events: Vec<CycleEvent>,
    pub param: String,
    /// Why it ended.
    pub stop: String,
}

impl CycleBranch {
    /// One row per point: `param`, `period`, `amplitude` (the largest max − min over the
    /// coordinates), `stable`, `max_abs_multiplier` (nontrivial), `residual`, then `min_i`/`max_i`.
    pub fn table(&self) -> Table {
        let n = self.points.first().map_or(0, |p| p.cycle.x0.len());
        let col = |f: &dyn Fn(&CyclePoint) -> f64| Column::F64(self.points.iter().map(f).collect());
        let mut t = Table::new();
        t.push("param", col(&|q| q.p))
            .push("period", col(&|q| q.cycle.period))
            .push(
                "amplitude",
                col(&|q| q.cycle.amplitude().into_iter().fold(0.0, f64::max)),
            )
            .push(
                "stable",
                Column::I64(
                    self.points
                        .iter()
                        .map(|q| i64::from(q.cycle.is_stable()))
                        .collect(),
                ),
            )
            .push(
                "max_abs_multiplier",
                col(&|q| {
                    q.cycle
                        .nontrivial()
                        .iter()
                        .map(|m| m.norm())
                        .fold(0.0, f64::max)
                }),
            )
            .push("residual", col(&|q| q.cycle.residual));
        for i in 0..n {
            t.push(&format!("min_{i}"), col(&|q| q.cycle.min[i]));
            t.push(&format!("max_{i}"), col(&|q| q.cycle.max[i]));
        }
        t
    }
    /// One row per event: `kind`, `param`, `period`, `index`.
    pub fn events_table(&self) -> Table {
        let mut t = Table::new();
        t.push(
            "kind",
            Column::Str(
                self.events
                    .iter()
                    .map(|e| e.kind.name().to_string())
                    .collect(),
            ),
        )
        .push(
            "param",
            Column::F64(self.events.iter().map(|e| e.p).collect()),
        )
        .push(
            "period",
            Column::F64(self.events.iter().map(|e| e.period).collect()),
        )
        .push(
            "index",
            Column::I64(self.events.iter().map(|e| e.index as i64).collect()),
        );
        t
    }
}

/// The residual, the (n + 2)-square Jacobian of the shooting and phase rows, and the cycle data
/// at y = (x₀, T, p) (`xh`, `fh`: the phase condition's point and vector).
struct Shot {
    r: Vec<f64>,
    /// [M − I, f(φ_T), ∂φ_T/∂p; f̂ᵀ, 0, 0] ((n + 1) × (n + 2)).
    a: Mat<f64>,
    m: Mat<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

fn shoot<P: Parametrised + ?Sized>(
    sys: &P,
    y: &[f64],
    xh: &[f64],
    fh: &[f64],
    steps: usize,
) -> Result<Shot> {
    let n = sys.dim();
    let (x, t, p) = (&y[..n], y[n], y[n + 1]);
    let model = AtParam { sys, p };
    let pass = flow_pass(&model, x, positive_period(t)?, steps)?;
    let m = pass.tangents(&model, Mat::<f64>::identity(n, n).as_ref());
    let sp = pass.sensitivity(&model, &|s, out| sys.dp(s, p, out));
    let mut g = vec![0.0; n];
    sys.eval(&pass.end, p, &mut g);
    let mut a = Mat::<f64>::zeros(n + 1, n + 2);
    for j in 0..n {
        for i in 0..n {
            a[(i, j)] = m[(i, j)] - if i == j { 1.0 } else { 0.0 };
        }
        a[(j, n)] = g[j];
        a[(j, n + 1)] = sp[j];
        a[(n, j)] = fh[j];
    }
    let r = shooting_residual(&pass.end, x, xh, fh);
    Ok(Shot {
        r,
        a,
        m,
        min: pass.min,
        max: pass.max,
    })
}

/// The shooting and phase residual alone at y = (x₀, T, p): one pass of the flow, no tangents
/// (what a chord step of the corrector needs).
fn shoot_residual<P: Parametrised + ?Sized>(
    sys: &P,
    y: &[f64],
    xh: &[f64],
    fh: &[f64],
    steps: usize,
) -> Result<Vec<f64>> {
    let n = sys.dim();
    let (x, t, p) = (&y[..n], y[n], y[n + 1]);
    let pass = flow_pass(&AtParam { sys, p }, x, positive_period(t)?, steps)?;
    Ok(shooting_residual(&pass.end, x, xh, fh))
}

/// The period, refused unless positive and finite (a corrector can drive it anywhere).
fn positive_period(t: f64) -> Result<f64> {
    if t > 0.0 && t.is_finite() {
        Ok(t)
    } else {
        Err(Error::failed(
            "cycle continuation",
            format!("the period became {t}"),
        ))
    }
}

/// [φ_T(x₀) − x₀; f̂ · (x₀ − x̂)]: the shooting rows and the phase row.
fn shooting_residual(end: &[f64], x: &[f64], xh: &[f64], fh: &[f64]) -> Vec<f64> {
    let mut r: Vec<f64> = end.iter().zip(x).map(|(a, b)| a - b).collect();
    r.push(
        fh.iter()
            .zip(x.iter().zip(xh))
            .map(|(f, (a, b))| f * (a - b))
            .sum(),
    );
    r
}

/// The unit tangent of the branch at a point: the null vector of the (n + 1) × (n + 2) matrix
/// `a`, oriented along `prev`.
fn tangent(a: &Mat<f64>, prev: &[f64]) -> Vec<f64> {
    let k = a.ncols();
    let mut b = Mat::<f64>::zeros(k, k);
    for j in 0..k {
        for i in 0..k - 1 {
            b[(i, j)] = a[(i, j)];
        }
        b[(k - 1, j)] = prev[j];
    }
    let e = Mat::<f64>::from_fn(k, 1, |i, _| if i == k - 1 { 1.0 } else { 0.0 });
    let v = b.partial_piv_lu().solve(&e);
    let norm = (0..k).map(|i| v[(i, 0)] * v[(i, 0)]).sum::<f64>().sqrt();
    let sign = if (0..k).map(|i| v[(i, 0)] * prev[i]).sum::<f64>() < 0.0 {
        -1.0
    } else {
        1.0
    };
    (0..k).map(|i| sign * v[(i, 0)] / norm).collect()
}

fn cycle_at(y: &[f64], n: usize, shot: &Shot, iterations: usize) -> Result<Cycle> {
    let mut multipliers = crate::stability::eigenvalues(shot.m.as_ref())?;
    multipliers.sort_by(|a, b| b.norm().total_cmp(&a.norm()));
    let trivial = crate::cycles::trivial_index(&multipliers);
    Ok(Cycle {
        x0: y[..n].to_vec(),
        period: y[n],
        multipliers,
        trivial,
        min: shot.min.clone(),
        max: shot.max.clone(),
        residual: shot.r[..n].iter().fold(0.0, |m, v| m.max(v.abs())),
        iterations,
    })
}

/// Follows the cycle `start` (found at parameter `p0`, e.g. by [`find_cycle`] or [`hopf_cycle`])
/// towards `opts.to` by pseudo-arclength continuation (see the module documentation).
pub fn continue_cycles<P: Parametrised + ?Sized>(
    sys: &P,
    start: &Cycle,
    p0: f64,
    opts: &CycleContinuationOptions,
) -> Result<CycleBranch> {
    let n = sys.dim();
    if sys.kind() != TimeKind::Continuous {
        return Err(Error::invalid(
            "param",
            "cycles are continued for flows (maps: period-k points)",
        ));
    }
    crate::memory::check(
        "n",
        (opts.cycle.steps as u128 * 4 * n as u128 + 8 * (n as u128 + 2).pow(2)) * 8,
        None,
    )?;
    crate::error::ensure_finite("to", &[opts.to])?;
    crate::error::ensure_positive("ds", opts.ds)?;
    if start.x0.len() != n {
        return Err(Error::invalid(
            "start",
            format!("a cycle of {} states for a system of {n}", start.x0.len()),
        ));
    }
    let (lo, hi) = (p0.min(opts.to), p0.max(opts.to));
    let steps = opts.cycle.steps;
    let mut y: Vec<f64> = start.x0.iter().copied().chain([start.period, p0]).collect();
    let mut fh = vec![0.0; n];
    sys.eval(&y[..n], p0, &mut fh);
    let shot = shoot(sys, &y, &y[..n].to_vec(), &fh, steps)?;
    // The first tangent points towards `to`.
    let mut dir = vec![0.0; n + 2];
    dir[n + 1] = if opts.to >= p0 { 1.0 } else { -1.0 };
    let mut tau = tangent(&shot.a, &dir);
    if tau[n + 1] * dir[n + 1] < 0.0 {
        tau.iter_mut().for_each(|v| *v = -*v);
    }
    let mut points = vec![CyclePoint {
        p: p0,
        cycle: cycle_at(&y, n, &shot, 0)?,
    }];
    let mut events = vec![];
    let mut ds = opts.ds;
    // The last accepted point's shooting matrix: the next corrector's chord.
    let mut chord: Option<Mat<f64>> = Some(shot.a.clone());
    let stop;
    loop {
        if points.len() >= opts.max_points {
            stop = format!("{} points (max_points)", points.len());
            break;
        }
        // Predictor along the tangent, Newton corrector on the bordered system.
        let xh = y[..n].to_vec();
        sys.eval(&xh, y[n + 1], &mut fh);
        let pred: Vec<f64> = y.iter().zip(&tau).map(|(a, t)| a + ds * t).collect();
        let mut z = pred.clone();
        let converged = |r: &[f64], z: &[f64], arc: f64| {
            let res = r[..n].iter().fold(0.0f64, |m, v| m.max(v.abs()));
            res <= opts.cycle.tol * (1.0 + z[..n].iter().fold(0.0f64, |m, v| m.max(v.abs())))
                && r[n].abs() <= 1e-9
                && arc.abs() <= 1e-9 * ds.max(1.0)
        };
        let arc_of = |z: &[f64]| -> f64 {
            tau.iter()
                .zip(z.iter().zip(&y))
                .map(|(t, (a, b))| t * (a - b))
                .sum::<f64>()
                - ds
        };
        let mut done = None;
        // Chord steps first: the last point's shooting matrix (its phase row renewed), one flow
        // pass per step and no tangents; one monodromy at the converged point. A chord that
        // stops contracting hands over to full Newton from the predictor.
        if let Some(a0) = &chord {
            let mut big = Mat::<f64>::zeros(n + 2, n + 2);
            for j in 0..n + 2 {
                for i in 0..n {
                    big[(i, j)] = a0[(i, j)];
                }
                big[(n, j)] = if j < n { fh[j] } else { 0.0 };
                big[(n + 1, j)] = tau[j];
            }
            let lu = big.partial_piv_lu();
            let mut last = f64::INFINITY;
            for it in 0..12 {
                let Ok(r) = shoot_residual(sys, &z, &xh, &fh, steps) else {
                    break;
                };
                let arc = arc_of(&z);
                if converged(&r, &z, arc) {
                    if let Ok(shot) = shoot(sys, &z, &xh, &fh, steps) {
                        done = Some((shot, it));
                    }
                    break;
                }
                let rhs = Mat::<f64>::from_fn(n + 2, 1, |i, _| if i <= n { -r[i] } else { -arc });
                let d = lu.solve(&rhs);
                let step = (0..n + 2).fold(0.0f64, |m, i| m.max(d[(i, 0)].abs()));
                if !step.is_finite() || step > 0.5 * last {
                    break;
                }
                last = step;
                for i in 0..n + 2 {
                    z[i] += d[(i, 0)];
                }
            }
            if done.is_none() {
                z = pred.clone();
            }
        }
        for it in 0..opts.cycle.max_iter.min(12) {
            if done.is_some() {
                break;
            }
            let shot = match shoot(sys, &z, &xh, &fh, steps) {
                Ok(s) => s,
                Err(_) => break,
            };
            let arc = arc_of(&z);
            if converged(&shot.r, &z, arc) {
                done = Some((shot, it));
                break;
            }
            let mut big = Mat::<f64>::zeros(n + 2, n + 2);
            for j in 0..n + 2 {
                for i in 0..n + 1 {
                    big[(i, j)] = shot.a[(i, j)];
                }
                big[(n + 1, j)] = tau[j];
            }
            let rhs = Mat::<f64>::from_fn(n + 2, 1, |i, _| if i <= n { -shot.r[i] } else { -arc });
            let d = big.partial_piv_lu().solve(&rhs);
            if !(0..n + 2).all(|i| d[(i, 0)].is_finite()) {
                break;
            }
            for i in 0..n + 2 {
                z[i] += d[(i, 0)];
            }
        }
        let Some((shot, iters)) = done else {
            ds *= 0.5;
            if ds < opts.ds_min {
                stop = format!("the corrector failed at p = {} with ds < ds_min", y[n + 1]);
                break;
            }
            continue;
        };
        let new_tau = tangent(&shot.a, &tau);
        // A corrector that wandered onto another branch (far from the predicted point, or with a
        // tangent that turned sharply) is not trusted: a smaller step instead.
        let moved = z
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let turn: f64 = tau.iter().zip(&new_tau).map(|(a, b)| a * b).sum();
        if moved > 2.0 * ds || turn < 0.8 {
            ds *= 0.5;
            if ds < opts.ds_min {
                stop = format!("the branch could not be followed past p = {}", y[n + 1]);
                break;
            }
            continue;
        }
        let cycle = cycle_at(&z, n, &shot, iters)?;
        let prev = points.last().expect("the branch has its start");
        let idx = points.len();
        for e in detect(prev, &cycle, z[n + 1], tau[n + 1], new_tau[n + 1]) {
            events.push(CycleEvent { index: idx, ..e });
        }
        points.push(CyclePoint { p: z[n + 1], cycle });
        chord = Some(shot.a);
        y = z;
        tau = new_tau;
        ds = if iters <= 3 {
            (ds * 1.5).min(opts.ds_max)
        } else {
            ds
        };
        if y[n + 1] < lo || y[n + 1] > hi {
            stop = format!("left the parameter interval at p = {}", y[n + 1]);
            break;
        }
    }
    // The period blowing up at a standing parameter: the end of the branch is a global
    // bifurcation, not a numerical failure.
    let mut stop = stop;
    if let Some(b) = points.last() {
        // The trailing points within 10⁻⁴ of the last parameter value.
        let near = |q: &CyclePoint| (q.p - b.p).abs() <= 1e-4 * (1.0 + b.p.abs());
        let k = points.iter().rposition(|q| !near(q)).map_or(0, |k| k + 1);
        let a = &points[k];
        if points.len() - k >= 5 && b.cycle.period > 1.25 * a.cycle.period {
            events.push(CycleEvent {
                kind: CycleEventKind::InfinitePeriod,
                p: b.p,
                index: points.len() - 1,
                period: b.cycle.period,
            });
            stop = format!(
                "the period grows without bound at p = {} (T = {:.6} from {:.6} over the last {} points): a homoclinic orbit or a saddle-node on the cycle",
                b.p,
                b.cycle.period,
                a.cycle.period,
                points.len() - k
            );
        }
    }
    Ok(CycleBranch {
        points,
        events,
        param: sys.param_name(),
        stop,
    })
}

/// Events between the previous point and `c` (at parameter `p`): folds from the tangent's
/// parameter component, period doublings and Neimark–Sacker points from the multipliers.
fn detect(prev: &CyclePoint, c: &Cycle, p: f64, tp0: f64, tp1: f64) -> Vec<CycleEvent> {
    let mut out = vec![];
    let lerp = |a: f64, b: f64| {
        if (a - b).abs() > 0.0 {
            a / (a - b)
        } else {
            0.5
        }
    };
    let at = |s: f64| CycleEvent {
        kind: CycleEventKind::Fold,
        p: prev.p + s * (p - prev.p),
        index: 0,
        period: prev.cycle.period + s * (c.period - prev.cycle.period),
    };
    if tp0 * tp1 < 0.0 {
        out.push(at(lerp(tp0, tp1)));
    }
    // The real multiplier nearest −1 and the complex pair of largest modulus, each side.
    let neg = |cy: &Cycle| {
        cy.nontrivial()
            .into_iter()
            .filter(|m| m.im.abs() < 1e-9 && m.re < 0.0)
            .map(|m| m.norm() - 1.0)
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
    };
    if let (Some(a), Some(b)) = (neg(&prev.cycle), neg(c)) {
        if a * b < 0.0 {
            out.push(CycleEvent {
                kind: CycleEventKind::PeriodDoubling,
                ..at(lerp(a, b))
            });
        }
    }
    let cx = |cy: &Cycle| {
        cy.nontrivial()
            .into_iter()
            .filter(|m| m.im.abs() >= 1e-9)
            .map(|m| m.norm() - 1.0)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let (a, b) = (cx(&prev.cycle), cx(c));
    if a.is_finite() && b.is_finite() && a * b < 0.0 {
        out.push(CycleEvent {
            kind: CycleEventKind::NeimarkSacker,
            ..at(lerp(a, b))
        });
    }
    out
}

/// The cycle born at a Hopf point (x_H, p_H) with frequency ω: on the side of p_H where the
/// equilibrium x(p) is unstable when the Hopf point is supercritical (`l1` < 0) and stable when it
/// is subcritical, at p = p_H ± `dp`, from the normal form's cycle x(p) + 2ε Re(q) (q the critical
/// eigenvector, |q| = 1; ε = √|α(p)/(ω l1)|, α the real part of the critical pair and l1 = Re c₁/ω
/// as [`super::hopf`] computes it; 10⁻² |x_H| + 10⁻³ without l1), by shooting with period 2π/ω.
/// Returns the parameter and the cycle.
pub fn hopf_cycle<P: Parametrised + ?Sized>(
    sys: &P,
    x_h: &[f64],
    p_h: f64,
    omega: f64,
    l1: Option<f64>,
    dp: f64,
    opts: &CycleOptions,
) -> Result<(f64, Cycle)> {
    let n = sys.dim();
    crate::error::ensure_positive("omega", omega.abs())?;
    crate::error::ensure_positive("dp", dp)?;
    // The equilibrium and its critical pair at p, by Newton from x_H.
    let equilibrium = |p: f64| -> Result<(Vec<f64>, c64, Vec<c64>)> {
        let model = AtParam { sys, p };
        let r = crate::fixed_points::newton(&model, x_h, &Default::default())?;
        let mut j = Mat::<f64>::zeros(n, n);
        sys.jacobian(&r.x, p, j.as_mut());
        let e = j
            .eigen()
            .map_err(|e| Error::failed("hopf", format!("eigen decomposition: {e:?}")))?;
        let k = (0..n)
            .min_by(|&a, &b| {
                let d = |k: usize| (e.S()[k] - c64::new(0.0, omega.abs())).norm();
                d(a).total_cmp(&d(b))
            })
            .unwrap_or(0);
        Ok((r.x, e.S()[k], (0..n).map(|i| e.U()[(i, k)]).collect()))
    };
    let (_, lam_plus, _) = equilibrium(p_h + dp)?;
    // Supercritical: the cycle lives where the equilibrium is unstable (α > 0).
    let want_unstable = l1.is_none_or(|l| l < 0.0);
    let side = if (lam_plus.re > 0.0) == want_unstable {
        1.0
    } else {
        -1.0
    };
    let p = p_h + side * dp;
    let (x, lam, q) = equilibrium(p)?;
    // The normal form ż = (α + iω) z + c₁ z|z|² with x = x(p) + 2 Re(z q), |q| = 1, and
    // l1 = Re c₁ / ω: the cycle has |z|² = −α / (ω l1).
    let norm = q
        .iter()
        .map(|z| z.norm_sqr())
        .sum::<f64>()
        .sqrt()
        .max(1e-300);
    let eps = match l1 {
        Some(l) if l != 0.0 && l.is_finite() => (lam.re / (omega.abs() * l)).abs().sqrt(),
        _ => 1e-2 * x_h.iter().fold(0.0f64, |m, v| m.max(v.abs())) + 1e-3,
    };
    let x0: Vec<f64> = x
        .iter()
        .zip(&q)
        .map(|(a, z)| a + 2.0 * eps * z.re / norm)
        .collect();
    let model = AtParam { sys, p };
    let cycle = find_cycle(&model, &x0, 2.0 * std::f64::consts::PI / omega.abs(), opts)?;
    let amp = cycle.amplitude().into_iter().fold(0.0, f64::max);
    if amp < 1e-8 * (1.0 + x.iter().fold(0.0f64, |m, v| m.max(v.abs()))) {
        return Err(Error::failed(
            "hopf",
            "shooting fell back onto the equilibrium (no cycle this close to the Hopf point: try a larger dp)",
        ));
    }
    Ok((p, cycle))
}

/// The cycle branch born at the first Hopf point of an equilibrium `branch` (a flow), followed
/// across [`lo`, `hi`] on the side where it exists: [`hopf_cycle`] at 10⁻³ of the interval's
/// length from the Hopf point, then [`continue_cycles`] to the interval's end. None when the branch
/// has no Hopf point.
pub fn cycles_from_hopf<P: Parametrised + ?Sized>(
    sys: &P,
    branch: &super::Branch,
    (lo, hi): (f64, f64),
    opts: &CycleContinuationOptions,
) -> Result<Option<CycleBranch>> {
    let Some(h) = branch
        .bifurcations
        .iter()
        .find(|z| z.kind == super::Kind::Hopf)
    else {
        return Ok(None);
    };
    let omega = h
        .omega
        .ok_or_else(|| Error::failed("hopf", "the Hopf point has no frequency"))?;
    let span = (hi - lo).abs().max(1e-12);
    let (p, cycle) = hopf_cycle(sys, &h.x, h.p, omega, h.l1, 1e-3 * span, &opts.cycle)?;
    let to = if p > h.p { hi } else { lo };
    let o = CycleContinuationOptions {
        to,
        ds: opts.ds.min(1e-2 * span),
        ds_max: opts.ds_max.min(5e-2 * span),
        ..opts.clone()
    };
    continue_cycles(sys, &cycle, p, &o).map(Some)
}

/// Branch switching at a period doubling of `branch` (`event`, a
/// [`CycleEventKind::PeriodDoubling`]): the cycle of twice the period that the flip bifurcation
/// creates, found by shooting over 2T at the point just past the event from x₀ + h v (v the
/// eigenvector of the monodromy matrix for the real multiplier nearest −1, h from 1 % to 30 % of
/// the cycle's amplitude, both signs, the first that converges to a cycle that is not T-periodic),
/// then followed by [`continue_cycles`] in the direction the original branch was going.
pub fn switch_period_doubling<P: Parametrised + ?Sized>(
    sys: &P,
    branch: &CycleBranch,
    event: &CycleEvent,
    opts: &CycleContinuationOptions,
) -> Result<CycleBranch> {
    if event.kind != CycleEventKind::PeriodDoubling {
        return Err(Error::invalid(
            "event",
            format!("{} is not a period doubling", event.kind.name()),
        ));
    }
    let k = event.index;
    let (Some(q), Some(before)) = (
        branch.points.get(k),
        k.checked_sub(1).and_then(|i| branch.points.get(i)),
    ) else {
        return Err(Error::invalid(
            "event",
            format!("index {k} is not a point of the branch with a predecessor"),
        ));
    };
    let (p, c) = (q.p, &q.cycle);
    let n = c.x0.len();
    let flow = flow_at(sys, p);
    let (_, m) = crate::cycles::monodromy(&flow, &c.x0, c.period, opts.cycle.steps)?;
    let eig = m
        .eigen()
        .map_err(|e| Error::failed("period doubling", format!("eigenvectors: {e:?}")))?;
    let (vals, vecs) = (eig.S(), eig.U());
    let j = (0..n)
        .filter(|&j| vals[j].im.abs() <= 1e-9 * (1.0 + vals[j].norm()) && vals[j].re < 0.0)
        .min_by(|&a, &b| {
            (vals[a].re + 1.0)
                .abs()
                .total_cmp(&(vals[b].re + 1.0).abs())
        })
        .ok_or_else(|| {
            Error::failed(
                "period doubling",
                "no real negative multiplier at the point past it",
            )
        })?;
    let mut v: Vec<f64> = (0..n).map(|i| vecs[(i, j)].re).collect();
    let nv = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if !(nv.is_finite() && nv > 0.0) {
        return Err(Error::failed("period doubling", "a zero eigenvector"));
    }
    v.iter_mut().for_each(|a| *a /= nv);
    let scale = c
        .amplitude()
        .iter()
        .fold(0.0f64, |a, b| a.max(*b))
        .max(1e-12);
    for frac in [0.01, 0.03, 0.1, 0.3] {
        for sign in [1.0, -1.0] {
            let x: Vec<f64> =
                c.x0.iter()
                    .zip(&v)
                    .map(|(a, b)| a + sign * frac * scale * b)
                    .collect();
            let Ok(d) = find_cycle(&flow, &x, 2.0 * c.period, &opts.cycle) else {
                continue;
            };
            if (d.period - 2.0 * c.period).abs() > 0.2 * c.period {
                continue;
            }
            // Not the old cycle run twice: after half the period it is somewhere else.
            let half = flow_pass(&flow, &d.x0, 0.5 * d.period, opts.cycle.steps.div_ceil(2))?;
            let gap = half
                .end
                .iter()
                .zip(&d.x0)
                .fold(0.0f64, |a, (e, x)| a.max((e - x).abs()));
            if gap <= 1e-3 * frac * scale {
                continue;
            }
            let o = CycleContinuationOptions {
                to: if q.p >= before.p {
                    opts.to.max(p)
                } else {
                    opts.to.min(p)
                },
                ..opts.clone()
            };
            return continue_cycles(sys, &d, p, &o);
        }
    }
    Err(Error::failed(
        "period doubling",
        format!("no doubled cycle found near p = {p} (from 1 % to 30 % of the amplitude)"),
    ))
}

/// [`switch_period_doubling`] at every period doubling of `branch`: the doubled branches with
/// the index of their event in `branch.events`, and the events where no doubled cycle was found
/// (with why).
pub fn switch_all_period_doublings<P: Parametrised + ?Sized>(
    sys: &P,
    branch: &CycleBranch,
    opts: &CycleContinuationOptions,
) -> (Vec<(usize, CycleBranch)>, Vec<(usize, String)>) {
    let (mut found, mut skipped) = (vec![], vec![]);
    for (i, e) in branch.events.iter().enumerate() {
        if e.kind != CycleEventKind::PeriodDoubling {
            continue;
        }
        match switch_period_doubling(sys, branch, e, opts) {
            Ok(b) => found.push((i, b)),
            Err(err) => skipped.push((i, err.to_string())),
        }
    }
    (found, skipped)
}

/// The doubled branches in one table: `event` (the period doubling's index in the parent
/// branch's events), then the columns of [`CycleBranch::table`].
pub fn doubled_table(doubled: &[(usize, CycleBranch)]) -> Table {
    let mut t = Table::new();
    let ev: Vec<i64> = doubled
        .iter()
        .flat_map(|(i, b)| std::iter::repeat_n(*i as i64, b.points.len()))
        .collect();
    t.push("event", Column::I64(ev));
    let all = CycleBranch {
        points: doubled
            .iter()
            .flat_map(|(_, b)| b.points.iter().cloned())
            .collect(),
        events: vec![],
        param: doubled
            .first()
            .map_or_else(String::new, |(_, b)| b.param.clone()),
        stop: String::new(),
    };
    for (name, col) in all.table().columns {
        t.push(name, col);
    }
    t
}
