//! Adaptive implicit (stiff) methods through diffsol: variable-order BDF, ESDIRK34 and TR-BDF2,
//! plus diffsol's explicit Tsit5(4) for comparison.
//!
//! The model's analytic Jacobian enters as the Jacobian-vector product [`Model::jvp`]; diffsol
//! assembles the dense matrix it factorises (faer LU) from it. Steps are taken one at a time, so the
//! same saving, steady-state, blow-up and progress logic as the explicit methods applies.

use super::{check_state, inf_norm, Options, Recorder, Stats, Status};
use crate::error::IntegrateError;
use crate::model::Model;
use diffsol::{
    FaerLU, FaerMat, OdeBuilder, OdeEquations, OdeSolverMethod, OdeSolverStopReason, Vector,
};
use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Bdf,
    Esdirk34,
    TrBdf2,
    Tsit45,
}

fn solver_err(t: f64, e: impl std::fmt::Display) -> IntegrateError {
    let msg = e.to_string();
    if msg.to_lowercase().contains("step size") || msg.to_lowercase().contains("too small") {
        IntegrateError::StepSizeTooSmall { t, h: f64::NAN }
    } else {
        IntegrateError::Solver { t, problem: msg }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run<M: Model + ?Sized>(
    model: &M,
    kind: Kind,
    x0: &[f64],
    t0: f64,
    t1: f64,
    rtol: f64,
    atol: f64,
    opts: &Options,
    rec: &mut Recorder,
    stats: &mut Stats,
) -> Result<Status, IntegrateError> {
    let n = x0.len();
    let nrhs = Cell::new(0usize);
    let njvp = Cell::new(0usize);
    let x0v = x0.to_vec();
    let problem = OdeBuilder::<FaerMat<f64>>::new()
        .t0(t0)
        .rtol(rtol)
        .atol([atol])
        .rhs_implicit(
            |x: &[f64], _p: &[f64], t: f64, y: &mut [f64]| {
                nrhs.set(nrhs.get() + 1);
                model.rhs(t, x, y)
            },
            |x: &[f64], _p: &[f64], t: f64, v: &[f64], y: &mut [f64]| {
                njvp.set(njvp.get() + 1);
                model.jvp(t, x, v, y)
            },
        )
        .init(
            move |_p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(&x0v),
            n,
        )
        .build()
        .map_err(|e| solver_err(t0, e))?;
    rec.start(t0, x0);
    // The four solvers are different types: one expansion per kind, the same driver.
    macro_rules! run {
        ($solver:expr) => {
            drive(
                $solver.map_err(|e| solver_err(t0, e))?,
                model,
                t1,
                opts,
                rec,
                stats,
            )
        };
    }
    let res = match kind {
        Kind::Bdf => run!(problem.bdf::<FaerLU<f64>>()),
        Kind::Esdirk34 => run!(problem.esdirk34::<FaerLU<f64>>()),
        Kind::TrBdf2 => run!(problem.tr_bdf2::<FaerLU<f64>>()),
        Kind::Tsit45 => run!(problem.tsit45()),
    };
    stats.n_rhs += nrhs.get();
    stats.n_jvp += njvp.get();
    res
}

fn drive<'a, Eqn, S, M>(
    mut solver: S,
    model: &M,
    t1: f64,
    opts: &Options,
    rec: &mut Recorder,
    stats: &mut Stats,
) -> Result<Status, IntegrateError>
where
    Eqn: OdeEquations<T = f64> + 'a,
    S: OdeSolverMethod<'a, Eqn>,
    M: Model + ?Sized,
{
    let n = model.dim();
    let mut f = vec![0.0; n];
    solver
        .set_stop_time(t1)
        .map_err(|e| solver_err(solver.state().t, e))?;
    let mut nsteps = 0usize;
    let status = loop {
        if nsteps >= opts.max_steps {
            break Err(IntegrateError::MaxSteps {
                t: solver.state().t,
                steps: nsteps,
            });
        }
        let t_before = solver.state().t;
        let reason = match solver.step() {
            Ok(r) => r,
            Err(e) => break Err(solver_err(t_before, e)),
        };
        nsteps += 1;
        let st = solver.state();
        let t = st.t;
        let y = st.y.clone_as_vec();
        if let Err(e) = check_state(t, &y, opts.blowup) {
            break Err(e);
        }
        let done = matches!(reason, OdeSolverStopReason::TstopReached) || t >= t1;
        let t_end = if done { t1 } else { t };
        if rec.wants(t_end) {
            let mut err = None;
            rec.step(t_end, &y, |s, out| match solver.interpolate(s) {
                Ok(v) => out.copy_from_slice(&v.clone_as_vec()),
                Err(e) => {
                    out.fill(f64::NAN);
                    err = Some(solver_err(s, e));
                }
            });
            if let Some(e) = err {
                break Err(e);
            }
        } else {
            rec.step(t_end, &y, |_, _| {});
        }
        if let Some(p) = &opts.progress {
            p(t_end);
        }
        if done {
            rec.finish(t_end, &y);
            break Ok(Status::Completed);
        }
        if let Some(tol) = opts.steady_state_tol {
            model.rhs(t, &y, &mut f);
            stats.n_rhs += 1;
            let r = inf_norm(&f);
            if r < tol {
                rec.finish(t, &y);
                break Ok(Status::SteadyState { t, residual: r });
            }
        }
    };
    let s = solver.get_statistics();
    stats.n_accepted += s.number_of_steps;
    stats.n_rejected += s.number_of_error_test_failures;
    stats.n_lu += s.number_of_linear_solver_setups;
    stats.n_newton += s.number_of_nonlinear_solver_iterations;
    status
}
