//! The re-orthonormalisation of the Benettin loop: Householder QR of an N×k frame, R's diagonal,
//! and Q formed explicitly or applied as reflectors, allocation-free after construction.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::householder;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::qr::no_pivoting::factor as qr;
use faer::reborrow::*;
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par};

/// Householder QR of an N×k frame in place, allocation-free after construction.
///
/// The blocked algorithm of LAPACK's `dgeqrf`/`dorgqr`, run here rather than through faer's
/// one-call QR (whose panel factorisation was a third of a full N = 500 QR, and whose threaded
/// form was 3× slower than its sequential one at that size; BENCHMARKS.md): panels
/// (`factor_panel`: a shallow recursion to 16-column leaves done column by column) with a
/// look-ahead of one panel (`factor_blocked`); Q either formed by applying the block reflectors
/// last first to the trailing part of [I; 0] only (4/3 N k² instead of 2 N k² flops, `form_q`)
/// or never formed, a matrix multiplied by the reflectors instead (`mul_q`). Large frames
/// (N k² ≥ 5·10⁷, e.g. the full spectrum at N ≥ 370) take panels of 48 columns and split every
/// update into two parts fixed by the column counts, run on two threads; smaller ones stay on
/// one thread with panels of 16 and each update as one product. Which path runs is a function
/// of the shape alone, so the bits never depend on the thread count.
///
/// Public for analyses that run their own tangent loops and for the benchmarks; the shapes of
/// every matrix passed must be those given to [`QrWorkspace::new`] (faer's shape checks panic
/// otherwise).
///
/// ```
/// use faer::Mat;
/// use neurodyn::lyapunov::QrWorkspace;
/// let a = Mat::<f64>::from_fn(3, 3, |i, j| if i == j { 2.0 } else { 0.5 });
/// let (mut ws, mut f, mut d) = (QrWorkspace::new(3, 3), a.clone(), vec![0.0; 3]);
/// ws.factor_in_place(f.as_mut(), &mut d);
/// let mut m = Mat::<f64>::identity(3, 3);
/// ws.mul_q(f.as_ref(), m.as_mut()); // m = Q
/// let r = Mat::<f64>::from_fn(3, 3, |i, j| if i <= j { f[(i, j)] } else { 0.0 });
/// assert!((&m * &r - &a).norm_max() < 1e-14);
/// assert!((d.iter().sum::<f64>() - (2.0f64 * 2.0 * 2.0 - 3.0 * 2.0 * 0.25 + 2.0 * 0.125).ln()).abs() < 1e-14);
/// ```
pub struct QrWorkspace {
    coeff: Mat<f64>,
    mem: MemBuffer,
    n: usize,
    k: usize,
    /// Whether the two halves of each update run on two threads (large frames only).
    parallel: bool,
    /// Scratch of the two halves of an update.
    halves: [MemBuffer; 2],
}

/// Runs `a` and `b`, on two threads when `parallel` (either way the same arithmetic).
fn join2(parallel: bool, a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
    if parallel {
        rayon::join(a, b);
    } else {
        a();
        b();
    }
}

impl QrWorkspace {
    /// Panel width of the two-thread path (measured best of 16–128 at N = k = 500).
    const BLOCK: usize = 48;
    /// Panel width of the one-thread path (small frames): measured best of 8–100 at N = 100
    /// (0.145 ms per step of the full tanh-map spectrum against 0.186 ms with 48-column panels),
    /// and better than 48 at N = 200 and 350 too.
    const SMALL_BLOCK: usize = 16;

