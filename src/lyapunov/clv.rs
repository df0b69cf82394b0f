//! Covariant Lyapunov vectors by Ginelli's method (Ginelli, Poggi, Turchi, Chaté, Livi & Politi
//! 2007, PRL 99, 130601; Ginelli et al. 2013, J. Phys. A 46, 254005).
//!
//! The covariant vectors `v_j(t)` are the directions carried by the tangent dynamics onto
//! themselves, `D(t → t') v_j(t) ∝ v_j(t')`, growing on average at the j-th Lyapunov exponent.
//! Unlike the orthonormal Gram–Schmidt frame of the QR method, they are not orthogonal, and the
//! angles between them measure how close the dynamics is to losing hyperbolicity.
//!
//! 1. **Forward.** The QR method ([`super`]) runs through a forward transient (the frame
//!    converges to the backward Lyapunov vectors), then a window of intervals whose frames `Q_m`
//!    (N × k) are kept, then a backward transient; every interval's `R_m` (k × k, upper
//!    triangular, `D_m Q_{m−1} = Q_m R_m`) is kept.
//! 2. **Backward.** From an upper triangular `C` at the end, `C_{m−1} = R_m^{−1} C_m` with every
//!    column renormalised, through the backward transient (C converges) and back across the
//!    window, where `V_m = Q_m C_m` are the covariant vectors (unit columns). The stretching of
//!    column j over interval m is `1 / ‖R_m^{−1} c_j‖`: its time average is the j-th exponent.
//!
//! The k leading covariant vectors need only the k leading Gram–Schmidt vectors (the
//! upper-triangular structure), at O(N k²) per interval on top of the QR method.

use super::{flow_tangent, map_tangent, validate, Kind, LyapunovOptions, Tangent};
use crate::error::{Error, Result};
use crate::model::{Map, Model};
use faer::Mat;

/// The window of a covariant-vector computation, in QR intervals (each `reorth` steps of the
/// underlying [`LyapunovOptions`], whose `warmup`, `reorth`, `k`, `dt` and `frame` apply; its
/// `transient` and `steps` are replaced by these three).
#[derive(Debug, Clone, PartialEq)]
pub struct ClvOptions {
    /// Intervals before the window: the Gram–Schmidt frame converges.
    pub forward: usize,
    /// Intervals whose covariant vectors are returned.
    pub window: usize,
    /// Intervals after the window, for the backward iteration to converge.
    pub backward: usize,
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions {
            forward: 500,
            window: 1000,
            backward: 500,
        }
    }
}

/// Covariant Lyapunov vectors along a stretch of trajectory.
#[derive(Debug, Clone)]
pub struct Covariant {
    /// The window's times (steps × dt, from the end of the warm-up).
    pub times: Vec<f64>,
    /// The state at each window time (where the next interval's Jacobians start).
    pub states: Vec<Vec<f64>>,
    /// The covariant vectors at each window time: N × k, unit columns, ordered as the exponents.
    pub vectors: Vec<Mat<f64>>,
    /// Growth rates of the covariant vectors over the window (per step for maps, per unit time
    /// for flows): the Lyapunov exponents, largest first.
    pub exponents: Vec<f64>,
    /// The same exponents from the Gram–Schmidt frame (the QR method) over the same window.
    pub qr_exponents: Vec<f64>,
    /// Indices of the expanding, neutral (flows: the exponent nearest 0, the flow direction) and
    /// contracting vectors.
    pub unstable: Vec<usize>,
    pub neutral: Vec<usize>,
    pub stable: Vec<usize>,
    /// The smallest principal angle (radians) between the expanding and the contracting
    /// subspaces at each window time (empty when one of them is): near 0 where the dynamics is
    /// close to a tangency (loss of hyperbolicity).
    pub angles: Vec<f64>,
}

/// Covariant Lyapunov vectors of any system the resolver gives (a flow or a map).
pub fn covariant_vectors(
    system: &crate::model::System,
    x0: &[f64],
    opts: &LyapunovOptions,
    clv: &ClvOptions,
) -> Result<Covariant> {
    match system {
        crate::model::System::Flow(m) => covariant_vectors_flow(m, x0, opts, clv),
        crate::model::System::Map(m) => covariant_vectors_map(m, x0, opts, clv),
    }
}

