//! Fixed-step explicit methods: forward Euler and classic RK4.
//!
//! The steppers own their stage buffers (allocated once in `new`), so [`FixedStepper::step`] never
//! allocates; the Lyapunov and training code reuse them directly.

use super::{check_state, inf_norm, Options, Recorder, Stats, Status};
use crate::error::IntegrateError;
use crate::model::Model;
use rayon::prelude::*;

/// A one-step explicit method with a fixed step size.
pub trait FixedStepper {
    /// Order of accuracy.
    const ORDER: usize;
    /// Right-hand-side evaluations per step, given f(t, x) at the start.
    const RHS_PER_STEP: usize;
    /// Advances `x` from `t` to `t + h` in place. `f0 = f(t, x)` must be supplied (the driver
    /// reuses the end-of-step evaluation of the previous step).
    fn step_with_f0<M: Model + ?Sized>(
        &mut self,
        model: &M,
        t: f64,
        x: &mut [f64],
        f0: &[f64],
        h: f64,
    );
    /// Advances `x` from `t` to `t + h`, evaluating f(t, x) itself.
    fn step<M: Model + ?Sized>(&mut self, model: &M, t: f64, x: &mut [f64], h: f64);
}

/// Forward Euler, x ← x + h f(t, x).
#[derive(Debug, Clone)]
pub struct Euler {
    f0: Vec<f64>,
}

impl Euler {
    pub fn new(n: usize) -> Self {
        Euler { f0: vec![0.0; n] }
    }
}

impl FixedStepper for Euler {
    const ORDER: usize = 1;
    const RHS_PER_STEP: usize = 1;
    #[inline]
    fn step_with_f0<M: Model + ?Sized>(
        &mut self,
        _model: &M,
        _t: f64,
        x: &mut [f64],
        f0: &[f64],
        h: f64,
    ) {
        for (xi, fi) in x.iter_mut().zip(f0) {
            *xi += h * fi;
        }
    }
    #[inline]
    fn step<M: Model + ?Sized>(&mut self, model: &M, t: f64, x: &mut [f64], h: f64) {
        model.rhs(t, x, &mut self.f0);
        for (xi, fi) in x.iter_mut().zip(&self.f0) {
            *xi += h * fi;
        }
    }
}

/// The classic fourth-order Runge–Kutta method.
#[derive(Debug, Clone)]
pub struct Rk4 {
    k1: Vec<f64>,
    k2: Vec<f64>,
    k3: Vec<f64>,
    k4: Vec<f64>,
    tmp: Vec<f64>,
}

impl Rk4 {
    pub fn new(n: usize) -> Self {
        Rk4 {
            k1: vec![0.0; n],
            k2: vec![0.0; n],
            k3: vec![0.0; n],
            k4: vec![0.0; n],
            tmp: vec![0.0; n],
        }
    }

    #[inline]
    fn stages<M: Model + ?Sized>(
        model: &M,
        t: f64,
        x: &mut [f64],
        k1: &[f64],
        h: f64,
        k2: &mut [f64],
        k3: &mut [f64],
        k4: &mut [f64],
        tmp: &mut [f64],
    ) {
        let h2 = 0.5 * h;
        stage_point(tmp, x, h2, k1);
        model.rhs(t + h2, tmp, k2);
        stage_point(tmp, x, h2, k2);
        model.rhs(t + h2, tmp, k3);
        stage_point(tmp, x, h, k3);
        model.rhs(t + h, tmp, k4);
        let h6 = h / 6.0;
        for_chunks(x, |s, x| {
            let e = s + x.len();
            let (k1, k2, k3, k4) = (&k1[s..e], &k2[s..e], &k3[s..e], &k4[s..e]);
            for i in 0..x.len() {
                x[i] += h6 * (k1[i] + 2.0 * (k2[i] + k3[i]) + k4[i]);
            }
        });
    }
}

/// States at least this long (the variational system of a large network: N(1 + k) entries) run
/// RK4's stage combinations on all threads, in chunks fixed by the length — element by element,
/// so the bits are those of the sequential loop.
const PAR_LEN: usize = 1 << 16;
const PAR_CHUNK: usize = 1 << 13;

/// `f(start, chunk)` over `out` in chunks of `PAR_CHUNK` on all threads when `out` is long,
/// else `f(0, out)` once.
fn for_chunks(out: &mut [f64], f: impl Fn(usize, &mut [f64]) + Send + Sync) {
    if out.len() >= PAR_LEN {
        out.par_chunks_mut(PAR_CHUNK)
            .enumerate()
            .for_each(|(c, o)| f(c * PAR_CHUNK, o));
    } else {
        f(0, out);
    }
}