    /// A workspace for N×k frames (k ≤ N; panics otherwise).
    pub fn new(n: usize, k: usize) -> Self {
        assert!(
            k <= n,
            "QrWorkspace: a frame of k = {k} columns needs N ≥ k rows, got N = {n}"
        );
        let parallel = n * k * k >= 50_000_000;
        let bs = if parallel {
            Self::BLOCK
        } else {
            Self::SMALL_BLOCK
        }
        .min(k.max(1));
        let req = qr::qr_in_place_scratch::<f64>(n, bs, bs, Par::Seq, Default::default()).or(
            householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                n, bs, k,
            ),
        );
        // An update's half: the left product of the factorisation and of Q's formation (k
        // columns at most), or a right product by Q (n rows at most).
        let half = || {
            MemBuffer::new(
                householder::apply_block_householder_transpose_on_the_left_in_place_scratch::<f64>(
                    n, bs, k,
                )
                .or(
                    householder::apply_block_householder_sequence_on_the_right_in_place_scratch::<
                        f64,
                    >(n, bs, n),
                ),
            )
        };
        QrWorkspace {
            coeff: Mat::zeros(bs, k.min(n)),
            mem: MemBuffer::new(req),
            n,
            k,
            parallel,
            halves: [half(), half()],
        }
    }

    /// Factorises `a` (N×k) = Q R; writes Q into `q`; `diag` receives ln|R_ii|.
    pub fn factor(&mut self, mut a: MatMut<'_, f64>, q: MatMut<'_, f64>, diag: &mut [f64]) {
        self.factor_in_place(a.as_mut(), diag);
        self.form_q(a.as_ref(), q);
    }

    /// Factorises `a` (N×k) in place without forming Q: R on and above the diagonal, the
    /// reflectors below it (their block factors kept in the workspace for [`Self::form_q`] and
    /// [`Self::mul_q`], valid until the next factorisation); `diag` receives ln|R_ii|.
    pub fn factor_in_place(&mut self, mut a: MatMut<'_, f64>, diag: &mut [f64]) {
        self.factor_blocked(a.as_mut());
        for (i, d) in diag.iter_mut().enumerate().take(self.k) {
            *d = a[(i, i)].abs().ln();
        }
    }

    /// Writes Q = H_1 ⋯ H_k [I; 0] of the last factorisation (`v`: the factorised frame) into
    /// `q`.
    pub fn form_q(&mut self, v: MatRef<'_, f64>, mut q: MatMut<'_, f64>) {
        let (n, k) = (self.n, self.k);
        // Q = H_1 ⋯ H_k [I; 0]: block j only touches rows and columns from its first column on.
        q.fill(0.0);
        for j in 0..k {
            q[(j, j)] = 1.0;
        }
        // Columns are independent under the reflectors, so Q is formed in two column ranges, each
        // taking every block in turn (one fork for the whole formation); column j costs
        // ≈ n j − j²/2 (blocks touch the trailing part only), and the split balances that work.
        let bs = self.coeff.nrows();
        let split = balanced_split(n, k);
        let coeff = self.coeff.as_ref();
        let apply_all = |mut part: MatMut<'_, f64>, first: usize, mem: &mut MemBuffer| {
            let last = first + part.ncols();
            for c in (0..k).step_by(bs).rev() {
                if c >= last {
                    continue;
                }
                let b = bs.min(k - c);
                let cols = c.max(first) - first..part.ncols();
                householder::apply_block_householder_on_the_left_in_place_with_conj(
                    v.get(c..n, c..c + b),
                    coeff.get(..b, c..c + b),
                    Conj::No,
                    part.as_mut().get_mut(c..n, cols),
                    Par::Seq,
                    MemStack::new(mem),
                );
            }
        };
        let [m0, m1] = &mut self.halves;
        let (left, right) = q.split_at_col_mut(split);
        join2(
            self.parallel,
            || apply_all(left, 0, m0),
            || apply_all(right, split, m1),
        );
    }

    /// `m ← m Q` for the square Q (k = N) of the last factorisation (`v`: the factorised frame),
    /// applied block reflector by block reflector from the right without forming Q: 2 N² r
    /// flops for an r × N `m`, against 4/3 N³ to form Q and 2 N² r to multiply by it. The rows
    /// are independent, so they run in two halves fixed by the row count (the same arithmetic on
    /// one thread and two).
    pub fn mul_q(&mut self, v: MatRef<'_, f64>, m: MatMut<'_, f64>) {
        assert!(
            self.k == self.n && m.ncols() == self.n,
            "mul_q: needs a square factorisation and m with N columns"
        );
        let coeff = self.coeff.as_ref();
        let apply = |part: MatMut<'_, f64>, mem: &mut MemBuffer| {
            if part.nrows() > 0 {
                householder::apply_block_householder_sequence_on_the_right_in_place_with_conj(
                    v,
                    coeff,
                    Conj::No,
                    part,
                    Par::Seq,
                    MemStack::new(mem),
                );
            }
        };
        let [m0, m1] = &mut self.halves;
        if !self.parallel {
            // One call for all rows on one thread (fewer, larger products for small frames).
            apply(m, m0);
            return;
        }
        let half = m.nrows() / 2;
        let (top, bottom) = m.split_at_row_mut(half);
        join2(true, || apply(top, m0), || apply(bottom, m1));
    }

    /// The blocked factorisation with a look-ahead of one panel: while one thread updates the
    /// trailing columns by panel p's block reflector, the other updates panel p + 1, factorises it
    /// and then takes its share of the trailing columns (a factorisation costs about two panel
    /// widths of column updates, measured).
    fn factor_blocked(&mut self, mut a: MatMut<'_, f64>) {
        // (The shares are fixed by the column counts, never by the thread count: faer's own
        // threaded products split differently with the thread count, and so round differently.)
        let (n, k) = (self.n, self.k);
        let bs = self.coeff.nrows();
        let first = bs.min(k);
        factor_panel(
            a.as_mut().get_mut(.., ..first),
            self.coeff.as_mut().get_mut(..first, ..first),
            &mut self.mem,
        );
        let [m0, m1] = &mut self.halves;
        for c in (0..k).step_by(bs) {
            let b = bs.min(k - c);
            let rest = k - c - b;
            if rest == 0 {
                break;
            }
            let nb = bs.min(rest);
            let (done, mut todo) = a.as_mut().get_mut(c..n, c..k).split_at_col_mut(b);
            let (t_done, t_next) = self.coeff.as_mut().get_mut(.., c..).split_at_col_mut(b);
            let (v, t) = (done.as_ref(), t_done.as_ref().get(..b, ..));
            if !self.parallel {
                // One thread: the whole trailing block in one product, then the next panel.
                apply_transpose(v, t, todo.rb_mut(), m0);
                let next = todo.get_mut(b.., ..nb);
                factor_panel(next, t_next.get_mut(..nb, ..nb), &mut self.mem);
                continue;
            }
            let (next, others) = todo.split_at_col_mut(nb);
            let mine = (others.ncols().saturating_sub(2 * nb)) / 2;
            let (others_a, others_b) = others.split_at_col_mut(mine);
            let mem = &mut self.mem;
            join2(
                self.parallel,
                || {
                    let mut next = next;
                    apply_transpose(v, t, next.as_mut(), m0);
                    factor_panel(next.get_mut(b.., ..), t_next.get_mut(..nb, ..nb), mem);
                    apply_transpose(v, t, others_a, m0);
                },
                || apply_transpose(v, t, others_b, m1),
            );
        }
    }
}