/// Covariant Lyapunov vectors of a map.
pub fn covariant_vectors_map<F: Map + ?Sized>(
    map: &F,
    h0: &[f64],
    opts: &LyapunovOptions,
    clv: &ClvOptions,
) -> Result<Covariant> {
    let opts = window_options(map.dim(), opts, clv)?;
    let (mut tan, opts) = map_tangent(map, h0, &opts)?;
    ginelli(&mut tan, map.dim(), &opts, clv, Kind::Map)
}

/// Covariant Lyapunov vectors of a flow (the variational system stepped by RK4, as
/// [`super::lyapunov_flow`]).
pub fn covariant_vectors_flow<M: Model + ?Sized>(
    model: &M,
    x0: &[f64],
    opts: &LyapunovOptions,
    clv: &ClvOptions,
) -> Result<Covariant> {
    let opts = window_options(model.dim(), opts, clv)?;
    let (mut tan, opts) = flow_tangent(model, x0, &opts)?;
    let dt = opts.dt;
    ginelli(&mut tan, model.dim(), &opts, clv, Kind::Flow { dt })
}

/// The QR method's options for the whole forward pass, checked (memory included).
fn window_options(n: usize, opts: &LyapunovOptions, clv: &ClvOptions) -> Result<LyapunovOptions> {
    if clv.window < 2 {
        return Err(Error::invalid(
            "window",
            format!("{}: need at least two intervals", clv.window),
        ));
    }
    if opts.adaptive.is_some() {
        return Err(Error::invalid(
            "reorth",
            "covariant vectors need fixed QR intervals (not --reorth auto)",
        ));
    }
    let mut o = opts.clone();
    let intervals = clv.forward + clv.window + clv.backward;
    o.transient = 0;
    o.steps = intervals.saturating_mul(opts.reorth.max(1));
    let o = validate(n, &o)?;
    let k = o.k.unwrap_or(n);
    // Q_m and the state per window interval, R_m per interval after the forward transient.
    let bytes = 8
        * (clv.window as u128 * (n * k + n) as u128
            + (clv.window + clv.backward) as u128 * (k * k) as u128);
    crate::memory::check("window", bytes, None)?;
    Ok(o)
}

