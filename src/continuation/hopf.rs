//! The first Lyapunov coefficient of a Hopf point (Kuznetsov 2004, eq. 3.20):
//!
//! $$ l_1 = \frac{1}{2\omega}\,\mathrm{Re}\Big(\langle p, C(q,q,\bar q)\rangle
//!    - 2\langle p, B(q, A^{-1}B(q,\bar q))\rangle
//!    + \langle p, B(\bar q, (2i\omega I - A)^{-1}B(q,q))\rangle\Big), $$
//!
//! with $A q = i\omega q$, $A^\top p = -i\omega p$, $\langle q, q\rangle = \langle p, q\rangle = 1$
//! ($\langle a, b\rangle = \bar a^\top b$), and B, C the second and third derivatives of f at the
//! Hopf point — here central differences of the analytic Jacobian: $B(u, v) = (J(x + hv) -
//! J(x - hv))u / 2h$ and the four-point second difference for C. Negative l1: supercritical (a
//! stable cycle is born), positive: subcritical. For the normal form
//! $\dot z = (\mu + i) z + s z|z|^2$ this normalisation gives $l_1 = 2s$.

use super::param::{jacobian_at, Parametrised};
use crate::error::{Error, Result};
use faer::linalg::solvers::Solve;
use faer::{c64, Mat};

/// `J(x + h v) u` for the real vectors u, v.
fn jv(
    sys: &(impl Parametrised + ?Sized),
    x: &[f64],
    p: f64,
    h: f64,
    v: &[f64],
    u: &[f64],
) -> Vec<f64> {
    let xs: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + h * b).collect();
    let j = jacobian_at(sys, &xs, p);
    (0..x.len())
        .map(|i| (0..x.len()).map(|k| j[(i, k)] * u[k]).sum())
        .collect()
}

fn inf(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, a| m.max(a.abs()))
}

/// B(u, v) for real u, v.
fn b_real(sys: &(impl Parametrised + ?Sized), x: &[f64], p: f64, u: &[f64], v: &[f64]) -> Vec<f64> {
    let nv = inf(v);
    if nv == 0.0 {
        return vec![0.0; x.len()];
    }
    let h = 1e-5 * (1.0 + inf(x)) / nv;
    let a = jv(sys, x, p, h, v, u);
    let b = jv(sys, x, p, -h, v, u);
    a.iter().zip(&b).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

/// C(u, v, w) for real u, v, w.
fn c_real(
    sys: &(impl Parametrised + ?Sized),
    x: &[f64],
    p: f64,
    u: &[f64],
    v: &[f64],
    w: &[f64],
) -> Vec<f64> {
    let (nv, nw) = (inf(v), inf(w));
    if nv == 0.0 || nw == 0.0 {
        return vec![0.0; x.len()];
    }
    let (hv, hw) = (1e-3 * (1.0 + inf(x)) / nv, 1e-3 * (1.0 + inf(x)) / nw);
    let shift = |sv: f64, sw: f64| -> Vec<f64> {
        (0..x.len())
            .map(|i| sv * hv * v[i] + sw * hw * w[i])
            .collect()
    };
    let at = |sv: f64, sw: f64| {
        let d = shift(sv, sw);
        let xs: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + b).collect();
        let j = jacobian_at(sys, &xs, p);
        (0..x.len())
            .map(|i| (0..x.len()).map(|k| j[(i, k)] * u[k]).sum::<f64>())
            .collect::<Vec<f64>>()
    };
    let (pp, pm, mp, mm) = (at(1.0, 1.0), at(1.0, -1.0), at(-1.0, 1.0), at(-1.0, -1.0));
    (0..x.len())
        .map(|i| (pp[i] - pm[i] - mp[i] + mm[i]) / (4.0 * hv * hw))
        .collect()
}

/// A complex vector as (re, im).
type Cv = (Vec<f64>, Vec<f64>);

/// B(q1, q2) for complex q1 = a + ib, q2 = c + id.
fn b_cplx(sys: &(impl Parametrised + ?Sized), x: &[f64], p: f64, q1: &Cv, q2: &Cv) -> Cv {
    let (a, b) = q1;
    let (c, d) = q2;
    let ac = b_real(sys, x, p, a, c);
    let bd = b_real(sys, x, p, b, d);
    let ad = b_real(sys, x, p, a, d);
    let bc = b_real(sys, x, p, b, c);
    (
        ac.iter().zip(&bd).map(|(u, v)| u - v).collect(),
        ad.iter().zip(&bc).map(|(u, v)| u + v).collect(),
    )
}

/// ⟨p, v⟩ = Σ conj(p_i) v_i.
fn dot(p: &Cv, v: &Cv) -> c64 {
    let mut s = c64::new(0.0, 0.0);
    for i in 0..p.0.len() {
        s += c64::new(p.0[i], -p.1[i]) * c64::new(v.0[i], v.1[i]);
    }
    s
}

