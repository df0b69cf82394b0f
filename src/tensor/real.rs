//! The float types the trainers run in (f64: the reference; f32: what GPUs train in) and the few
//! matrix helpers the cells need. Parameters are stored row-major (as PyTorch and safetensors do);
//! batches of states are column-major `S × B` (one trial per contiguous column).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use num_traits::{Float, FromPrimitive, ToPrimitive};
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, MulAssign};

/// f32 or f64.
pub trait Real:
    Float
    + faer::traits::RealField
    + FromPrimitive
    + ToPrimitive
    + Send
    + Sync
    + Default
    + Debug
    + Sum
    + AddAssign
    + MulAssign
    + bytemuck::Pod
    + 'static
{
    /// `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// C = A·B (`acc`: C += A·B), sequential (the trainers parallelise over trials instead).
    fn matmul(c: MatMut<'_, Self>, acc: bool, a: MatRef<'_, Self>, b: MatRef<'_, Self>);
    /// exp(−|x|) ∈ (0, 1]: the one exponential of the logistic [`sig`]. f64: the standard
    /// library's; f32: [`exp_neg_f32`], a polynomial that vectorises (std's `expf` is a call).
    fn exp_neg_abs(self) -> Self;
    /// tanh for the hot loops (the ANRU controller): f64 the standard library's; f32
    /// [`tanh_f32`], branch-free so that loops over it vectorise (std's `tanhf` is a call).
    fn tanh_fast(self) -> Self;
    /// Conversion from f64.
    #[inline(always)]
    fn c(x: f64) -> Self {
        Self::from_f64(x).unwrap_or_else(Self::nan)
    }
    /// Conversion to f64.
    #[inline(always)]
    fn f(self) -> f64 {
        self.to_f64().unwrap_or(f64::NAN)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn exp_neg_abs(self) -> f64 {
        (-self.abs()).exp()
    }
    #[inline(always)]
    fn tanh_fast(self) -> f64 {
        self.tanh()
    }
    fn matmul(c: MatMut<'_, f64>, acc: bool, a: MatRef<'_, f64>, b: MatRef<'_, f64>) {
        let accum = if acc { Accum::Add } else { Accum::Replace };
        matmul(c, accum, a, b, 1.0, Par::Seq);
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn exp_neg_abs(self) -> f32 {
        exp_neg_f32(-self.abs())
    }
    #[inline(always)]
    fn tanh_fast(self) -> f32 {
        tanh_f32(self)
    }

    fn matmul(c: MatMut<'_, f32>, acc: bool, a: MatRef<'_, f32>, b: MatRef<'_, f32>) {
        let accum = if acc { Accum::Add } else { Accum::Replace };
        matmul(c, accum, a, b, 1.0, Par::Seq);
    }
}

/// Row-major `r × c` view of a parameter slice.
#[inline]
pub fn rm<F>(s: &[F], r: usize, c: usize) -> MatRef<'_, F> {
    MatRef::from_row_major_slice(&s[..r * c], r, c)
}

/// Mutable row-major view.
#[inline]
pub fn rm_mut<F>(s: &mut [F], r: usize, c: usize) -> MatMut<'_, F> {
    MatMut::from_row_major_slice_mut(&mut s[..r * c], r, c)
}

/// Column-major `r × c` view (a batch: one column per trial).
#[inline]
pub fn cm<F>(s: &[F], r: usize, c: usize) -> MatRef<'_, F> {
    MatRef::from_column_major_slice(&s[..r * c], r, c)
}

/// Mutable column-major view.
#[inline]
pub fn cm_mut<F>(s: &mut [F], r: usize, c: usize) -> MatMut<'_, F> {
    MatMut::from_column_major_slice_mut(&mut s[..r * c], r, c)
}

/// Column `j` of a matrix with unit row stride as a slice (what the elementwise loops of the
/// cells read, free of per-entry index checks).
#[inline(always)]
pub fn col<F>(m: MatRef<'_, F>, j: usize) -> &[F] {
    m.col(j)
        .try_as_col_major()
        .expect("batch matrices are column-major")
        .as_slice()
}

/// Column `j` as a mutable slice.
#[inline(always)]
pub fn col_mut<F>(m: MatMut<'_, F>, j: usize) -> &mut [F] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("batch matrices are column-major")
        .as_slice_mut()
}

/// The four blocks of `n` at the start of a state column.
#[inline(always)]
pub fn quarters<F>(c: &[F], n: usize) -> [&[F]; 4] {
    let (a, r) = c[..4 * n].split_at(n);
    let (b, r) = r.split_at(n);
    let (c, d) = r.split_at(n);
    [a, b, c, d]
}

/// [`quarters`], mutable.
#[inline(always)]
pub fn quarters_mut<F>(c: &mut [F], n: usize) -> [&mut [F]; 4] {
    let (a, r) = c[..4 * n].split_at_mut(n);
    let (b, r) = r.split_at_mut(n);
    let (c, d) = r.split_at_mut(n);
    [a, b, c, d]
}

