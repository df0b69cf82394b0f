//! Single-sample convolutions on square grids (f64; PyTorch's cross-correlation with zero
//! padding), the stem's average pool, and the convolution as a matrix-free
//! [`LinearOperator`] for its spectrum.
//!
//! `(K ⊛_{s,p} x)[o,i,j] = Σ_c Σ_{m,n} K[o,c,m,n] x̃[c, s i + m − p, s j + n − p]`, out size
//! ⌊(n + 2p − k)/s⌋ + 1. Direct loops, parallel over output channels (each output written by
//! one thread: the same bits whatever the thread count).

use super::out_size;
use crate::error::{Error, Result};
use crate::krylov::LinearOperator;
use crate::nn::{AvgPool2d, Conv2d, Shape};
use std::collections::HashMap;

/// K ⊛_{s,p} x for x `[cin, n, n]`, K `[cout, cin, k, k]`; returns (y `[cout, m, m]`, m). The
/// convolution the network is trained with ([`Conv2d::apply`], im2col and one matrix product),
/// its shape's [`Conv2d`] built once per thread and reused.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f64],
    cin: usize,
    n: usize,
    kernel: &[f64],
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> (Vec<f64>, usize) {
    thread_local! {
        static CONVS: std::cell::RefCell<HashMap<[usize; 6], std::rc::Rc<Conv2d>>> =
            Default::default();
    }
    let conv = CONVS.with(|c| {
        c.borrow_mut()
            .entry([cin, n, cout, k, stride, pad])
            .or_insert_with(|| {
                std::rc::Rc::new(
                    Conv2d::new(Shape::new(cin, n, n), cout, k, stride, pad)
                        .expect("CordsNet convolutions are validated with the architecture"),
                )
            })
            .clone()
    });
    let m = out_size(n, k, stride, pad);
    let mut y = vec![0.0; cout * m * m];
    conv.apply(kernel, x, &mut y);
    (y, m)
}

/// AvgPool 3×3, stride 2, padding 1, always divided by 9 (count_include_pad); returns (y, m).
/// The pool the network is trained with ([`AvgPool2d`]).
pub fn avg_pool_3_2_1(x: &[f64], c: usize, n: usize) -> (Vec<f64>, usize) {
    use crate::nn::{Ctx, Layer};
    let m = out_size(n, 3, 2, 1);
    let mut y = vec![0.0; c * m * m];
    // A 3 × 3 / 2 / 1 pool takes any non-empty plane (the architecture's stem sizes are checked).
    if let Ok(pool) = AvgPool2d::new(Shape::new(c, n, n), 3, 2, 1, true) {
        pool.forward(&mut [], x, &mut y, 1, &mut Ctx::default());
    }
    (y, m)
}

/// The stride-1, zero-padded convolution v ↦ K ⊛ v on an H × W grid (K `[C, C, k, k]`, k odd,
/// padding k/2), optionally masked, v ↦ D (K ⊛ v) with D = diag(mask) (the layer Jacobian's
/// D·K^rec of spec A.9).
#[derive(Debug, Clone)]
pub struct ConvOperator {
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub kernel: Vec<f64>,
    pub mask: Option<Vec<f64>>,
    conv: Conv2d,
}

impl ConvOperator {
    /// The operator of a `C × C × k × k` float64 kernel read from `.npy` (field `kernel`) on an
    /// `h × w` grid.
    pub fn from_npy(path: &std::path::Path, h: usize, w: usize) -> Result<Self> {
        let kr: ndarray::Array4<f64> = crate::io::read_float(path, "kernel")?;
        let (c, c2, kh, kw) = kr.dim();
        if c != c2 || kh != kw {
            return Err(Error::invalid(
                "kernel",
                format!("is {c}×{c2}×{kh}×{kw}; need C×C×k×k"),
            ));
        }
        Self::new(kr.iter().copied().collect(), c, kh, h, w)
    }

    pub fn new(kernel: Vec<f64>, channels: usize, k: usize, h: usize, w: usize) -> Result<Self> {
        if channels == 0 || h == 0 || w == 0 || k % 2 == 0 {
            return Err(Error::invalid(
                "kernel",
                format!("{channels} channels, {k}×{k} kernel on {h}×{w}: need C ≥ 1, odd k, a non-empty grid"),
            ));
        }
        if kernel.len() != channels * channels * k * k {
            return Err(Error::invalid(
                "kernel",
                format!(
                    "has {} values, a {channels}×{channels}×{k}×{k} kernel has {}",
                    kernel.len(),
                    channels * channels * k * k
                ),
            ));
        }
        crate::memory::check("size", (channels * h * w) as u128 * 8 * 4, None)?;
        let conv = Conv2d::new(Shape::new(channels, h, w), channels, k, 1, k / 2)?;
        Ok(ConvOperator {
            channels,
            h,
            w,
            k,
            kernel,
            mask: None,
            conv,
        })
    }

    /// The dense N × N matrix (N = C·H·W), column j = K ⊛ e_j (small grids only).
    pub fn dense(&self) -> faer::Mat<f64> {
        let n = self.dim();
        let mut m = faer::Mat::zeros(n, n);
        let mut e = vec![0.0; n];
        let mut y = vec![0.0; n];
        for j in 0..n {
            e[j] = 1.0;
            self.apply(&e, &mut y);
            e[j] = 0.0;
            for i in 0..n {
                m[(i, j)] = y[i];
            }
        }
        m
    }
}

/// y = K ⊛ x by the network's own convolution ([`conv2d`]: im2col and one matrix product), then
/// the mask.
impl LinearOperator for ConvOperator {
    fn dim(&self) -> usize {
        self.channels * self.h * self.w
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        self.conv
            .apply(&self.kernel, x, &mut y[..self.channels * self.h * self.w]);
        if let Some(m) = &self.mask {
            for (v, d) in y.iter_mut().zip(m) {
                *v *= d;
            }
        }
    }
}
