//! 2-D convolution (cross-correlation, as PyTorch's `Conv2d`) with stride and zero padding:
//!
//! $$ y_{o,i,j} = b_o + \sum_{c,k,l} W_{o,c,k,l}\, x_{c,\, s i - p + k,\, s j - p + l} $$
//!
//! (x = 0 outside the image), H_out = ⌊(H + 2p − K)/s⌋ + 1. Each sample is unfolded (im2col) into
//! a `(C·K·K) × (H_out·W_out)` matrix U, so that Y = W U + b is one matrix product; the backward
//! pass is ∂L/∂W = Σ_samples ∂L/∂Y Uᵀ, ∂L/∂b = row sums, ∂L/∂U = Wᵀ ∂L/∂Y folded back (col2im).

use super::{chunked_backward, torch_uniform, Back, Ctx, Layer, Param, Real, Shape};
use crate::error::{Error, Result};
use crate::tensor::real::{rm, rm_mut};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Output planes smaller than this many positions are computed for a chunk's samples side by
/// side in one matrix product.
const SIDE_BY_SIDE: usize = 128;

/// A 2-D convolution with square kernels. Parameters `weight` `[C_out, C_in, K, K]`, `bias` `[C_out]`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    pub input: Shape,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// A ReLU fused onto the output (y = max(K ⊛ x + b, 0)): one pass over the activations
    /// fewer each way than a separate [`Relu`](super::Relu) layer.
    pub relu: bool,
    output: Shape,
    /// For small output planes: per entry of U, the input index it copies (`u32::MAX`: padding),
    /// so that unfolding is one gather instead of many short row copies.
    gather: Vec<u32>,
}

impl Conv2d {
    /// The same convolution with a fused ReLU.
    pub fn with_relu(mut self) -> Self {
        self.relu = true;
        self
    }

    pub fn new(
        input: Shape,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        if out_channels == 0 || kernel == 0 || stride == 0 || input.is_empty() {
            return Err(Error::invalid(
                "conv",
                format!(
                    "input {input}, {out_channels} channels, kernel {kernel}, stride {stride}: sizes must be positive"
                ),
            ));
        }
        let span = |n: usize| {
            (n + 2 * padding)
                .checked_sub(kernel)
                .map(|d| d / stride + 1)
        };
        let (Some(h), Some(w)) = (span(input.h), span(input.w)) else {
            return Err(Error::invalid(
                "conv",
                format!(
                    "kernel {kernel} is larger than the padded input {input} (padding {padding})"
                ),
            ));
        };
        let mut conv = Conv2d {
            input,
            out_channels,
            kernel,
            stride,
            padding,
            relu: false,
            output: Shape::new(out_channels, h, w),
            gather: vec![],
        };
        if h * w < SIDE_BY_SIDE {
            // The unfolding of the input whose entry i holds i: the gather table.
            let (n, cols) = (input.len(), h * w);
            crate::memory::check("conv", (conv.rows() * cols) as u128 * 12, None)?;
            let ids: Vec<f64> = (0..n).map(|i| i as f64 + 1.0).collect();
            let mut u = vec![0.0f64; conv.rows() * cols];
            conv.im2col(&ids, &mut u, cols, 0);
            conv.gather = u
                .iter()
                .map(|&v| if v == 0.0 { u32::MAX } else { v as u32 - 1 })
                .collect();
        }
        Ok(conv)
    }

    fn rows(&self) -> usize {
        self.input.c * self.kernel * self.kernel
    }