fn ginelli(
    t: &mut impl Tangent,
    n: usize,
    opts: &LyapunovOptions,
    clv: &ClvOptions,
    kind: Kind,
) -> Result<Covariant> {
    let k = opts.k.unwrap_or(n);
    let reorth = opts.reorth.max(1);
    let span = reorth as f64 * opts.dt;
    let intervals = clv.forward + clv.window + clv.backward;
    let mut diag = vec![0.0; k];
    let mut a = Mat::<f64>::zeros(n, k);
    let mut rs: Vec<Mat<f64>> = Vec::with_capacity(clv.window + clv.backward);
    let mut qs: Vec<Mat<f64>> = Vec::with_capacity(clv.window);
    let mut states: Vec<Vec<f64>> = Vec::with_capacity(clv.window);
    let mut qr_sum = vec![0.0; k];
    let mut step = opts.warmup;
    for m in 0..intervals {
        for _ in 0..reorth {
            t.advance(step);
            step += 1;
        }
        super::check_finite_state(t.state(), step, kind)?;
        let keep_r = m >= clv.forward;
        if keep_r {
            a.copy_from(t.frame());
        }
        t.reorthonormalise(&mut diag);
        if !keep_r {
            continue;
        }
        let q = t.frame();
        // R = Qᵀ A (upper triangular up to round-off; the lower part is dropped).
        let mut r = q.transpose() * a.as_ref();
        for j in 0..k {
            for i in j + 1..k {
                r[(i, j)] = 0.0;
            }
        }
        rs.push(r);
        let i = m - clv.forward;
        if i < clv.window {
            qs.push(q.to_owned());
            states.push(t.state().to_vec());
            if i >= 1 {
                for (s, d) in qr_sum.iter_mut().zip(&diag) {
                    *s += d;
                }
            }
        }
        if let Some(cb) = &opts.progress {
            (cb.0)((m + 1) * reorth);
        }
        crate::io::check_interrupt("covariant vectors stopped")?;
    }
    // Backward: C at the last interval, the identity (upper triangular, any will do).
    let mut c = Mat::<f64>::identity(k, k);
    let mut growth = vec![0.0; k];
    let mut vectors: Vec<Mat<f64>> = vec![Mat::zeros(0, 0); clv.window];
    // rs[i] is R of interval forward + i; qs[i] the frame at its end. V at window time i comes
    // from C_i, and C_{i−1} = R_i^{-1} C_i.
    for i in (0..rs.len()).rev() {
        if i < clv.window {
            vectors[i] = qs[i].as_ref() * c.as_ref();
        }
        if i == 0 {
            break;
        }
        solve_upper_in_place(&rs[i], &mut c);
        for j in 0..k {
            let norm = (0..k).map(|r| c[(r, j)] * c[(r, j)]).sum::<f64>().sqrt();
            if !(norm.is_finite() && norm > 0.0) {
                return Err(Error::failed(
                    "covariant vectors",
                    format!(
                        "the backward iteration lost vector {} (a singular R: k too large for a degenerate tangent space?)",
                        j + 1
                    ),
                ));
            }
            for r in 0..k {
                c[(r, j)] /= norm;
            }
            // Interval i stretches column j by 1/norm; the window's intervals are 1..window.
            if i < clv.window {
                growth[j] -= norm.ln();
            }
        }
    }
    // The window's intervals: from its first time to its last.
    let window_time = (clv.window - 1) as f64 * span;
    let exponents: Vec<f64> = growth.iter().map(|g| g / window_time).collect();
    let qr_exponents: Vec<f64> = qr_sum.iter().map(|s| s / window_time).collect();
    super::check_exponents(&exponents, kind)?;
    // The columns are in the Gram–Schmidt order, which is the exponents' order (largest first).
    let (unstable, neutral, stable) = split(&exponents, matches!(kind, Kind::Flow { .. }));
    let angles = if unstable.is_empty() || stable.is_empty() {
        vec![]
    } else {
        vectors
            .iter()
            .map(|v| min_angle(v, &unstable, &stable))
            .collect()
    };
    let times = (0..clv.window)
        .map(|i| (clv.forward + i + 1) as f64 * span)
        .collect();
    Ok(Covariant {
        times,
        states,
        vectors,
        exponents,
        qr_exponents,
        unstable,
        neutral,
        stable,
        angles,
    })
}

/// `c ← R⁻¹ c` for upper triangular `r` (k × k).
fn solve_upper_in_place(r: &Mat<f64>, c: &mut Mat<f64>) {
    let k = r.nrows();
    for j in 0..c.ncols() {
        for i in (0..k).rev() {
            let mut s = c[(i, j)];
            for l in i + 1..k {
                s -= r[(i, l)] * c[(l, j)];
            }
            c[(i, j)] = s / r[(i, i)];
        }
    }
}

/// Expanding, neutral and contracting indices of sorted exponents; for a flow the exponent
/// nearest zero is the flow direction's (neutral) when the flow is not at a fixed point.
fn split(exps: &[f64], flow: bool) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let neutral: Vec<usize> = if flow {
        exps.iter()
            .enumerate()
            .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| vec![i])
            .unwrap_or_default()
    } else {
        vec![]
    };
    let (mut u, mut s) = (vec![], vec![]);
    for (i, &l) in exps.iter().enumerate() {
        if neutral.contains(&i) {
            continue;
        }
        if l > 0.0 {
            u.push(i);
        } else {
            s.push(i);
        }
    }
    (u, neutral, s)
}

/// The smallest principal angle between the spans of columns `a` and `b` of `v`.
fn min_angle(v: &Mat<f64>, a: &[usize], b: &[usize]) -> f64 {
    let basis = |cols: &[usize]| -> Mat<f64> {
        let m = Mat::from_fn(v.nrows(), cols.len(), |i, j| v[(i, cols[j])]);
        m.qr().compute_thin_Q()
    };
    let (qa, qb) = (basis(a), basis(b));
    let cross = qa.transpose() * qb.as_ref();
    let top = cross
        .singular_values()
        .ok()
        .and_then(|s| s.into_iter().reduce(f64::max))
        .unwrap_or(1.0);
    top.clamp(-1.0, 1.0).acos()
}
