//! Divisive normalization across channels, at each spatial position independently (Miller, Shou,
//! Martiniani & Heeger, "Modeling divisive normalization in visual cortex"; Heeger 1992).
//!
//! [`DivNorm`] — contiguous, non-overlapping channel pools k of size 2^⌊p·log₂C⌋ (p = 0.5):
//!
//! $$ y_c = e^{\gamma_k} \frac{|x_c|^P}{|\sigma_k|^P + \sum_{c' \in k} |x_{c'}|^P + \varepsilon} $$
//!
//! with learned γ_k, σ_k per pool (or one shared γ/σ, or fixed), P = 2, ε = 0, γ = σ = 1 at init.
//! [`DivNorm::all_channels`] is the p = 1 variant: one pool of all C channels, scalar γ, σ.
//! With W the block matrix of ones over each pool, b₀ = b₁ = 1 and z = x, y_c = e^{γ_k} ŷ_c² where
//! ŷ is the steady state of the ORGaNICs circuit with W_r = I (Heeger & Mackey 2019).
//!
//! [`MillerNorm`] — the variant after Ken Miller, over a window of ⌈8λ⌉ channels (made odd,
//! zero-padded at the ends):
//!
//! $$ y_c = \frac{x_c^2}{\big(k\,(1 + \tfrac{\alpha}{\lambda} \sum_j x_{c+j}^2 e^{-|j|/\lambda})\big)^\beta} $$
//!
//! with λ, α, β, k learned (λ = 10, α = 0.1, β = 1, k = 10 at init, the study's defaults); the
//! window follows λ at every pass, as in the original.

use super::{chunked_backward, Back, Ctx, Layer, Param, Real, Shape};
use crate::error::{Error, Result};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Options of the pooled divisive-normalization layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DivNormOptions {
    /// Pool size exponent p: pools of 2^⌊p·log₂C⌋ channels.
    pub p: f64,
    /// Power P.
    pub power: f64,
    pub eps: f64,
    /// One γ (σ) for all pools instead of one per pool.
    pub single_gamma: bool,
    pub single_sigma: bool,
    /// Keep γ (σ) at its initial value.
    pub fix_gamma: bool,
    pub fix_sigma: bool,
    /// Initial γ and σ.
    pub gamma: f64,
    pub sigma: f64,
}

impl Default for DivNormOptions {
    fn default() -> Self {
        DivNormOptions {
            p: 0.5,
            power: 2.0,
            eps: 0.0,
            single_gamma: false,
            single_sigma: false,
            fix_gamma: false,
            fix_sigma: false,
            gamma: 1.0,
            sigma: 1.0,
        }
    }
}

/// Pooled divisive normalization. Parameters `gamma`, `sigma` `[pools]` (or `[1]`).
#[derive(Debug, Clone)]
pub struct DivNorm {
    pub shape: Shape,
    /// Channels per pool.
    pub pool: usize,
    pub opts: DivNormOptions,
}

impl DivNorm {
    /// Pools of 2^⌊p·log₂C⌋ channels; C must be a multiple of the pool size.
    pub fn new(shape: Shape, opts: DivNormOptions) -> Result<Self> {
        if !(opts.p >= 0.0 && opts.p <= 1.0) {
            return Err(Error::invalid(
                "divnorm",
                format!("p = {}: must be in [0, 1]", opts.p),
            ));
        }
        let pool = 1usize << ((opts.p * (shape.c as f64).log2()).floor() as u32);
        Self::with_pool(shape, pool, opts)
    }

    /// One pool of all channels with scalar γ and σ (the p = 1 variant).
    pub fn all_channels(shape: Shape, mut opts: DivNormOptions) -> Result<Self> {
        opts.single_gamma = true;
        opts.single_sigma = true;
        opts.p = 1.0;
        Self::with_pool(shape, shape.c, opts)
    }

