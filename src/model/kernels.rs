//! Small dense kernels for the models' hot loops.
//!
//! `gemv_add` is `y ← y + A x` for a column-major faer matrix. faer's general `matmul` carries a
//! fixed dispatch cost that dominates at the sizes of recurrent circuits (N ≈ 50–500: 1.18 µs
//! for N = 100 here, against 0.3 µs for this kernel; BENCHMARKS.md), so this kernel takes four
//! columns per pass (y is loaded and stored once per four columns) and is compiled twice: with
//! AVX2 + FMA, chosen at run time when the CPU has them, and portable. [`PackedSymmetric`] is the
//! product of a symmetric matrix from its packed lower triangle (the sweep's symmetric W_r: half
//! the memory traffic, 0.95 against 1.15 µs at N = 100).

use faer::MatRef;

/// The logistic sigmoid 1/(1 + e^{−x}), evaluated without overflow for any x.
#[inline(always)]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `y ← y + A x` (A column-major with unit row stride, n rows, m columns).
#[inline]
pub fn gemv_add(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    let (n, m) = (a.nrows(), a.ncols());
    assert!(x.len() == m && y.len() == n, "gemv_add: shape mismatch");
    if a.row_stride() != 1 {
        // Rare (views of transposed matrices): plain loop.
        for j in 0..m {
            for i in 0..n {
                y[i] += a[(i, j)] * x[j];
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were detected at run time.
            unsafe { gemv_add_avx2(a, x, y) };
            return;
        }
    }
    gemv_add_generic(a, x, y);
}

/// Column block of [`gemv_add_blocked`]'s stack buffer.
pub const BLOCK: usize = 256;

/// `y ← y + A g` where the vector g is produced block by block into a stack buffer:
/// `fill(j0, buf)` writes g[j0 .. j0 + buf.len()]. The models' right-hand sides use it to form
/// `W φ(x)` without allocating.
#[inline]
pub fn gemv_add_blocked(a: MatRef<'_, f64>, fill: impl Fn(usize, &mut [f64]), y: &mut [f64]) {
    let m = a.ncols();
    let mut buf = [0.0f64; BLOCK];
    let mut j0 = 0;
    while j0 < m {
        let nb = BLOCK.min(m - j0);
        fill(j0, &mut buf[..nb]);
        gemv_add(a.subcols(j0, nb), &buf[..nb], y);
        j0 += nb;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_add_avx2(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    gemv_add_generic(a, x, y)
}

#[inline(always)]
fn gemv_add_generic(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    let (n, m) = (a.nrows(), a.ncols());
    let col = |j: usize| -> &[f64] {
        // SAFETY: column j of a matrix with unit row stride is n contiguous values.
        unsafe { std::slice::from_raw_parts(a.ptr_at(0, j), n) }
    };
    let mut j = 0;
    while j + 4 <= m {
        let (c0, c1, c2, c3) = (col(j), col(j + 1), col(j + 2), col(j + 3));
        let (x0, x1, x2, x3) = (x[j], x[j + 1], x[j + 2], x[j + 3]);
        for i in 0..n {
            y[i] = c3[i].mul_add(
                x3,
                c2[i].mul_add(x2, c1[i].mul_add(x1, c0[i].mul_add(x0, y[i]))),
            );
        }
        j += 4;
    }
    while j < m {
        let (c0, x0) = (col(j), x[j]);
        for i in 0..n {
            y[i] = c0[i].mul_add(x0, y[i]);
        }
        j += 1;
    }
}

/// `Y ← Y + A X` for B right-hand sides at once (X: m × B and Y: n × B, column-major slices),
/// each column computed in exactly the order [`gemv_add`] uses — so column b equals
/// `gemv_add(A, X[:, b], Y[:, b])` bit for bit — while on AVX2 each load of A feeds four right-hand
/// sides (the ensembles' batched right-hand sides).
#[inline]
pub fn gemv_add_many(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    let (n, m) = (a.nrows(), a.ncols());
    let b = if m == 0 { 0 } else { x.len() / m };
    assert!(
        x.len() == m * b && y.len() == n * b,
        "gemv_add_many: shape mismatch"
    );
    if a.row_stride() != 1 {
        for k in 0..b {
            gemv_add(a, &x[k * m..(k + 1) * m], &mut y[k * n..(k + 1) * n]);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected at run time (AVX-512F implies AVX2 and FMA).
            unsafe { gemv_add_many_avx512(a, x, y) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were detected at run time.
            unsafe { gemv_add_many_avx2(a, x, y) };
            return;
        }
    }
    gemv_add_many_generic(a, x, y);
}

/// Register-blocked: an 8-row × 4-column block of Y stays in eight AVX registers while every
/// column j of A is applied in order (y ← fma(A[i, j], x[j], y), j = 0, 1, …, exactly
/// [`gemv_add`]'s sequence per entry), so A is loaded once per four right-hand sides and every
/// load feeds four FMAs. Rows past the last multiple of 8 and right-hand sides past the last
/// multiple of 4 take the same per-entry sequence through the generic loops.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_add_many_avx2(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    use std::arch::x86_64::*;
    let (n, m) = (a.nrows(), a.ncols());
    let b = if m == 0 { 0 } else { x.len() / m };
    let (n8, b4) = (n - n % 8, b - b % 4);
    let ap = a.ptr_at(0, 0);
    let cs = a.col_stride();
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    // Row panels outermost: the 8 × m panel of A is loaded from memory once and reused from
    // cache by every group of four right-hand sides.
    let mut i = 0;
    while i < n8 {
        let mut k = 0;
        while k < b4 {
            // SAFETY: rows i..i+8 < n of columns k..k+4 < b of Y, rows j < m of X, and column j
            // of A (unit row stride, column stride cs) are in bounds.
            let yc = |c: usize| yp.add((k + c) * n + i);
            let mut acc = [_mm256_setzero_pd(); 8];
            for c in 0..4 {
                acc[2 * c] = _mm256_loadu_pd(yc(c));
                acc[2 * c + 1] = _mm256_loadu_pd(yc(c).add(4));
            }
            for j in 0..m {
                let col = ap.offset(j as isize * cs).add(i);
                let (w0, w1) = (_mm256_loadu_pd(col), _mm256_loadu_pd(col.add(4)));
                for c in 0..4 {
                    let xb = _mm256_broadcast_sd(&*xp.add((k + c) * m + j));
                    acc[2 * c] = _mm256_fmadd_pd(w0, xb, acc[2 * c]);
                    acc[2 * c + 1] = _mm256_fmadd_pd(w1, xb, acc[2 * c + 1]);
                }
            }
            for c in 0..4 {
                _mm256_storeu_pd(yc(c), acc[2 * c]);
                _mm256_storeu_pd(yc(c).add(4), acc[2 * c + 1]);
            }
            k += 4;
        }
        i += 8;
    }
    // The remaining rows of the first b4 right-hand sides, entry by entry in the same order.
    for c in 0..b4 {
        for i in n8..n {
            let mut v = y[c * n + i];
            for j in 0..m {
                v = a[(i, j)].mul_add(x[c * m + j], v);
            }
            y[c * n + i] = v;
        }
    }
    for c in b4..b {
        gemv_add_generic(a, &x[c * m..(c + 1) * m], &mut y[c * n..(c + 1) * n]);
    }
}

/// [`gemv_add_many_avx2`] with AVX-512 registers where the CPU has them: a block of up to
/// 32 rows × 6 right-hand sides of Y in up to 24 registers, every column j of A applied in order
/// (the same per-entry sequence of FMAs as [`gemv_add`], so the same bits), each load of A
/// feeding six right-hand sides and each broadcast of x four row vectors (ten loads per 24 FMAs,
/// where a 16 × 8 block needed ten per 16). The last rows go through masked loads and stores,
/// the last right-hand sides through a narrower block of the same kernel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemv_add_many_avx512(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    let (n, m) = (a.nrows(), a.ncols());
    let b = if m == 0 { 0 } else { x.len() / m };
    let (ap, cs) = (a.ptr_at(0, 0), a.col_stride());
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i < n {
        let rem = n - i;
        let vecs = rem.div_ceil(8).min(4);
        let tail = rem - 8 * (vecs - 1);
        let mask: u8 = if tail >= 8 { 0xff } else { (1u8 << tail) - 1 };
        let mut k = 0;
        while k < b {
            let c = (b - k).min(6);
            let p = Block {
                ap,
                cs,
                m,
                xp,
                yp,
                n,
                i,
                k,
                mask,
            };
            // SAFETY: rows i .. i + 8·vecs (the last vector masked to n) of columns k .. k + c
            // of Y, rows j < m of X and column j of A (unit row stride) are in bounds.
            macro_rules! go {
                ($r:literal) => {
                    match c {
                        1 => block512::<$r, 1>(&p),
                        2 => block512::<$r, 2>(&p),
                        3 => block512::<$r, 3>(&p),
                        4 => block512::<$r, 4>(&p),
                        5 => block512::<$r, 5>(&p),
                        _ => block512::<$r, 6>(&p),
                    }
                };
            }
            match vecs {
                1 => go!(1),
                2 => go!(2),
                3 => go!(3),
                _ => go!(4),
            }
            k += c;
        }
        i += 8 * vecs;
    }
}

/// Where one register block of [`gemv_add_many_avx512`] reads and writes.
#[cfg(target_arch = "x86_64")]
struct Block {
    ap: *const f64,
    cs: isize,
    m: usize,
    xp: *const f64,
    yp: *mut f64,
    n: usize,
    i: usize,
    k: usize,
    /// Lanes of the last row vector inside the matrix.
    mask: u8,
}

/// R row vectors (8 rows each, the last masked) × C right-hand sides of Y, accumulated in
/// registers over every column of A in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn block512<const R: usize, const C: usize>(p: &Block) {
    use std::arch::x86_64::*;
    let full: __mmask8 = 0xff;
    let lane_mask = |r: usize| if r + 1 == R { p.mask } else { full };
    let yc = |c: usize, r: usize| p.yp.add((p.k + c) * p.n + p.i + 8 * r);
    let mut acc = [[_mm512_setzero_pd(); R]; C];
    for c in 0..C {
        for r in 0..R {
            acc[c][r] = _mm512_maskz_loadu_pd(lane_mask(r), yc(c, r));
        }
    }
    for j in 0..p.m {
        let col = p.ap.offset(j as isize * p.cs).add(p.i);
        let mut w = [_mm512_setzero_pd(); R];
        for r in 0..R {
            w[r] = _mm512_maskz_loadu_pd(lane_mask(r), col.add(8 * r));
        }
        for c in 0..C {
            let xb = _mm512_set1_pd(*p.xp.add((p.k + c) * p.m + j));
            for r in 0..R {
                acc[c][r] = _mm512_fmadd_pd(w[r], xb, acc[c][r]);
            }
        }
    }
    for c in 0..C {
        for r in 0..R {
            _mm512_mask_storeu_pd(yc(c, r), lane_mask(r), acc[c][r]);
        }
    }
}

/// The portable path: one [`gemv_add`] per right-hand side (the same operations, no blocking).
#[inline(always)]
fn gemv_add_many_generic(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    let (n, m) = (a.nrows(), a.ncols());
    let b = if m == 0 { 0 } else { x.len() / m };
    for k in 0..b {
        gemv_add_generic(a, &x[k * m..(k + 1) * m], &mut y[k * n..(k + 1) * n]);
    }
}

/// A symmetric matrix in packed lower storage (column j holds A[j.., j] contiguously): half the
/// memory of the full matrix, so the product of an N = 100 matrix (40 kB) stays in a 48 kB L1
/// cache where the full one (80 kB) streams from L2.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedSymmetric {
    n: usize,
    data: Vec<f64>,
}

