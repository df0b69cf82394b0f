//! Integrators behind one front door, [`integrate`].
//!
//! What to solve (a [`Model`]), how to step ([`Method`]), what to save ([`SaveAt`]) and when to stop
//! early ([`Options`]) are separate pieces that combine freely:
//!
//! ```
//! use neurodyn::integrate::{integrate, Method, Options, SaveAt};
//! use neurodyn::model::{Activation, RateRnn};
//! let w = faer::Mat::from_fn(3, 3, |i, j| if i == j { 0.0 } else { 0.4 });
//! let rnn = RateRnn::new(w, Activation::Tanh).unwrap();
//! let opts = Options::new().save(SaveAt::Times(vec![0.5, 1.0]));
//! let sol = integrate(&rnn, &[1.0, -0.5, 0.2], (0.0, 1.0), &Method::dopri5(1e-8, 1e-10), &opts).unwrap();
//! assert_eq!(sol.t, vec![0.5, 1.0]);
//! ```
//!
//! | method | kind | order | notes |
//! |---|---|---|---|
//! | [`Method::Euler`] | fixed step | 1 | 1 rhs per step |
//! | [`Method::Rk4`] | fixed step | 4 | 4 rhs per step |
//! | [`Method::Dopri5`] | adaptive explicit | 5(4) | Dormand–Prince with PI control and 4th-order dense output |
//! | [`Method::Tsit5`] | adaptive explicit | 5(4) | Tsitouras, same engine and controller, its free 4th-order interpolant |
//! | [`Method::Dop853`] | adaptive explicit | 8(5,3) | Dormand–Prince 8th order, 7th-order dense output: fewest evaluations below errors of ~1e-6 |
//! | [`Method::Bdf`] | adaptive stiff | 1–5 | diffsol's variable-order BDF, analytic Jacobian |
//! | [`Method::Esdirk34`] | adaptive stiff | 3(4) | diffsol's ESDIRK, analytic Jacobian |
//! | [`Method::TrBdf2`] | adaptive stiff | 2 | diffsol's TR-BDF2, analytic Jacobian |
//! | [`Method::Tsit45`] | adaptive explicit | 5(4) | diffsol's Tsitouras 5(4), for comparison |
//!
//! Fixed-step methods interpolate requested times with cubic Hermite polynomials (the right-hand
//! side at both ends of a step is already known, so it costs no extra evaluation).

mod dop853;
mod erk;
mod explicit;
mod stiff;

pub use explicit::{Euler, FixedStepper, Rk4};

use crate::error::IntegrateError;
use crate::model::Model;
use std::sync::Arc;

/// How to step. Adaptive methods take `rtol` and `atol` (no defaults: the right tolerance depends
/// on the question; the error per step is controlled in the RMS norm weighted by
/// `atol + rtol·|x_i|`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Euler { dt: f64 },
    Rk4 { dt: f64 },
    Dopri5 { rtol: f64, atol: f64 },
    Tsit5 { rtol: f64, atol: f64 },
    Dop853 { rtol: f64, atol: f64 },
    Bdf { rtol: f64, atol: f64 },
    Esdirk34 { rtol: f64, atol: f64 },
    TrBdf2 { rtol: f64, atol: f64 },
    Tsit45 { rtol: f64, atol: f64 },
}

impl Method {
    pub fn euler(dt: f64) -> Self {
        Method::Euler { dt }
    }
    pub fn rk4(dt: f64) -> Self {
        Method::Rk4 { dt }
    }
    pub fn dopri5(rtol: f64, atol: f64) -> Self {
        Method::Dopri5 { rtol, atol }
    }
    pub fn bdf(rtol: f64, atol: f64) -> Self {
        Method::Bdf { rtol, atol }
    }

    /// Parses a method name (`euler`, `rk4`, `dopri5`, `bdf`, `esdirk34`, `tr-bdf2`, `tsit45`) with
    /// its step or tolerances.
    pub fn from_name(name: &str, dt: f64, rtol: f64, atol: f64) -> Result<Self, IntegrateError> {
        Ok(match name {
            "euler" => Method::Euler { dt },
            "rk4" => Method::Rk4 { dt },
            "dopri5" => Method::Dopri5 { rtol, atol },
            "tsit5" => Method::Tsit5 { rtol, atol },
            "dop853" => Method::Dop853 { rtol, atol },
            "bdf" => Method::Bdf { rtol, atol },
            "esdirk34" => Method::Esdirk34 { rtol, atol },
            "tr-bdf2" | "trbdf2" => Method::TrBdf2 { rtol, atol },
            "tsit45" => Method::Tsit45 { rtol, atol },
            other => {
                return Err(invalid(
                    "method",
                    format!("unknown method `{other}` (expected euler, rk4, dopri5, tsit5, dop853, bdf, esdirk34, tr-bdf2 or tsit45)"),
                ))
            }
        })
    }

