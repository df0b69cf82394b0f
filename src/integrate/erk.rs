//! Adaptive explicit Runge–Kutta pairs (7-stage, FSAL): Dormand–Prince 5(4) with Hairer's
//! 4th-order dense output, and Tsitouras 5(4) with its free interpolant; PI step-size control.
//!
//! Coefficients: Dormand & Prince (1980); controller and dense output: Hairer, Nørsett & Wanner,
//! *Solving ODEs I*, §II.4–II.6 (the `DOPRI5` code). The 5th-order solution is propagated (local
//! extrapolation) and the last stage is reused as the first of the next step (FSAL), so an
//! accepted step costs 6 right-hand-side evaluations.

use super::{check_state, inf_norm, Options, Recorder, Stats, Status};
use crate::error::IntegrateError;
use crate::model::Model;

const D1: f64 = -12715105075.0 / 11282082432.0;
const D3: f64 = 87487479700.0 / 32700410799.0;
const D4: f64 = -10690763975.0 / 1880347072.0;
const D5: f64 = 701980252875.0 / 199316789632.0;
const D6: f64 = -1453857185.0 / 822651844.0;
const D7: f64 = 69997945.0 / 29380423.0;

/// An explicit 7-stage FSAL Runge–Kutta pair with an embedded error estimate.
pub(crate) struct Tableau {
    pub c: [f64; 7],
    /// Row s holds the coefficients of stage s; row 6 is the propagated (5th-order) solution.
    pub a: [[f64; 7]; 7],
    /// Error-estimate weights (b − b̂).
    pub e: [f64; 7],
    pub dense: Dense,
}

/// Dense output of a [`Tableau`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dense {
    /// Hairer's 4th-order continuous extension of DOPRI5.
    Dopri5,
    /// y(t + θh) = y + h Σ_i b_i(θ) k_i with b_i(θ) = Σ_m β_im θ^(m+1) (m = 0..3).
    Poly([[f64; 4]; 7]),
}

/// Dormand & Prince (1980).
pub(crate) const DOPRI5: Tableau = Tableau {
    c: [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
    a: [
        [0.0; 7],
        [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0, 0.0],
        [
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
            0.0,
            0.0,
        ],
        [
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
            0.0,
        ],
    ],
    e: [
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ],
    dense: Dense::Dopri5,
};

/// Tsitouras (2011) 5(4), with its free 4th-order interpolant (coefficients as in
/// OrdinaryDiffEq.jl and diffsol).
pub(crate) const TSIT5: Tableau = {
    const C: [f64; 7] = [0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0];
    const B: [f64; 7] = [
        0.09646076681806523,
        0.01,
        0.4798896504144996,
        1.379008574103742,
        -3.290069515436081,
        2.324710524099774,
        0.0,
    ];
    const A21: f64 = 0.161;
    const A32: f64 = 0.335480655492357;
    const A42: f64 = -6.359448489975075;
    const A43: f64 = 4.362295432869581;
    const A52: f64 = -11.74888356406283;
    const A53: f64 = 7.495539342889836;
    const A54: f64 = -0.09249506636175525;
    const A62: f64 = -12.92096931784711;
    const A63: f64 = 8.159367898576159;
    const A64: f64 = -0.071584973281401;
    const A65: f64 = -0.02826905039406838;
    Tableau {
        c: C,
        a: [
            [0.0; 7],
            [A21, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [C[2] - A32, A32, 0.0, 0.0, 0.0, 0.0, 0.0],
            [C[3] - A42 - A43, A42, A43, 0.0, 0.0, 0.0, 0.0],
            [C[4] - A52 - A53 - A54, A52, A53, A54, 0.0, 0.0, 0.0],
            [C[5] - A62 - A63 - A64 - A65, A62, A63, A64, A65, 0.0, 0.0],
            B,
        ],
        e: [
            -0.001780011052225777,
            -0.0008164344596567469,
            0.007880878010261995,
            -0.1447110071732629,
            0.5823571654525552,
            -0.45808210592918697,
            0.015151515151515152,
        ],
        dense: Dense::Poly([
            [1.0, -2.76370619727483, 2.91325546182191, -1.05308849772902],
            [0.0, 0.1317, -0.2234, 0.1017],
            [0.0, 3.93029623689475, -5.9410338721315, 2.49062728565125],
            [0.0, -12.4110771669337, 30.3381886302823, -16.5481028892449],
            [0.0, 37.509313416511, -88.1789048947664, 47.3795219628193],
            [0.0, -27.8965262891973, 65.0918946747937, -34.8706578614966],
            [0.0, 1.5, -4.0, 2.5],
        ]),
    }
};

const SAFE: f64 = 0.9;
const BETA: f64 = 0.04;
const FAC_MIN: f64 = 0.2; // largest decrease 1/5 ...
const FAC_MAX: f64 = 10.0; // ... largest increase 10

/// Hairer's initial step-size guess (HNW I, §II.4), first half: the trial step h₀ from
/// d₀ = ‖x‖ and d₁ = ‖f(x)‖ (weighted norms), at most the span.
pub(super) fn first_trial_step(d0: f64, d1: f64, span: f64) -> f64 {
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    h0.min(span)
}

/// Its second half: from d₂ = ‖f(x + h₀f) − f(x)‖/h₀, the step for a method of order `order`.
pub(super) fn first_step(h0: f64, d1: f64, d2: f64, order: i32, span: f64) -> f64 {
    let dm = d1.max(d2);
    let h1 = if !(dm > 1e-15) {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / dm).powf(1.0 / f64::from(order))
    };
    (100.0 * h0).min(h1).min(span)
}

/// RMS norm of `v` weighted by `atol + rtol·max(|a_i|, |b_i|)`.
#[inline]
pub(super) fn wrms(v: &[f64], a: &[f64], b: &[f64], rtol: f64, atol: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        let sk = atol + rtol * a[i].abs().max(b[i].abs());
        let r = v[i] / sk;
        s += r * r;
    }
    (s / v.len() as f64).sqrt()
}

