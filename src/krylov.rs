//! Matrix-free Krylov methods for systems too large for a dense Jacobian (CordsNet layers of
//! 10⁴–10⁶ units): any [`LinearOperator`] — a convolution `v ↦ K ⊛ v`, a masked operator
//! `v ↦ D (K ⊛ v)`, a model's Jacobian-vector product ([`JacobianOperator`]) — gets
//!
//! - [`arnoldi`]: m steps with modified Gram–Schmidt, H_m's eigenvalues (the Ritz values) from
//!   faer's dense Hessenberg/Schur solver, and each Ritz pair's residual ‖A x − θ x‖ =
//!   h_{m+1,m} |e_mᵀ y| (Saad, *Numerical Methods for Large Eigenvalue Problems*, 2011, §6.2);
//! - [`power_iteration`]: several seeded starts, normalised every step, signs aligned with the
//!   first start before averaging (the fix of Soo et al. 2024's averaging of ±v);
//! - [`gmres`]: restarted GMRES(k) with Givens rotations (Saad & Schultz 1986);
//! - [`newton_krylov`]: Newton's method on f(x) = 0 with GMRES on the JVP and a backtracking
//!   line search on ‖f‖ (Knoll & Keyes 2004) — steady states of flows with 10⁵+ units.

use crate::error::{Error, Result};
use crate::model::Model;
use faer::c64;
use rand::{Rng, SeedableRng};

/// y = A x for a square operator of size [`LinearOperator::dim`].
pub trait LinearOperator: Sync {
    fn dim(&self) -> usize;
    fn apply(&self, x: &[f64], y: &mut [f64]);
}

/// A dense matrix as an operator (tests, small problems).
impl LinearOperator for faer::Mat<f64> {
    fn dim(&self) -> usize {
        self.nrows()
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = (0..self.ncols()).map(|j| self[(i, j)] * x[j]).sum();
        }
    }
}

/// The Jacobian of a flow at a state, v ↦ J(x) v, through the model's (matrix-free) JVP.
pub struct JacobianOperator<'a, M: Model + ?Sized> {
    pub model: &'a M,
    pub x: Vec<f64>,
}