/// The column s that splits the formation of Q (n × k) into two equal amounts of work, column j
/// costing ≈ n j − j²/2: W(s) = W(k)/2 with W(j) = n j²/2 − j³/6, by bisection (a function of the
/// shape only).
fn balanced_split(n: usize, k: usize) -> usize {
    let (n, kf) = (n as f64, k as f64);
    let w = |j: f64| n * j * j / 2.0 - j * j * j / 6.0;
    let half = w(kf) / 2.0;
    let (mut lo, mut hi) = (0.0, kf);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if w(mid) < half {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo.round() as usize).min(k)
}

/// Householder QR of one m × b panel (m ≥ b) in place, in faer's representation: R on and above
/// the diagonal, the reflectors' essential parts below it (v_j = [1; a[j+1.., j]]), and in `t`
/// the upper-triangular factor with H_0 ⋯ H_{b−1} = I − V T⁻¹ Vᵀ, which is T = striu(VᵀV) +
/// diag(τ) for H_j = I − v_j v_jᵀ / τ_j (Joffrain et al. 2006, "Accumulating Householder
/// transformations, revisited"). Own code rather than faer's panel QR (≈ 0.55 ms on a 500 × 48
/// panel, a third of a full QR's time): a shallow recursion down to 16-column leaves factorised
/// column by column with vectorised dot products and updates ([`factor_columns`]), then T from
/// two triangular products. Falls back to faer for non-contiguous columns.
fn factor_panel(mut a: MatMut<'_, f64>, mut t: MatMut<'_, f64>, mem: &mut MemBuffer) {
    if a.row_stride() != 1 {
        qr::qr_in_place(a, t, Par::Seq, MemStack::new(mem), Default::default());
        return;
    }
    factor_columns(a.rb_mut(), t.rb_mut(), mem);
    strict_upper_t(a.rb(), t);
}