    fn with_pool(shape: Shape, pool: usize, opts: DivNormOptions) -> Result<Self> {
        if pool == 0 || shape.c % pool != 0 {
            return Err(Error::invalid(
                "divnorm",
                format!("{} channels do not split into pools of {pool}", shape.c),
            ));
        }
        if !(opts.power > 0.0 && opts.power.is_finite()) || !(opts.eps >= 0.0) {
            return Err(Error::invalid(
                "divnorm",
                format!(
                    "power {} must be positive, eps {} ≥ 0",
                    opts.power, opts.eps
                ),
            ));
        }
        Ok(DivNorm { shape, pool, opts })
    }

    pub fn pools(&self) -> usize {
        self.shape.c / self.pool
    }

    fn n_gamma(&self) -> usize {
        if self.opts.single_gamma {
            1
        } else {
            self.pools()
        }
    }
    fn n_sigma(&self) -> usize {
        if self.opts.single_sigma {
            1
        } else {
            self.pools()
        }
    }

    /// |v|^P and its derivative.
    #[inline]
    fn pw<F: Real>(&self, v: F) -> (F, F) {
        if self.opts.power == 2.0 {
            (v * v, v + v)
        } else {
            let pp = F::c(self.opts.power);
            let a = v.abs();
            let u = a.powf(pp);
            let du = if a > F::zero() {
                pp * u / a * v.signum()
            } else {
                F::zero()
            };
            (u, du)
        }
    }
}

impl<F: Real> Layer<F> for DivNorm {
    fn kind(&self) -> &'static str {
        "divnorm"
    }
    fn in_shape(&self) -> Shape {
        self.shape
    }
    fn params(&self) -> Vec<Param> {
        vec![
            Param::new("gamma", &[self.n_gamma()], !self.opts.fix_gamma),
            Param::new("sigma", &[self.n_sigma()], !self.opts.fix_sigma),
        ]
    }
    fn init(&self, p: &mut [F], _rng: &mut ChaCha8Rng) {
        let ng = self.n_gamma();
        p[..ng].fill(F::c(self.opts.gamma));
        p[ng..ng + self.n_sigma()].fill(F::c(self.opts.sigma));
    }
    fn forward(&self, p: &mut [F], x: &[F], y: &mut [F], b: usize, _ctx: &mut Ctx<F>) {
        let (len, pl, ps) = (self.shape.len(), self.shape.plane(), self.pool);
        let ng = self.n_gamma();
        let (gam, sig) = p.split_at(ng);
        let eps = F::c(self.opts.eps);
        y[..b * len]
            .par_chunks_mut(len)
            .zip(x[..b * len].par_chunks(len))
            .for_each_init(
                || vec![F::zero(); pl],
                |d, (ys, xs)| {
                    for k in 0..self.pools() {
                        let eg = gam[k.min(ng - 1)].exp();
                        let sp = self.pw(sig[k.min(sig.len() - 1)]).0;
                        d.fill(sp + eps);
                        // y = |x|^P first, then the pool's sum, then the division: contiguous
                        // passes over each channel's plane.
                        for c in k * ps..(k + 1) * ps {
                            let (yc, xc) =
                                (&mut ys[c * pl..(c + 1) * pl], &xs[c * pl..(c + 1) * pl]);
                            for ((yv, xv), dv) in yc.iter_mut().zip(xc).zip(d.iter_mut()) {
                                *yv = self.pw(*xv).0;
                                *dv += *yv;
                            }
                        }
                        for c in k * ps..(k + 1) * ps {
                            for (yv, dv) in ys[c * pl..(c + 1) * pl].iter_mut().zip(d.iter()) {
                                *yv = eg * *yv / *dv;
                            }
                        }
                    }
                },
            );
    }
    fn backward(&self, p: &[F], d: Back<F>, _ctx: &Ctx<F>) {
        let Back {
            x, dy, dx, g, b, ..
        } = d;
        let (len, pl, ps) = (self.shape.len(), self.shape.plane(), self.pool);
        let (ng, ns) = (self.n_gamma(), self.n_sigma());
        let (gam, sig) = p.split_at(ng);
        let eps = F::c(self.opts.eps);
        let work = |(b0, b1): (usize, usize), mut dxc: Option<&mut [F]>| -> Vec<F> {
            let mut part = vec![F::zero(); ng + ns];
            let (mut d, mut sum) = (vec![F::zero(); pl], vec![F::zero(); pl]);
            for s in b0..b1 {
                let xs = &x[s * len..(s + 1) * len];
                let dys = &dy[s * len..(s + 1) * len];
                for k in 0..self.pools() {
                    let (kg, ks) = (k.min(ng - 1), k.min(ns - 1));
                    let eg = gam[kg].exp();
                    let (sp, dsp) = self.pw(sig[ks]);
                    d.fill(sp + eps);
                    sum.fill(F::zero());
                    for c in k * ps..(k + 1) * ps {
                        for (dv, xv) in d.iter_mut().zip(&xs[c * pl..(c + 1) * pl]) {
                            *dv += self.pw(*xv).0;
                        }
                    }
                    // S = Σ_c ∂L/∂y_c y_c (= ∂L/∂γ_k at each position).
                    for c in k * ps..(k + 1) * ps {
                        let r = c * pl..(c + 1) * pl;
                        for ((sv, (xv, gv)), dv) in sum
                            .iter_mut()
                            .zip(xs[r.clone()].iter().zip(&dys[r]))
                            .zip(&d)
                        {
                            *sv += *gv * eg * self.pw(*xv).0 / *dv;
                        }
                    }
                    for (sv, dv) in sum.iter().zip(&d) {
                        part[kg] += *sv;
                        part[ng + ks] -= *sv / *dv * dsp;
                    }
                    if let Some(dxc) = dxc.as_deref_mut() {
                        for c in k * ps..(k + 1) * ps {
                            let r = c * pl..(c + 1) * pl;
                            let o = (s - b0) * len + c * pl;
                            for (q, ((xv, gv), dxv)) in xs[r.clone()]
                                .iter()
                                .zip(&dys[r])
                                .zip(&mut dxc[o..o + pl])
                                .enumerate()
                            {
                                *dxv = (eg * *gv - sum[q]) / d[q] * self.pw(*xv).1;
                            }
                        }
                    }
                }
            }
            part
        };
        chunked_backward(b, len, dx, g, work);
    }
}

