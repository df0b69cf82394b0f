//! The static ORGaNICs layer (Rawat, Heeger & Martiniani 2024, MNIST): the steady state of the
//! ORGaNICs circuit with W_r = I, evaluated in closed form and trained end to end.
//!
//! $$ z = \frac{W_{zx} x}{\lVert W_{zx} x \rVert},\quad B_0 = \sigma(b_0),\quad
//!    B_1 = \sigma(W_{bx} x),\quad a^* = (\sigma_0 B_0)^2 + W (B_1 \odot z)^2,\quad
//!    y^* = \frac{B_1 \odot z}{\sqrt{a^*}}, $$
//!
//! output ⌊y*⌋² (σ(·) the logistic function, σ₀ the semi-saturation constant, W = exp(log_W) ≥ 0
//! elementwise). This is the consistent √a version: with W_r = I the circuit
//! τ_y ẏ = −y + b₁ z + (1 − √a) y, τ_a ȧ = −a + (σ₀ b₀)² + W(a ⊙ y²) rests exactly where
//! √a* y* = b₁ z and a* = (σ₀ b₀)² + W (b₁ z)² (the test checks it against the integrated ODE).
//! Parameters: `W_zx` `[N, D]`, `W_bx` `[N, D]`, `b0` `[N]`, `log_W` `[N, N]`.

use super::{torch_uniform, Back, Ctx, Layer, Param, Real, Shape};
use crate::error::{Error, Result};
use crate::tensor::real::{rm, rm_mut, sig};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The static ORGaNICs layer with N units on a D-entry input.
#[derive(Debug, Clone)]
pub struct StaticOrganics {
    pub input: Shape,
    pub n: usize,
    /// Semi-saturation constant σ₀ (fixed).
    pub sigma: f64,
}

impl StaticOrganics {
    pub fn new(input: Shape, n: usize, sigma: f64) -> Result<Self> {
        if n == 0 || input.is_empty() {
            return Err(Error::invalid(
                "hidden",
                "the ORGaNICs layer needs N ≥ 1 units",
            ));
        }
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(Error::invalid(
                "sigma",
                format!("{sigma}: must be positive"),
            ));
        }
        Ok(StaticOrganics { input, n, sigma })
    }

    /// The steady state (y*, a*) of one sample (f64; what the circuit tests compare).
    pub fn steady_state(&self, p: &[f64], x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (n, d) = (self.n, self.input.len());
        let mut ctx = Ctx::default();
        let mut out = vec![0.0; n];
        let mut pp = p.to_vec();
        <Self as Layer<f64>>::forward(self, &mut pp, &x[..d], &mut out, 1, &mut ctx);
        let per = &ctx.f[n * n..];
        let (z, b1, a) = (&per[..n], &per[n..2 * n], &per[2 * n..3 * n]);
        let y = (0..n).map(|i| b1[i] * z[i] / a[i].sqrt()).collect();
        (y, a.to_vec())
    }
}