/// `dst ← base + Σ_j c_j k_j` over the stages with `c_j = h·row[j] ≠ 0` (`base` = 0 when
/// `None`), in one pass: each entry's sum in the order j = 0, 1, …, the bits of adding one
/// stage after another.
fn combine(dst: &mut [f64], base: Option<&[f64]>, k: &[Vec<f64>], h: f64, row: &[f64]) {
    let n = dst.len();
    let mut terms: [(f64, &[f64]); 7] = [(0.0, &[]); 7];
    let mut m = 0;
    for (kj, r) in k.iter().zip(row) {
        let c = h * r;
        if c != 0.0 {
            terms[m] = (c, &kj[..n]);
            m += 1;
        }
    }
    match m {
        0 => combine_n::<0>(dst, base, &terms),
        1 => combine_n::<1>(dst, base, &terms),
        2 => combine_n::<2>(dst, base, &terms),
        3 => combine_n::<3>(dst, base, &terms),
        4 => combine_n::<4>(dst, base, &terms),
        5 => combine_n::<5>(dst, base, &terms),
        6 => combine_n::<6>(dst, base, &terms),
        _ => combine_n::<7>(dst, base, &terms),
    }
}

/// [`combine`] with `M` terms: eight entries at a time in a register-sized block (each term's
/// slice bounds-checked once per block, so the block's arithmetic vectorises), then the rest.
#[inline(always)]
fn combine_n<const M: usize>(dst: &mut [f64], base: Option<&[f64]>, terms: &[(f64, &[f64]); 7]) {
    const L: usize = 8;
    let n = dst.len();
    let t: [(f64, &[f64]); M] = std::array::from_fn(|j| (terms[j].0, &terms[j].1[..n]));
    let start = |i: usize| base.map_or(0.0, |x| x[i]);
    let full = n - n % L;
    for (i, out) in (0..full).step_by(L).zip(dst[..full].chunks_exact_mut(L)) {
        let mut d = [0.0; L];
        if let Some(x) = base {
            d.copy_from_slice(&x[i..i + L]);
        }
        for (c, kj) in &t {
            let k = &kj[i..i + L];
            for l in 0..L {
                d[l] += c * k[l];
            }
        }
        out.copy_from_slice(&d);
    }
    for i in full..n {
        let mut d = start(i);
        for (c, kj) in &t {
            d += c * kj[i];
        }
        dst[i] = d;
    }
}

/// One trajectory of [`run_batch`]: its state, stages and step-size controller.
struct Traj {
    x: Vec<f64>,
    y1: Vec<f64>,
    tmp: Vec<f64>,
    k: Vec<Vec<f64>>,
    rc: Vec<Vec<f64>>,
    t: f64,
    h: f64,
    facold: f64,
    last_rejected: bool,
    nsteps: usize,
    last: bool,
    tph: f64,
    out: Option<Result<Status, IntegrateError>>,
}