impl<M: Model + ?Sized + Sync> LinearOperator for JacobianOperator<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn apply(&self, v: &[f64], y: &mut [f64]) {
        self.model.jvp(0.0, &self.x, v, y);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// Ritz values of an Arnoldi run, largest modulus first.
#[derive(Debug, Clone)]
pub struct Ritz {
    pub values: Vec<c64>,
    /// ‖A x − θ x‖ of each Ritz pair (unit x).
    pub residuals: Vec<f64>,
    /// Arnoldi steps taken (less than asked for after an invariant subspace was found).
    pub steps: usize,
}

impl Ritz {
    /// The `k` leading Ritz values (fewer if fewer were found): columns `re`, `im`, `residual`.
    pub fn table(&self, k: usize) -> crate::io::Table {
        use crate::io::{Column, Table};
        let k = k.min(self.values.len());
        let mut t = Table::new();
        t.push(
            "re",
            Column::F64(self.values[..k].iter().map(|v| v.re).collect()),
        )
        .push(
            "im",
            Column::F64(self.values[..k].iter().map(|v| v.im).collect()),
        )
        .push("residual", Column::F64(self.residuals[..k].to_vec()));
        t
    }
}

/// Checks a request for `k` Ritz values from `m` Arnoldi steps on an operator of dimension `n`
/// (`n` None: several operators, sizes checked by each): 1 ≤ k ≤ m ≤ n. A larger `m` than the
/// Krylov space has, or more values than the steps give, is refused rather than cut.
pub fn check_ritz_request(m: usize, k: usize, n: Option<usize>) -> Result<()> {
    if m == 0 {
        return Err(Error::invalid("m", "need at least one Arnoldi step"));
    }
    if let Some(n) = n.filter(|&n| m > n) {
        return Err(Error::invalid(
            "m",
            format!("{m}: at most {n} steps (the operator's dimension)"),
        ));
    }
    if k == 0 || k > m {
        return Err(Error::invalid(
            "k",
            format!("{k}: need 1 ≤ k ≤ m = {m} (m steps give m Ritz values)"),
        ));
    }
    Ok(())
}

/// `m` steps of Arnoldi with modified Gram–Schmidt from a seeded uniform-random unit vector;
/// the Ritz values and their residuals. Memory: (m + 1) vectors of length N.
pub fn arnoldi(op: &dyn LinearOperator, m: usize, seed: u64) -> Result<Ritz> {
    let n = op.dim();
    if m == 0 || n == 0 {
        return Err(Error::invalid("m", "need at least one Arnoldi step"));
    }
    let m = m.min(n);
    crate::memory::check(
        "m",
        (m as u128 + 1) * n as u128 * 8 + (m as u128).pow(2) * 16,
        None,
    )?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v0: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
    let nv = norm(&v0);
    v0.iter_mut().for_each(|x| *x /= nv);
    let mut basis = vec![v0];
    let mut h = faer::Mat::<f64>::zeros(m + 1, m);
    let mut w = vec![0.0; n];
    let mut steps = m;
    for j in 0..m {
        op.apply(&basis[j], &mut w);
        for (i, vi) in basis.iter().enumerate() {
            let hij = dot(&w, vi);
            h[(i, j)] = hij;
            for (a, b) in w.iter_mut().zip(vi) {
                *a -= hij * b;
            }
        }
        let hn = norm(&w);
        h[(j + 1, j)] = hn;
        let scale = (0..=j).map(|i| h[(i, j)].abs()).fold(hn, f64::max);
        if hn <= 1e-14 * scale.max(1e-300) || j + 1 == m {
            steps = j + 1;
            break;
        }
        basis.push(w.iter().map(|x| x / hn).collect());
    }
    let hm = faer::Mat::from_fn(steps, steps, |i, j| h[(i, j)]);
    let beta = h[(steps, steps - 1)];
    let eig = hm
        .eigen()
        .map_err(|e| Error::failed("arnoldi", format!("eigen-decomposition of H failed: {e:?}")))?;
    let (s, u) = (eig.S(), eig.U());
    let mut pairs: Vec<(c64, f64)> = (0..steps)
        .map(|k| {
            let nrm = (0..steps).map(|i| u[(i, k)].norm_sqr()).sum::<f64>().sqrt();
            (s[k], beta * u[(steps - 1, k)].norm() / nrm.max(1e-300))
        })
        .collect();
    pairs.sort_by(|a, b| b.0.norm().total_cmp(&a.0.norm()));
    Ok(Ritz {
        values: pairs.iter().map(|p| p.0).collect(),
        residuals: pairs.iter().map(|p| p.1).collect(),
        steps,
    })
}

/// `A⁻¹` through a dense LU of `A` (dimension `n`): Arnoldi on it finds the eigenvalues of `A`
/// nearest 0 first (shift-invert).
pub struct LuInverse<'a> {
    pub lu: &'a faer::linalg::solvers::PartialPivLu<f64>,
    pub n: usize,
}

impl LinearOperator for LuInverse<'_> {
    fn dim(&self) -> usize {
        self.n
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        use faer::linalg::solvers::Solve;
        // Solved in place in y: no allocation per Krylov step.
        y.copy_from_slice(x);
        self.lu
            .solve_in_place(faer::MatMut::from_column_major_slice_mut(y, self.n, 1));
    }
}

/// The `k` eigenvalues of `A` nearest the real shift `σ` (a conjugate pair is not split: one
/// more may come) by shift-invert Arnoldi on `lu`, the LU of `A − σI` (dimension `n`), each
/// with its error estimate `|Δλ| ≈ r / |θ|²` (θ = 1/(λ − σ) the Ritz value of `(A − σI)⁻¹`, r
/// its residual). The Krylov dimension starts at `max(3k, 24)` and doubles, up to `m_max`,
/// until `accept` takes the set; `None` if it never does.
pub fn nearest_eigenvalues(
    lu: &faer::linalg::solvers::PartialPivLu<f64>,
    n: usize,
    sigma: f64,
    k: usize,
    m_max: usize,
    accept: impl Fn(&[(c64, f64)]) -> bool,
) -> Result<Option<Vec<(c64, f64)>>> {
    let op = LuInverse { lu, n };
    let mut m = (3 * k).max(24).min(n).min(m_max.max(1));
    loop {
        let r = arnoldi(&op, m, 0x5eed)?;
        let mut take = k.min(r.values.len());
        if take < r.values.len()
            && take > 0
            && (r.values[take] - r.values[take - 1].conj()).norm() <= 1e-8 * r.values[take].norm()
        {
            take += 1;
        }
        let set: Vec<(c64, f64)> = r.values[..take]
            .iter()
            .zip(&r.residuals)
            .map(|(&t, &res)| {
                let lam = c64::new(sigma, 0.0) + c64::new(1.0, 0.0) / t;
                (lam, res / t.norm_sqr().max(1e-300))
            })
            .collect();
        if set
            .iter()
            .all(|(l, e)| l.re.is_finite() && l.im.is_finite() && e.is_finite())
            && accept(&set)
        {
            return Ok(Some(set));
        }
        if m >= n.min(m_max) || r.steps < m {
            return Ok(None);
        }
        m = (2 * m).min(n).min(m_max);
    }
}