/// The eigenvector of `m` for the eigenvalue nearest `target`, as (re, im).
pub(crate) fn eigvec(m: &Mat<f64>, target: c64) -> Result<Cv> {
    let e = m
        .eigen()
        .map_err(|e| Error::failed("hopf", format!("eigen decomposition failed: {e:?}")))?;
    let s = e.S().column_vector();
    let u = e.U();
    let n = m.nrows();
    let k = (0..n)
        .min_by(|&a, &b| (s[a] - target).norm().total_cmp(&(s[b] - target).norm()))
        .ok_or_else(|| Error::failed("hopf", "empty spectrum"))?;
    Ok((
        (0..n).map(|i| u[(i, k)].re).collect(),
        (0..n).map(|i| u[(i, k)].im).collect(),
    ))
}

/// The first Lyapunov coefficient at a Hopf point (x, p) with frequency ω of a flow.
pub fn first_lyapunov<P: Parametrised + ?Sized>(
    sys: &P,
    x: &[f64],
    p: f64,
    omega: f64,
) -> Result<f64> {
    let n = x.len();
    if !(omega > 0.0) {
        return Err(Error::failed("hopf", "ω must be positive"));
    }
    let a = jacobian_at(sys, x, p);
    let mut q = eigvec(&a, c64::new(0.0, omega))?;
    let at = a.transpose().to_owned();
    let mut pv = eigvec(&at, c64::new(0.0, -omega))?;
    // ⟨q, q⟩ = 1, then ⟨p, q⟩ = 1.
    let nq = dot(&q, &q).re.sqrt();
    q.0.iter_mut().chain(q.1.iter_mut()).for_each(|v| *v /= nq);
    let pq = dot(&pv, &q);
    // p ← p / conj(⟨p, q⟩).
    let c = c64::new(1.0, 0.0) / pq.conj();
    for i in 0..n {
        let z = c64::new(pv.0[i], pv.1[i]) * c;
        pv.0[i] = z.re;
        pv.1[i] = z.im;
    }
    let qbar: Cv = (q.0.clone(), q.1.iter().map(|v| -v).collect());
    // C(q, q, q̄) by trilinearity with q = a + ib.
    let (ra, rb) = (&q.0, &q.1);
    let caaa = c_real(sys, x, p, ra, ra, ra);
    let cbba = c_real(sys, x, p, rb, rb, ra);
    let cabb = c_real(sys, x, p, ra, rb, rb);
    let caab = c_real(sys, x, p, ra, ra, rb);
    let cbbb = c_real(sys, x, p, rb, rb, rb);
    let caba = c_real(sys, x, p, ra, rb, ra);
    let cqqq: Cv = (
        (0..n).map(|i| caaa[i] - cbba[i] + 2.0 * cabb[i]).collect(),
        (0..n).map(|i| -caab[i] + cbbb[i] + 2.0 * caba[i]).collect(),
    );
    // h1 = A⁻¹ B(q, q̄) (real).
    let bqqbar = b_cplx(sys, x, p, &q, &qbar);
    let lu = a.partial_piv_lu();
    let rhs = Mat::from_fn(n, 1, |i, _| bqqbar.0[i]);
    let h1 = lu.solve(&rhs);
    let h1: Cv = ((0..n).map(|i| h1[(i, 0)]).collect(), vec![0.0; n]);
    // h2 = (2iω I − A)⁻¹ B(q, q) as the real 2n system [[−A, −2ωI], [2ωI, −A]].
    let bqq = b_cplx(sys, x, p, &q, &q);
    let m = Mat::from_fn(2 * n, 2 * n, |i, j| {
        let (bi, bj) = (i / n, j / n);
        let (ii, jj) = (i % n, j % n);
        let eye = if ii == jj { 2.0 * omega } else { 0.0 };
        match (bi, bj) {
            (0, 0) | (1, 1) => -a[(ii, jj)],
            (0, 1) => -eye,
            _ => eye,
        }
    });
    let rhs = Mat::from_fn(2 * n, 1, |i, _| if i < n { bqq.0[i] } else { bqq.1[i - n] });
    let z = m.partial_piv_lu().solve(&rhs);
    let h2: Cv = (
        (0..n).map(|i| z[(i, 0)]).collect(),
        (0..n).map(|i| z[(n + i, 0)]).collect(),
    );
    let t1 = dot(&pv, &cqqq);
    let t2 = dot(&pv, &b_cplx(sys, x, p, &q, &h1));
    let t3 = dot(&pv, &b_cplx(sys, x, p, &qbar, &h2));
    let l1 = (t1 - t2 * 2.0 + t3).re / (2.0 * omega);
    if !l1.is_finite() {
        return Err(Error::failed(
            "hopf",
            "the first Lyapunov coefficient is not finite",
        ));
    }
    Ok(l1)
}
