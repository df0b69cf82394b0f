//! Spatial pooling as PyTorch defines it (floor mode): H_out = ⌊(H + 2p − K)/s⌋ + 1.
//! Max pooling pads with −∞ and routes the gradient to the first maximum of each window; average
//! pooling pads with zeros and divides by K² (`count_include_pad = true`, PyTorch's default) or by
//! the number of input entries in the window (`false`).

use super::{Back, Ctx, Layer, Real, Shape};
use crate::error::{Error, Result};
use rayon::prelude::*;

fn out_shape(input: Shape, kernel: usize, stride: usize, padding: usize) -> Result<Shape> {
    if kernel == 0 || stride == 0 {
        return Err(Error::invalid("pool", "kernel and stride must be positive"));
    }
    if 2 * padding > kernel {
        return Err(Error::invalid(
            "pool",
            format!("padding {padding} is more than half the kernel {kernel}"),
        ));
    }
    let span = |n: usize| {
        (n + 2 * padding)
            .checked_sub(kernel)
            .map(|d| d / stride + 1)
    };
    match (span(input.h), span(input.w)) {
        (Some(h), Some(w)) => Ok(Shape::new(input.c, h, w)),
        _ => Err(Error::invalid(
            "pool",
            format!("kernel {kernel} is larger than the padded input {input}"),
        )),
    }
}

/// The input rows (or columns) window `o` covers, clipped to the image: `[lo, hi)`.
#[inline]
fn window(o: usize, stride: usize, padding: usize, kernel: usize, n: usize) -> (usize, usize) {
    let start = (o * stride) as isize - padding as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + kernel as isize).min(n as isize)).max(0) as usize;
    (lo, hi)
}

/// Max pooling over K × K windows.
#[derive(Debug, Clone)]
pub struct MaxPool2d {
    pub input: Shape,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    output: Shape,
}

impl MaxPool2d {
    pub fn new(input: Shape, kernel: usize, stride: usize, padding: usize) -> Result<Self> {
        Ok(MaxPool2d {
            output: out_shape(input, kernel, stride, padding)?,
            input,
            kernel,
            stride,
            padding,
        })
    }
}

impl<F: Real> Layer<F> for MaxPool2d {
    fn kind(&self) -> &'static str {
        "maxpool"
    }
    fn in_shape(&self) -> Shape {
        self.input
    }
    fn out_shape(&self) -> Shape {
        self.output
    }
    fn forward(&self, _p: &mut [F], x: &[F], y: &mut [F], b: usize, ctx: &mut Ctx<F>) {
        let (pi, po) = (self.input.plane(), self.output.plane());
        let planes = b * self.input.c;
        ctx.idx.resize(planes * po, 0);
        // Groups of planes per task (a plane is a few µs of work), then per plane: windows fully
        // inside the image (the common case) take the unclipped loop.
        const GROUP: usize = 16;
        let (k, s, p, w) = (self.kernel, self.stride, self.padding, self.input.w);
        y[..planes * po]
            .par_chunks_mut(GROUP * po)
            .zip(ctx.idx[..planes * po].par_chunks_mut(GROUP * po))
            .enumerate()
            .for_each(|(gq, (yg, ig))| {
                for (qq, (yp, ip)) in yg.chunks_mut(po).zip(ig.chunks_mut(po)).enumerate() {
                    let q = gq * GROUP + qq;
                    let xp = &x[q * pi..(q + 1) * pi];
                    for oi in 0..self.output.h {
                        let (r0, r1) = window(oi, s, p, k, self.input.h);
                        for oj in 0..self.output.w {
                            let (c0, c1) = window(oj, s, p, k, w);
                            // Branch-free over the window (the comparisons are data-dependent
                            // and mispredict); a window holding a NaN is redone in order.
                            let mut best = F::neg_infinity();
                            let mut arg = r0 * w + c0;
                            let mut nan = false;
                            for i in r0..r1 {
                                let row = &xp[i * w + c0..i * w + c1];
                                for (jj, &v) in row.iter().enumerate() {
                                    let gt = v > best;
                                    best = if gt { v } else { best };
                                    arg = if gt { i * w + c0 + jj } else { arg };
                                    nan |= v.is_nan();
                                }
                            }
                            if nan {
                                // The first NaN of the window, in row-major order, propagates.
                                'find: for i in r0..r1 {
                                    for j in c0..c1 {
                                        if xp[i * w + j].is_nan() {
                                            best = F::nan();
                                            arg = i * w + j;
                                            break 'find;
                                        }
                                    }
                                }
                            }
                            yp[oi * self.output.w + oj] = best;
                            ip[oi * self.output.w + oj] = arg as u32;
                        }
                    }
                }
            });
    }
    fn backward(&self, _p: &[F], d: Back<F>, ctx: &Ctx<F>) {
        let Back { dy, dx, b, .. } = d;
        let Some(dx) = dx else { return };
        let (pi, po) = (self.input.plane(), self.output.plane());
        let planes = b * self.input.c;
        dx[..planes * pi]
            .par_chunks_mut(pi)
            .enumerate()
            .for_each(|(q, dxp)| {
                dxp.fill(F::zero());
                for k in 0..po {
                    dxp[ctx.idx[q * po + k] as usize] += dy[q * po + k];
                }
            });
    }
}