    /// Names accepted by [`Method::from_name`].
    pub const NAMES: [&'static str; 9] = [
        "euler", "rk4", "dopri5", "tsit5", "dop853", "bdf", "esdirk34", "tr-bdf2", "tsit45",
    ];

    fn validate(&self) -> Result<(), IntegrateError> {
        match *self {
            Method::Euler { dt } | Method::Rk4 { dt } => {
                if !(dt > 0.0 && dt.is_finite()) {
                    return Err(invalid(
                        "dt",
                        format!("{dt} (the step must be positive and finite)"),
                    ));
                }
            }
            Method::Dopri5 { rtol, atol }
            | Method::Tsit5 { rtol, atol }
            | Method::Dop853 { rtol, atol }
            | Method::Bdf { rtol, atol }
            | Method::Esdirk34 { rtol, atol }
            | Method::TrBdf2 { rtol, atol }
            | Method::Tsit45 { rtol, atol } => {
                if !(rtol > 0.0 && rtol < 1.0) {
                    return Err(invalid("rtol", format!("{rtol} (must lie in (0, 1))")));
                }
                if !(atol > 0.0 && atol.is_finite()) {
                    return Err(invalid(
                        "atol",
                        format!("{atol} (must be positive and finite)"),
                    ));
                }
                if rtol < 1e2 * f64::EPSILON {
                    return Err(invalid(
                        "rtol",
                        format!(
                            "{rtol} is below what float64 can deliver (≥ {:e})",
                            1e2 * f64::EPSILON
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What to save.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SaveAt {
    /// Every step (the initial state included).
    #[default]
    Steps,
    /// The given times (non-decreasing, inside `[t0, t1]`), by dense output, without forcing steps there.
    Times(Vec<f64>),
    /// `n ≥ 2` evenly spaced times from t0 to t1, both included.
    Uniform(usize),
    /// Only the state where integration ended.
    Final,
}

/// Why an integration ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Status {
    /// Reached t1.
    Completed,
    /// Stopped early at time `t` because ‖f(t, x)‖∞ = `residual` fell below the steady-state tolerance.
    SteadyState { t: f64, residual: f64 },
}

/// Work counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Right-hand-side evaluations.
    pub n_rhs: usize,
    /// Dense Jacobian evaluations.
    pub n_jac: usize,
    /// Jacobian-vector products.
    pub n_jvp: usize,
    /// Accepted steps.
    pub n_accepted: usize,
    /// Rejected steps (error test failures).
    pub n_rejected: usize,
    /// Linear-solver setups (LU factorisations) of implicit methods.
    pub n_lu: usize,
    /// Newton iterations of implicit methods.
    pub n_newton: usize,
}

/// A progress callback, called with the current time after each accepted step.
pub type Progress = Arc<dyn Fn(f64) + Send + Sync>;

/// Options that do not depend on the method.
#[derive(Clone)]
pub struct Options {
    /// What to save (default: every step).
    pub save: SaveAt,
    /// Stop once ‖f(t, x)‖∞ < this (default: never).
    pub steady_state_tol: Option<f64>,
    /// Fail with [`IntegrateError::Blowup`] once ‖x‖∞ exceeds this (default 1e12).
    pub blowup: f64,
    /// Fail with [`IntegrateError::MaxSteps`] after this many steps (default 10 000 000).
    pub max_steps: usize,
    /// Called after every accepted step with the current time.
    pub progress: Option<Progress>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            save: SaveAt::Steps,
            steady_state_tol: None,
            blowup: 1e12,
            max_steps: 10_000_000,
            progress: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("save", &self.save)
            .field("steady_state_tol", &self.steady_state_tol)
            .field("blowup", &self.blowup)
            .field("max_steps", &self.max_steps)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Options {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn save(mut self, save: SaveAt) -> Self {
        self.save = save;
        self
    }
    pub fn steady_state(mut self, tol: f64) -> Self {
        self.steady_state_tol = Some(tol);
        self
    }
    pub fn blowup(mut self, limit: f64) -> Self {
        self.blowup = limit;
        self
    }
    pub fn max_steps(mut self, n: usize) -> Self {
        self.max_steps = n;
        self
    }
    pub fn progress(mut self, p: Progress) -> Self {
        self.progress = Some(p);
        self
    }
}

/// The result of [`integrate`]: saved times, states (row k is the state at `t[k]`), counters, status.
#[derive(Debug, Clone)]
pub struct Solution {
    pub t: Vec<f64>,
    /// Row-major, `t.len() × n`.
    pub x: Vec<f64>,
    pub n: usize,
    pub stats: Stats,
    pub status: Status,
}

impl Solution {
    /// The state saved at index k.
    pub fn state(&self, k: usize) -> &[f64] {
        &self.x[k * self.n..(k + 1) * self.n]
    }
    /// The last saved state.
    pub fn last(&self) -> &[f64] {
        self.state(self.t.len() - 1)
    }
    /// The number of saved times.
    pub fn len(&self) -> usize {
        self.t.len()
    }
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }
    /// Time series of unit `i`.
    pub fn unit(&self, i: usize) -> Vec<f64> {
        (0..self.t.len()).map(|k| self.x[k * self.n + i]).collect()
    }

    /// The trajectory as a table: `t`, then `x0`, `x1`, … (what `simulate` writes).
    pub fn table(&self) -> crate::io::Table {
        use crate::io::{Column, Table};
        let mut table = Table::new();
        table.push("t", Column::F64(self.t.clone()));
        for i in 0..self.n {
            table.push(format!("x{i}"), Column::F64(self.unit(i)));
        }
        table
    }

    /// The first `units` coordinates against t.
    pub fn plot(
        &self,
        title: impl Into<String>,
        (xlabel, ylabel): (&str, &str),
        units: usize,
    ) -> crate::plot::LinePlot {
        let mut p = crate::plot::LinePlot::new(title, xlabel, ylabel);
        for i in 0..units.min(self.n) {
            p = p.series(
                format!("x{i}"),
                self.t.iter().copied().zip(self.unit(i)).collect(),
            );
        }
        p
    }
}

/// Ensemble members' trajectories in one long table: `member`, `t`, `x0`, `x1`, …, and the steps
/// taken in all; a failed member is an error naming it (`what(j)` says where it came from).
pub fn ensemble_table(
    sols: Vec<Result<Solution, IntegrateError>>,
    n: usize,
    what: impl Fn(usize) -> String,
) -> crate::error::Result<(crate::io::Table, usize)> {
    use crate::io::{Column, Table};
    let (mut member, mut t, mut steps) = (vec![], vec![], 0usize);
    let mut cols: Vec<Vec<f64>> = vec![vec![]; n];
    for (j, sol) in sols.into_iter().enumerate() {
        let sol =
            sol.map_err(|e| crate::error::Error::failed("ensemble", format!("{}: {e}", what(j))))?;
        steps += sol.stats.n_accepted + sol.stats.n_rejected;
        member.extend(std::iter::repeat_n(j as i64, sol.t.len()));
        for (i, c) in cols.iter_mut().enumerate() {
            c.extend(sol.unit(i));
        }
        t.extend(sol.t);
    }
    let mut table = Table::new();
    table.push("member", Column::I64(member));
    table.push("t", Column::F64(t));
    for (i, c) in cols.into_iter().enumerate() {
        table.push(format!("x{i}"), Column::F64(c));
    }
    Ok((table, steps))
}

/// Iterates a discrete-time map from `x0` for `steps` steps, keeping the state before step 0 and
/// after the steps in `keep` (sorted step indices `0..=steps`); `t` is `t0` + the step index.
/// A state that becomes non-finite is an error naming the step.
pub fn iterate(
    map: &dyn crate::model::Map,
    x0: &[f64],
    t0: f64,
    steps: usize,
    keep: &[usize],
) -> crate::error::Result<Solution> {
    let n = map.dim();
    crate::memory::check("t1", keep.len() as u128 * (n as u128 + 1) * 8 * 3, None)?;
    let mut h = x0.to_vec();
    let (mut t, mut x) = (vec![], vec![]);
    let mut next = 0;
    for step in 0..=steps {
        if keep.get(next) == Some(&step) {
            if h.iter().any(|v| !v.is_finite()) {
                return Err(crate::error::Error::failed(
                    "simulate",
                    format!("the state became non-finite by step {step}"),
                ));
            }
            t.push(t0 + step as f64);
            x.extend_from_slice(&h);
            next += 1;
        }
        if step < steps {
            map.step(step, &mut h);
        }
    }
    Ok(Solution {
        t,
        x,
        n,
        stats: Stats {
            n_accepted: steps,
            ..Stats::default()
        },
        status: Status::Completed,
    })
}

/// `samples` step indices spread evenly over `0..=steps` (every step when `samples` is 0 or
/// exceeds them; fewer than 2 otherwise is an error naming `samples`).
pub fn sample_steps(steps: usize, samples: usize) -> crate::error::Result<Vec<usize>> {
    if samples == 0 || samples > steps {
        return Ok((0..=steps).collect());
    }
    if samples < 2 {
        return Err(crate::error::Error::invalid(
            "samples",
            format!("{samples} (need at least 2)"),
        ));
    }
    let mut k: Vec<usize> = (0..samples)
        .map(|i| (i as f64 * steps as f64 / (samples - 1) as f64).round() as usize)
        .collect();
    k.dedup();
    Ok(k)
}

/// Integrates `model` from `x0` over `span = (t0, t1)` with `method`.
///
/// Errors (never NaNs in the output): invalid options, [`IntegrateError::Blowup`] when ‖x‖∞ passes
/// `opts.blowup`, [`IntegrateError::NonFinite`], [`IntegrateError::StepSizeTooSmall`],
/// [`IntegrateError::MaxSteps`], and failures of the stiff solver.
pub fn integrate<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    span: (f64, f64),
    method: &Method,
    opts: &Options,
) -> Result<Solution, IntegrateError> {
    let n = model.dim();
    let (t0, t1) = span;
    check_inputs(n, x0, span, method, opts)?;
    let mut rec = Recorder::new(&opts.save, n, t0, t1)?;
    let mut stats = Stats::default();
    let (r, st) = (&mut rec, &mut stats);
    let status = match *method {
        Method::Euler { dt } => {
            explicit::run_fixed(model, &mut Euler::new(n), x0, t0, t1, dt, opts, r, st)?
        }
        Method::Rk4 { dt } => {
            explicit::run_fixed(model, &mut Rk4::new(n), x0, t0, t1, dt, opts, r, st)?
        }
        Method::Dopri5 { rtol, atol } | Method::Tsit5 { rtol, atol } => {
            let tab = if matches!(method, Method::Dopri5 { .. }) {
                &erk::DOPRI5
            } else {
                &erk::TSIT5
            };
            erk::run(tab, model, x0, t0, t1, rtol, atol, opts, r, st)?
        }
        Method::Dop853 { rtol, atol } => dop853::run(model, x0, t0, t1, rtol, atol, opts, r, st)?,
        Method::Bdf { rtol, atol }
        | Method::Esdirk34 { rtol, atol }
        | Method::TrBdf2 { rtol, atol }
        | Method::Tsit45 { rtol, atol } => {
            let kind = match method {
                Method::Bdf { .. } => stiff::Kind::Bdf,
                Method::Esdirk34 { .. } => stiff::Kind::Esdirk34,
                Method::TrBdf2 { .. } => stiff::Kind::TrBdf2,
                _ => stiff::Kind::Tsit45,
            };
            stiff::run(model, kind, x0, t0, t1, rtol, atol, opts, r, st)?
        }
    };
    Ok(Solution {
        t: rec.t,
        x: rec.x,
        n,
        stats,
        status,
    })
}

/// The checks of [`integrate`]'s input: the state's length and values, the span, the method's and
/// the options' values.
fn check_inputs(
    n: usize,
    x0: &[f64],
    span: (f64, f64),
    method: &Method,
    opts: &Options,
) -> Result<(), IntegrateError> {
    let (t0, t1) = span;
    if x0.len() != n {
        return Err(invalid(
            "x0",
            format!("has length {}, the model has dimension {n}", x0.len()),
        ));
    }
    if let Some(i) = x0.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            "x0",
            format!("entry {i} is {} (must be finite)", x0[i]),
        ));
    }
    if !(t0.is_finite() && t1.is_finite() && t1 > t0) {
        return Err(invalid(
            "t1",
            format!("the time span ({t0}, {t1}) must be finite with t1 > t0"),
        ));
    }
    method.validate()?;
    if let Some(tol) = opts.steady_state_tol {
        if !(tol > 0.0 && tol.is_finite()) {
            return Err(invalid(
                "steady_state_tol",
                format!("{tol} (must be positive and finite)"),
            ));
        }
    }
    if !(opts.blowup > 0.0) {
        return Err(invalid(
            "blowup",
            format!("{} (must be positive)", opts.blowup),
        ));
    }
    Ok(())
}

/// Integrates `model` from every start in `x0s` over `span` — an ensemble of trajectories of one
/// system (many initial states, a fixed-point finder's starts, the trials of an evaluation).
///
/// With the adaptive explicit methods (`dopri5`, `tsit5`) every trajectory keeps its own step-size
/// control — its own steps, rejections and end, as `integrate` would take them — while the
/// right-hand sides of all trajectories still running are evaluated together, one
/// [`Model::rhs_batch`] call per stage (for a rate network one matrix–matrix product instead of m
/// matrix–vector products). This is the choice of per-trajectory control over a shared step with
/// per-trajectory error control: a shared step is set by the stiffest member and makes every
/// other member take its steps, while separate control leaves each trajectory exactly what a
/// single run gives — bit for bit, since `rhs_batch` must equal `rhs` column by column. Other
/// methods run the members one after the other. The outer error is invalid input (checked
/// for every start first); each member's own failure (blow-up, step size) is its own result.
pub fn integrate_ensemble<M: Model + ?Sized>(
    model: &M,
    x0s: &[Vec<f64>],
    span: (f64, f64),
    method: &Method,
    opts: &Options,
) -> Result<Vec<Result<Solution, IntegrateError>>, IntegrateError> {
    let n = model.dim();
    let (t0, t1) = span;
    if x0s.is_empty() {
        return Err(invalid("x0", "the ensemble has no initial states"));
    }
    for (j, x0) in x0s.iter().enumerate() {
        check_inputs(n, x0, span, method, opts).map_err(|e| match e {
            IntegrateError::InvalidOption { field, problem } if field == "x0" => {
                invalid("x0", format!("state {j}: {problem}"))
            }
            e => e,
        })?;
    }
    let (Method::Dopri5 { rtol, atol } | Method::Tsit5 { rtol, atol }) = *method else {
        return Ok(x0s
            .iter()
            .map(|x0| integrate(model, x0, span, method, opts))
            .collect());
    };
    let tab = if matches!(method, Method::Dopri5 { .. }) {
        &erk::DOPRI5
    } else {
        &erk::TSIT5
    };
    // One batch per worker thread (contiguous members; each member's arithmetic does not depend
    // on its batch, so the results are the same on any number of threads).
    let threads = rayon::current_num_threads().clamp(1, x0s.len());
    let per = x0s.len().div_ceil(threads);
    let groups: Vec<&[Vec<f64>]> = x0s.chunks(per).collect();
    type Members = Vec<Result<Solution, IntegrateError>>;
    let run = |group: &[Vec<f64>]| -> Result<Members, IntegrateError> {
        let mut recs = group
            .iter()
            .map(|_| Recorder::new(&opts.save, n, t0, t1))
            .collect::<Result<Vec<_>, _>>()?;
        let mut stats = vec![Stats::default(); group.len()];
        let starts: Vec<&[f64]> = group.iter().map(|x| x.as_slice()).collect();
        let out = erk::run_batch(
            tab, model, &starts, t0, t1, rtol, atol, opts, &mut recs, &mut stats,
        );
        Ok(out
            .into_iter()
            .zip(recs)
            .zip(stats)
            .map(|((r, rec), stats)| {
                r.map(|status| Solution {
                    t: rec.t,
                    x: rec.x,
                    n,
                    stats,
                    status,
                })
            })
            .collect())
    };
    let parts: Vec<Members> = if groups.len() == 1 {
        vec![run(groups[0])?]
    } else {
        use rayon::prelude::*;
        groups
            .par_iter()
            .map(|g| run(g))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(parts.into_iter().flatten().collect())
}

pub(crate) fn invalid(field: &str, problem: impl Into<String>) -> IntegrateError {
    IntegrateError::InvalidOption {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Checks the state after a step: finite and inside the blow-up ball.
#[inline]
pub(crate) fn check_state(t: f64, x: &[f64], limit: f64) -> Result<(), IntegrateError> {
    let mut norm = 0.0f64;
    for &v in x {
        if !v.is_finite() {
            return Err(IntegrateError::NonFinite { t });
        }
        norm = norm.max(v.abs());
    }
    if norm > limit {
        return Err(IntegrateError::Blowup { t, norm, limit });
    }
    Ok(())
}

/// ‖v‖∞ (NaN-propagating).
#[inline]
pub(crate) fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| {
        if x.abs() > m || x.is_nan() {
            x.abs()
        } else {
            m
        }
    })
}

/// Collects the saved samples according to [`SaveAt`].
pub(crate) struct Recorder {
    mode: Mode,
    times: Vec<f64>,
    next: usize,
    n: usize,
    pub t: Vec<f64>,
    pub x: Vec<f64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Steps,
    Times,
    Final,
}

impl Recorder {
    fn new(save: &SaveAt, n: usize, t0: f64, t1: f64) -> Result<Self, IntegrateError> {
        let (mode, times) = match save {
            SaveAt::Steps => (Mode::Steps, vec![]),
            SaveAt::Final => (Mode::Final, vec![]),
            SaveAt::Uniform(k) => {
                if *k < 2 {
                    return Err(invalid(
                        "save",
                        format!("Uniform({k}) needs at least 2 points"),
                    ));
                }
                let dt = (t1 - t0) / (*k - 1) as f64;
                let mut ts: Vec<f64> = (0..*k).map(|i| t0 + i as f64 * dt).collect();
                ts[*k - 1] = t1;
                (Mode::Times, ts)
            }
            SaveAt::Times(ts) => {
                if ts.is_empty() {
                    return Err(invalid("save", "no output times requested"));
                }
                if let Some(i) = ts.iter().position(|&s| !(s >= t0 && s <= t1)) {
                    return Err(invalid(
                        "save",
                        format!(
                            "output time {} (index {i}) lies outside [{t0}, {t1}]",
                            ts[i]
                        ),
                    ));
                }
                if ts.windows(2).any(|w| w[1] < w[0]) {
                    return Err(invalid("save", "output times must be non-decreasing"));
                }
                (Mode::Times, ts.clone())
            }
        };
        Ok(Recorder {
            mode,
            times,
            next: 0,
            n,
            t: vec![],
            x: vec![],
        })
    }

    fn push(&mut self, t: f64, x: &[f64]) {
        self.t.push(t);
        self.x.extend_from_slice(x);
    }

    /// Records the initial state.
    pub(crate) fn start(&mut self, t0: f64, x0: &[f64]) {
        match self.mode {
            Mode::Steps => self.push(t0, x0),
            Mode::Times => {
                while self.next < self.times.len() && self.times[self.next] <= t0 {
                    self.push(self.times[self.next], x0);
                    self.next += 1;
                }
            }
            Mode::Final => {}
        }
    }

    /// True if dense output is needed for the step (ta, tb].
    #[inline]
    pub(crate) fn wants(&self, tb: f64) -> bool {
        self.mode == Mode::Times && self.next < self.times.len() && self.times[self.next] <= tb
    }

    /// Records after an accepted step from `ta` to `tb` ending in `xb`. `interp(t, out)` evaluates
    /// the dense output inside the step; it is only called when [`Recorder::wants`] is true.
    #[inline]
    pub(crate) fn step(&mut self, tb: f64, xb: &[f64], mut interp: impl FnMut(f64, &mut [f64])) {
        match self.mode {
            Mode::Steps => self.push(tb, xb),
            Mode::Times => {
                let mut buf = vec![0.0; if self.wants(tb) { self.n } else { 0 }];
                while self.next < self.times.len() && (self.times[self.next] <= tb) {
                    let s = self.times[self.next];
                    if s == tb {
                        self.push(s, xb);
                    } else {
                        interp(s, &mut buf);
                        self.push(s, &buf);
                    }
                    self.next += 1;
                }
            }
            Mode::Final => {}
        }
    }

    /// Records the end state (for [`SaveAt::Final`]).
    pub(crate) fn finish(&mut self, t: f64, x: &[f64]) {
        if self.mode == Mode::Final {
            self.push(t, x);
        }
    }
}