impl PackedSymmetric {
    /// The lower triangle of `a`, when `a` is square and exactly symmetric (`None` otherwise).
    pub fn new(a: MatRef<'_, f64>) -> Option<Self> {
        let n = a.nrows();
        if a.ncols() != n || !(0..n).all(|j| (j + 1..n).all(|i| a[(i, j)] == a[(j, i)])) {
            return None;
        }
        let mut data = Vec::with_capacity(n * (n + 1) / 2);
        for j in 0..n {
            data.extend((j..n).map(|i| a[(i, j)]));
        }
        Some(PackedSymmetric { n, data })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// `y ← y + A x`. Each stored entry `A[i, j]` (i > j) is loaded once and used twice:
    /// `y[i] += A[i, j] x[j]` (four columns per pass, in order) and `y[j] += A[i, j] x[i]` (a dot
    /// product in interleaved partial sums, then the diagonal term). The order is fixed and the same
    /// with and without AVX2, so the result is the same bits on every machine with FMA; it
    /// differs from [`gemv_add`]'s by rounding.
    #[inline]
    pub fn mul_add(&self, x: &[f64], y: &mut [f64]) {
        assert!(
            x.len() == self.n && y.len() == self.n,
            "PackedSymmetric::mul_add: shape mismatch"
        );
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the features were detected at run time.
                unsafe { symv_avx2(self, x, y) };
                return;
            }
        }
        symv_generic(self, x, y);
    }
}