/// The Ken Miller variant. Parameters `lamb`, `alpha`, `beta`, `k` `[1]` each.
#[derive(Debug, Clone)]
pub struct MillerNorm {
    pub shape: Shape,
    /// Initial λ, α, β, k.
    pub init: [f64; 4],
    /// Keep them at their initial values.
    pub fixed: bool,
}

impl MillerNorm {
    pub fn new(shape: Shape) -> Self {
        MillerNorm {
            shape,
            init: [10.0, 0.1, 1.0, 10.0],
            fixed: false,
        }
    }

    /// Half-width of the window for λ: ⌈8λ⌉ made odd, halved (at most C − 1).
    fn half(&self, lamb: f64) -> usize {
        if !(lamb > 0.0 && lamb.is_finite()) {
            return 0;
        }
        let mut n = (8.0 * lamb).ceil() as usize;
        if n % 2 == 0 {
            n += 1;
        }
        (n / 2).min(self.shape.c.saturating_sub(1))
    }
}

impl<F: Real> Layer<F> for MillerNorm {
    fn kind(&self) -> &'static str {
        "miller"
    }
    fn in_shape(&self) -> Shape {
        self.shape
    }
    fn params(&self) -> Vec<Param> {
        ["lamb", "alpha", "beta", "k"]
            .iter()
            .map(|n| Param::new(n, &[1], !self.fixed))
            .collect()
    }
    fn init(&self, p: &mut [F], _rng: &mut ChaCha8Rng) {
        for (v, i) in p.iter_mut().zip(self.init) {
            *v = F::c(i);
        }
    }
    fn forward(&self, p: &mut [F], x: &[F], y: &mut [F], b: usize, _ctx: &mut Ctx<F>) {
        let (len, pl, c) = (self.shape.len(), self.shape.plane(), self.shape.c);
        let (lamb, alpha, beta, kk) = (p[0], p[1], p[2], p[3]);
        let h = self.half(lamb.f()) as isize;
        let wts: Vec<F> = (0..=h).map(|j| (-F::c(j as f64) / lamb).exp()).collect();
        y[..b * len]
            .par_chunks_mut(len)
            .zip(x[..b * len].par_chunks(len))
            .for_each(|(ys, xs)| {
                for q in 0..pl {
                    for ci in 0..c as isize {
                        let mut s = F::zero();
                        for j in -h..=h {
                            let cj = ci + j;
                            if cj >= 0 && cj < c as isize {
                                let v = xs[cj as usize * pl + q];
                                s += v * v * wts[j.unsigned_abs()];
                            }
                        }
                        let m = kk * (F::one() + alpha * s / lamb);
                        let v = xs[ci as usize * pl + q];
                        ys[ci as usize * pl + q] = v * v / m.powf(beta);
                    }
                }
            });
    }
    fn backward(&self, p: &[F], d: Back<F>, _ctx: &Ctx<F>) {
        let Back { x, y, dy, dx, g, b } = d;
        let (len, pl, c) = (self.shape.len(), self.shape.plane(), self.shape.c);
        let (lamb, alpha, beta, kk) = (p[0], p[1], p[2], p[3]);
        let h = self.half(lamb.f()) as isize;
        let wts: Vec<F> = (0..=h).map(|j| (-F::c(j as f64) / lamb).exp()).collect();
        let l2 = lamb * lamb;
        let work = |(b0, b1): (usize, usize), mut dxc: Option<&mut [F]>| -> Vec<F> {
            let mut part = vec![F::zero(); 4];
            let mut ds = vec![F::zero(); c];
            let mut dd = vec![F::zero(); c];
            for s in b0..b1 {
                let xs = &x[s * len..(s + 1) * len];
                let ys = &y[s * len..(s + 1) * len];
                let dys = &dy[s * len..(s + 1) * len];
                for q in 0..pl {
                    for ci in 0..c {
                        let (mut sc, mut sl) = (F::zero(), F::zero());
                        for j in -h..=h {
                            let cj = ci as isize + j;
                            if cj >= 0 && cj < c as isize {
                                let v = xs[cj as usize * pl + q];
                                let t = v * v * wts[j.unsigned_abs()];
                                sc += t;
                                sl += t * F::c(j.unsigned_abs() as f64);
                            }
                        }
                        let i = ci * pl + q;
                        let m = kk * (F::one() + alpha * sc / lamb);
                        // ∂L/∂ ln D_c, D_c = M_c^β.
                        let gl = -dys[i] * ys[i];
                        part[2] += gl * m.ln();
                        let dm = gl * beta / m;
                        part[3] += dm * (F::one() + alpha * sc / lamb);
                        part[1] += dm * kk * sc / lamb;
                        let dsc = dm * kk * alpha / lamb;
                        part[0] += -dm * kk * alpha * sc / l2 + dsc * sl / l2;
                        ds[ci] = dsc;
                        dd[ci] = m.powf(beta);
                    }
                    if let Some(dxc) = dxc.as_deref_mut() {
                        for cp in 0..c {
                            let i = cp * pl + q;
                            let v = xs[i];
                            let mut du = dys[i] / dd[cp];
                            for j in -h..=h {
                                let cj = cp as isize + j;
                                if cj >= 0 && cj < c as isize {
                                    du += ds[cj as usize] * wts[j.unsigned_abs()];
                                }
                            }
                            dxc[(s - b0) * len + i] = du * (v + v);
                        }
                    }
                }
            }
            part
        };
        chunked_backward(b, len, dx, g, work);
    }
}
