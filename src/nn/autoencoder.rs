//! The autoencoder stem of the static ORGaNICs MNIST network (Rawat, Heeger & Martiniani 2024):
//! a fully connected encoder D → 360 → 120 → K (ReLU, ReLU, logistic) whose code feeds the next
//! layer, and a mirrored decoder K → 120 → 360 → D (ReLU, ReLU, logistic) trained alongside it
//! on the reconstruction error.
//!
//! $$ c = \sigma(E_3\,\lfloor E_2 \lfloor E_1 x\rfloor\rfloor),\qquad
//!    \hat x = \sigma(D_3\,\lfloor D_2 \lfloor D_1 c\rfloor\rfloor),\qquad
//!    L = L_{\text{downstream}}(c) + \lambda\,\frac{1}{B D}\sum_{s,i} (\hat x_{si} - x_{si})^2 $$
//!
//! (each E, D affine; λ = 1 as in the paper's training). The layer's output is the code c; its
//! backward pass adds the reconstruction term's gradient ∂(λ MSE)/∂c, back through the decoder,
//! to the downstream error before going back through the encoder, so the two losses train the
//! encoder together exactly as their sum would. The decoder runs only in training passes
//! (evaluation needs the code alone). Parameters are named as PyTorch's `nn.Sequential` names
//! them: `encoder.0.weight`, `encoder.0.bias`, `encoder.2.…`, `encoder.4.…`, `decoder.0.…`, …

use super::{Back, Ctx, Layer, Linear, Param, Real, Shape};
use crate::error::{Error, Result};
use crate::tensor::real::sig;
use rand_chacha::ChaCha8Rng;

/// Widths of the encoder's hidden layers (the decoder mirrors them).
pub const HIDDEN: [usize; 2] = [360, 120];

/// Encoder D → 360 → 120 → K with a mirrored decoder trained on the reconstruction error.
#[derive(Debug, Clone)]
pub struct Autoencoder {
    pub input: Shape,
    /// Code size K (the layer's output).
    pub code: usize,
    /// Weight λ of the reconstruction error (mean over samples and pixels).
    pub weight: f64,
    stages: Vec<Linear>,
}

const NAMES: [[&str; 2]; 6] = [
    ["encoder.0.weight", "encoder.0.bias"],
    ["encoder.2.weight", "encoder.2.bias"],
    ["encoder.4.weight", "encoder.4.bias"],
    ["decoder.0.weight", "decoder.0.bias"],
    ["decoder.2.weight", "decoder.2.bias"],
    ["decoder.4.weight", "decoder.4.bias"],
];

impl Autoencoder {
    pub fn new(input: Shape, code: usize, weight: f64) -> Result<Self> {
        if code == 0 || input.is_empty() {
            return Err(Error::invalid(
                "code",
                "the autoencoder needs a non-empty input and code",
            ));
        }
        if !(weight >= 0.0 && weight.is_finite()) {
            return Err(Error::invalid(
                "weight",
                format!("{weight}: the reconstruction weight must be ≥ 0"),
            ));
        }
        let d = input.len();
        let w = [d, HIDDEN[0], HIDDEN[1], code, HIDDEN[1], HIDDEN[0], d];
        let stages = (0..6)
            .map(|k| Linear::new(Shape::new(w[k], 1, 1), w[k + 1]))
            .collect::<Result<Vec<_>>>()?;
        Ok(Autoencoder {
            input,
            code,
            weight,
            stages,
        })
    }

    /// The logistic function closes the encoder (stage 2) and the decoder (stage 5); ReLU
    /// follows every other stage.
    fn logistic(k: usize) -> bool {
        k == 2 || k == 5
    }

    /// Parameter ranges of the six stages in this layer's slice.
    fn ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut at = 0;
        self.stages
            .iter()
            .map(|s| {
                let len = s.out * (s.input.len() + 1);
                at += len;
                at - len..at
            })
            .collect()
    }

    /// Offsets of the stages' outputs in ctx.f for a batch of `b`.
    fn offsets(&self, b: usize) -> Vec<usize> {
        let mut at = 0;
        let mut o = vec![0];
        for s in &self.stages {
            at += b * s.out;
            o.push(at);
        }
        o
    }
}

/// Applies the stage's nonlinearity in place.
fn activate<F: Real>(logistic: bool, y: &mut [F]) {
    for v in y {
        *v = if logistic { sig(*v) } else { v.max(F::zero()) };
    }
}

/// Turns ∂L/∂(output) into ∂L/∂(pre-activation) in place, from the outputs `y`.
fn deactivate<F: Real>(logistic: bool, y: &[F], d: &mut [F]) {
    for (dv, yv) in d.iter_mut().zip(y) {
        *dv = if logistic {
            *dv * *yv * (F::one() - *yv)
        } else if *yv > F::zero() {
            *dv
        } else {
            F::zero()
        };
    }
}