/// Offset of column `j` in packed lower storage of order `n`.
#[inline(always)]
fn packed_col(n: usize, j: usize) -> usize {
    j * n - j * j.saturating_sub(1) / 2
}

/// The diagonal block of columns j0 .. j0 + b (b ≤ 4) with the block's dot products `t`
/// (what the rows below contributed): within the block, column by column, the entries below the
/// diagonal update y and t, then y[j] takes its diagonal term and t.
#[inline(always)]
fn symv_diagonal_block(
    a: &PackedSymmetric,
    j0: usize,
    b: usize,
    x: &[f64],
    y: &mut [f64],
    t: &mut [f64; 4],
) {
    let n = a.n;
    for c in 0..b {
        let j = j0 + c;
        let col = &a.data[packed_col(n, j)..];
        for r in c + 1..b {
            let v = col[r - c];
            y[j0 + r] = v.mul_add(x[j], y[j0 + r]);
            t[c] = v.mul_add(x[j0 + r], t[c]);
        }
        y[j] += col[0].mul_add(x[j], t[c]);
    }
}

/// The operation order of [`PackedSymmetric::mul_add`], portable (what [`symv_avx2`] does lane
/// by lane): columns in blocks of four; the rows below a block in groups of four, each row
/// updated by the block's four columns in turn (y loaded and stored once per block) while four
/// accumulators of four lanes gather the block's dot products; the lanes summed pairwise, the
/// tail rows one by one, then the 4 × 4 diagonal block.
#[inline(always)]
fn symv_generic(a: &PackedSymmetric, x: &[f64], y: &mut [f64]) {
    let n = a.n;
    let mut j0 = 0;
    while j0 < n {
        let b = (n - j0).min(4);
        let mut t = [0.0f64; 4];
        if b == 4 {
            let cols: [&[f64]; 4] = std::array::from_fn(|c| {
                let j = j0 + c;
                &a.data[packed_col(n, j) + (4 - c)..packed_col(n, j) + (n - j)]
            });
            let xj: [f64; 4] = std::array::from_fn(|c| x[j0 + c]);
            let (xs, ys) = (&x[j0 + 4..], &mut y[j0 + 4..]);
            let m = n - j0 - 4;
            let mut acc = [[0.0f64; 4]; 4];
            let mut i = 0;
            while i + 4 <= m {
                for l in 0..4 {
                    let k = i + l;
                    let mut yk = ys[k];
                    for c in 0..4 {
                        yk = cols[c][k].mul_add(xj[c], yk);
                        acc[c][l] = cols[c][k].mul_add(xs[k], acc[c][l]);
                    }
                    ys[k] = yk;
                }
                i += 4;
            }
            for c in 0..4 {
                t[c] = (acc[c][0] + acc[c][1]) + (acc[c][2] + acc[c][3]);
            }
            while i < m {
                let mut yk = ys[i];
                for c in 0..4 {
                    yk = cols[c][i].mul_add(xj[c], yk);
                    t[c] = cols[c][i].mul_add(xs[i], t[c]);
                }
                ys[i] = yk;
                i += 1;
            }
        }
        symv_diagonal_block(a, j0, b, x, y, &mut t);
        j0 += b;
    }
}

