//! ReLU, fully connected, dropout and batch normalization layers.
//!
//! - [`Relu`]: y = max(x, 0), with relu′(0) = 0 (PyTorch's convention).
//! - [`Linear`]: y = W x + b on the flattened sample (`weight` `[out, in]`, `bias` `[out]`).
//! - [`Dropout`]: in training, y = m ⊙ x / (1 − p) with m ~ Bernoulli(1 − p), drawn from the
//!   pass's seed (reproducible); identity in evaluation.
//! - [`BatchNorm2d`] (Ioffe & Szegedy 2015): per channel, x̂ = (x − μ)/√(σ² + ε), y = γ x̂ + β,
//!   with the batch's mean and biased variance over (batch, height, width) in training and the
//!   running statistics in evaluation; the running statistics move by `momentum` (0.1) towards
//!   the batch mean and the unbiased batch variance, as PyTorch's. Backward (training):
//!   ∂L/∂x = γ/(M √(σ² + ε)) (M ∂L/∂y − Σ ∂L/∂y − x̂ Σ ∂L/∂y x̂), M = batch × H × W.

use super::{torch_uniform, Back, Ctx, Layer, Param, Real, Shape};
use crate::error::{Error, Result};
use crate::tensor::real::{rm, rm_mut};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rectified linear unit.
#[derive(Debug, Clone)]
pub struct Relu {
    pub shape: Shape,
}

impl<F: Real> Layer<F> for Relu {
    fn kind(&self) -> &'static str {
        "relu"
    }
    fn in_shape(&self) -> Shape {
        self.shape
    }
    fn forward(&self, _p: &mut [F], x: &[F], y: &mut [F], b: usize, _ctx: &mut Ctx<F>) {
        let n = b * self.shape.len();
        y[..n]
            .par_chunks_mut(1 << 14)
            .zip(x[..n].par_chunks(1 << 14))
            .for_each(|(yc, xc)| {
                for (yv, xv) in yc.iter_mut().zip(xc) {
                    *yv = if *xv > F::zero() { *xv } else { F::zero() };
                }
            });
    }
    fn backward(&self, _p: &[F], d: Back<F>, _ctx: &Ctx<F>) {
        let Back { x, dy, dx, b, .. } = d;
        let Some(dx) = dx else { return };
        let n = b * self.shape.len();
        dx[..n]
            .par_chunks_mut(1 << 14)
            .zip(x[..n].par_chunks(1 << 14).zip(dy[..n].par_chunks(1 << 14)))
            .for_each(|(dc, (xc, gc))| {
                for ((d, xv), g) in dc.iter_mut().zip(xc).zip(gc) {
                    *d = if *xv > F::zero() { *g } else { F::zero() };
                }
            });
    }
}

/// Fully connected layer on the flattened sample.
#[derive(Debug, Clone)]
pub struct Linear {
    pub input: Shape,
    pub out: usize,
}

impl Linear {
    pub fn new(input: Shape, out: usize) -> Result<Self> {
        if out == 0 || input.is_empty() {
            return Err(Error::invalid(
                "linear",
                "input and output sizes must be positive",
            ));
        }
        Ok(Linear { input, out })
    }
}

impl<F: Real> Layer<F> for Linear {
    fn kind(&self) -> &'static str {
        "linear"
    }
    fn in_shape(&self) -> Shape {
        self.input
    }
    fn out_shape(&self) -> Shape {
        Shape::new(self.out, 1, 1)
    }
    fn params(&self) -> Vec<Param> {
        vec![
            Param::new("weight", &[self.out, self.input.len()], true),
            Param::new("bias", &[self.out], true),
        ]
    }
    fn init(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        torch_uniform(p, self.input.len(), rng);
    }
    fn flops(&self) -> usize {
        self.out * self.input.len()
    }
    fn forward(&self, p: &mut [F], x: &[F], y: &mut [F], b: usize, _ctx: &mut Ctx<F>) {
        let (n, m) = (self.input.len(), self.out);
        let (w, bias) = p.split_at(m * n);
        F::matmul(rm_mut(y, b, m), false, rm(x, b, n), rm(w, m, n).transpose());
        for row in y[..b * m].chunks_mut(m) {
            for (v, bb) in row.iter_mut().zip(bias) {
                *v += *bb;
            }
        }
    }
    fn backward(&self, p: &[F], d: Back<F>, _ctx: &Ctx<F>) {
        let Back {
            x, dy, dx, g, b, ..
        } = d;
        let (n, m) = (self.input.len(), self.out);
        let (gw, gb) = g.split_at_mut(m * n);
        F::matmul(
            rm_mut(gw, m, n),
            true,
            rm(dy, b, m).transpose(),
            rm(x, b, n),
        );
        for row in dy[..b * m].chunks(m) {
            for (a, v) in gb.iter_mut().zip(row) {
                *a += *v;
            }
        }
        if let Some(dx) = dx {
            F::matmul(rm_mut(dx, b, n), false, rm(dy, b, m), rm(&p[..m * n], m, n));
        }
    }
}