/// Evaluates f for the trajectories `js`, each at its own time `ts[i]` and state `input(traj)`,
/// in one [`Model::rhs_batch`] call, and stores the values in stage `st` of each.
fn eval_batch<M: Model + ?Sized>(
    model: &M,
    trajs: &mut [Traj],
    js: &[usize],
    ts: &[f64],
    st: usize,
    input: impl Fn(&Traj) -> &[f64],
    buf: &mut (Vec<f64>, Vec<f64>),
) {
    let n = model.dim();
    let (xin, fout) = buf;
    xin.resize(n * js.len(), 0.0);
    fout.resize(n * js.len(), 0.0);
    for (c, &j) in js.iter().enumerate() {
        xin[c * n..(c + 1) * n].copy_from_slice(input(&trajs[j]));
    }
    eval_gathered(model, trajs, js, ts, st, buf);
}

/// The batched evaluation of [`eval_batch`] once the states of the trajectories `js` stand in
/// `buf.0` (column-major n × |js|): f into stage `st` of each.
fn eval_gathered<M: Model + ?Sized>(
    model: &M,
    trajs: &mut [Traj],
    js: &[usize],
    ts: &[f64],
    st: usize,
    buf: &mut (Vec<f64>, Vec<f64>),
) {
    let n = model.dim();
    let (xin, fout) = buf;
    model.rhs_batch(ts, xin, fout);
    for (col, &j) in fout.chunks_exact(n).zip(js) {
        trajs[j].k[st].copy_from_slice(col);
    }
}

/// One trajectory ([`run_batch`] with a single start).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<M: Model + ?Sized>(
    tab: &Tableau,
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
    run_batch(
        tab,
        model,
        &[x0],
        t0,
        t1,
        rtol,
        atol,
        opts,
        std::slice::from_mut(rec),
        std::slice::from_mut(stats),
    )
    .pop()
    .unwrap_or(Err(IntegrateError::NonFinite { t: t0 }))
}