/// [`symv_generic`] in AVX2 registers: a group of four rows is one register; per block, four
/// column loads, one load and one store of y, eight FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn symv_avx2(a: &PackedSymmetric, x: &[f64], y: &mut [f64]) {
    use std::arch::x86_64::*;
    let n = a.n;
    let mut j0 = 0;
    while j0 < n {
        let b = (n - j0).min(4);
        let mut t = [0.0f64; 4];
        if b == 4 {
            let cols: [*const f64; 4] = std::array::from_fn(|c| {
                let j = j0 + c;
                a.data.as_ptr().add(packed_col(n, j) + (4 - c))
            });
            let xj: [__m256d; 4] = std::array::from_fn(|c| _mm256_set1_pd(x[j0 + c]));
            let (xs, ys) = (x.as_ptr().add(j0 + 4), y.as_mut_ptr().add(j0 + 4));
            let m = n - j0 - 4;
            let mut acc = [_mm256_setzero_pd(); 4];
            let mut i = 0;
            while i + 4 <= m {
                let xv = _mm256_loadu_pd(xs.add(i));
                let mut yv = _mm256_loadu_pd(ys.add(i));
                for c in 0..4 {
                    let cv = _mm256_loadu_pd(cols[c].add(i));
                    yv = _mm256_fmadd_pd(cv, xj[c], yv);
                    acc[c] = _mm256_fmadd_pd(cv, xv, acc[c]);
                }
                _mm256_storeu_pd(ys.add(i), yv);
                i += 4;
            }
            for c in 0..4 {
                let mut l = [0.0f64; 4];
                _mm256_storeu_pd(l.as_mut_ptr(), acc[c]);
                t[c] = (l[0] + l[1]) + (l[2] + l[3]);
            }
            while i < m {
                let mut yk = *ys.add(i);
                for c in 0..4 {
                    let v = *cols[c].add(i);
                    yk = v.mul_add(x[j0 + c], yk);
                    t[c] = v.mul_add(*xs.add(i), t[c]);
                }
                *ys.add(i) = yk;
                i += 1;
            }
        }
        symv_diagonal_block(a, j0, b, x, y, &mut t);
        j0 += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn packed_symmetric_product_equals_the_full_one() {
        for n in [1usize, 3, 4, 5, 7, 8, 9, 37, 100, 103] {
            let a = Mat::<f64>::from_fn(n, n, |i, j| {
                (((i + 1) * (j + 1)) as f64 * 0.37).sin() + if i == j { 1.0 } else { 0.0 }
            });
            let p = PackedSymmetric::new(a.as_ref()).unwrap();
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.9).cos()).collect();
            let (mut y1, mut y2) = (vec![0.5; n], vec![0.5; n]);
            gemv_add(a.as_ref(), &x, &mut y1);
            p.mul_add(&x, &mut y2);
            for i in 0..n {
                assert!(
                    (y1[i] - y2[i]).abs() <= 1e-13 * (1.0 + y1[i].abs()),
                    "n = {n}, row {i}"
                );
            }
            // The portable order is the vector one, bit for bit.
            let mut y3 = vec![0.5; n];
            symv_generic(&p, &x, &mut y3);
            assert_eq!(y2, y3, "n = {n}");
        }
        let mut b = Mat::<f64>::zeros(3, 3);
        b[(2, 0)] = 1.0;
        assert!(PackedSymmetric::new(b.as_ref()).is_none());
    }

    #[test]
    fn many_right_hand_sides_equal_one_at_a_time_bit_for_bit() {
        for (n, m, b) in [
            (1, 1, 1),
            (3, 5, 2),
            (17, 9, 11),
            (100, 103, 20),
            (257, 256, 9),
            // Every row-vector count and tail mask, every right-hand-side remainder.
            (8, 4, 64),
            (33, 6, 13),
            (24, 5, 4),
            (16, 3, 3),
            (100, 100, 64),
        ] {
            let a = Mat::<f64>::from_fn(n, m, |i, j| ((i * 31 + j * 7) as f64 * 0.1).sin());
            let x: Vec<f64> = (0..m * b).map(|j| (j as f64 * 0.3).cos()).collect();
            let mut y: Vec<f64> = (0..n * b).map(|i| (i as f64 * 0.7).sin()).collect();
            let mut want = y.clone();
            gemv_add_many(a.as_ref(), &x, &mut y);
            for k in 0..b {
                gemv_add(
                    a.as_ref(),
                    &x[k * m..(k + 1) * m],
                    &mut want[k * n..(k + 1) * n],
                );
            }
            assert!(y == want, "({n},{m},{b})");
        }
    }

    #[test]
    fn matches_naive_product_for_odd_shapes() {
        for (n, m) in [(1, 1), (3, 5), (17, 9), (100, 103), (257, 256)] {
            let a = Mat::<f64>::from_fn(n, m, |i, j| ((i * 31 + j * 7) as f64 * 0.1).sin());
            let x: Vec<f64> = (0..m).map(|j| (j as f64 * 0.3).cos()).collect();
            let mut y: Vec<f64> = (0..n).map(|i| i as f64).collect();
            gemv_add(a.as_ref(), &x, &mut y);
            for i in 0..n {
                let want: f64 = i as f64 + (0..m).map(|j| a[(i, j)] * x[j]).sum::<f64>();
                assert!(
                    (y[i] - want).abs() < 1e-12 * (1.0 + want.abs()),
                    "({n},{m}) row {i}"
                );
            }
            // A transposed view (non-unit row stride) takes the fallback path.
            let at = a.transpose();
            let mut z = vec![0.0; m];
            gemv_add(at, &y[..n], &mut z);
            for j in 0..m {
                let want: f64 = (0..n).map(|i| a[(i, j)] * y[i]).sum();
                assert!((z[j] - want).abs() < 1e-11 * (1.0 + want.abs()));
            }
        }
    }
}