/// The panel's reflectors and R (τ_j on `t`'s diagonal; its strict upper triangle is scratch):
/// column by column up to `LEAF` columns, else recursively (Elmroth & Gustavson 2000) — the left
/// half, its block reflector applied to the right half as one matrix product, then the right
/// half's trailing rows. (Best of 8–24 columns and of the column-by-column loop, which it beats
/// by 5–13 % at N = 500–1000 and matches at N ≤ 200: BENCHMARKS.md.)
fn factor_columns(mut a: MatMut<'_, f64>, mut t: MatMut<'_, f64>, mem: &mut MemBuffer) {
    const LEAF: usize = 16;
    let b = a.ncols();
    if b <= LEAF {
        for j in 0..b {
            t[(j, j)] = reflect_column(a.rb_mut().get_mut(j.., j..));
        }
        return;
    }
    let b1 = b / 2;
    let (mut left, mut right) = a.split_at_col_mut(b1);
    factor_columns(left.rb_mut(), t.rb_mut().get_mut(..b1, ..b1), mem);
    strict_upper_t(left.rb(), t.rb_mut().get_mut(..b1, ..b1));
    apply_transpose(left.rb(), t.rb().get(..b1, ..b1), right.rb_mut(), mem);
    factor_columns(right.get_mut(b1.., ..), t.get_mut(b1.., b1..), mem);
}