/// Integrates every start in `x0s` over (t0, t1) with its own step-size control (its own step
/// sizes, accepted and rejected steps, and end), evaluating the right-hand sides of all
/// trajectories still running in one [`Model::rhs_batch`] call per stage. Each trajectory's
/// arithmetic is exactly the single-trajectory algorithm's, so with a batched right-hand side that
/// equals the per-column one bit for bit, every trajectory equals its single run bit for bit.
/// One result per start; a failed trajectory stops alone.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_batch<M: Model + ?Sized>(
    tab: &Tableau,
    model: &M,
    x0s: &[&[f64]],
    t0: f64,
    t1: f64,
    rtol: f64,
    atol: f64,
    opts: &Options,
    recs: &mut [Recorder],
    stats: &mut [Stats],
) -> Vec<Result<Status, IntegrateError>> {
    let n = model.dim();
    let z = || vec![0.0; n];
    let mut trajs: Vec<Traj> = x0s
        .iter()
        .map(|x0| Traj {
            x: x0.to_vec(),
            y1: z(),
            tmp: z(),
            k: (0..7).map(|_| z()).collect(),
            rc: if tab.dense == Dense::Dopri5 {
                (0..5).map(|_| z()).collect()
            } else {
                vec![]
            },
            t: t0,
            h: 0.0,
            facold: 1e-4,
            last_rejected: false,
            nsteps: 0,
            last: false,
            tph: t0,
            out: None,
        })
        .collect();
    let mut buf = (vec![], vec![]);
    let all: Vec<usize> = (0..trajs.len()).collect();
    let ts0 = vec![t0; all.len()];
    eval_batch(model, &mut trajs, &all, &ts0, 0, |tr| &tr.x, &mut buf);
    for (j, tr) in trajs.iter_mut().enumerate() {
        stats[j].n_rhs += 1;
        if tr.k[0].iter().any(|v| !v.is_finite()) {
            tr.out = Some(Err(IntegrateError::NonFinite { t: t0 }));
        } else {
            recs[j].start(t0, &tr.x);
        }
    }
    // Hairer's initial step-size guess (HNW I, §II.4), with f at the trial point batched.
    let span = t1 - t0;
    let active: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&j| trajs[j].out.is_none())
        .collect();
    let mut d01 = vec![(0.0, 0.0, 0.0); trajs.len()];
    let mut ts = vec![];
    for &j in &active {
        let tr = &mut trajs[j];
        let d0 = wrms(&tr.x, &tr.x, &tr.x, rtol, atol);
        let d1 = wrms(&tr.k[0], &tr.x, &tr.x, rtol, atol);
        let h0 = first_trial_step(d0, d1, span);
        for i in 0..n {
            tr.tmp[i] = tr.x[i] + h0 * tr.k[0][i];
        }
        d01[j] = (d0, d1, h0);
        ts.push(t0 + h0);
    }
    eval_batch(model, &mut trajs, &active, &ts, 1, |tr| &tr.tmp, &mut buf);
    for &j in &active {
        stats[j].n_rhs += 1;
        let tr = &mut trajs[j];
        let (_, d1, h0) = d01[j];
        let (k0, rest) = tr.k.split_at_mut(1);
        for i in 0..n {
            rest[0][i] -= k0[0][i];
        }
        let d2 = wrms(&rest[0], &tr.x, &tr.x, rtol, atol) / h0;
        tr.h = first_step(h0, d1, d2, 5, span);
    }
    let expo1 = 0.2 - BETA * 0.75;
    // Reused from step to step: the members still running and their stage times.
    let (mut active, mut ts) = (
        Vec::with_capacity(trajs.len()),
        Vec::with_capacity(trajs.len()),
    );

    loop {
        active.clear();
        for (j, tr) in trajs.iter_mut().enumerate() {
            if tr.out.is_some() {
                continue;
            }
            if tr.nsteps >= opts.max_steps {
                tr.out = Some(Err(IntegrateError::MaxSteps {
                    t: tr.t,
                    steps: tr.nsteps,
                }));
                continue;
            }
            if tr.h < 10.0 * f64::EPSILON * tr.t.abs().max(1.0) {
                tr.out = Some(Err(IntegrateError::StepSizeTooSmall { t: tr.t, h: tr.h }));
                continue;
            }
            tr.last = tr.t + 1.01 * tr.h >= t1;
            if tr.last {
                tr.h = t1 - tr.t;
            }
            tr.nsteps += 1;
            tr.tph = if tr.last { t1 } else { tr.t + tr.h };
            active.push(j);
        }
        if active.is_empty() {
            break;
        }
        // Stages 2..7; the 7th is evaluated at the new solution (FSAL). The stage points are
        // formed in the batch's input columns (the new solution also in y1).
        for st in 1..7 {
            let row = &tab.a[st][..st];
            ts.clear();
            let (xin, fout) = &mut buf;
            xin.resize(n * active.len(), 0.0);
            fout.resize(n * active.len(), 0.0);
            for (col, &j) in xin.chunks_exact_mut(n).zip(&active) {
                let tr = &mut trajs[j];
                let (h, t, tph) = (tr.h, tr.t, tr.tph);
                if st == 6 {
                    combine(&mut tr.y1, Some(&tr.x), &tr.k[..st], h, row);
                    col.copy_from_slice(&tr.y1);
                } else {
                    combine(col, Some(&tr.x), &tr.k[..st], h, row);
                }
                ts.push(if tab.c[st] == 1.0 {
                    tph
                } else {
                    t + tab.c[st] * h
                });
            }
            eval_gathered(model, &mut trajs, &active, &ts, st, &mut buf);
        }
        for &j in &active {
            stats[j].n_rhs += 6;
            if let Err(e) = step_end(
                tab,
                &mut trajs[j],
                rtol,
                atol,
                expo1,
                opts,
                &mut recs[j],
                &mut stats[j],
            ) {
                trajs[j].out = Some(Err(e));
            }
        }
    }
    trajs
        .into_iter()
        .map(|tr| tr.out.unwrap_or(Err(IntegrateError::NonFinite { t: t1 })))
        .collect()
}