impl<F: Real> Layer<F> for Autoencoder {
    fn kind(&self) -> &'static str {
        "autoencoder"
    }
    fn in_shape(&self) -> Shape {
        self.input
    }
    fn out_shape(&self) -> Shape {
        Shape::new(self.code, 1, 1)
    }
    fn params(&self) -> Vec<Param> {
        self.stages
            .iter()
            .zip(NAMES)
            .flat_map(|(s, [w, b])| {
                [
                    Param::new(w, &[s.out, s.input.len()], true),
                    Param::new(b, &[s.out], true),
                ]
            })
            .collect()
    }
    /// PyTorch's `nn.Linear` initialisation for each stage.
    fn init(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        for (s, r) in self.stages.iter().zip(self.ranges()) {
            s.init(&mut p[r], rng);
        }
    }
    /// The encoder only (what a prediction costs).
    fn flops(&self) -> usize {
        self.stages[..3]
            .iter()
            .map(<Linear as Layer<F>>::flops)
            .sum()
    }

    /// λ × the mean squared reconstruction error of a training pass (zero in evaluation).
    fn penalty(&self, x: &[F], b: usize, ctx: &Ctx<F>) -> f64 {
        let o = self.offsets(b);
        let Some(xh) = ctx.f.get(o[5]..o[6]).filter(|_| ctx.train) else {
            return 0.0;
        };
        let n = b * self.input.len();
        let s: f64 = xh
            .iter()
            .zip(&x[..n])
            .map(|(p, q)| (p.f() - q.f()).powi(2))
            .sum();
        self.weight * s / n as f64
    }

    /// ctx.f = each stage's output for the batch, encoder then (training only) decoder.
    fn forward(&self, p: &mut [F], x: &[F], out: &mut [F], b: usize, ctx: &mut Ctx<F>) {
        let o = self.offsets(b);
        let last = if ctx.train { 6 } else { 3 };
        ctx.f.resize(o[last], F::zero());
        let ranges = self.ranges();
        let mut scratch = Ctx::default();
        for k in 0..last {
            let (done, rest) = ctx.f.split_at_mut(o[k]);
            let input = if k == 0 {
                &x[..b * self.input.len()]
            } else {
                &done[o[k - 1]..]
            };
            let y = &mut rest[..o[k + 1] - o[k]];
            self.stages[k].forward(&mut p[ranges[k].clone()], input, y, b, &mut scratch);
            activate(Self::logistic(k), y);
        }
        out[..b * self.code].copy_from_slice(&ctx.f[o[2]..o[3]]);
    }

    fn backward(&self, p: &[F], d: Back<F>, ctx: &Ctx<F>) {
        let Back {
            x, dy, dx, g, b, ..
        } = d;
        let o = self.offsets(b);
        let ranges = self.ranges();
        let act = |k: usize| &ctx.f[o[k]..o[k + 1]];
        let n = b * self.input.len();
        let scratch = Ctx::default();
        // ∂(λ MSE)/∂x̂, then back through the decoder to the code.
        let scale = F::c(2.0 * self.weight / n as f64);
        let mut cur: Vec<F> = act(5)
            .iter()
            .zip(&x[..n])
            .map(|(p, q)| scale * (*p - *q))
            .collect();
        let mut next = vec![];
        for k in (0..6).rev() {
            deactivate(Self::logistic(k), act(k), &mut cur);
            let input = if k == 0 { &x[..n] } else { act(k - 1) };
            let want_dx = k > 0 || dx.is_some();
            next.clear();
            next.resize(b * self.stages[k].input.len(), F::zero());
            let r = ranges[k].clone();
            self.stages[k].backward(
                &p[r.clone()],
                Back {
                    x: input,
                    y: act(k),
                    dy: &cur,
                    dx: want_dx.then_some(&mut next[..]),
                    g: &mut g[r],
                    b,
                },
                &scratch,
            );
            std::mem::swap(&mut cur, &mut next);
            if k == 3 {
                // cur = ∂(λ MSE)/∂c: add the downstream error of the code.
                for (c, v) in cur.iter_mut().zip(&dy[..b * self.code]) {
                    *c += *v;
                }
            }
        }
        if let Some(dx) = dx {
            // The reconstruction error also depends on x itself: −∂(λ MSE)/∂x̂.
            for (((d, c), p), q) in dx[..n].iter_mut().zip(&cur).zip(act(5)).zip(&x[..n]) {
                *d = *c - scale * (*p - *q);
            }
        }
    }
}