/// `tanh` and `sech²` of every entry (either output may be skipped), vectorised: AVX2 + FMA when
/// the CPU has them, portable otherwise. Within a few ulps of the libm functions (tested).
///
/// With `t = expm1(−2|x|)` and `e = exp(−2|x|)` from one range reduction `−2|x| = k ln2 + r`
/// (`|r| ≤ ln2/2`, degree-13 Taylor polynomial of `expm1(r)`, truncation < 1e-17):
/// `tanh|x| = −t / (t + 2)` and `sech² x = 4e / (1 + e)²`.
#[inline]
pub fn tanh_sech2_into(x: &[f64], tanh: Option<&mut [f64]>, sech2: Option<&mut [f64]>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected at run time.
            unsafe { tanh_sech2_avx512(x, tanh, sech2) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were detected at run time.
            unsafe { tanh_sech2_avx2(x, tanh, sech2) };
            return;
        }
    }
    tanh_sech2_generic(x, tanh, sech2)
}

/// The same operations eight lanes wide (fused multiply–adds and correctly rounded divisions
/// throughout, so every path gives the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tanh_sech2_avx512(x: &[f64], tanh: Option<&mut [f64]>, sech2: Option<&mut [f64]>) {
    tanh_sech2_generic(x, tanh, sech2)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_sech2_avx2(x: &[f64], tanh: Option<&mut [f64]>, sech2: Option<&mut [f64]>) {
    tanh_sech2_generic(x, tanh, sech2)
}

