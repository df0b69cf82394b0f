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
    fn matmul(c: MatMut<'_, f64>, acc: bool, a: MatRef<'_, f64>, b: MatRef<'_, f64>) {
        let accum = if acc { Accum::Add } else { Accum::Replace };
        matmul(c, accum, a, b, 1.0, Par::Seq);
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";

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

/// Logistic σ(x), overflow-free.
#[inline(always)]
pub fn sig<F: Real>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
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
