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

/// `m` steps of Arnoldi from a seeded uniform-random unit vector; the Ritz values and their
/// residuals. Memory: (m + 1) vectors of length N.
pub fn arnoldi(op: &dyn LinearOperator, m: usize, seed: u64) -> Result<Ritz> {
    seeded(op, m, seed)?.ritz()
}

/// `m` Arnoldi steps on `op` from a seeded uniform-random start.
fn seeded(op: &dyn LinearOperator, m: usize, seed: u64) -> Result<Arnoldi> {
    let n = op.dim();
    if m == 0 || n == 0 {
        return Err(Error::invalid("m", "need at least one Arnoldi step"));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let v0: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
    let mut f = Arnoldi::new(&v0)?;
    f.extend(op, m)?;
    Ok(f)
}

/// [`arnoldi`] when only the `k` Ritz values of largest modulus are wanted (one more if that
/// completes a conjugate pair): H's eigenvalues without its eigenvectors and the k residuals by
/// inverse iteration on H ([`Arnoldi::ritz_leading`]), far cheaper than all of them at m = 300.
pub fn arnoldi_leading(op: &dyn LinearOperator, m: usize, k: usize, seed: u64) -> Result<Ritz> {
    seeded(op, m, seed)?.ritz_leading(k)
}

/// An Arnoldi factorisation A V_j = V_j H_j + h_{j+1,j} v_{j+1} e_jᵀ that can be extended step
/// by step: the basis is one column-major block (columns contiguous), each new vector is
/// orthogonalised by classical Gram–Schmidt run twice (CGS2: two matrix–vector products with
/// the basis, as accurate as modified Gram–Schmidt and vectorised; Giraud et al. 2005), and no
/// allocation happens per step once the capacity is reserved.
pub struct Arnoldi {
    n: usize,
    /// Basis vectors, column-major: column i at `v[i n .. (i + 1) n]`; `steps + 1` of them.
    v: Vec<f64>,
    /// Hessenberg matrix, column-major with leading dimension `ld` (≥ steps + 1).
    h: Vec<f64>,
    ld: usize,
    steps: usize,
    /// An invariant subspace was found (h_{j+1,j} ≈ 0): no further step is possible.
    invariant: bool,
    w: Vec<f64>,
    c: Vec<f64>,
}

impl Arnoldi {
    /// A factorisation of zero steps from `start` (normalised here; must be non-zero).
    pub fn new(start: &[f64]) -> Result<Self> {
        let n = start.len();
        let nv = norm(start);
        if n == 0 || !(nv.is_finite() && nv > 0.0) {
            return Err(Error::invalid(
                "start",
                "need a finite, non-zero start vector",
            ));
        }
        Ok(Arnoldi {
            n,
            v: start.iter().map(|x| x / nv).collect(),
            h: vec![],
            ld: 1,
            steps: 0,
            invariant: false,
            w: vec![0.0; n],
            c: vec![],
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Whether the Krylov space stopped growing (an invariant subspace).
    pub fn invariant(&self) -> bool {
        self.invariant
    }

    /// Extends the factorisation to `m` steps (at most N; fewer after an invariant subspace).
    pub fn extend(&mut self, op: &dyn LinearOperator, m: usize) -> Result<()> {
        use faer::linalg::matmul::matmul;
        use faer::{Accum, MatMut, MatRef, Par};
        let n = self.n;
        if op.dim() != n {
            return Err(Error::invalid(
                "start",
                format!("length {n}, the operator has dimension {}", op.dim()),
            ));
        }
        let m = m.min(n);
        if m <= self.steps || self.invariant {
            return Ok(());
        }
        crate::memory::check(
            "m",
            (m as u128 + 1) * n as u128 * 8 + (m as u128).pow(2) * 16,
            None,
        )?;
        // Grow H to (m + 1) × m, keeping the computed columns.
        if self.ld < m + 1 {
            let mut h = vec![0.0; (m + 1) * m];
            for j in 0..self.steps {
                h[j * (m + 1)..j * (m + 1) + self.steps + 1]
                    .copy_from_slice(&self.h[j * self.ld..j * self.ld + self.steps + 1]);
            }
            self.h = h;
            self.ld = m + 1;
        }
        self.v.reserve((m + 1 - self.steps - 1) * n);
        self.c.resize(m + 1, 0.0);
        let ld = self.ld;
        for j in self.steps..m {
            op.apply(&self.v[j * n..(j + 1) * n], &mut self.w);
            let basis = MatRef::from_column_major_slice(&self.v[..(j + 1) * n], n, j + 1);
            let hcol = &mut self.h[j * ld..j * ld + j + 2];
            hcol.iter_mut().for_each(|x| *x = 0.0);
            for _ in 0..2 {
                let c = MatMut::from_column_major_slice_mut(&mut self.c[..j + 1], j + 1, 1);
                let w = MatRef::from_column_major_slice(&self.w, n, 1);
                matmul(c, Accum::Replace, basis.transpose(), w, 1.0, Par::Seq);
                let c = MatRef::from_column_major_slice(&self.c[..j + 1], j + 1, 1);
                let w = MatMut::from_column_major_slice_mut(&mut self.w, n, 1);
                matmul(w, Accum::Add, basis, c, -1.0, Par::Seq);
                for (hi, ci) in hcol.iter_mut().zip(&self.c[..j + 1]) {
                    *hi += ci;
                }
            }
            let hn = norm(&self.w);
            hcol[j + 1] = hn;
            let scale = hcol[..=j].iter().fold(hn, |a, b| a.max(b.abs()));
            if !hn.is_finite() {
                return Err(Error::failed(
                    "arnoldi",
                    "the operator returned a non-finite vector",
                ));
            }
            self.steps = j + 1;
            if hn <= 1e-14 * scale.max(1e-300) {
                self.invariant = true;
                break;
            }
            self.v.extend(self.w.iter().map(|x| x / hn));
        }
        Ok(())
    }

    /// H_j, the Hessenberg matrix of the steps so far, and h_{j+1,j} (0 after an invariant
    /// subspace).
    fn hessenberg(&self) -> Result<(faer::Mat<f64>, f64)> {
        let (s, ld) = (self.steps, self.ld);
        if s == 0 {
            return Err(Error::invalid("m", "need at least one Arnoldi step"));
        }
        let beta = if self.invariant {
            0.0
        } else {
            self.h[(s - 1) * ld + s]
        };
        Ok((faer::Mat::from_fn(s, s, |i, j| self.h[j * ld + i]), beta))
    }

    /// The Ritz values of the steps so far (eigenvalues of H_j), largest modulus first, with
    /// their residuals ‖A x − θ x‖ = h_{j+1,j} |e_jᵀ y| (unit Ritz vector x = V_j y).
    pub fn ritz(&self) -> Result<Ritz> {
        let (hm, beta) = self.hessenberg()?;
        let s = hm.nrows();
        let eig = hm.eigen().map_err(|e| {
            Error::failed("arnoldi", format!("eigen-decomposition of H failed: {e:?}"))
        })?;
        let (vals, u) = (eig.S(), eig.U());
        let mut pairs: Vec<(c64, f64)> = (0..s)
            .map(|k| {
                let nrm = (0..s).map(|i| u[(i, k)].norm_sqr()).sum::<f64>().sqrt();
                (vals[k], beta * u[(s - 1, k)].norm() / nrm.max(1e-300))
            })
            .collect();
        pairs.sort_by(|a, b| b.0.norm().total_cmp(&a.0.norm()));
        Ok(Ritz {
            values: pairs.iter().map(|p| p.0).collect(),
            residuals: pairs.iter().map(|p| p.1).collect(),
            steps: s,
        })
    }

    /// The `k` Ritz values of largest modulus (one more if that completes a conjugate pair)
    /// with their residuals: H_j's eigenvalues without its eigenvectors, and each wanted
    /// eigenvector's last entry by two steps of inverse iteration on the Hessenberg matrix
    /// (O(j²) each), so a check of a few Ritz pairs costs far less than [`Self::ritz`].
    pub fn ritz_leading(&self, k: usize) -> Result<Ritz> {
        self.ritz_pick(|vals| leading(vals, k))
    }

    /// The Ritz values at the indices `pick` chooses from all of them (largest modulus first),
    /// with their residuals as in [`Self::ritz_leading`].
    pub fn ritz_pick(&self, pick: impl FnOnce(&[c64]) -> Vec<usize>) -> Result<Ritz> {
        let (hm, beta) = self.hessenberg()?;
        let s = hm.nrows();
        let mut vals = hm
            .eigenvalues()
            .map_err(|e| Error::failed("arnoldi", format!("eigenvalues of H failed: {e:?}")))?;
        vals.sort_by(|a, b| b.norm().total_cmp(&a.norm()));
        let idx = pick(&vals);
        let hnorm = (0..s)
            .map(|j| (0..s).map(|i| hm[(i, j)].abs()).sum::<f64>())
            .fold(0.0f64, f64::max);
        let values: Vec<c64> = idx.iter().filter_map(|&i| vals.get(i).copied()).collect();
        let residuals = values
            .iter()
            .map(|&theta| beta * hessenberg_eigvec_last(&hm, theta, hnorm))
            .collect();
        Ok(Ritz {
            values,
            residuals,
            steps: s,
        })
    }

    /// Σᵢ (Re xᵢ + Im xᵢ) over the unit Ritz vectors xᵢ = V yᵢ of the given Ritz values: a
    /// start vector rich in those eigenvectors, for the next run on a nearby operator.
    pub fn ritz_combination(&self, thetas: &[c64]) -> Result<Vec<f64>> {
        use faer::linalg::matmul::matmul;
        use faer::{Accum, MatMut, MatRef, Par};
        let (hm, _) = self.hessenberg()?;
        let s = hm.nrows();
        let hnorm = (0..s)
            .map(|j| (0..s).map(|i| hm[(i, j)].abs()).sum::<f64>())
            .fold(0.0f64, f64::max);
        let mut c = vec![0.0; s];
        for &t in thetas {
            if let Some(y) = hessenberg_eigvec(&hm, t, hnorm) {
                for (ci, yi) in c.iter_mut().zip(&y) {
                    *ci += yi.re + yi.im;
                }
            }
        }
        let mut out = vec![0.0; self.n];
        matmul(
            MatMut::from_column_major_slice_mut(&mut out, self.n, 1),
            Accum::Replace,
            MatRef::from_column_major_slice(&self.v[..s * self.n], self.n, s),
            MatRef::from_column_major_slice(&c, s, 1),
            1.0,
            Par::Seq,
        );
        Ok(out)
    }
}

/// Indices of the `k` leading values (sorted largest modulus first), one more if that
/// completes a conjugate pair.
fn leading(vals: &[c64], k: usize) -> Vec<usize> {
    let mut take = k.min(vals.len());
    if take > 0
        && take < vals.len()
        && (vals[take] - vals[take - 1].conj()).norm() <= 1e-8 * vals[take].norm()
    {
        take += 1;
    }
    (0..take).collect()
}

/// |y_s| / ‖y‖ for the eigenvector y of the upper Hessenberg `h` (s × s) at its eigenvalue θ:
/// two steps of inverse iteration with H − θI, factorised by Gaussian elimination with
/// adjacent-row pivoting in complex arithmetic (a zero pivot is replaced by ε‖H‖, as LAPACK's
/// `hsein` does).
fn hessenberg_eigvec_last(h: &faer::Mat<f64>, theta: c64, hnorm: f64) -> f64 {
    hessenberg_eigvec(h, theta, hnorm).map_or(f64::INFINITY, |y| y[y.len() - 1].norm())
}

/// The unit eigenvector y of the upper Hessenberg `h` at its eigenvalue θ (see
/// [`hessenberg_eigvec_last`]); None if inverse iteration breaks down.
fn hessenberg_eigvec(h: &faer::Mat<f64>, theta: c64, hnorm: f64) -> Option<Vec<c64>> {
    let s = h.nrows();
    let tiny = f64::EPSILON * hnorm.max(f64::MIN_POSITIVE);
    // Column-major complex copy of H − θI: upper triangle plus the subdiagonal.
    let mut a: Vec<c64> = (0..s * s)
        .map(|idx| {
            let (i, j) = (idx % s, idx / s);
            let v = c64::new(h[(i, j)], 0.0);
            if i == j {
                v - theta
            } else {
                v
            }
        })
        .collect();
    // LU with a row swap between rows i and i + 1 where the subdiagonal entry is larger.
    let mut swap = vec![false; s];
    let mut mult = vec![c64::new(0.0, 0.0); s];
    for i in 0..s.saturating_sub(1) {
        let (d, sub) = (a[i * s + i], a[i * s + i + 1]);
        if sub.norm() > d.norm() {
            swap[i] = true;
            for j in i..s {
                a.swap(j * s + i, j * s + i + 1);
            }
        }
        let mut piv = a[i * s + i];
        if piv.norm() < tiny {
            piv = c64::new(tiny, 0.0);
            a[i * s + i] = piv;
        }
        let l = a[i * s + i + 1] / piv;
        mult[i] = l;
        for j in i + 1..s {
            let u = a[j * s + i];
            a[j * s + i + 1] -= l * u;
        }
    }
    if a[(s - 1) * s + s - 1].norm() < tiny {
        a[(s - 1) * s + s - 1] = c64::new(tiny, 0.0);
    }
    let mut y = vec![c64::new(1.0, 0.0); s];
    for _ in 0..2 {
        for i in 0..s.saturating_sub(1) {
            if swap[i] {
                y.swap(i, i + 1);
            }
            let yi = y[i];
            y[i + 1] -= mult[i] * yi;
        }
        for i in (0..s).rev() {
            let mut acc = y[i];
            for j in i + 1..s {
                acc -= a[j * s + i] * y[j];
            }
            y[i] = acc / a[i * s + i];
        }
        let nrm = y.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
        if !(nrm.is_finite() && nrm > 0.0) {
            return None;
        }
        y.iter_mut().for_each(|v| *v /= nrm);
    }
    Some(y)
}

/// A dense LU with partial pivoting, P A = L U, kept in one n × n block (L strictly below the
/// unit diagonal, U on and above it) and refactorised in place: unlike faer's `PartialPivLu` it
/// copies nothing into separate L and U factors and allocates nothing when refactorised at the
/// same size, so a loop over the points of a branch reuses one buffer.
pub struct DenseLu {
    lu: faer::Mat<f64>,
    /// Row permutation: row i of P A is row `perm[i]` of A.
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    mem: faer::dyn_stack::MemBuffer,
}

impl Default for DenseLu {
    fn default() -> Self {
        Self::new()
    }
}

impl DenseLu {
    pub fn new() -> Self {
        DenseLu {
            lu: faer::Mat::zeros(0, 0),
            perm: vec![],
            perm_inv: vec![],
            mem: faer::dyn_stack::MemBuffer::new(faer::dyn_stack::StackReq::EMPTY),
        }
    }

    /// The dimension of the last factorisation (0 before any).
    pub fn dim(&self) -> usize {
        self.lu.nrows()
    }

    /// Factorises the n × n matrix that `fill` writes into the (zeroed) buffer. Returns false
    /// if U has a zero or non-finite pivot (the matrix is numerically singular).
    pub fn factor_with(&mut self, n: usize, fill: impl FnOnce(faer::MatMut<'_, f64>)) -> bool {
        use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
        if self.lu.nrows() != n {
            self.lu = faer::Mat::zeros(n, n);
            self.perm = vec![0; n];
            self.perm_inv = vec![0; n];
            self.mem = faer::dyn_stack::MemBuffer::new(lu_in_place_scratch::<usize, f64>(
                n,
                n,
                faer::Par::Seq,
                Default::default(),
            ));
        } else {
            self.lu.fill(0.0);
        }
        fill(self.lu.as_mut());
        lu_in_place(
            self.lu.as_mut(),
            &mut self.perm,
            &mut self.perm_inv,
            faer::Par::Seq,
            faer::dyn_stack::MemStack::new(&mut self.mem),
            Default::default(),
        );
        (0..n).all(|i| {
            let d = self.lu[(i, i)];
            d.is_finite() && d != 0.0
        })
    }

    /// y = A⁻¹ x (x and y of length n, not aliased).
    pub fn solve_into(&self, x: &[f64], y: &mut [f64]) {
        use faer::linalg::triangular_solve::{
            solve_unit_lower_triangular_in_place, solve_upper_triangular_in_place,
        };
        let n = self.dim();
        for (yi, &p) in y.iter_mut().zip(&self.perm) {
            *yi = x[p];
        }
        let mut rhs = faer::MatMut::from_column_major_slice_mut(y, n, 1);
        solve_unit_lower_triangular_in_place(self.lu.as_ref(), rhs.as_mut(), faer::Par::Seq);
        solve_upper_triangular_in_place(self.lu.as_ref(), rhs, faer::Par::Seq);
    }

    /// x ← A⁻¹ x, through the scratch vector `tmp` (length n).
    pub fn solve_in_place(&self, x: &mut [f64], tmp: &mut [f64]) {
        tmp.copy_from_slice(x);
        self.solve_into(tmp, x);
    }
}

/// `A⁻¹` through a dense LU of `A`: Arnoldi on it finds the eigenvalues of `A` nearest 0
/// first (shift-invert).
pub struct LuInverse<'a> {
    pub lu: &'a DenseLu,
}

impl LinearOperator for LuInverse<'_> {
    fn dim(&self) -> usize {
        self.lu.dim()
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        // Solved into y: no allocation per Krylov step.
        self.lu.solve_into(x, y);
    }
}

/// The `k` eigenvalues of `A` nearest the real shift `σ` (a conjugate pair is not split: one
/// more may come) by shift-invert Arnoldi on `lu`, the LU of `A − σI`, each
/// with its error estimate `|Δλ| ≈ r / |θ|²` (θ = 1/(λ − σ) the Ritz value of `(A − σI)⁻¹`, r
/// its residual). The Krylov dimension starts at `max(3k, 24)` and grows by half (extending the same factorisation), up to `m_max`,
/// until `accept` takes the set; `None` if it never does.
pub fn nearest_eigenvalues(
    lu: &DenseLu,
    sigma: f64,
    k: usize,
    m_max: usize,
    start: Option<&[f64]>,
    accept: impl Fn(&[(c64, f64)]) -> bool,
) -> Result<Option<(Vec<(c64, f64)>, Vec<f64>)>> {
    let op = LuInverse { lu };
    let n = lu.dim();
    let m_max = m_max.max(1).min(n);
    let mut m = (3 * k).max(24).min(m_max);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    let mut v0: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
    // A warm start: the last run's Ritz vectors, with a tenth of a random vector so that
    // eigenvalues new to the neighbourhood of σ are still reached.
    if let Some(w) = start.filter(|w| w.len() == n) {
        let (nw, nr) = (norm(w), norm(&v0));
        if nw.is_finite() && nw > 0.0 {
            for (v, wi) in v0.iter_mut().zip(w) {
                *v = wi / nw + 0.1 * *v / nr;
            }
        }
    }
    let mut f = Arnoldi::new(&v0)?;
    loop {
        // The factorisation grows: a larger Krylov space costs only the new steps.
        f.extend(&op, m)?;
        // The k nearest σ, and every other Ritz value right of the rightmost of those: an
        // eigenvalue farther from σ but farther right (a complex pair off a nearly vertical
        // right edge) shows up early as a Ritz value and is then kept until it converges.
        let r = f.ritz_pick(|vals| {
            let mut idx = leading(vals, k);
            let re = |t: c64| sigma + (c64::new(1.0, 0.0) / t).re;
            let top = idx
                .iter()
                .map(|&i| re(vals[i]))
                .fold(f64::NEG_INFINITY, f64::max);
            let more: Vec<usize> = (idx.len()..vals.len())
                .filter(|&i| vals[i].norm() > 0.0 && re(vals[i]) > top)
                .collect();
            idx.extend(more);
            idx
        })?;
        let set: Vec<(c64, f64)> = r
            .values
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
            let warm = f.ritz_combination(&r.values)?;
            return Ok(Some((set, warm)));
        }
        if m >= m_max || f.invariant() {
            return Ok(None);
        }
        m = (m + m / 2).min(m_max);
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
