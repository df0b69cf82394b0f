//! Branch switching at a branch point of equilibria (a simple branch point: G_y = [G_x G_p] has
//! a two-dimensional null space there): the second branch's tangent from the algebraic
//! bifurcation equation, then both of its halves continued.
//!
//! At the branch point y* the null space of G_y is span{t₁, t₂} (t₁ the followed branch's
//! tangent, t₂ ⊥ t₁) and ψ spans the left null space. Every branch through y* has a tangent
//! α t₁ + β t₂ with
//!
//! ```text
//!     a α² + 2 b α β + c β² = 0,   a = ψᵀG_yy[t₁,t₁], b = ψᵀG_yy[t₁,t₂], c = ψᵀG_yy[t₂,t₂]
//! ```
//!
//! (Keller 1977; Seydel, *Practical Bifurcation and Stability Analysis*, 2010, §5.5): two
//! roots, one of them ≈ t₁. The other is the new branch's direction; a predictor step ±ds along
//! it and the pseudo-arclength corrector put a point on each half, which is then continued like
//! any branch. G_yy is applied by central differences of G (O(h²) accurate; only the direction
//! depends on it — the points are corrected to the tolerance).

use super::{
    continue_branch, Bifurcation, Branch, ContinuationOptions, Kind, Parametrised, Problem,
};
use crate::error::{Error, Result};
use crate::stability::TimeKind;
use faer::Mat;

/// The other branch through the branch point `bp` of `branch`: its two halves (one for each
/// direction away from the point; a half whose first point the corrector cannot reach is
/// left out), each followed with `opts` from its first point towards the end of
/// [`ContinuationOptions`]' interval it heads to. `opts.ds` is the distance of the first step.
pub fn switch_branch<P: Parametrised + ?Sized>(
    sys: &P,
    branch: &Branch,
    bp: &Bifurcation,
    opts: &ContinuationOptions,
) -> Result<Vec<Branch>> {
    opts.validate()?;
    if bp.kind != Kind::BranchPoint {
        return Err(Error::invalid(
            "bifurcation",
            format!("{} is not a branch point", bp.kind.label()),
        ));
    }
    let n = sys.dim();
    crate::error::ensure_state("x", &bp.x, n, "system")?;
    let prob = Problem {
        sys,
        n,
        map: sys.kind() == TimeKind::Discrete,
        tol: opts.tol,
    };
    let y: Vec<f64> = bp.x.iter().copied().chain([bp.p]).collect();
    let a = prob.jac_ext(&bp.x, bp.p);
    // Null space of G_y: the two smallest right singular vectors of [G_y; 0].
    let sq = Mat::<f64>::from_fn(n + 1, n + 1, |i, j| if i < n { a[(i, j)] } else { 0.0 });
    let svd = sq
        .svd()
        .map_err(|e| Error::failed("branch switching", format!("SVD of G_y: {e:?}")))?;
    let v = svd.V();
    let (v1, v2): (Vec<f64>, Vec<f64>) = (
        (0..=n).map(|i| v[(i, n - 1)]).collect(),
        (0..=n).map(|i| v[(i, n)]).collect(),
    );
    // ψ: G_yᵀ ψ = 0, the left singular vector of G_x for its smallest singular value (G_x is
    // singular at a branch point and G_p lies in its range).
    let thin = a
        .as_ref()
        .subcols(0, n)
        .thin_svd()
        .map_err(|e| Error::failed("branch switching", format!("SVD of G_x: {e:?}")))?;
    let psi: Vec<f64> = (0..n).map(|i| thin.U()[(i, n - 1)]).collect();
    // t₁: the branch's tangent next to the point, projected on the null space.
    let near = branch
        .points
        .get(bp.index.min(branch.points.len().saturating_sub(1)))
        .ok_or_else(|| Error::invalid("branch", "has no points"))?;
    let dot = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(x, y)| x * y).sum::<f64>();
    let (c1, c2) = (dot(&near.tangent, &v1), dot(&near.tangent, &v2));
    let norm = (c1 * c1 + c2 * c2).sqrt();
    if !(norm > 0.5) {
        return Err(Error::failed(
            "branch switching",
            "the branch's tangent is not in the null space of G_y: not a simple branch point",
        ));
    }
    let t1: Vec<f64> = (0..=n).map(|i| (c1 * v1[i] + c2 * v2[i]) / norm).collect();
    let t2: Vec<f64> = (0..=n).map(|i| (-c2 * v1[i] + c1 * v2[i]) / norm).collect();
    // ψᵀ G_yy[u, w] by central differences of G.
    let scale = 1.0 + y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let h = 1e-4 * scale;
    let g = |s: f64, u: &[f64], r: f64, w: &[f64]| -> Vec<f64> {
        let z: Vec<f64> = (0..=n).map(|i| y[i] + h * (s * u[i] + r * w[i])).collect();
        let mut out = vec![0.0; n];
        prob.residual(&z[..n], z[n], &mut out);
        out
    };
    let second = |u: &[f64], w: &[f64]| -> f64 {
        let (pp, pm, mp, mm) = (
            g(1., u, 1., w),
            g(1., u, -1., w),
            g(-1., u, 1., w),
            g(-1., u, -1., w),
        );
        (0..n)
            .map(|i| psi[i] * (pp[i] - pm[i] - mp[i] + mm[i]))
            .sum::<f64>()
            / (4.0 * h * h)
    };
    let (qa, qb, qc) = (second(&t1, &t1), second(&t1, &t2), second(&t2, &t2));
    // The quadratic form's null directions: eigenvectors of [[a, b], [b, c]] (λ₋ < 0 < λ₊),
    // combined as (√λ₊, ±√−λ₋); the root farther from t₁ is the new branch.
    let mean = 0.5 * (qa + qc);
    let rad = (0.25 * (qa - qc).powi(2) + qb * qb).sqrt();
    let (lm, lp) = (mean - rad, mean + rad);
    if !(lm < 0.0 && lp > 0.0) || !(rad > 1e-10 * (qa.abs() + qb.abs() + qc.abs()).max(1e-300)) {
        return Err(Error::failed(
            "branch switching",
            format!("the bifurcation equation has no two real roots (a = {qa:.3e}, b = {qb:.3e}, c = {qc:.3e}): not a simple branch point"),
        ));
    }
    // Eigenvector of λ₊: (b, λ₊ − a) or (λ₊ − c, b), whichever is better conditioned.
    let ep = if (lp - qa).abs() + qb.abs() >= (lp - qc).abs() + qb.abs() {
        (qb, lp - qa)
    } else {
        (lp - qc, qb)
    };
    let en = (ep.0.hypot(ep.1)).max(1e-300);
    let (ep, em) = ((ep.0 / en, ep.1 / en), (-ep.1 / en, ep.0 / en));
    let roots = [1.0f64, -1.0].map(|s| {
        let (xi, eta) = (lp.sqrt(), s * (-lm).sqrt());
        // (α, β) = ξ·e_− + η·e_+ with λ₋ξ² + λ₊η² = 0, i.e. ξ = √λ₊, η = ±√−λ₋.
        let (al, be) = (xi * em.0 + eta * ep.0, xi * em.1 + eta * ep.1);
        let r = al.hypot(be);
        (al / r, be / r)
    });
    let (al, be) = if roots[0].0.abs() <= roots[1].0.abs() {
        roots[0]
    } else {
        roots[1]
    };
    let tn: Vec<f64> = (0..=n).map(|i| al * t1[i] + be * t2[i]).collect();
    let (lo, hi) = (opts.from.min(opts.to), opts.from.max(opts.to));
    let mut halves = vec![];
    for s in [1.0, -1.0] {
        let pred: Vec<f64> = (0..=n).map(|i| y[i] + s * opts.ds * tn[i]).collect();
        let Some((y1, _)) = prob.correct(&pred, &tn) else {
            continue;
        };
        let p1 = y1[n];
        if !(p1 > lo && p1 < hi) {
            continue;
        }
        let end = if p1 >= bp.p { hi } else { lo };
        let mut o = opts.clone();
        o.from = p1;
        o.to = end;
        halves.push(continue_branch(sys, &y1[..n], &o)?);
    }
    if halves.is_empty() {
        return Err(Error::failed(
            "branch switching",
            "the corrector reached neither half of the new branch (try a smaller ds)",
        ));
    }
    Ok(halves)
}

