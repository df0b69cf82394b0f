//! Dormand–Prince 5(4) with PI step-size control and Hairer's 4th-order dense output.
//!
//! Coefficients: Dormand & Prince (1980); controller and dense output: Hairer, Nørsett & Wanner,
//! *Solving ODEs I*, §II.4–II.6 (the `DOPRI5` code). The 5th-order solution is propagated (local
//! extrapolation) and the last stage is reused as the first of the next step (FSAL), so an
//! accepted step costs 6 right-hand-side evaluations.

use super::{check_state, inf_norm, Options, Recorder, Stats, Status};
use crate::error::IntegrateError;
use crate::model::Model;

const C2: f64 = 1.0 / 5.0;
const C3: f64 = 3.0 / 10.0;
const C4: f64 = 4.0 / 5.0;
const C5: f64 = 8.0 / 9.0;
const A21: f64 = 1.0 / 5.0;
const A31: f64 = 3.0 / 40.0;
const A32: f64 = 9.0 / 40.0;
const A41: f64 = 44.0 / 45.0;
const A42: f64 = -56.0 / 15.0;
const A43: f64 = 32.0 / 9.0;
const A51: f64 = 19372.0 / 6561.0;
const A52: f64 = -25360.0 / 2187.0;
const A53: f64 = 64448.0 / 6561.0;
const A54: f64 = -212.0 / 729.0;
const A61: f64 = 9017.0 / 3168.0;
const A62: f64 = -355.0 / 33.0;
const A63: f64 = 46732.0 / 5247.0;
const A64: f64 = 49.0 / 176.0;
const A65: f64 = -5103.0 / 18656.0;
const A71: f64 = 35.0 / 384.0;
const A73: f64 = 500.0 / 1113.0;
const A74: f64 = 125.0 / 192.0;
const A75: f64 = -2187.0 / 6784.0;
const A76: f64 = 11.0 / 84.0;
const E1: f64 = 71.0 / 57600.0;
const E3: f64 = -71.0 / 16695.0;
const E4: f64 = 71.0 / 1920.0;
const E5: f64 = -17253.0 / 339200.0;
const E6: f64 = 22.0 / 525.0;
const E7: f64 = -1.0 / 40.0;
const D1: f64 = -12715105075.0 / 11282082432.0;
const D3: f64 = 87487479700.0 / 32700410799.0;
const D4: f64 = -10690763975.0 / 1880347072.0;
const D5: f64 = 701980252875.0 / 199316789632.0;
const D6: f64 = -1453857185.0 / 822651844.0;
const D7: f64 = 69997945.0 / 29380423.0;

const SAFE: f64 = 0.9;
const BETA: f64 = 0.04;
const FAC_MIN: f64 = 0.2; // largest decrease 1/5 ...
const FAC_MAX: f64 = 10.0; // ... largest increase 10

/// RMS norm of `v` weighted by `atol + rtol·max(|a_i|, |b_i|)`.
#[inline]
fn wrms(v: &[f64], a: &[f64], b: &[f64], rtol: f64, atol: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        let sk = atol + rtol * a[i].abs().max(b[i].abs());
        let r = v[i] / sk;
        s += r * r;
    }
    (s / v.len() as f64).sqrt()
}