/// Power iteration from `trials` seeded random starts, `iters` steps each, normalising every
/// step; the trials' vectors are sign-aligned with the first before averaging. Returns the
/// dominant eigenvalue estimate (Rayleigh quotient of the average) and the unit eigenvector.
pub fn power_iteration(
    op: &dyn LinearOperator,
    trials: usize,
    iters: usize,
    seed: u64,
) -> Result<(f64, Vec<f64>)> {
    use rayon::prelude::*;
    let n = op.dim();
    if trials == 0 || iters == 0 {
        return Err(Error::invalid(
            "iters",
            "need at least one trial and one step",
        ));
    }
    let vs: Vec<Vec<f64>> = (0..trials)
        .into_par_iter()
        .map(|t| {
            let mut rng =
                rand_chacha::ChaCha8Rng::seed_from_u64(crate::seed::trial_seed(seed, t, 0, 0));
            let mut v: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
            let mut w = vec![0.0; n];
            for _ in 0..iters {
                let nv = norm(&v);
                v.iter_mut().for_each(|x| *x /= nv);
                op.apply(&v, &mut w);
                std::mem::swap(&mut v, &mut w);
            }
            let nv = norm(&v);
            v.iter_mut().for_each(|x| *x /= nv);
            v
        })
        .collect();
    let mut avg = vec![0.0; n];
    for v in &vs {
        let s = if dot(v, &vs[0]) < 0.0 { -1.0 } else { 1.0 };
        for (a, b) in avg.iter_mut().zip(v) {
            *a += s * b;
        }
    }
    let na = norm(&avg);
    avg.iter_mut().for_each(|x| *x /= na);
    let mut w = vec![0.0; n];
    op.apply(&avg, &mut w);
    Ok((dot(&avg, &w), avg))
}

/// Result of [`gmres`].
#[derive(Debug, Clone)]
pub struct GmresResult {
    pub x: Vec<f64>,
    /// ‖b − A x‖ / ‖b‖.
    pub relative_residual: f64,
    pub iterations: usize,
}

/// Restarted GMRES(`restart`) for A x = b from x = 0, to ‖b − A x‖ ≤ `tol` ‖b‖ or
/// `max_iter` operator applications.
pub fn gmres(
    op: &dyn LinearOperator,
    b: &[f64],
    tol: f64,
    restart: usize,
    max_iter: usize,
) -> GmresResult {
    let n = op.dim();
    let bn = norm(b);
    let mut x = vec![0.0; n];
    if bn == 0.0 {
        return GmresResult {
            x,
            relative_residual: 0.0,
            iterations: 0,
        };
    }
    let k = restart.max(1).min(n);
    let mut iters = 0;
    let mut ax = vec![0.0; n];
    loop {
        op.apply(&x, &mut ax);
        let r: Vec<f64> = b.iter().zip(&ax).map(|(bi, ai)| bi - ai).collect();
        let beta = norm(&r);
        if beta <= tol * bn || iters >= max_iter {
            return GmresResult {
                x,
                relative_residual: beta / bn,
                iterations: iters,
            };
        }
        let mut v: Vec<Vec<f64>> = vec![r.iter().map(|t| t / beta).collect()];
        let mut h = vec![vec![0.0; k]; k + 1];
        let (mut cs, mut sn) = (vec![0.0; k], vec![0.0; k]);
        let mut g = vec![0.0; k + 1];
        g[0] = beta;
        let mut used = 0;
        let mut w = vec![0.0; n];
        for j in 0..k {
            op.apply(&v[j], &mut w);
            iters += 1;
            for i in 0..=j {
                h[i][j] = dot(&w, &v[i]);
                for (a, c) in w.iter_mut().zip(&v[i]) {
                    *a -= h[i][j] * c;
                }
            }
            h[j + 1][j] = norm(&w);
            for i in 0..j {
                let t = cs[i] * h[i][j] + sn[i] * h[i + 1][j];
                h[i + 1][j] = -sn[i] * h[i][j] + cs[i] * h[i + 1][j];
                h[i][j] = t;
            }
            let d = h[j][j].hypot(h[j + 1][j]);
            if d > 0.0 {
                cs[j] = h[j][j] / d;
                sn[j] = h[j + 1][j] / d;
            } else {
                cs[j] = 1.0;
                sn[j] = 0.0;
            }
            let hn = h[j + 1][j];
            h[j][j] = d;
            h[j + 1][j] = 0.0;
            g[j + 1] = -sn[j] * g[j];
            g[j] *= cs[j];
            used = j + 1;
            if g[j + 1].abs() <= tol * bn || iters >= max_iter || hn == 0.0 {
                break;
            }
            v.push(w.iter().map(|t| t / hn).collect());
        }
        // Back substitution for y, then x += V y.
        let mut y = vec![0.0; used];
        for i in (0..used).rev() {
            let s: f64 = (i + 1..used).map(|c| h[i][c] * y[c]).sum();
            y[i] = (g[i] - s) / h[i][i];
        }
        for (i, yi) in y.iter().enumerate() {
            for (a, c) in x.iter_mut().zip(&v[i]) {
                *a += yi * c;
            }
        }
    }
}