/// expm1(z) and exp(z) for z ∈ [−708, 0], branch-free (vectorisable).
#[inline(always)]
fn expm1_exp_neg(z: f64) -> (f64, f64) {
    const LN2_HI: f64 = 0.693_147_180_369_123_816_49;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    let k = (z * INV_LN2).round();
    let r = k.mul_add(-LN2_LO, k.mul_add(-LN2_HI, z));
    // expm1(r) = r + r²/2! + … + r¹³/13!, Horner.
    const C: [f64; 12] = [
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
    ];
    let mut p = C[11];
    for c in C[..11].iter().rev() {
        p = p.mul_add(r, *c);
    }
    let em = (p * r).mul_add(r, r);
    // 2^k for k ∈ [−1022, 0], built from the exponent bits: k + 1023 + 2^52 holds the biased
    // exponent in its low mantissa bits (a bit cast and a shift, vectorisable without AVX-512's
    // packed float-to-integer conversion).
    let two_k = f64::from_bits((k + (1023.0 + 4_503_599_627_370_496.0)).to_bits() << 52);
    let e = two_k.mul_add(em, two_k);
    let t = two_k.mul_add(em, two_k - 1.0);
    (t, e)
}

#[inline(always)]
fn tanh_sech2_generic(x: &[f64], tanh: Option<&mut [f64]>, sech2: Option<&mut [f64]>) {
    match (tanh, sech2) {
        (Some(th), Some(s2)) => {
            for i in 0..x.len() {
                let a = x[i].abs().min(354.0);
                let (t, e) = expm1_exp_neg(-2.0 * a);
                th[i] = (-t / (t + 2.0)).copysign(x[i]);
                s2[i] = 4.0 * e / ((1.0 + e) * (1.0 + e));
            }
        }
        (Some(th), None) => {
            for i in 0..x.len() {
                let a = x[i].abs().min(354.0);
                let (t, _) = expm1_exp_neg(-2.0 * a);
                th[i] = (-t / (t + 2.0)).copysign(x[i]);
            }
        }
        (None, Some(s2)) => {
            for i in 0..x.len() {
                let a = x[i].abs().min(354.0);
                let (_, e) = expm1_exp_neg(-2.0 * a);
                s2[i] = 4.0 * e / ((1.0 + e) * (1.0 + e));
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tanh_tests {
    use super::*;

    #[test]
    fn tanh_and_sech2_are_within_a_few_ulps() {
        let x: Vec<f64> = (0..40001)
            .map(|k| -50.0 + 0.0025 * k as f64)
            .chain([0.0, -0.0, 1e-300, 1e-9, -3e-5, 0.34657359, 0.3465736])
            .collect();
        let (mut t, mut s) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        tanh_sech2_into(&x, Some(&mut t), Some(&mut s));
        for i in 0..x.len() {
            let tw = x[i].tanh();
            assert!(
                (t[i] - tw).abs() <= 3.0 * f64::EPSILON * tw.abs(),
                "tanh({}) = {} vs {tw}",
                x[i],
                t[i]
            );
            let c = x[i].cosh();
            let sw = 1.0 / (c * c);
            assert!(
                (s[i] - sw).abs() <= 8.0 * f64::EPSILON * sw + 1e-300,
                "sech²({}) = {} vs {sw}",
                x[i],
                s[i]
            );
        }
        let mut t2 = vec![0.0; x.len()];
        tanh_sech2_into(&x, Some(&mut t2), None);
        assert_eq!(t, t2);
        assert!(t.iter().all(|v| v.is_finite()));
        // Every instruction set gives the same bits (ensemble members equal single runs whatever
        // path a machine takes).
        let (mut tg, mut sg) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        tanh_sech2_generic(&x, Some(&mut tg), Some(&mut sg));
        assert!(
            t == tg && s == sg,
            "the dispatched path differs from the portable one"
        );
        #[cfg(target_arch = "x86_64")]
        for (name, ok) in [
            (
                "avx2",
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            ),
            ("avx512", is_x86_feature_detected!("avx512f")),
        ] {
            if !ok {
                continue;
            }
            let (mut ta, mut sa) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            // SAFETY: the features were detected at run time.
            unsafe {
                if name == "avx2" {
                    tanh_sech2_avx2(&x, Some(&mut ta), Some(&mut sa))
                } else {
                    tanh_sech2_avx512(&x, Some(&mut ta), Some(&mut sa))
                }
            }
            assert!(
                ta == tg && sa == sg,
                "{name} differs from the portable path"
            );
        }
    }
}
