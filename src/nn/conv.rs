//! 2-D convolution (cross-correlation, as PyTorch's `Conv2d`) with stride and zero padding:
//!
//! $$ y_{o,i,j} = b_o + \sum_{c,k,l} W_{o,c,k,l}\, x_{c,\, s i - p + k,\, s j - p + l} $$
//!
//! (x = 0 outside the image), H_out = ⌊(H + 2p − K)/s⌋ + 1. Each sample is unfolded (im2col) into
//! a `(C·K·K) × (H_out·W_out)` matrix U, so that Y = W U + b is one matrix product; the backward
//! pass is ∂L/∂W = Σ_samples ∂L/∂Y Uᵀ, ∂L/∂b = row sums, ∂L/∂U = Wᵀ ∂L/∂Y folded back (col2im).

use super::{chunked_backward, torch_uniform, Ctx, Layer, Param, Real, Shape};
use crate::error::{Error, Result};
use crate::train::real::{rm, rm_mut};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

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
        Ok(Conv2d {
            input,
            out_channels,
            kernel,
            stride,
            padding,
            relu: false,
            output: Shape::new(out_channels, h, w),
        })
    }

    fn rows(&self) -> usize {
        self.input.c * self.kernel * self.kernel
    }

    /// U (row-major `(C·K·K) × (H_out·W_out)`) of one sample.
    fn im2col<F: Real>(&self, x: &[F], u: &mut [F]) {
        let (k, s, p) = (self.kernel, self.stride, self.padding as isize);
        let (ho, wo) = (self.output.h, self.output.w);
        let (h, w) = (self.input.h as isize, self.input.w as isize);
        let cols = ho * wo;
        for c in 0..self.input.c {
            let xc = &x[c * self.input.plane()..(c + 1) * self.input.plane()];
            for ki in 0..k {
                for kj in 0..k {
                    let row = &mut u[((c * k + ki) * k + kj) * cols..][..cols];
                    for oi in 0..ho {
                        let ii = (oi * s) as isize - p + ki as isize;
                        let dst = &mut row[oi * wo..(oi + 1) * wo];
                        if ii < 0 || ii >= h {
                            dst.fill(F::zero());
                            continue;
                        }
                        let src = &xc[ii as usize * w as usize..][..w as usize];
                        for (oj, d) in dst.iter_mut().enumerate() {
                            let jj = (oj * s) as isize - p + kj as isize;
                            *d = if jj < 0 || jj >= w {
                                F::zero()
                            } else {
                                src[jj as usize]
                            };
                        }
                    }
                }
            }
        }
    }

    /// dx += fold(dU) (the adjoint of [`Conv2d::im2col`]).
    fn col2im<F: Real>(&self, du: &[F], dx: &mut [F]) {
        let (k, s, p) = (self.kernel, self.stride, self.padding as isize);
        let (ho, wo) = (self.output.h, self.output.w);
        let (h, w) = (self.input.h as isize, self.input.w as isize);
        let cols = ho * wo;
        for c in 0..self.input.c {
            let xc = &mut dx[c * self.input.plane()..(c + 1) * self.input.plane()];
            for ki in 0..k {
                for kj in 0..k {
                    let row = &du[((c * k + ki) * k + kj) * cols..][..cols];
                    for oi in 0..ho {
                        let ii = (oi * s) as isize - p + ki as isize;
                        if ii < 0 || ii >= h {
                            continue;
                        }
                        let dst = &mut xc[ii as usize * w as usize..][..w as usize];
                        for (oj, v) in row[oi * wo..(oi + 1) * wo].iter().enumerate() {
                            let jj = (oj * s) as isize - p + kj as isize;
                            if jj >= 0 && jj < w {
                                dst[jj as usize] += *v;
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
                let mut u = vec![F::zero(); r * cols];
                for (k, ys) in yc.chunks_mut(n_out).enumerate() {
                    let s = ci * super::CHUNK + k;
                    self.im2col(&x[s * n_in..(s + 1) * n_in], &mut u);
                    F::matmul(rm_mut(ys, m, cols), false, w, rm(&u, r, cols));
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
            });
    }

    fn backward(
        &self,
        p: &[F],
        x: &[F],
        y: &[F],
        dy: &[F],
        dx: Option<&mut [F]>,
        g: &mut [F],
        b: usize,
        _ctx: &Ctx<F>,
    ) {
        let (m, r, cols) = (self.out_channels, self.rows(), self.output.plane());
        let (n_in, n_out) = (self.input.len(), self.output.len());
        let w = rm(&p[..m * r], m, r);
        let plen = m * r + m;
        let work = |(b0, b1): (usize, usize), mut dxc: Option<&mut [F]>| -> Vec<F> {
            let mut part = vec![F::zero(); plen];
            let mut u = vec![F::zero(); r * cols];
            let mut du = vec![F::zero(); r * cols];
            let mut masked = vec![F::zero(); if self.relu { n_out } else { 0 }];
            for s in b0..b1 {
                let mut dys = &dy[s * n_out..(s + 1) * n_out];
                if self.relu {
                    // relu'(0) = 0: through the fused ReLU only where the output is positive.
                    let ys = &y[s * n_out..(s + 1) * n_out];
                    for ((d, g), yv) in masked.iter_mut().zip(dys).zip(ys) {
                        *d = if *yv > F::zero() { *g } else { F::zero() };
                    }
                    dys = &masked;
                }
                self.im2col(&x[s * n_in..(s + 1) * n_in], &mut u);
                // ∂L/∂W += ∂L/∂Y Uᵀ
                F::matmul(
                    rm_mut(&mut part[..m * r], m, r),
                    true,
                    rm(dys, m, cols),
                    rm(&u, r, cols).transpose(),
                );
                for (o, row) in dys.chunks(cols).enumerate() {
                    part[m * r + o] += row.iter().copied().sum::<F>();
                }
                if let Some(dxc) = dxc.as_deref_mut() {
                    F::matmul(
                        rm_mut(&mut du, r, cols),
                        false,
                        w.transpose(),
                        rm(dys, m, cols),
                    );
                    let dxs = &mut dxc[(s - b0) * n_in..(s - b0 + 1) * n_in];
                    dxs.fill(F::zero());
                    self.col2im(&du, dxs);
                }
            }
            part
        };
        chunked_backward(b, n_in, dx, g, work);
    }
}