/// Dropout with drop probability `p`.
#[derive(Debug, Clone)]
pub struct Dropout {
    pub shape: Shape,
    pub p: f64,
}

impl Dropout {
    pub fn new(shape: Shape, p: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "dropout",
                format!("{p}: the drop probability must be in [0, 1)"),
            ));
        }
        Ok(Dropout { shape, p })
    }
}

impl<F: Real> Layer<F> for Dropout {
    fn kind(&self) -> &'static str {
        "dropout"
    }
    fn in_shape(&self) -> Shape {
        self.shape
    }
    fn forward(&self, _p: &mut [F], x: &[F], y: &mut [F], b: usize, ctx: &mut Ctx<F>) {
        let n = b * self.shape.len();
        if !ctx.train || self.p == 0.0 {
            y[..n].copy_from_slice(&x[..n]);
            ctx.f.clear();
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
        let keep = F::c(1.0 / (1.0 - self.p));
        ctx.f.resize(n, F::zero());
        for k in 0..n {
            let m = if rng.random::<f64>() < self.p {
                F::zero()
            } else {
                keep
            };
            ctx.f[k] = m;
            y[k] = x[k] * m;
        }
    }
    fn backward(&self, _p: &[F], d: Back<F>, ctx: &Ctx<F>) {
        let Back { dy, dx, b, .. } = d;
        let Some(dx) = dx else { return };
        let n = b * self.shape.len();
        if ctx.f.is_empty() {
            dx[..n].copy_from_slice(&dy[..n]);
        } else {
            for k in 0..n {
                dx[k] = dy[k] * ctx.f[k];
            }
        }
    }
}

/// Batch normalization over channels. Parameters `weight` (γ), `bias` (β) `[C]`; buffers
/// `running_mean`, `running_var` `[C]`.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    pub shape: Shape,
    pub eps: f64,
    pub momentum: f64,
}