/// `out = x + a·k`, elementwise (threaded for long states, the same bits).
fn stage_point(out: &mut [f64], x: &[f64], a: f64, k: &[f64]) {
    for_chunks(out, |s, out| {
        let (x, k) = (&x[s..s + out.len()], &k[s..s + out.len()]);
        for i in 0..out.len() {
            out[i] = x[i] + a * k[i];
        }
    });
}

impl FixedStepper for Rk4 {
    const ORDER: usize = 4;
    const RHS_PER_STEP: usize = 4;
    #[inline]
    fn step_with_f0<M: Model + ?Sized>(
        &mut self,
        model: &M,
        t: f64,
        x: &mut [f64],
        f0: &[f64],
        h: f64,
    ) {
        let Rk4 {
            k2, k3, k4, tmp, ..
        } = self;
        Self::stages(model, t, x, f0, h, k2, k3, k4, tmp);
    }
    #[inline]
    fn step<M: Model + ?Sized>(&mut self, model: &M, t: f64, x: &mut [f64], h: f64) {
        let Rk4 {
            k1,
            k2,
            k3,
            k4,
            tmp,
        } = self;
        model.rhs(t, x, k1);
        Self::stages(model, t, x, k1, h, k2, k3, k4, tmp);
    }
}

/// Drives a fixed-step method from t0 to t1: steps at `t0 + k·dt` (the last one shortened to end
/// exactly at t1), cubic Hermite dense output, steady-state and blow-up checks after every step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_fixed<M: Model + ?Sized, S: FixedStepper>(
    model: &M,
    stepper: &mut S,
    x0: &[f64],
    t0: f64,
    t1: f64,
    dt: f64,
    opts: &Options,
    rec: &mut Recorder,
    stats: &mut Stats,
) -> Result<Status, IntegrateError> {
    let n = x0.len();
    let span = t1 - t0;
    let nsteps_f = (span / dt * (1.0 - 1e-12)).ceil();
    if nsteps_f > opts.max_steps as f64 {
        // Known before the first step: a size problem of the request, not a failed run.
        return Err(super::invalid(
            "t1",
            format!(
                "the span {span:e} with the fixed step dt = {dt:e} needs {nsteps_f:e} steps, more than the limit of {} (raise dt or shorten the span)",
                opts.max_steps
            ),
        ));
    }
    let nsteps = (nsteps_f as usize).max(1);
    let mut x = x0.to_vec();
    let mut xa = x0.to_vec();
    let mut f0 = vec![0.0; n];
    let mut f1 = vec![0.0; n];
    model.rhs(t0, &x, &mut f0);
    stats.n_rhs += 1;
    rec.start(t0, &x);
    let mut t = t0;
    for k in 1..=nsteps {
        let tb = if k == nsteps { t1 } else { t0 + k as f64 * dt };
        let h = tb - t;
        let need_dense = rec.wants(tb);
        if need_dense {
            xa.copy_from_slice(&x);
        }
        stepper.step_with_f0(model, t, &mut x, &f0, h);
        model.rhs(tb, &x, &mut f1);
        stats.n_rhs += S::RHS_PER_STEP;
        stats.n_accepted += 1;
        check_state(tb, &x, opts.blowup)?;
        if need_dense {
            let ta = t;
            rec.step(tb, &x, |s, out| hermite(ta, h, &xa, &f0, &x, &f1, s, out));
        } else {
            rec.step(tb, &x, |_, _| {});
        }
        std::mem::swap(&mut f0, &mut f1);
        t = tb;
        if let Some(p) = &opts.progress {
            p(t);
        }
        if let Some(tol) = opts.steady_state_tol {
            let r = inf_norm(&f0);
            if r < tol && k < nsteps {
                rec.finish(t, &x);
                return Ok(Status::SteadyState { t, residual: r });
            }
        }
    }
    // The last evaluation f(t1, x(t1)) was only needed for dense output and the residual.
    rec.finish(t, &x);
    Ok(Status::Completed)
}

/// Cubic Hermite interpolation on [ta, ta + h] from values and slopes at both ends.
#[allow(clippy::too_many_arguments)]
#[inline]
fn hermite(
    ta: f64,
    h: f64,
    xa: &[f64],
    fa: &[f64],
    xb: &[f64],
    fb: &[f64],
    t: f64,
    out: &mut [f64],
) {
    let s = (t - ta) / h;
    let s2 = s * s;
    let s3 = s2 * s;
    let h00 = 2.0 * s3 - 3.0 * s2 + 1.0;
    let h10 = s3 - 2.0 * s2 + s;
    let h01 = -2.0 * s3 + 3.0 * s2;
    let h11 = s3 - s2;
    for i in 0..out.len() {
        out[i] = h00 * xa[i] + h * (h10 * fa[i] + h11 * fb[i]) + h01 * xb[i];
    }
}