/// The non-overlapping blocks `g[o..o + n]` for the offsets `o` of `offs`, in any order.
#[inline(always)]
pub fn disjoint_mut<F, const K: usize>(g: &mut [F], offs: [usize; K], n: usize) -> [&mut [F]; K] {
    let mut order: [usize; K] = std::array::from_fn(|k| k);
    order.sort_by_key(|&k| offs[k]);
    let (mut rest, mut base) = (g, 0);
    let mut out: [Option<&mut [F]>; K] = std::array::from_fn(|_| None);
    for k in order {
        let (_, r) = std::mem::take(&mut rest).split_at_mut(offs[k] - base);
        let (block, r) = r.split_at_mut(n);
        out[k] = Some(block);
        (rest, base) = (r, offs[k] + n);
    }
    out.map(|b| b.expect("each offset placed once"))
}

/// Runs `f` compiled for the widest SIMD the CPU offers (pulp's dispatch, as faer does: AVX2 +
/// FMA on most x86-64), so that elementwise loops inside it vectorise beyond SSE2. The same bits
/// either way: Rust never contracts a·b + c into an FMA.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// e^x for x ≤ 0 in f32, branch-free so that loops over it vectorise: x = n ln 2 + r with
/// n = round(x / ln 2) (ln 2 split in two parts, the product with the high part exact) and
/// |r| ≤ ln 2 / 2, e^r by the degree-7 minimax polynomial of Cephes' `expf`, times 2ⁿ built
/// from its bits. Relative error ≤ 2 ulp on [−87.3, 0] (`tests/suite/train_cells.rs`); below
/// −87.3 (where e^x < 2⁻¹²⁶) it returns e^−87.3 ≈ 1.2·10⁻³⁸ instead of a subnormal; NaN stays
/// NaN. Positive x are outside its contract.
#[inline(always)]
pub fn exp_neg_f32(x: f32) -> f32 {
    const LO: f32 = -87.336_55;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 · 2²³: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = if x < LO { LO } else { x };
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let e = p * (r * r) + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// tanh in f32, branch-free (both forms are evaluated and one selected, so loops over it
/// vectorise): for |x| < 0.625 the odd minimax polynomial x + x³ P(x²) of Cephes' `tanhf`; above,
/// (1 − e)/(1 + e) with e = e^{−2|x|} from [`exp_neg_f32`] (no cancellation there: e < 0.29),
/// and the sign of x. Relative error ≤ 3 ulp (`tests/suite/train_cells.rs`); ±1 from |x| ≈ 9;
/// NaN stays NaN.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    let small =
        (((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1;
    let small = small * z * x + x;
    let e = exp_neg_f32(-2.0 * ax);
    let large = ((1.0 - e) / (1.0 + e)).copysign(x);
    if ax < 0.625 {
        small
    } else {
        large
    }
}

/// Logistic σ(x), overflow-free: e = exp(−|x|) ∈ (0, 1] from the standard library, then
/// 1/(1 + e) or e/(1 + e) by sign.
#[inline(always)]
pub fn sig<F: Real>(x: F) -> F {
    logistic((-x.abs()).exp(), x)
}

/// σ(x) for the hot loops of the recurrent cells: the same formula with e from
/// [`Real::exp_neg_abs`] — in f64 the very bits of [`sig`], in f32 within 3·10⁻⁷ of them and
/// vectorisable (one exponential per entry, never an overflowing one).
#[inline(always)]
pub fn sig_fast<F: Real>(x: F) -> F {
    logistic(x.exp_neg_abs(), x)
}

#[inline(always)]
fn logistic<F: Real>(e: F, x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + e)
    } else {
        e / (F::one() + e)
    }
}

/// Reusable matrices for a cell's temporaries (what a step needs besides its inputs and outputs),
/// so that the time loop allocates nothing after its first step. Contents are unspecified between
/// uses: every caller overwrites what it takes.
#[derive(Debug, Default)]
pub struct Scratch<F> {
    mats: Vec<faer::Mat<F>>,
}

impl<F: Real> Scratch<F> {
    pub fn new() -> Self {
        Scratch { mats: vec![] }
    }

    /// `K` matrices of the given shapes, starting at slot `first` (so that a caller holding some
    /// slots can take more from further on).
    pub fn take<const K: usize>(
        &mut self,
        first: usize,
        shapes: [(usize, usize); K],
    ) -> [MatMut<'_, F>; K] {
        while self.mats.len() < first + K {
            self.mats.push(faer::Mat::new());
        }
        let mut it = self.mats[first..first + K].iter_mut();
        std::array::from_fn(|k| {
            let m = it.next().expect("K slots reserved above");
            let (r, c) = shapes[k];
            if m.nrows() != r || m.ncols() != c {
                m.resize_with(r, c, |_, _| F::zero());
            }
            m.as_mut()
        })
    }
}