/// T's strict upper triangle for the reflectors of `v` (m × b, m ≥ b; v_j = [1; v[j+1.., j]]):
/// v_iᵀ v_j, from the unit lower-triangular top and the rest, by two triangular products; the
/// diagonal (the τ_j) is kept and the strict lower triangle zeroed.
fn strict_upper_t(v: MatRef<'_, f64>, mut t: MatMut<'_, f64>) {
    let b = v.ncols();
    let (v0, v1) = v.split_at_row(b);
    triangular::matmul(
        t.rb_mut(),
        BlockStructure::UnitTriangularUpper,
        Accum::Replace,
        v0.transpose(),
        BlockStructure::UnitTriangularUpper,
        v0,
        BlockStructure::UnitTriangularLower,
        1.0,
        Par::Seq,
    );
    triangular::matmul(
        t.rb_mut(),
        BlockStructure::UnitTriangularUpper,
        Accum::Add,
        v1.transpose(),
        BlockStructure::Rectangular,
        v1,
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
    for j in 0..b {
        for i in j + 1..b {
            t[(i, j)] = 0.0;
        }
    }
}

/// The reflector H = I − v vᵀ/τ that maps the first column of `a` to (β, 0, …): β into a[0, 0],
/// v's essential part below it, H applied to the other columns; returns τ (∞ for H = I, as
/// faer). Dispatches to AVX-512 / AVX2 code where present (the same operations in the same
/// order, so the same bits on every path).
fn reflect_column(a: MatMut<'_, f64>) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected at run time.
            return unsafe { reflect_column_avx512(a) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were detected at run time.
            return unsafe { reflect_column_avx2(a) };
        }
    }
    reflect_column_generic(a)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn reflect_column_avx512(a: MatMut<'_, f64>) -> f64 {
    reflect_column_generic(a)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn reflect_column_avx2(a: MatMut<'_, f64>) -> f64 {
    reflect_column_generic(a)
}

/// Σ x_i y_i with sixteen fused accumulators (a fixed order, vectorisable).
#[inline(always)]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 16];
    let (xc, xr) = x.split_at(x.len() / 16 * 16);
    let (yc, yr) = y.split_at(xc.len());
    for (xs, ys) in xc.chunks_exact(16).zip(yc.chunks_exact(16)) {
        for l in 0..16 {
            acc[l] = xs[l].mul_add(ys[l], acc[l]);
        }
    }
    for (l, (xv, yv)) in xr.iter().zip(yr).enumerate() {
        acc[l] = xv.mul_add(*yv, acc[l]);
    }
    let mut w = 8;
    while w > 0 {
        for l in 0..w {
            acc[l] += acc[l + w];
        }
        w /= 2;
    }
    acc[0]
}

#[inline(always)]
fn reflect_column_generic(a: MatMut<'_, f64>) -> f64 {
    let (mut first, mut rest) = a.split_at_col_mut(1);
    let Some(col) = first.rb_mut().col_mut(0).try_as_col_major_mut() else {
        return f64::INFINITY; // unreachable: the caller checked the row stride
    };
    let col = col.as_slice_mut();
    let (head, tail) = col.split_at_mut(1);
    let mut ss = dot(tail, tail);
    if !(ss.is_finite() && ss > 1e-280) {
        // Scaled, against overflow and underflow of the squares.
        let scale = tail.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        ss = if scale > 0.0 && scale.is_finite() {
            let s = tail.iter().map(|v| (v / scale) * (v / scale)).sum::<f64>();
            s * scale * scale
        } else {
            scale * scale
        };
        if !ss.is_finite() {
            ss = f64::MAX;
        }
    }
    let tail_norm = ss.sqrt();
    if tail_norm < f64::MIN_POSITIVE {
        tail.fill(0.0);
        return f64::INFINITY;
    }
    let h = head[0];
    let norm = h.abs().hypot(tail_norm);
    let signed = if h != 0.0 { norm.copysign(h) } else { norm };
    let inv = (h + signed).recip();
    for v in tail.iter_mut() {
        *v *= inv;
    }
    head[0] = -signed;
    let tau = 0.5 * (1.0 + (tail_norm * inv.abs()) * (tail_norm * inv.abs()));
    let tau_inv = tau.recip();
    let tail = &*tail;
    for c in 0..rest.ncols() {
        let Some(other) = rest.rb_mut().col_mut(c).try_as_col_major_mut() else {
            continue;
        };
        let other = other.as_slice_mut();
        let (oh, ot) = other.split_at_mut(1);
        let k = -(oh[0] + dot(tail, ot)) * tau_inv;
        oh[0] += k;
        for (o, v) in ot.iter_mut().zip(tail) {
            *o = k.mul_add(*v, *o);
        }
    }
    tau
}

/// `m ← Hᵀ m` for the block reflector H = I − V T Vᵀ (sequential; empty `m` is a no-op).
fn apply_transpose(
    v: MatRef<'_, f64>,
    t: MatRef<'_, f64>,
    m: MatMut<'_, f64>,
    mem: &mut MemBuffer,
) {
    if m.ncols() > 0 {
        householder::apply_block_householder_transpose_on_the_left_in_place_with_conj(
            v,
            t,
            Conj::Yes,
            m,
            Par::Seq,
            MemStack::new(mem),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn draw(n: usize, k: usize, seed: u64) -> Mat<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Graded columns, as a frame between QRs has (column j scaled by e^{−j/40}).
        Mat::from_fn(n, k, |_, j| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z * (-(j as f64) / 40.0).exp()
        })
    }

    /// The blocked QR (own panels, look-ahead, updates in two parts, Q formed blockwise) against
    /// faer's one-call QR: the same ln|R_ii| to rounding, Q orthonormal, Q R = A; and the same bits
    /// on one thread as on two. Sizes on both sides of the threading threshold, partial frames,
    /// panels narrower than a block, and 1 × 1.
    #[test]
    fn blocked_qr_matches_the_one_call_qr_and_ignores_the_thread_count() {
        for (n, k) in [
            (400, 400),
            (420, 380),
            (100, 100),
            (130, 7),
            (97, 50),
            (5, 5),
            (1, 1),
        ] {
            let a = draw(n, k, n as u64);
            let run = |threads: usize| {
                crate::testing::on_threads(threads, || {
                    let mut ws = QrWorkspace::new(n, k);
                    assert_eq!(ws.parallel, n >= 400);
                    let (mut f, mut q, mut d) = (a.clone(), Mat::zeros(n, k), vec![0.0; k]);
                    ws.factor(f.as_mut(), q.as_mut(), &mut d);
                    (f, q, d)
                })
            };
            let (f, q, d) = run(2);
            let (f1, q1, d1) = run(1);
            assert!(d == d1 && f == f1, "N = {n}: R depends on the thread count");
            assert!(q == q1, "N = {n}: Q depends on the thread count");
            let reference = a.qr();
            let r0 = reference.R();
            for i in 0..k {
                let e = (d[i] - r0[(i, i)].abs().ln()).abs();
                assert!(e < 1e-12, "N = {n}, i = {i}: ln|R_ii| off by {e:e}");
            }
            let qtq = q.transpose() * &q;
            let mut r = Mat::<f64>::zeros(k, k);
            for j in 0..k {
                for i in 0..=j {
                    r[(i, j)] = f[(i, j)];
                }
            }
            let back = &q * &r;
            for j in 0..k {
                for i in 0..k {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (qtq[(i, j)] - want).abs() < 1e-13,
                        "QᵀQ ({i}, {j}) = {}",
                        qtq[(i, j)]
                    );
                }
                for i in 0..n {
                    assert!(
                        (back[(i, j)] - a[(i, j)]).abs() < 1e-13,
                        "QR ≠ A at ({i}, {j})"
                    );
                }
            }
        }
        assert!(!QrWorkspace::new(100, 100).parallel);
    }

    /// `m Q` through the reflectors equals `m` times the formed Q, and its bits do not depend on
    /// the thread count (two fixed row halves).
    #[test]
    fn multiplying_by_the_reflectors_is_multiplying_by_q() {
        for n in [400, 97, 1] {
            let a = draw(n, n, 3 + n as u64);
            let m0 = draw(n, n, 7);
            let mut ws = QrWorkspace::new(n, n);
            let (mut f, mut q, mut d) = (a.clone(), Mat::zeros(n, n), vec![0.0; n]);
            ws.factor_in_place(f.as_mut(), &mut d);
            ws.form_q(f.as_ref(), q.as_mut());
            let want = &m0 * &q;
            let run = |threads: usize| {
                crate::testing::on_threads(threads, || {
                    let mut m = m0.clone();
                    ws_mul(&mut QrWorkspace::new(n, n), &a, &mut m);
                    m
                })
            };
            let (m2, m1) = (run(2), run(1));
            assert!(m1 == m2, "N = {n}: m Q depends on the thread count");
            let mut d2 = vec![0.0; n];
            let mut ws2 = QrWorkspace::new(n, n);
            let mut f2 = a.clone();
            ws2.factor_in_place(f2.as_mut(), &mut d2);
            assert_eq!(d, d2);
            for j in 0..n {
                for i in 0..n {
                    let e = (m1[(i, j)] - want[(i, j)]).abs();
                    assert!(e < 1e-12 * (n as f64).sqrt(), "N = {n} ({i}, {j}): {e:e}");
                }
            }
        }

        fn ws_mul(ws: &mut QrWorkspace, a: &Mat<f64>, m: &mut Mat<f64>) {
            let n = a.nrows();
            let (mut f, mut d) = (a.clone(), vec![0.0; n]);
            ws.factor_in_place(f.as_mut(), &mut d);
            ws.mul_q(f.as_ref(), m.as_mut());
        }
    }

    /// Columns whose part below the diagonal is exactly zero (a diagonal frame: every reflector
    /// is the identity, τ = ∞) and a zero column (R_jj = 0): R, Q and ln|R_ii| stay exact.
    #[test]
    fn identity_reflectors_and_zero_columns() {
        let d = [3.0, -2.0, 0.5, 7.0];
        let a = Mat::from_fn(4, 4, |i, j| if i == j { d[i] } else { 0.0 });
        let mut ws = QrWorkspace::new(4, 4);
        let (mut f, mut q, mut ln) = (a.clone(), Mat::zeros(4, 4), vec![0.0; 4]);
        ws.factor(f.as_mut(), q.as_mut(), &mut ln);
        for i in 0..4 {
            assert_eq!(ln[i], d[i].abs().ln());
            for j in 0..4 {
                // Q R = A with Q = I up to the signs the reflections chose.
                let qr: f64 = (0..4)
                    .map(|l| q[(i, l)] * if l <= j { f[(l, j)] } else { 0.0 })
                    .sum();
                assert_eq!(qr, a[(i, j)], "({i}, {j})");
            }
        }
        let b = Mat::from_fn(6, 3, |i, j| {
            if j == 1 {
                0.0
            } else {
                (i + 2 * j) as f64 + 1.0
            }
        });
        let mut ws = QrWorkspace::new(6, 3);
        let (mut f, mut q, mut ln) = (b.clone(), Mat::zeros(6, 3), vec![0.0; 3]);
        ws.factor(f.as_mut(), q.as_mut(), &mut ln);
        assert_eq!(ln[1], f64::NEG_INFINITY);
        assert!(ln[0].is_finite() && ln[2].is_finite());
        let qtq = q.transpose() * &q;
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((qtq[(i, j)] - want).abs() < 1e-14, "QᵀQ ({i}, {j})");
            }
        }
    }
}