    /// One sample without bias, `y = K ⊛ x` (`weight` `[C_out, C_in, K, K]`, `x` the input shape,
    /// `y` the output shape): the layer's own unfolding and matrix product, for the f64 analyses
    /// that must run the convolution the network was trained with (CordsNet's flow, its JVP and
    /// its spectra operator). Large outputs are split into fixed blocks of output positions
    /// computed in parallel: each output is one dot product over C_in·K·K in a fixed order, so the
    /// bits do not depend on the thread count.
    pub fn apply<F: Real>(&self, weight: &[F], x: &[F], y: &mut [F]) {
        const BLOCK: usize = 512;
        let (m, r, cols) = (self.out_channels, self.rows(), self.output.plane());
        let w = rm(weight, m, r);
        let mut u = vec![F::zero(); r * cols];
        self.im2col(x, &mut u, cols, 0);
        if cols <= BLOCK {
            // Few output positions: blocks of output channels in parallel when the product is
            // large enough to pay for it (each row is still one dot product per position).
            const ROWS: usize = 128;
            if m > ROWS && m * r * cols > 1 << 20 {
                let u = rm(&u, r, cols);
                y[..m * cols]
                    .par_chunks_mut(ROWS * cols)
                    .enumerate()
                    .for_each(|(k, yb)| {
                        let rows = yb.len() / cols;
                        F::matmul(rm_mut(yb, rows, cols), false, w.subrows(k * ROWS, rows), u);
                    });
            } else {
                F::matmul(rm_mut(y, m, cols), false, w, rm(&u, r, cols));
            }
            return;
        }
        let blocks: Vec<Vec<F>> = (0..cols.div_ceil(BLOCK))
            .into_par_iter()
            .map(|k| {
                let (c0, len) = (k * BLOCK, BLOCK.min(cols - k * BLOCK));
                let mut yb = vec![F::zero(); m * len];
                F::matmul(
                    rm_mut(&mut yb, m, len),
                    false,
                    w,
                    rm(&u, r, cols).subcols(c0, len),
                );
                yb
            })
            .collect();
        for (k, yb) in blocks.iter().enumerate() {
            let (c0, len) = (k * BLOCK, BLOCK.min(cols - k * BLOCK));
            for (o, row) in yb.chunks(len).enumerate() {
                y[o * cols + c0..][..len].copy_from_slice(row);
            }
        }
    }

    /// U (row-major `(C·K·K) × (H_out·W_out)`) of one sample, written at column `off` of rows
    /// `ld` long (several samples side by side: ld = n·H_out·W_out).
    fn im2col<F: Real>(&self, x: &[F], u: &mut [F], ld: usize, off: usize) {
        let cols = self.output.plane();
        if !self.gather.is_empty() {
            for (row, idx) in self.gather.chunks(cols).enumerate() {
                for (d, &i) in u[row * ld + off..][..cols].iter_mut().zip(idx) {
                    *d = if i == u32::MAX {
                        F::zero()
                    } else {
                        x[i as usize]
                    };
                }
            }
            return;
        }
        let (k, s, p) = (self.kernel, self.stride, self.padding as isize);
        let (ho, wo) = (self.output.h, self.output.w);
        let (h, w) = (self.input.h as isize, self.input.w as isize);
        let cols = ho * wo;
        for c in 0..self.input.c {
            let xc = &x[c * self.input.plane()..(c + 1) * self.input.plane()];
            for ki in 0..k {
                for kj in 0..k {
                    let row = &mut u[((c * k + ki) * k + kj) * ld + off..][..cols];
                    let (lo, hi) = self.valid(kj, w as usize, wo);
                    for oi in 0..ho {
                        let ii = (oi * s) as isize - p + ki as isize;
                        let dst = &mut row[oi * wo..(oi + 1) * wo];
                        if ii < 0 || ii >= h || lo >= hi {
                            dst.fill(F::zero());
                            continue;
                        }
                        let src = &xc[ii as usize * w as usize..][..w as usize];
                        dst[..lo].fill(F::zero());
                        dst[hi..].fill(F::zero());
                        // jj = oj·s − p + kj ≥ 0 on [lo, hi).
                        let j0 = (lo * s) as isize - p + kj as isize;
                        if s == 1 {
                            dst[lo..hi].copy_from_slice(&src[j0 as usize..][..hi - lo]);
                        } else {
                            for (d, jj) in dst[lo..hi].iter_mut().zip((j0 as usize..).step_by(s)) {
                                *d = src[jj];
                            }
                        }
                    }
                }
            }
        }
    }