impl BatchNorm2d {
    pub fn new(shape: Shape) -> Self {
        BatchNorm2d {
            shape,
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// Σ f(v) over `xs` in 8 interleaved partial sums (no serial dependency chain: vectorisable).
#[inline]
fn lanes<F: Real>(xs: &[F], f: impl Fn(F) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut it = xs.chunks_exact(8);
    for c in &mut it {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f(*v);
        }
    }
    let tail: f64 = it.remainder().iter().map(|v| f(*v)).sum();
    acc.iter().sum::<f64>() + tail
}

/// Σ f(a_k, b_k) in 8 interleaved partial sums.
#[inline]
fn lanes2<F: Real>(a: &[F], b: &[F], f: impl Fn(F, F) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += f(x[k], y[k]);
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| f(*x, *y)).sum();
    acc.iter().sum::<f64>() + tail
}

impl<F: Real> Layer<F> for BatchNorm2d {
    fn kind(&self) -> &'static str {
        "batchnorm"
    }
    fn in_shape(&self) -> Shape {
        self.shape
    }
    fn params(&self) -> Vec<Param> {
        let c = self.shape.c;
        vec![
            Param::new("weight", &[c], true),
            Param::new("bias", &[c], true),
            Param::new("running_mean", &[c], false),
            Param::new("running_var", &[c], false),
        ]
    }
    fn init(&self, p: &mut [F], _rng: &mut ChaCha8Rng) {
        let c = self.shape.c;
        p[..c].fill(F::one());
        p[c..3 * c].fill(F::zero());
        p[3 * c..4 * c].fill(F::one());
    }
    fn forward(&self, p: &mut [F], x: &[F], y: &mut [F], b: usize, ctx: &mut Ctx<F>) {
        let (c, pl, len) = (self.shape.c, self.shape.plane(), self.shape.len());
        let m = (b * pl) as f64;
        // Per channel: (mean, 1/√(var + ε)) of the batch (training) or the running statistics.
        let stats: Vec<(F, F)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                if !ctx.train {
                    let var = p[3 * c + ch];
                    return (p[2 * c + ch], F::one() / (var + F::c(self.eps)).sqrt());
                }
                let mut s = 0.0;
                for n in 0..b {
                    s += lanes(&x[n * len + ch * pl..][..pl], |v| v.f());
                }
                let mean = s / m;
                let mut ss = 0.0;
                for n in 0..b {
                    ss += lanes(&x[n * len + ch * pl..][..pl], |v| (v.f() - mean).powi(2));
                }
                (F::c(mean), F::c(1.0 / (ss / m + self.eps).sqrt()))
            })
            .collect();
        if ctx.train {
            let mo = self.momentum;
            for (ch, &(mean, inv)) in stats.iter().enumerate() {
                let var = 1.0 / inv.f().powi(2) - self.eps;
                let unbiased = if m > 1.0 { var * m / (m - 1.0) } else { var };
                p[2 * c + ch] = F::c((1.0 - mo) * p[2 * c + ch].f() + mo * mean.f());
                p[3 * c + ch] = F::c((1.0 - mo) * p[3 * c + ch].f() + mo * unbiased);
            }
        }
        ctx.f.clear();
        ctx.f.extend(stats.iter().flat_map(|&(a, b)| [a, b]));
        let (gamma, beta) = (&p[..c], &p[c..2 * c]);
        y[..b * len]
            .par_chunks_mut(len)
            .zip(x[..b * len].par_chunks(len))
            .for_each(|(ys, xs)| {
                for ch in 0..c {
                    let (mean, inv) = stats[ch];
                    for k in ch * pl..(ch + 1) * pl {
                        ys[k] = gamma[ch] * (xs[k] - mean) * inv + beta[ch];
                    }
                }
            });
    }
    fn backward(&self, p: &[F], d: Back<F>, ctx: &Ctx<F>) {
        let Back {
            x, dy, dx, g, b, ..
        } = d;
        let (c, pl, len) = (self.shape.c, self.shape.plane(), self.shape.len());
        let m = (b * pl) as f64;
        // Per channel: Σ ∂L/∂y, Σ ∂L/∂y x̂.
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, inv) = (ctx.f[2 * ch], ctx.f[2 * ch + 1]);
                let (mut s, mut sx) = (0.0, 0.0);
                for n in 0..b {
                    let o = n * len + ch * pl;
                    s += lanes(&dy[o..o + pl], |v| v.f());
                    sx += lanes2(&dy[o..o + pl], &x[o..o + pl], |d, xv| {
                        (d * (xv - mean) * inv).f()
                    });
                }
                (s, sx)
            })
            .collect();
        for (ch, &(s, sx)) in sums.iter().enumerate() {
            g[ch] += F::c(sx);
            g[c + ch] += F::c(s);
        }
        let Some(dx) = dx else { return };
        let gamma = &p[..c];
        let train = ctx.train;
        dx[..b * len]
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(n, dxs)| {
                for ch in 0..c {
                    let (mean, inv) = (ctx.f[2 * ch], ctx.f[2 * ch + 1]);
                    let (s, sx) = (F::c(sums[ch].0 / m), F::c(sums[ch].1 / m));
                    let o = n * len + ch * pl;
                    for k in 0..pl {
                        let d = dy[o + k];
                        dxs[ch * pl + k] = if train {
                            let xh = (x[o + k] - mean) * inv;
                            gamma[ch] * inv * (d - s - xh * sx)
                        } else {
                            gamma[ch] * inv * d
                        };
                    }
                }
            });
    }
}