/// The error test, acceptance (dense output, recording, steady-state test) or rejection, and the
/// step-size update of one trajectory after its stages.
#[allow(clippy::too_many_arguments)]
fn step_end(
    tab: &Tableau,
    tr: &mut Traj,
    rtol: f64,
    atol: f64,
    expo1: f64,
    opts: &Options,
    rec: &mut Recorder,
    stats: &mut Stats,
) -> Result<(), IntegrateError> {
    let n = tr.x.len();
    let (h, t, tph) = (tr.h, tr.t, tr.tph);
    // Error estimate h Σ e_i k_i, into tmp.
    combine(&mut tr.tmp, None, &tr.k, h, &tab.e);
    let err = wrms(&tr.tmp, &tr.x, &tr.y1, rtol, atol);
    let fac11 = err.powf(expo1);

    if err <= 1.0 {
        // Accept.
        stats.n_accepted += 1;
        check_state(tph, &tr.y1, opts.blowup)?;
        let (x, y1, k, rc) = (&tr.x, &tr.y1, &tr.k, &mut tr.rc);
        if rec.wants(tph) {
            match &tab.dense {
                Dense::Dopri5 => {
                    for i in 0..n {
                        let ydiff = y1[i] - x[i];
                        let bspl = h * k[0][i] - ydiff;
                        rc[0][i] = x[i];
                        rc[1][i] = ydiff;
                        rc[2][i] = bspl;
                        rc[3][i] = ydiff - h * k[6][i] - bspl;
                        rc[4][i] = h
                            * (D1 * k[0][i]
                                + D3 * k[2][i]
                                + D4 * k[3][i]
                                + D5 * k[4][i]
                                + D6 * k[5][i]
                                + D7 * k[6][i]);
                    }
                    let rc = &*rc;
                    rec.step(tph, y1, |s, out| {
                        let th = (s - t) / h;
                        let th1 = 1.0 - th;
                        for i in 0..out.len() {
                            out[i] = rc[0][i]
                                + th * (rc[1][i]
                                    + th1 * (rc[2][i] + th * (rc[3][i] + th1 * rc[4][i])));
                        }
                    });
                }
                Dense::Poly(beta) => {
                    rec.step(tph, y1, |s, out| {
                        let th = (s - t) / h;
                        out.copy_from_slice(x);
                        for (j, kj) in k.iter().enumerate() {
                            let bj = beta[j];
                            let w = h * th * (bj[0] + th * (bj[1] + th * (bj[2] + th * bj[3])));
                            for (o, v) in out.iter_mut().zip(kj) {
                                *o += w * v;
                            }
                        }
                    });
                }
            }
        } else {
            rec.step(tph, y1, |_, _| {});
        }
        std::mem::swap(&mut tr.x, &mut tr.y1);
        tr.k.swap(0, 6);
        tr.t = tph;
        if let Some(p) = &opts.progress {
            p(tr.t);
        }
        if tr.last {
            rec.finish(tr.t, &tr.x);
            tr.out = Some(Ok(Status::Completed));
            return Ok(());
        }
        if let Some(tol) = opts.steady_state_tol {
            let r = inf_norm(&tr.k[0]);
            if r < tol {
                rec.finish(tr.t, &tr.x);
                tr.out = Some(Ok(Status::SteadyState {
                    t: tr.t,
                    residual: r,
                }));
                return Ok(());
            }
        }
        // PI controller (Lund stabilisation), HNW I §IV.2.
        let mut fac = fac11 / tr.facold.powf(BETA);
        fac = (fac / SAFE).clamp(1.0 / FAC_MAX, 1.0 / FAC_MIN);
        tr.facold = err.max(1e-4);
        let mut hnew = h / fac;
        if tr.last_rejected {
            hnew = hnew.min(h);
        }
        tr.last_rejected = false;
        tr.h = hnew;
    } else {
        // Reject (also when err is NaN: the step shrinks until it succeeds or underflows).
        stats.n_rejected += 1;
        tr.last_rejected = true;
        let shrink = if err.is_finite() {
            (fac11 / SAFE).min(1.0 / FAC_MIN)
        } else {
            1.0 / FAC_MIN
        };
        tr.h /= shrink;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::combine;

    /// The one-pass stage combination gives the bits of adding one stage after another, for every
    /// term count, with and without a base, at lengths around the eight-entry block.
    #[test]
    fn combine_adds_the_stages_in_order() {
        for n in [0usize, 1, 7, 8, 9, 17, 100] {
            let k: Vec<Vec<f64>> = (0..7)
                .map(|j| {
                    (0..n)
                        .map(|i| ((i * 7 + j * 3) as f64 * 0.37).sin())
                        .collect()
                })
                .collect();
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).cos()).collect();
            for zeros in 0..=7usize {
                // Rows with `zeros` vanishing coefficients (at the front, so every count occurs).
                let row: Vec<f64> = (0..7)
                    .map(|j| if j < zeros { 0.0 } else { 0.1 + j as f64 / 9.0 })
                    .collect();
                let h = 0.0371;
                for base in [Some(x.as_slice()), None] {
                    let mut want = base.map_or(vec![0.0; n], |b| b.to_vec());
                    for (kj, r) in k.iter().zip(&row) {
                        let c = h * r;
                        if c != 0.0 {
                            for (d, v) in want.iter_mut().zip(kj) {
                                *d += c * v;
                            }
                        }
                    }
                    let mut got = vec![f64::NAN; n];
                    combine(&mut got, base, &k, h, &row);
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "n = {n}, {zeros} zero coefficients, base {}",
                        base.is_some()
                    );
                }
            }
        }
    }
}