/// Options of [`newton_krylov`].
#[derive(Debug, Clone)]
pub struct NewtonKrylovOptions {
    /// Converged when ‖f(x)‖∞ ≤ this.
    pub tol: f64,
    pub max_newton: usize,
    /// GMRES relative tolerance per Newton step, restart length, and applications per step.
    pub gmres_tol: f64,
    pub gmres_restart: usize,
    pub gmres_max: usize,
}

impl Default for NewtonKrylovOptions {
    fn default() -> Self {
        NewtonKrylovOptions {
            tol: 1e-10,
            max_newton: 50,
            gmres_tol: 1e-6,
            gmres_restart: 50,
            gmres_max: 500,
        }
    }
}

/// Result of [`newton_krylov`].
#[derive(Debug, Clone)]
pub struct NewtonKrylovResult {
    pub x: Vec<f64>,
    /// ‖f(x)‖∞ at the end.
    pub residual: f64,
    pub newton_steps: usize,
    /// Jacobian-vector products over all GMRES solves.
    pub jvps: usize,
    pub converged: bool,
}

/// Newton's method for f(x) = 0 of a flow, each step J dx = −f solved by GMRES on the model's
/// JVP, with a backtracking line search on ‖f‖₂ (halving, at most 30 times).
pub fn newton_krylov<M: Model + ?Sized + Sync>(
    model: &M,
    x0: &[f64],
    opts: &NewtonKrylovOptions,
) -> Result<NewtonKrylovResult> {
    let n = model.dim();
    crate::error::ensure_state("x0", x0, n, "model")?;
    let mut x = x0.to_vec();
    let mut f = vec![0.0; n];
    model.rhs(0.0, &x, &mut f);
    let mut jvps = 0;
    let inf = |v: &[f64]| v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    let mut steps = 0;
    for _ in 0..opts.max_newton {
        if inf(&f) <= opts.tol {
            break;
        }
        let op = JacobianOperator {
            model,
            x: x.clone(),
        };
        let rhs: Vec<f64> = f.iter().map(|v| -v).collect();
        let g = gmres(
            &op,
            &rhs,
            opts.gmres_tol,
            opts.gmres_restart,
            opts.gmres_max,
        );
        jvps += g.iterations + 1;
        let f0 = norm(&f);
        let mut step = 1.0;
        let mut xt = vec![0.0; n];
        let mut ft = vec![0.0; n];
        let mut accepted = false;
        for _ in 0..30 {
            for i in 0..n {
                xt[i] = x[i] + step * g.x[i];
            }
            model.rhs(0.0, &xt, &mut ft);
            if norm(&ft) < (1.0 - 1e-4 * step) * f0 {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
        std::mem::swap(&mut x, &mut xt);
        std::mem::swap(&mut f, &mut ft);
        steps += 1;
    }
    Ok(NewtonKrylovResult {
        residual: inf(&f),
        converged: inf(&f) <= opts.tol,
        x,
        newton_steps: steps,
        jvps,
    })
}