/// Hairer's initial step-size guess (HNW I, §II.4).
#[allow(clippy::too_many_arguments)]
fn initial_step<M: Model + ?Sized>(
    model: &M,
    t0: f64,
    x0: &[f64],
    f0: &[f64],
    span: f64,
    rtol: f64,
    atol: f64,
    tmp: &mut [f64],
    f1: &mut [f64],
    stats: &mut Stats,
) -> f64 {
    let d0 = wrms(x0, x0, x0, rtol, atol);
    let d1 = wrms(f0, x0, x0, rtol, atol);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let h0 = h0.min(span);
    for i in 0..x0.len() {
        tmp[i] = x0[i] + h0 * f0[i];
    }
    model.rhs(t0 + h0, tmp, f1);
    stats.n_rhs += 1;
    for i in 0..x0.len() {
        f1[i] -= f0[i];
    }
    let d2 = wrms(f1, x0, x0, rtol, atol) / h0;
    let dm = d1.max(d2);
    let h1 = if !(dm > 1e-15) {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / dm).powf(0.2)
    };
    (100.0 * h0).min(h1).min(span)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run<M: Model + ?Sized>(
    model: &M,
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
    let z = || vec![0.0; n];
    let (mut k1, mut k2, mut k3, mut k4, mut k5, mut k6, mut k7) =
        (z(), z(), z(), z(), z(), z(), z());
    let (mut x, mut y1, mut tmp) = (x0.to_vec(), z(), z());
    let mut rc: [Vec<f64>; 5] = [z(), z(), z(), z(), z()];

    model.rhs(t0, &x, &mut k1);
    stats.n_rhs += 1;
    if k1.iter().any(|v| !v.is_finite()) {
        return Err(IntegrateError::NonFinite { t: t0 });
    }
    rec.start(t0, &x);
    let mut h = initial_step(
        model,
        t0,
        x0,
        &k1,
        t1 - t0,
        rtol,
        atol,
        &mut tmp,
        &mut k2,
        stats,
    );
    let mut t = t0;
    let mut facold: f64 = 1e-4;
    let mut last_rejected = false;
    let mut nsteps = 0usize;
    let expo1 = 0.2 - BETA * 0.75;

    loop {
        if nsteps >= opts.max_steps {
            return Err(IntegrateError::MaxSteps { t, steps: nsteps });
        }
        if h < 10.0 * f64::EPSILON * t.abs().max(1.0) {
            return Err(IntegrateError::StepSizeTooSmall { t, h });
        }
        let last = t + 1.01 * h >= t1;
        if last {
            h = t1 - t;
        }
        nsteps += 1;
        // Stages 2..7.
        for i in 0..n {
            tmp[i] = x[i] + h * A21 * k1[i];
        }
        model.rhs(t + C2 * h, &tmp, &mut k2);
        for i in 0..n {
            tmp[i] = x[i] + h * (A31 * k1[i] + A32 * k2[i]);
        }
        model.rhs(t + C3 * h, &tmp, &mut k3);
        for i in 0..n {
            tmp[i] = x[i] + h * (A41 * k1[i] + A42 * k2[i] + A43 * k3[i]);
        }
        model.rhs(t + C4 * h, &tmp, &mut k4);
        for i in 0..n {
            tmp[i] = x[i] + h * (A51 * k1[i] + A52 * k2[i] + A53 * k3[i] + A54 * k4[i]);
        }
        model.rhs(t + C5 * h, &tmp, &mut k5);
        for i in 0..n {
            tmp[i] =
                x[i] + h * (A61 * k1[i] + A62 * k2[i] + A63 * k3[i] + A64 * k4[i] + A65 * k5[i]);
        }
        let tph = if last { t1 } else { t + h };
        model.rhs(tph, &tmp, &mut k6);
        for i in 0..n {
            y1[i] =
                x[i] + h * (A71 * k1[i] + A73 * k3[i] + A74 * k4[i] + A75 * k5[i] + A76 * k6[i]);
        }
        model.rhs(tph, &y1, &mut k7);
        stats.n_rhs += 6;
        // Error estimate h Σ e_i k_i, into tmp.
        for i in 0..n {
            tmp[i] =
                h * (E1 * k1[i] + E3 * k3[i] + E4 * k4[i] + E5 * k5[i] + E6 * k6[i] + E7 * k7[i]);
        }
        let err = wrms(&tmp, &x, &y1, rtol, atol);
        let fac11 = err.powf(expo1);

        if err <= 1.0 {
            // Accept.
            stats.n_accepted += 1;
            check_state(tph, &y1, opts.blowup)?;
            if rec.wants(tph) {
                for i in 0..n {
                    let ydiff = y1[i] - x[i];
                    let bspl = h * k1[i] - ydiff;
                    rc[0][i] = x[i];
                    rc[1][i] = ydiff;
                    rc[2][i] = bspl;
                    rc[3][i] = ydiff - h * k7[i] - bspl;
                    rc[4][i] = h
                        * (D1 * k1[i]
                            + D3 * k3[i]
                            + D4 * k4[i]
                            + D5 * k5[i]
                            + D6 * k6[i]
                            + D7 * k7[i]);
                }
                let (ta, hh, rc) = (t, h, &rc);
                rec.step(tph, &y1, |s, out| {
                    let th = (s - ta) / hh;
                    let th1 = 1.0 - th;
                    for i in 0..out.len() {
                        out[i] = rc[0][i]
                            + th * (rc[1][i] + th1 * (rc[2][i] + th * (rc[3][i] + th1 * rc[4][i])));
                    }
                });
            } else {
                rec.step(tph, &y1, |_, _| {});
            }
            std::mem::swap(&mut x, &mut y1);
            std::mem::swap(&mut k1, &mut k7);
            t = tph;
            if let Some(p) = &opts.progress {
                p(t);
            }
            if last {
                rec.finish(t, &x);
                return Ok(Status::Completed);
            }
            if let Some(tol) = opts.steady_state_tol {
                let r = inf_norm(&k1);
                if r < tol {
                    rec.finish(t, &x);
                    return Ok(Status::SteadyState { t, residual: r });
                }
            }
            // PI controller (Lund stabilisation), HNW I §IV.2.
            let mut fac = fac11 / facold.powf(BETA);
            fac = (fac / SAFE).clamp(1.0 / FAC_MAX, 1.0 / FAC_MIN);
            facold = err.max(1e-4);
            let mut hnew = h / fac;
            if last_rejected {
                hnew = hnew.min(h);
            }
            last_rejected = false;
            h = hnew;
        } else {
            // Reject (also when err is NaN: the step shrinks until it succeeds or underflows).
            stats.n_rejected += 1;
            last_rejected = true;
            let shrink = if err.is_finite() {
                (fac11 / SAFE).min(1.0 / FAC_MIN)
            } else {
                1.0 / FAC_MIN
            };
            h /= shrink;
        }
    }
}