/// Average pooling over K × K windows.
#[derive(Debug, Clone)]
pub struct AvgPool2d {
    pub input: Shape,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub count_include_pad: bool,
    output: Shape,
}

impl AvgPool2d {
    pub fn new(
        input: Shape,
        kernel: usize,
        stride: usize,
        padding: usize,
        count_include_pad: bool,
    ) -> Result<Self> {
        Ok(AvgPool2d {
            output: out_shape(input, kernel, stride, padding)?,
            input,
            kernel,
            stride,
            padding,
            count_include_pad,
        })
    }

    /// The window of output (oi, oj) and its divisor.
    fn win(&self, oi: usize, oj: usize) -> ((usize, usize), (usize, usize), f64) {
        let r = window(oi, self.stride, self.padding, self.kernel, self.input.h);
        let c = window(oj, self.stride, self.padding, self.kernel, self.input.w);
        let div = if self.count_include_pad {
            (self.kernel * self.kernel) as f64
        } else {
            ((r.1 - r.0) * (c.1 - c.0)).max(1) as f64
        };
        (r, c, div)
    }
}

impl<F: Real> Layer<F> for AvgPool2d {
    fn kind(&self) -> &'static str {
        "avgpool"
    }
    fn in_shape(&self) -> Shape {
        self.input
    }
    fn out_shape(&self) -> Shape {
        self.output
    }
    fn forward(&self, _p: &mut [F], x: &[F], y: &mut [F], b: usize, _ctx: &mut Ctx<F>) {
        let (pi, po) = (self.input.plane(), self.output.plane());
        let w = self.input.w;
        let plane = |(q, yp): (usize, &mut [F])| {
            let xp = &x[q * pi..(q + 1) * pi];
            for oi in 0..self.output.h {
                for oj in 0..self.output.w {
                    let ((r0, r1), (c0, c1), div) = self.win(oi, oj);
                    let mut s = F::zero();
                    for i in r0..r1 {
                        for j in c0..c1 {
                            s += xp[i * w + j];
                        }
                    }
                    yp[oi * self.output.w + oj] = s / F::c(div);
                }
            }
        };
        let y = &mut y[..b * self.input.c * po];
        // Small inputs (one CordsNet stem output): threads would cost more than the sums.
        if x.len().min(b * self.input.c * pi) < 1 << 15 {
            y.chunks_mut(po).enumerate().for_each(plane);
        } else {
            y.par_chunks_mut(po).enumerate().for_each(plane);
        }
    }
    fn backward(&self, _p: &[F], d: Back<F>, _ctx: &Ctx<F>) {
        let Back { dy, dx, b, .. } = d;
        let Some(dx) = dx else { return };
        let (pi, po) = (self.input.plane(), self.output.plane());
        let w = self.input.w;
        dx[..b * self.input.c * pi]
            .par_chunks_mut(pi)
            .enumerate()
            .for_each(|(q, dxp)| {
                dxp.fill(F::zero());
                for oi in 0..self.output.h {
                    for oj in 0..self.output.w {
                        let ((r0, r1), (c0, c1), div) = self.win(oi, oj);
                        let v = dy[q * po + oi * self.output.w + oj] / F::c(div);
                        for i in r0..r1 {
                            for j in c0..c1 {
                                dxp[i * w + j] += v;
                            }
                        }
                    }
                }
            });
    }
}