    /// The output columns oj whose input column oj·s − p + kj lies inside [0, w): [lo, hi).
    fn valid(&self, kj: usize, w: usize, wo: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.padding);
        let lo = if kj >= p { 0 } else { (p - kj).div_ceil(s) };
        // oj·s + kj − p ≤ w − 1
        let hi = if w + p > kj {
            ((w + p - kj - 1) / s + 1).min(wo)
        } else {
            0
        };
        (lo.min(wo), hi.max(lo.min(wo)))
    }

    /// dx += fold(dU) (the adjoint of [`Conv2d::im2col`], same `ld`, `off`).
    fn col2im<F: Real>(&self, du: &[F], dx: &mut [F], ld: usize, off: usize) {
        let cols = self.output.plane();
        if !self.gather.is_empty() {
            for (row, idx) in self.gather.chunks(cols).enumerate() {
                for (v, &i) in du[row * ld + off..][..cols].iter().zip(idx) {
                    if i != u32::MAX {
                        dx[i as usize] += *v;
                    }
                }
            }
            return;
        }
        let (k, s, p) = (self.kernel, self.stride, self.padding as isize);
        let (ho, wo) = (self.output.h, self.output.w);
        let (h, w) = (self.input.h as isize, self.input.w as isize);
        let cols = ho * wo;
        for c in 0..self.input.c {
            let xc = &mut dx[c * self.input.plane()..(c + 1) * self.input.plane()];
            for ki in 0..k {
                for kj in 0..k {
                    let row = &du[((c * k + ki) * k + kj) * ld + off..][..cols];
                    let (lo, hi) = self.valid(kj, w as usize, wo);
                    if lo >= hi {
                        continue;
                    }
                    let j0 = (lo * s) as isize - p + kj as isize;
                    for oi in 0..ho {
                        let ii = (oi * s) as isize - p + ki as isize;
                        if ii < 0 || ii >= h {
                            continue;
                        }
                        let dst = &mut xc[ii as usize * w as usize..][..w as usize];
                        let src = &row[oi * wo + lo..oi * wo + hi];
                        if s == 1 {
                            for (d, v) in dst[j0 as usize..][..hi - lo].iter_mut().zip(src) {
                                *d += *v;
                            }
                        } else {
                            for (v, jj) in src.iter().zip((j0 as usize..).step_by(s)) {
                                dst[jj] += *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<F: Real> Layer<F> for Conv2d {
    fn kind(&self) -> &'static str {
        "conv"
    }
    fn in_shape(&self) -> Shape {
        self.input
    }
    fn out_shape(&self) -> Shape {
        self.output
    }
    fn params(&self) -> Vec<Param> {
        vec![
            Param::new(
                "weight",
                &[self.out_channels, self.input.c, self.kernel, self.kernel],
                true,
            ),
            Param::new("bias", &[self.out_channels], true),
        ]
    }
    fn init(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        torch_uniform(p, self.rows(), rng);
    }
    fn flops(&self) -> usize {
        self.out_channels * self.rows() * self.output.plane()
    }

    fn forward(&self, p: &mut [F], x: &[F], y: &mut [F], b: usize, _ctx: &mut Ctx<F>) {
        let (m, r, cols) = (self.out_channels, self.rows(), self.output.plane());
        let (n_in, n_out) = (self.input.len(), self.output.len());
        let (w, bias) = p.split_at(m * r);
        let w = rm(w, m, r);
        y[..b * n_out]
            .par_chunks_mut(super::CHUNK * n_out)
            .enumerate()
            .for_each(|(ci, yc)| {
                // Small planes: the chunk's samples side by side in one product (one call of
                // m × r × n·cols instead of n calls too small to reach the matrix kernel's speed).
                let n = if cols < SIDE_BY_SIDE {
                    yc.len() / n_out
                } else {
                    1
                };
                let ld = n * cols;
                let mut u = vec![F::zero(); r * ld];
                let mut yb = vec![F::zero(); if n > 1 { m * ld } else { 0 }];
                for (g, yg) in yc.chunks_mut(n * n_out).enumerate() {
                    for k in 0..yg.len() / n_out {
                        let s = ci * super::CHUNK + g * n + k;
                        self.im2col(&x[s * n_in..(s + 1) * n_in], &mut u, ld, k * cols);
                    }
                    if n == 1 {
                        F::matmul(rm_mut(yg, m, cols), false, w, rm(&u, r, cols));
                    } else {
                        F::matmul(rm_mut(&mut yb, m, ld), false, w, rm(&u, r, ld));
                        for (k, ys) in yg.chunks_mut(n_out).enumerate() {
                            for (o, row) in ys.chunks_mut(cols).enumerate() {
                                row.copy_from_slice(&yb[o * ld + k * cols..][..cols]);
                            }
                        }
                    }
                    for ys in yg.chunks_mut(n_out) {
                        for (o, row) in ys.chunks_mut(cols).enumerate() {
                            if self.relu {
                                for v in row {
                                    *v = (*v + bias[o]).max(F::zero());
                                }
                            } else {
                                for v in row {
                                    *v += bias[o];
                                }
                            }
                        }
                    }
                }
            });
    }

    fn backward(&self, p: &[F], d: Back<F>, _ctx: &Ctx<F>) {
        let Back { x, y, dy, dx, g, b } = d;
        let (m, r, cols) = (self.out_channels, self.rows(), self.output.plane());
        let (n_in, n_out) = (self.input.len(), self.output.len());
        let w = rm(&p[..m * r], m, r);
        let plen = m * r + m;
        let work = |(b0, b1): (usize, usize), mut dxc: Option<&mut [F]>| -> Vec<F> {
            let mut part = vec![F::zero(); plen];
            // Small planes: the chunk's samples side by side, as in the forward pass.
            let n = if cols < SIDE_BY_SIDE { b1 - b0 } else { 1 };
            let ld = n * cols;
            let mut u = vec![F::zero(); r * ld];
            let mut du = vec![F::zero(); r * ld];
            let mut dyb = vec![F::zero(); m * ld];
            for g0 in (b0..b1).step_by(n) {
                let g1 = (g0 + n).min(b1);
                for s in g0..g1 {
                    let k = s - g0;
                    let dys = &dy[s * n_out..(s + 1) * n_out];
                    let ys = &y[if self.relu { s * n_out } else { 0 }..]
                        [..if self.relu { n_out } else { 0 }];
                    for o in 0..m {
                        let dst = &mut dyb[o * ld + k * cols..][..cols];
                        let src = &dys[o * cols..(o + 1) * cols];
                        if self.relu {
                            // relu'(0) = 0: through the fused ReLU only where the output is positive.
                            let yo = &ys[o * cols..(o + 1) * cols];
                            for ((d, g), yv) in dst.iter_mut().zip(src).zip(yo) {
                                *d = if *yv > F::zero() { *g } else { F::zero() };
                            }
                        } else {
                            dst.copy_from_slice(src);
                        }
                    }
                    self.im2col(&x[s * n_in..(s + 1) * n_in], &mut u, ld, k * cols);
                }
                let used = (g1 - g0) * cols;
                if used < ld {
                    // A short last group: clear the columns of absent samples.
                    for row in dyb.chunks_mut(ld) {
                        row[used..].fill(F::zero());
                    }
                    for row in u.chunks_mut(ld) {
                        row[used..].fill(F::zero());
                    }
                }
                // ∂L/∂W += ∂L/∂Y Uᵀ
                F::matmul(
                    rm_mut(&mut part[..m * r], m, r),
                    true,
                    rm(&dyb, m, ld),
                    rm(&u, r, ld).transpose(),
                );
                for (o, row) in dyb.chunks(ld).enumerate() {
                    part[m * r + o] += row.iter().copied().sum::<F>();
                }
                if let Some(dxc) = dxc.as_deref_mut() {
                    F::matmul(
                        rm_mut(&mut du, r, ld),
                        false,
                        w.transpose(),
                        rm(&dyb, m, ld),
                    );
                    for s in g0..g1 {
                        let dxs = &mut dxc[(s - b0) * n_in..(s - b0 + 1) * n_in];
                        dxs.fill(F::zero());
                        self.col2im(&du, dxs, ld, (s - g0) * cols);
                    }
                }
            }
            part
        };
        chunked_backward(b, n_in, dx, g, work);
    }
}