/// [`switch_branch`] at every branch point of `branch`: (index in `branch.bifurcations`, half)
/// for each half followed. A branch point where switching fails (not a simple one) is skipped
/// with its reason in the second list.
pub fn switch_all<P: Parametrised + ?Sized>(
    sys: &P,
    branch: &Branch,
    opts: &ContinuationOptions,
) -> Result<(Vec<(usize, Branch)>, Vec<(usize, String)>)> {
    let (mut found, mut skipped) = (vec![], vec![]);
    for (k, z) in branch.bifurcations.iter().enumerate() {
        if z.kind != Kind::BranchPoint {
            continue;
        }
        match switch_branch(sys, branch, z, opts) {
            Ok(halves) => found.extend(halves.into_iter().map(|h| (k, h))),
            Err(e @ Error::Failed { .. }) => skipped.push((k, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok((found, skipped))
}

/// The switched branches as one table: `branch_point` (index in the parent's bifurcations),
/// `half` (0, 1), then the branch table's columns.
pub fn switched_table(found: &[(usize, Branch)]) -> crate::io::Table {
    use crate::io::{Column, Table};
    let mut t = Table::new();
    let mut bp = vec![];
    let mut half = vec![];
    let mut last = None;
    let mut h = 0i64;
    let mut pts = vec![];
    for (k, b) in found {
        h = if last == Some(*k) { h + 1 } else { 0 };
        last = Some(*k);
        for p in &b.points {
            bp.push(*k as i64);
            half.push(h);
            pts.push(p);
        }
    }
    t.push("branch_point", Column::I64(bp));
    t.push("half", Column::I64(half));
    let kind = found.first().map_or(TimeKind::Continuous, |(_, b)| b.kind);
    super::point_columns(&mut t, &pts, kind);
    t
}
