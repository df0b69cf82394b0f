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
use rayon::prelude::*;

/// K ⊛_{s,p} x for x `[cin, n, n]`, K `[cout, cin, k, k]`; returns (y `[cout, m, m]`, m).
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
    let m = out_size(n, k, stride, pad);
    let mut y = vec![0.0; cout * m * m];
    y.par_chunks_mut(m * m).enumerate().for_each(|(o, yo)| {
        for c in 0..cin {
            let xc = &x[c * n * n..(c + 1) * n * n];
            for ki in 0..k {
                for kj in 0..k {
                    let w = kernel[((o * cin + c) * k + ki) * k + kj];
                    if w == 0.0 {
                        continue;
                    }
                    for i in 0..m {
                        let ii = (stride * i + ki) as isize - pad as isize;
                        if ii < 0 || ii >= n as isize {
                            continue;
                        }
                        let row = &xc[ii as usize * n..(ii as usize + 1) * n];
                        let yr = &mut yo[i * m..(i + 1) * m];
                        for (j, yv) in yr.iter_mut().enumerate() {
                            let jj = (stride * j + kj) as isize - pad as isize;
                            if jj >= 0 && jj < n as isize {
                                *yv += w * row[jj as usize];
                            }
                        }
                    }
                }
            }
        }
    });
    (y, m)
}

/// AvgPool 3×3, stride 2, padding 1, always divided by 9 (count_include_pad); returns (y, m).
pub fn avg_pool_3_2_1(x: &[f64], c: usize, n: usize) -> (Vec<f64>, usize) {
    let m = out_size(n, 3, 2, 1);
    let mut y = vec![0.0; c * m * m];
    for ch in 0..c {
        for i in 0..m {
            for j in 0..m {
                let mut s = 0.0;
                for a in 0..3 {
                    for b in 0..3 {
                        let (ii, jj) = ((2 * i + a) as isize - 1, (2 * j + b) as isize - 1);
                        if ii >= 0 && jj >= 0 && (ii as usize) < n && (jj as usize) < n {
                            s += x[ch * n * n + ii as usize * n + jj as usize];
                        }
                    }
                }
                y[ch * m * m + i * m + j] = s / 9.0;
            }
        }
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
        Ok(ConvOperator {
            channels,
            h,
            w,
            k,
            kernel,
            mask: None,
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

impl ConvOperator {
    /// The unfolded input U `[(C·k·k) × (H·W)]` (row-major) of a stride-1, padding-k/2 conv.
    fn im2col(&self, x: &[f64], u: &mut [f64]) {
        let (h, w, k) = (self.h, self.w, self.k);
        let p = (k / 2) as isize;
        let plane = h * w;
        u.par_chunks_mut(k * k * plane)
            .enumerate()
            .for_each(|(ci, uc)| {
                let xc = &x[ci * plane..(ci + 1) * plane];
                for a in 0..k {
                    for b in 0..k {
                        let row = &mut uc[(a * k + b) * plane..(a * k + b + 1) * plane];
                        let (da, db) = (a as isize - p, b as isize - p);
                        for i in 0..h {
                            let ii = i as isize + da;
                            let dst = &mut row[i * w..(i + 1) * w];
                            if ii < 0 || ii >= h as isize {
                                dst.fill(0.0);
                                continue;
                            }
                            let src = &xc[ii as usize * w..(ii as usize + 1) * w];
                            for (j, d) in dst.iter_mut().enumerate() {
                                let jj = j as isize + db;
                                *d = if jj >= 0 && jj < w as isize {
                                    src[jj as usize]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            });
    }
}

/// y = K ⊛ x as one matrix product Y = K_mat U (im2col; faer's parallel GEMM), then the mask.
impl LinearOperator for ConvOperator {
    fn dim(&self) -> usize {
        self.channels * self.h * self.w
    }
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        let (c, k) = (self.channels, self.k);
        let plane = self.h * self.w;
        let rows = c * k * k;
        let mut u = vec![0.0; rows * plane];
        self.im2col(x, &mut u);
        faer::linalg::matmul::matmul(
            faer::MatMut::from_row_major_slice_mut(&mut y[..c * plane], c, plane),
            faer::Accum::Replace,
            faer::MatRef::from_row_major_slice(&self.kernel, c, rows),
            faer::MatRef::from_row_major_slice(&u, rows, plane),
            1.0,
            faer::Par::rayon(0),
        );
        if let Some(m) = &self.mask {
            for (v, d) in y.iter_mut().zip(m) {
                *v *= d;
            }
        }
    }
}