impl<F: Real> Layer<F> for StaticOrganics {
    fn kind(&self) -> &'static str {
        "organics"
    }
    fn in_shape(&self) -> Shape {
        self.input
    }
    fn out_shape(&self) -> Shape {
        Shape::new(self.n, 1, 1)
    }
    fn params(&self) -> Vec<Param> {
        let (n, d) = (self.n, self.input.len());
        vec![
            Param::new("W_zx", &[n, d], true),
            Param::new("W_bx", &[n, d], true),
            Param::new("b0", &[n], true),
            Param::new("log_W", &[n, n], true),
        ]
    }
    /// W_zx, W_bx ~ U(±1/√D); b0 = 0; W = exp(log_W) ≈ 1/N (log_W = −ln N + 0.1 N(0, 1)-ish).
    fn init(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        let (n, d) = (self.n, self.input.len());
        torch_uniform(&mut p[..2 * n * d], d, rng);
        p[2 * n * d..2 * n * d + n].fill(F::zero());
        let base = -(n as f64).ln();
        for v in &mut p[2 * n * d + n..] {
            *v = F::c(base + 0.1 * rng.random_range(-1.0..1.0));
        }
    }
    fn flops(&self) -> usize {
        2 * self.n * self.input.len() + self.n * self.n
    }

    /// ctx.f = W (N²) | per sample: z, B₁, a* (3N) | ‖W_zx x‖ per sample.
    fn forward(&self, p: &mut [F], x: &[F], out: &mut [F], b: usize, ctx: &mut Ctx<F>) {
        let (n, d) = (self.n, self.input.len());
        let (wzx, rest) = p.split_at(n * d);
        let (wbx, rest) = rest.split_at(n * d);
        let (b0, logw) = rest.split_at(n);
        let per = 3 * n;
        ctx.f.resize(n * n + b * per + b, F::zero());
        let (wf, rest) = ctx.f.split_at_mut(n * n);
        let (cache, norms) = rest.split_at_mut(b * per);
        for (w, l) in wf.iter_mut().zip(logw) {
            *w = l.exp();
        }
        let mut v = vec![F::zero(); b * n];
        let mut h = vec![F::zero(); b * n];
        F::matmul(
            rm_mut(&mut v, b, n),
            false,
            rm(x, b, d),
            rm(wzx, n, d).transpose(),
        );
        F::matmul(
            rm_mut(&mut h, b, n),
            false,
            rm(x, b, d),
            rm(wbx, n, d).transpose(),
        );
        // q² per sample, then a = (σ B0)² + W q².
        let mut q2 = vec![F::zero(); b * n];
        for s in 0..b {
            let vs = &v[s * n..(s + 1) * n];
            let nv = vs.iter().map(|t| *t * *t).sum::<F>().sqrt();
            norms[s] = nv;
            let c = &mut cache[s * per..(s + 1) * per];
            for i in 0..n {
                let z = vs[i] / nv;
                let b1 = sig(h[s * n + i]);
                c[i] = z;
                c[n + i] = b1;
                q2[s * n + i] = (b1 * z) * (b1 * z);
            }
        }
        let mut a = vec![F::zero(); b * n];
        F::matmul(
            rm_mut(&mut a, b, n),
            false,
            rm(&q2, b, n),
            rm(wf, n, n).transpose(),
        );
        let s0 = F::c(self.sigma);
        for s in 0..b {
            let c = &mut cache[s * per..(s + 1) * per];
            for i in 0..n {
                let sb = s0 * sig(b0[i]);
                let ai = sb * sb + a[s * n + i];
                c[2 * n + i] = ai;
                let y = c[n + i] * c[i] / ai.sqrt();
                let r = y.max(F::zero());
                out[s * n + i] = r * r;
            }
        }
    }

    fn backward(&self, p: &[F], d: Back<F>, ctx: &Ctx<F>) {
        let Back {
            x,
            dy: dout,
            dx,
            g,
            b,
            ..
        } = d;
        let (n, d) = (self.n, self.input.len());
        let (wzx, rest) = p.split_at(n * d);
        let (wbx, rest) = rest.split_at(n * d);
        let b0 = &rest[..n];
        let per = 3 * n;
        let (wf, rest) = ctx.f.split_at(n * n);
        let (cache, norms) = rest.split_at(b * per);
        let s0 = F::c(self.sigma);
        let two = F::c(2.0);
        let mut dq = vec![F::zero(); b * n];
        let mut da = vec![F::zero(); b * n];
        let mut q2 = vec![F::zero(); b * n];
        let mut db0 = vec![F::zero(); n];
        for s in 0..b {
            let c = &cache[s * per..(s + 1) * per];
            for i in 0..n {
                let (z, b1, a) = (c[i], c[n + i], c[2 * n + i]);
                let q = b1 * z;
                let y = q / a.sqrt();
                let dy = dout[s * n + i] * two * y.max(F::zero());
                dq[s * n + i] = dy / a.sqrt();
                da[s * n + i] = -dy * y / (two * a);
                q2[s * n + i] = q * q;
                let bb = sig(b0[i]);
                // ∂a/∂B0 = 2 σ² B0, ∂B0/∂b0 = B0 (1 − B0).
                db0[i] += da[s * n + i] * two * s0 * s0 * bb * bb * (F::one() - bb);
            }
        }
        // ∂L/∂W = daᵀ q² (then ⊙ W for log_W); ∂L/∂q += 2 q ⊙ (Wᵀ da).
        let mut gw = vec![F::zero(); n * n];
        F::matmul(
            rm_mut(&mut gw, n, n),
            false,
            rm(&da, b, n).transpose(),
            rm(&q2, b, n),
        );
        let mut wda = vec![F::zero(); b * n];
        F::matmul(rm_mut(&mut wda, b, n), false, rm(&da, b, n), rm(wf, n, n));
        let mut dh = vec![F::zero(); b * n];
        let mut dv = vec![F::zero(); b * n];
        for s in 0..b {
            let c = &cache[s * per..(s + 1) * per];
            let mut zdz = F::zero();
            for i in 0..n {
                let (z, b1) = (c[i], c[n + i]);
                let k = s * n + i;
                let dqk = dq[k] + two * b1 * z * wda[k];
                // q = B1 z.
                dh[k] = dqk * z * b1 * (F::one() - b1);
                dv[k] = dqk * b1; // ∂L/∂z for now
                zdz += z * dv[k];
            }
            // z = v/‖v‖: ∂L/∂v = (∂L/∂z − z (z·∂L/∂z))/‖v‖.
            for i in 0..n {
                let k = s * n + i;
                dv[k] = (dv[k] - c[i] * zdz) / norms[s];
            }
        }
        let (gzx, rest) = g.split_at_mut(n * d);
        let (gbx, rest) = rest.split_at_mut(n * d);
        let (gb0, glw) = rest.split_at_mut(n);
        F::matmul(
            rm_mut(gzx, n, d),
            true,
            rm(&dv, b, n).transpose(),
            rm(x, b, d),
        );
        F::matmul(
            rm_mut(gbx, n, d),
            true,
            rm(&dh, b, n).transpose(),
            rm(x, b, d),
        );
        for i in 0..n {
            gb0[i] += db0[i];
        }
        for k in 0..n * n {
            glw[k] += gw[k] * wf[k];
        }
        if let Some(dx) = dx {
            F::matmul(rm_mut(dx, b, d), false, rm(&dv, b, n), rm(wzx, n, d));
            F::matmul(rm_mut(dx, b, d), true, rm(&dh, b, n), rm(wbx, n, d));
        }
    }
}
