//! A CordsNet made differentiable: the forward-Euler protocol unrolled in time and its hand-derived
//! backward pass (backpropagation through time), in f32 for training and f64 for checks.
//!
//! One update of layer l (spec A.2 with A.8's PReLU anneal, slope a ∈ [0, 1]):
//!
//! $$ \mathrm{pre}_l = K^{rec}_l \circledast r_l + b_l + K^{in}_l \circledast_{s_l} u_l(r, x),
//!    \qquad r_l \leftarrow (1-\alpha)\, r_l + \alpha\, \phi_a(\mathrm{pre}_l), $$
//!
//! φ_a(z) = z for z > 0 and a·z otherwise: a = 1 is stage 4's linear RNN, a = 0 the ReLU network
//! of the model; the inputs u_l keep relu(r) at every a (A.8). Read-out at state r:
//! y = W_fc mean_{ij}(relu(r_{L−1}) + relu(r_{L−2})) + c. Loss (A.7): the ramp-weighted
//! cross-entropy over the last R stimulus states, (1/R) Σ_k ρ_k CE(y_k), ρ_k = 10^{−3+3k/(R−1)},
//! plus λ S with S = (1/(L·W)) Σ over the last W post-stimulus states and the layers of
//! mean((r_l − r_l^{base})²), r^{base} the state at the end of the spontaneous phase (a
//! constant: no gradient flows into it), λ = 10⁻³.
//!
//! Backward, for δr(t+1) = ∂L/∂r(t+1) (plus the loss's own term at that state):
//! e_l = α φ'_a(pre_l) δr_l(t+1); δr_l(t) = (1−α) δr_l(t+1) + K^{rec⊤}_l e_l + relu'(r_l)·δa_l,
//! where δa_l collects K^{in⊤}_k e_k from the layers k whose input u_k reads relu(r_l) (through the
//! projection's transpose for odd k ≥ 3); ∂L/∂K, ∂L/∂b accumulate e ⊗ input per step. The
//! stem output h is static during the stimulus, so K^{in}_0 ⊛ h and K_skip ⊛ h are formed once
//! per batch and their gradients summed over the stimulus steps before one backward pass through
//! the stem. The convolutions are [`crate::nn::Conv2d`]'s (im2col on faer's matrix product).
//!
//! Parameters: one flat vector in [`super::tensor_shapes`] order under PyTorch-style names
//! (`inp_conv.weight`, `area_conv.{l}.weight`, `conv_bias.{l}`, `skip_area.{i}.weight`,
//! `out_fc.weight`, `out_fc.bias`, …) — the effective tensors, which [`super::CordsNet::load`]
//! reads back for the f64 analyses.

use super::{tensor_shapes, Arch, CordsNet};
use crate::error::{Error, Result};
use crate::nn::loss::softmax_cross_entropy;
use crate::nn::{AvgPool2d, Back, Conv2d, Ctx, Layer, Layout, Real, Shape};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The steps of one pass (α = Δt/τ per step) and the loss's windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StimulusProtocol {
    /// Spontaneous steps (x = 0) from r = 0.
    pub spont: usize,
    /// Stimulus steps (the image's stem output held fixed).
    pub stim: usize,
    /// Post-stimulus steps (x = 0 again).
    pub post: usize,
    /// Stimulus states in the ramp-weighted cross-entropy: the last `ramp` (30 in the paper).
    pub ramp: usize,
    /// Post-stimulus states in the stability term: the last `window` (10 in the paper).
    pub window: usize,
    /// λ, the weight of the stability term (10⁻³).
    pub stability: f64,
}

impl StimulusProtocol {
    /// The paper's protocol: 100 spontaneous, 100 stimulus, 100 post-stimulus steps.
    pub fn paper() -> Self {
        StimulusProtocol {
            spont: 100,
            stim: 100,
            post: 100,
            ramp: 30,
            window: 10,
            stability: 1e-3,
        }
    }
    /// Stage 4's pass: stimulus only, from r = 0.
    pub fn stimulus_only(self) -> Self {
        StimulusProtocol {
            spont: 0,
            post: 0,
            ..self
        }
    }
    pub fn steps(&self) -> usize {
        self.spont + self.stim + self.post
    }
    /// The states (index t = state after t updates) of the ramp, with their weights ρ_k / R.
    fn ramp_states(&self) -> Vec<(usize, f64)> {
        let r = self.ramp.min(self.stim).max(1);
        let last = self.spont + self.stim;
        (0..r)
            .map(|k| {
                let rho = if r == 1 {
                    1.0
                } else {
                    10f64.powf(-3.0 + 3.0 * k as f64 / (r - 1) as f64)
                };
                (last + 1 - r + k, rho / r as f64)
            })
            .collect()
    }
    /// The states of the stability window.
    fn window_states(&self) -> std::ops::RangeInclusive<usize> {
        let w = self.window.min(self.post);
        let t = self.steps();
        if w == 0 || self.stability == 0.0 {
            #[allow(clippy::reversed_empty_ranges)]
            return 1..=0;
        }
        t + 1 - w..=t
    }
    pub fn validate(&self) -> Result<()> {
        if self.stim == 0 {
            return Err(Error::invalid("stim", "need at least one stimulus step"));
        }
        if self.ramp == 0 {
            return Err(Error::invalid(
                "ramp",
                "need at least one state in the loss",
            ));
        }
        if !(self.stability >= 0.0 && self.stability.is_finite()) {
            return Err(Error::invalid(
                "stability",
                format!("{}: must be ≥ 0", self.stability),
            ));
        }
        Ok(())
    }
}

/// What one pass produced: the loss parts and the read-out at the last stimulus state.
#[derive(Debug, Clone)]
pub struct PassResult {
    /// Ramp-weighted cross-entropy plus λ S.
    pub loss: f64,
    pub cross_entropy: f64,
    /// S (before λ).
    pub stability: f64,
    /// Correct arg-max predictions at the last stimulus state.
    pub correct: usize,
    /// Logits at the last stimulus state, `b × classes`.
    pub logits: Vec<f64>,
}

/// The unrolled network (see the module documentation).
#[derive(Debug, Clone)]
pub struct Bptt<F: Real> {
    pub arch: Arch,
    pub layout: Layout,
    pub params: Vec<F>,
    pub grad: Vec<F>,
    /// stem, skip, rec_0.., in_0.., proj_0.. with the layout tensor of each weight.
    convs: Vec<(Conv2d, usize)>,
    pool: AvgPool2d,
    units: Vec<usize>,
    plane_last: usize,
    /// Per layer k, the index in `convs` of the projection feeding u_k (odd k ≥ 3).
    proj_of: Vec<Option<usize>>,
}

// Index of each convolution in `convs`.
const STEM: usize = 0;
const SKIP: usize = 1;

impl<F: Real> Bptt<F> {
    /// The network for `arch`, parameters zero (see [`Bptt::init`], [`Bptt::from_net`]).
    pub fn new(arch: Arch) -> Result<Self> {
        arch.validate()?;
        let mut layout = Layout::default();
        for (name, shape) in tensor_shapes(&arch) {
            let key = if name.starts_with("conv_bias") || name.starts_with("out_fc") {
                name
            } else {
                format!("{name}.weight")
            };
            layout.push(&key, &shape, true);
        }
        let s = arch.sizes();
        let l = arch.depth();
        let (img, st) = (arch.img_size, super::out_size(arch.img_size, 7, 2, 3));
        let h = arch.stem_size();
        let stem = Conv2d::new(Shape::new(arch.img_channels, img, img), arch.stem, 7, 2, 3)?;
        let pool = AvgPool2d::new(Shape::new(arch.stem, st, st), 3, 2, 1, true)?;
        let skip = Conv2d::new(Shape::new(arch.stem, h, h), arch.channels[0], 3, 1, 1)?;
        let mut convs = vec![(stem, 0), (skip, 1)];
        for k in 0..l {
            let c = arch.channels[k];
            convs.push((Conv2d::new(Shape::new(c, s[k], s[k]), c, 3, 1, 1)?, 2 + k));
        }
        for k in 0..l {
            let (cin, n) = if k == 0 {
                (arch.stem, h)
            } else {
                (arch.channels[k - 1], s[k - 1])
            };
            convs.push((
                Conv2d::new(
                    Shape::new(cin, n, n),
                    arch.channels[k],
                    3,
                    arch.strides[k],
                    1,
                )?,
                2 + l + k,
            ));
        }
        for (i, k) in arch.projections().into_iter().enumerate() {
            convs.push((
                Conv2d::new(
                    Shape::new(arch.channels[k - 2], s[k - 2], s[k - 2]),
                    arch.channels[k - 1],
                    1,
                    2,
                    0,
                )?,
                2 + 3 * l + i,
            ));
        }
        let n = layout.len;
        let projections = arch.projections();
        let proj_of = (0..l)
            .map(|k| {
                projections
                    .iter()
                    .position(|&q| q == k)
                    .map(|i| 2 + 2 * l + i)
            })
            .collect();
        Ok(Bptt {
            proj_of,
            units: arch.layer_units(),
            plane_last: s[l - 1] * s[l - 1],
            arch,
            layout,
            params: vec![F::zero(); n],
            grad: vec![F::zero(); n],
            convs,
            pool,
        })
    }

    /// The network with a [`CordsNet`]'s effective weights.
    pub fn from_net(net: &CordsNet) -> Result<Self> {
        let mut b = Self::new(net.arch.clone())?;
        let mut all: Vec<&[f64]> = vec![&net.stem, &net.inp_skip];
        all.extend(net.rec.iter().map(|v| v.as_slice()));
        all.extend(net.inp.iter().map(|v| v.as_slice()));
        all.extend(net.bias.iter().map(|v| v.as_slice()));
        all.extend(net.proj.iter().map(|v| v.as_slice()));
        all.push(&net.fc_w);
        all.push(&net.fc_b);
        for (t, src) in b.layout.tensors.clone().iter().zip(all) {
            for (d, s) in b.params[t.range()].iter_mut().zip(src) {
                *d = F::c(*s);
            }
        }
        Ok(b)
    }

    /// The f64 network of the current parameters (for the analyses).
    pub fn to_net(&self) -> Result<CordsNet> {
        let tensors = self
            .layout
            .tensors
            .iter()
            .map(|t| self.params[t.range()].iter().map(|v| v.f()).collect())
            .collect();
        CordsNet::from_tensors(self.arch.clone(), tensors)
    }

    /// Seeded initialisation: PyTorch's default bounds U(±1/√fan-in) for the feed-forward
    /// kernels and the read-out, the recurrent kernels scaled to `rec_gain`/√fan-in (normal),
    /// biases zero.
    pub fn init(&mut self, seed: u64, rec_gain: f64) {
        use rand::Rng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let l = self.arch.depth();
        for (i, t) in self.layout.tensors.clone().iter().enumerate() {
            let fan: usize = t.shape[1..].iter().product::<usize>().max(1);
            let p = &mut self.params[t.range()];
            if t.name.starts_with("conv_bias") || t.name == "out_fc.bias" {
                p.fill(F::zero());
            } else if (2..2 + l).contains(&i) {
                let sd = rec_gain / (fan as f64).sqrt();
                for v in p {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    *v = F::c(sd * z);
                }
            } else {
                let bound = 1.0 / (fan as f64).sqrt();
                for v in p {
                    *v = F::c(rng.random_range(-bound..bound));
                }
            }
        }
    }

    /// Bytes the tape of one pass takes at batch `b` (states, pre-activations, inputs).
    pub fn tape_bytes(&self, b: usize, steps: usize) -> u128 {
        let per: u128 = self.units.iter().map(|&u| u as u128).sum();
        3 * (steps as u128 + 1) * per * b as u128 * std::mem::size_of::<F>() as u128
    }

    fn rec(&self, l: usize) -> usize {
        2 + l
    }
    fn inp(&self, l: usize) -> usize {
        2 + self.arch.depth() + l
    }
    fn proj(&self, k: usize) -> Option<usize> {
        self.proj_of[k]
    }

    /// Each convolution's parameters as [`Conv2d`] wants them: weight, then a zero bias.
    fn packs(&self) -> Vec<Vec<F>> {
        self.convs
            .iter()
            .map(|(c, t)| {
                let mut v = self.params[self.layout.tensors[*t].range()].to_vec();
                v.resize(v.len() + c.out_channels, F::zero());
                v
            })
            .collect()
    }

    fn bias(&self, l: usize) -> &[F] {
        &self.params[self.layout.tensors[2 + 2 * self.arch.depth() + l].range()]
    }

    /// The read-out of a state; features written to `feat` (`b × C_{L−1}`).
    fn readout(&self, r: &[Vec<F>], b: usize, feat: &mut Vec<F>, logits: &mut Vec<F>) {
        let l = self.arch.depth();
        let c = self.arch.channels[l - 1];
        let k = self.arch.classes;
        let plane = self.plane_last;
        feat.clear();
        for s in 0..b {
            for ch in 0..c {
                let o = s * c * plane + ch * plane;
                let mut sum = F::zero();
                for q in 0..plane {
                    sum += r[l - 1][o + q].max(F::zero()) + r[l - 2][o + q].max(F::zero());
                }
                feat.push(sum / F::c(plane as f64));
            }
        }
        let t = &self.layout.tensors;
        let (w, bias) = (
            &self.params[t[t.len() - 2].range()],
            &self.params[t[t.len() - 1].range()],
        );
        logits.clear();
        for s in 0..b {
            for o in 0..k {
                let mut v = bias[o];
                for j in 0..c {
                    v += w[o * c + j] * feat[s * c + j];
                }
                logits.push(v);
            }
        }
    }

    /// One synchronous update r → next (see the module documentation); `on` says whether the
    /// image drives the network at this step.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        packs: &mut [Vec<F>],
        r: &[Vec<F>],
        on: bool,
        slope: F,
        stat: (&[F], &[F]),
        b: usize,
        next: &mut [Vec<F>],
        pre: &mut [Vec<F>],
        u: &mut [Vec<F>],
        tmp: &mut Vec<F>,
    ) {
        let l = self.arch.depth();
        let alpha = F::c(self.arch.alpha);
        let relu = |v: F| v.max(F::zero());
        let mut ctx = Ctx::default();
        for k in 0..l {
            let n = self.units[k];
            // u_k (k ≥ 1).
            if k >= 1 {
                let uk = &mut u[k];
                uk.clear();
                uk.extend(r[k - 1].iter().map(|&v| relu(v)));
                if k == 1 {
                    if on {
                        for (a, s) in uk.iter_mut().zip(stat.1) {
                            *a += *s;
                        }
                    }
                } else if k % 2 == 0 {
                    for (a, v) in uk.iter_mut().zip(&r[k - 2]) {
                        *a += relu(*v);
                    }
                } else {
                    let pi = self.proj(k).expect("odd layers ≥ 3 have projections");
                    let act: Vec<F> = r[k - 2].iter().map(|&v| relu(v)).collect();
                    tmp.resize(b * self.units[k - 1], F::zero());
                    self.convs[pi]
                        .0
                        .forward(&mut packs[pi], &act, tmp, b, &mut ctx);
                    for (a, v) in uk.iter_mut().zip(tmp.iter()) {
                        *a += *v;
                    }
                }
            }
            // pre_k.
            let pk = &mut pre[k];
            pk.resize(b * n, F::zero());
            let ri = self.rec(k);
            self.convs[ri]
                .0
                .forward(&mut packs[ri], &r[k], pk, b, &mut ctx);
            let bias = self.bias(k);
            for row in pk.chunks_mut(n) {
                for (a, c) in row.iter_mut().zip(bias) {
                    *a += *c;
                }
            }
            if k == 0 {
                if on {
                    for (a, v) in pk.iter_mut().zip(stat.0) {
                        *a += *v;
                    }
                }
            } else {
                let ii = self.inp(k);
                tmp.resize(b * n, F::zero());
                self.convs[ii]
                    .0
                    .forward(&mut packs[ii], &u[k], tmp, b, &mut ctx);
                for (a, v) in pk.iter_mut().zip(tmp.iter()) {
                    *a += *v;
                }
            }
            let nk = &mut next[k];
            nk.clear();
            nk.extend(r[k].iter().zip(pk.iter()).map(|(&rv, &p)| {
                let phi = if p > F::zero() { p } else { slope * p };
                rv + alpha * (phi - rv)
            }));
        }
    }

    /// The stem output h and the two static drives K^in_0 ⊛ h, K_skip ⊛ h.
    fn stem(&self, packs: &mut [Vec<F>], x: &[F], b: usize) -> [Vec<F>; 4] {
        let mut ctx = Ctx::default();
        let st = &self.convs[STEM].0;
        let mut s = vec![F::zero(); b * Layer::<F>::out_shape(st).len()];
        st.forward(&mut packs[STEM], x, &mut s, b, &mut ctx);
        let mut h = vec![F::zero(); b * Layer::<F>::out_shape(&self.pool).len()];
        self.pool.forward(&mut [], &s, &mut h, b, &mut ctx);
        let i0 = self.inp(0);
        let mut in0 = vec![F::zero(); b * self.units[0]];
        self.convs[i0]
            .0
            .forward(&mut packs[i0], &h, &mut in0, b, &mut ctx);
        let mut sk = vec![F::zero(); b * self.units[0]];
        self.convs[SKIP]
            .0
            .forward(&mut packs[SKIP], &h, &mut sk, b, &mut ctx);
        [s, h, in0, sk]
    }

    fn check_batch(&self, x: &[F], labels: &[u8]) -> Result<usize> {
        let a = &self.arch;
        let d = a.img_channels * a.img_size * a.img_size;
        let b = labels.len();
        if b == 0 || x.len() != b * d {
            return Err(Error::invalid(
                "batch",
                format!("{} values for {b} images of {d}", x.len()),
            ));
        }
        Ok(b)
    }

    /// A forward pass without gradients (evaluation): the result at the last stimulus state
    /// (groups of 32 samples in parallel).
    pub fn evaluate(
        &self,
        x: &[F],
        labels: &[u8],
        slope: f64,
        proto: &StimulusProtocol,
    ) -> Result<PassResult> {
        use rayon::prelude::*;
        let b = self.check_batch(x, labels)?;
        let d = x.len() / b;
        let groups: Vec<(usize, usize)> = (0..b)
            .step_by(32)
            .map(|b0| (b0, (b0 + 32).min(b)))
            .collect();
        let parts = groups
            .par_iter()
            .map(|&(b0, b1)| self.evaluate_group(&x[b0 * d..b1 * d], &labels[b0..b1], slope, proto))
            .collect::<Result<Vec<_>>>()?;
        let mut acc = PassResult {
            loss: 0.0,
            cross_entropy: 0.0,
            stability: 0.0,
            correct: 0,
            logits: vec![],
        };
        for (r, &(b0, b1)) in parts.iter().zip(&groups) {
            let w = (b1 - b0) as f64 / b as f64;
            acc.loss += w * r.loss;
            acc.cross_entropy += w * r.cross_entropy;
            acc.correct += r.correct;
            acc.logits.extend_from_slice(&r.logits);
        }
        Ok(acc)
    }

    fn evaluate_group(
        &self,
        x: &[F],
        labels: &[u8],
        slope: f64,
        proto: &StimulusProtocol,
    ) -> Result<PassResult> {
        let b = self.check_batch(x, labels)?;
        let mut packs = self.packs();
        let [_, _, in0, sk] = self.stem(&mut packs, x, b);
        let zeros =
            |u: &[usize]| -> Vec<Vec<F>> { u.iter().map(|&n| vec![F::zero(); b * n]).collect() };
        let mut r = zeros(&self.units);
        let mut next = zeros(&self.units);
        let mut pre = zeros(&self.units);
        let mut u = zeros(&self.units);
        let mut tmp = vec![];
        let slope = F::c(slope);
        let stop = proto.spont + proto.stim;
        for t in 0..stop {
            let on = t >= proto.spont;
            self.step(
                &mut packs,
                &r,
                on,
                slope,
                (&in0, &sk),
                b,
                &mut next,
                &mut pre,
                &mut u,
                &mut tmp,
            );
            std::mem::swap(&mut r, &mut next);
        }
        let (mut feat, mut logits) = (vec![], vec![]);
        self.readout(&r, b, &mut feat, &mut logits);
        let (ce, correct) = softmax_cross_entropy(&logits, labels, self.arch.classes, None)?;
        Ok(PassResult {
            loss: ce,
            cross_entropy: ce,
            stability: 0.0,
            correct,
            logits: logits.iter().map(|v| v.f()).collect(),
        })
    }

    /// The training loss of a batch (ramp cross-entropy + λ S) without keeping its gradient.
    pub fn evaluate_loss(
        &self,
        x: &[F],
        labels: &[u8],
        slope: f64,
        proto: &StimulusProtocol,
    ) -> Result<f64> {
        Ok(self.clone().loss_grad(x, labels, slope, proto)?.loss)
    }

    /// The loss terms at state `t` (read-out cross-entropy on the ramp, the stability term in the
    /// window), added into `acc`, and their gradient with respect to the state added into `dr`.
    #[allow(clippy::too_many_arguments)]
    fn state_loss(
        &self,
        t: usize,
        r: &[Vec<F>],
        base: &[Vec<F>],
        dr: &mut [Vec<F>],
        labels: &[u8],
        proto: &StimulusProtocol,
        ramp: &[(usize, f64)],
        acc: &mut PassResult,
        grad: &mut [F],
    ) -> Result<()> {
        let l = self.arch.depth();
        let b = labels.len();
        let classes = self.arch.classes;
        if let Some(&(_, w)) = ramp.iter().find(|(s, _)| *s == t) {
            let (mut feat, mut logits) = (vec![], vec![]);
            self.readout(r, b, &mut feat, &mut logits);
            let mut dlog = vec![F::zero(); b * classes];
            let (lv, cc) = softmax_cross_entropy(&logits, labels, classes, Some(&mut dlog))?;
            acc.cross_entropy += w * lv;
            if t == proto.spont + proto.stim {
                acc.correct = cc;
                acc.logits = logits.iter().map(|v| v.f()).collect();
            }
            // Through the read-out: ∂L/∂feat = w·W_fcᵀ ∂CE/∂y, spread evenly over the grid, then
            // relu' of r_{L−1} and r_{L−2}.
            let tt = &self.layout.tensors;
            let wfc = &self.params[tt[tt.len() - 2].range()];
            let bfc = tt[tt.len() - 1].range();
            let wr = tt[tt.len() - 2].range();
            let c = self.arch.channels[l - 1];
            let plane = self.plane_last;
            for s in 0..b {
                for o in 0..classes {
                    let d = F::c(w) * dlog[s * classes + o];
                    grad[bfc.start + o] += d;
                    for j in 0..c {
                        grad[wr.start + o * c + j] += d * feat[s * c + j];
                    }
                }
                for ch in 0..c {
                    let mut g = F::zero();
                    for o in 0..classes {
                        g += wfc[o * c + ch] * dlog[s * classes + o];
                    }
                    let g = g * F::c(w / plane as f64);
                    let o0 = s * c * plane + ch * plane;
                    for k in [l - 1, l - 2] {
                        for q in o0..o0 + plane {
                            if r[k][q] > F::zero() {
                                dr[k][q] += g;
                            }
                        }
                    }
                }
            }
        }
        let window = proto.window_states();
        if window.contains(&t) {
            let wn = window.count() as f64;
            let cst = proto.stability / (l as f64 * wn);
            for k in 0..l {
                let m = (b * self.units[k]) as f64;
                let mut s2 = 0.0;
                for ((d, v), r0) in dr[k].iter_mut().zip(&r[k]).zip(&base[k]) {
                    let e = (*v - *r0).f();
                    s2 += e * e;
                    *d += F::c(cst * 2.0 * e / m);
                }
                acc.stability += s2 / m / (l as f64 * wn);
            }
        }
        Ok(())
    }

    /// Loss and gradient (into `self.grad`, overwritten) of one batch under `proto` at PReLU
    /// slope `slope`. The batch is split into fixed groups of [`crate::nn::CHUNK`] samples that
    /// run in parallel, their results summed in group order (the same bits whatever the thread
    /// count).
    pub fn loss_grad(
        &mut self,
        x: &[F],
        labels: &[u8],
        slope: f64,
        proto: &StimulusProtocol,
    ) -> Result<PassResult> {
        use rayon::prelude::*;
        proto.validate()?;
        let b = self.check_batch(x, labels)?;
        let d = x.len() / b;
        let parts = crate::nn::chunks(b)
            .par_iter()
            .map(|&(b0, b1)| {
                self.group_loss_grad(&x[b0 * d..b1 * d], &labels[b0..b1], slope, proto)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut acc = PassResult {
            loss: 0.0,
            cross_entropy: 0.0,
            stability: 0.0,
            correct: 0,
            logits: vec![],
        };
        self.grad.fill(F::zero());
        for ((r, g), &(b0, b1)) in parts.iter().zip(&crate::nn::chunks(b)) {
            let w = (b1 - b0) as f64 / b as f64;
            acc.loss += w * r.loss;
            acc.cross_entropy += w * r.cross_entropy;
            acc.stability += w * r.stability;
            acc.correct += r.correct;
            acc.logits.extend_from_slice(&r.logits);
            let wf = F::c(w);
            for (a, v) in self.grad.iter_mut().zip(g) {
                *a += wf * *v;
            }
        }
        Ok(acc)
    }

    /// [`Bptt::loss_grad`] of one group of samples, the gradient returned.
    fn group_loss_grad(
        &self,
        x: &[F],
        labels: &[u8],
        slope: f64,
        proto: &StimulusProtocol,
    ) -> Result<(PassResult, Vec<F>)> {
        let b = self.check_batch(x, labels)?;
        let l = self.arch.depth();
        let steps = proto.steps();
        let alpha = F::c(self.arch.alpha);
        let sl = F::c(slope);
        let mut packs = self.packs();
        let [s_out, h, in0, sk] = self.stem(&mut packs, x, b);
        let zeros =
            |u: &[usize]| -> Vec<Vec<F>> { u.iter().map(|&n| vec![F::zero(); b * n]).collect() };
        // The tape: states 0..=T, pre-activations and inputs of updates 0..T−1.
        let mut rs: Vec<Vec<Vec<F>>> = vec![zeros(&self.units)];
        let mut pres: Vec<Vec<Vec<F>>> = Vec::with_capacity(steps);
        let mut us: Vec<Vec<Vec<F>>> = Vec::with_capacity(steps);
        let mut tmp = vec![];
        let on = |t: usize| t >= proto.spont && t < proto.spont + proto.stim;
        for t in 0..steps {
            let mut next = zeros(&self.units);
            let mut pre = zeros(&self.units);
            let mut u = zeros(&self.units);
            self.step(
                &mut packs,
                &rs[t],
                on(t),
                sl,
                (&in0, &sk),
                b,
                &mut next,
                &mut pre,
                &mut u,
                &mut tmp,
            );
            rs.push(next);
            pres.push(pre);
            us.push(u);
        }
        // Backward sweep.
        let mut grad = vec![F::zero(); self.params.len()];
        let mut acc = PassResult {
            loss: 0.0,
            cross_entropy: 0.0,
            stability: 0.0,
            correct: 0,
            logits: vec![],
        };
        let mut gp: Vec<Vec<F>> = packs.iter().map(|p| vec![F::zero(); p.len()]).collect();
        let mut dr = zeros(&self.units);
        let mut dprev = zeros(&self.units);
        let mut da = zeros(&self.units);
        let mut g_in0 = vec![F::zero(); b * self.units[0]];
        let mut g_sk = vec![F::zero(); b * self.units[0]];
        let (mut e, mut dx, mut dx2) = (vec![], vec![], vec![]);
        let ctx = Ctx::default();
        // Through convolution ci backwards: ∂L/∂(its input) into `dx` (`len` values), its
        // weight gradient added to gp[ci].
        let conv_back =
            |ci: usize, x: &[F], dy: &[F], dx: &mut Vec<F>, len: usize, gp: &mut [Vec<F>]| {
                dx.resize(len, F::zero());
                let d = Back {
                    x,
                    y: &[],
                    dy,
                    dx: Some(dx),
                    g: &mut gp[ci],
                    b,
                };
                self.convs[ci].0.backward(&packs[ci], d, &ctx);
            };
        let bias_t = 2 + 2 * l;
        // The stability term's baseline (a constant: no gradient flows into it) and the ramp.
        let base = &rs[proto.spont];
        let ramp = proto.ramp_states();
        for t in (0..steps).rev() {
            self.state_loss(
                t + 1,
                &rs[t + 1],
                base,
                &mut dr,
                labels,
                proto,
                &ramp,
                &mut acc,
                &mut grad,
            )?;
            let (r, pre, u) = (&rs[t], &pres[t], &us[t]);
            da.iter_mut().flatten().for_each(|v| *v = F::zero());
            for k in 0..l {
                let n = self.units[k];
                e.clear();
                e.extend(pre[k].iter().zip(&dr[k]).map(|(&p, &d)| {
                    let dphi = if p > F::zero() { F::one() } else { sl };
                    alpha * dphi * d
                }));
                // Through K^rec.
                conv_back(self.rec(k), &r[k], &e, &mut dx, b * n, &mut gp);
                for ((p, d), x) in dprev[k].iter_mut().zip(&dr[k]).zip(&dx) {
                    *p = (F::one() - alpha) * *d + *x;
                }
                // The per-unit bias.
                let br = self.layout.tensors[bias_t + k].range();
                for row in e.chunks(n) {
                    for (g, v) in grad[br.clone()].iter_mut().zip(row) {
                        *g += *v;
                    }
                }
                if k == 0 {
                    if on(t) {
                        for (g, v) in g_in0.iter_mut().zip(&e) {
                            *g += *v;
                        }
                    }
                    continue;
                }
                // Through K^in_k into u_k, then to the layers u_k reads.
                conv_back(
                    self.inp(k),
                    &u[k],
                    &e,
                    &mut dx,
                    b * self.units[k - 1],
                    &mut gp,
                );
                for (a, v) in da[k - 1].iter_mut().zip(&dx) {
                    *a += *v;
                }
                if k == 1 {
                    if on(t) {
                        for (g, v) in g_sk.iter_mut().zip(&dx) {
                            *g += *v;
                        }
                    }
                } else if k % 2 == 0 {
                    for (a, v) in da[k - 2].iter_mut().zip(&dx) {
                        *a += *v;
                    }
                } else {
                    let pi = self.proj(k).expect("odd layers ≥ 3 have projections");
                    let act: Vec<F> = r[k - 2].iter().map(|v| v.max(F::zero())).collect();
                    conv_back(pi, &act, &dx, &mut dx2, b * self.units[k - 2], &mut gp);
                    for (a, v) in da[k - 2].iter_mut().zip(&dx2) {
                        *a += *v;
                    }
                }
            }
            for k in 0..l {
                for ((p, a), rv) in dprev[k].iter_mut().zip(&da[k]).zip(&r[k]) {
                    if *rv > F::zero() {
                        *p += *a;
                    }
                }
            }
            std::mem::swap(&mut dr, &mut dprev);
        }
        // The stem: h feeds K^in_0 and K_skip; then the pool and the stem convolution.
        let hl = h.len();
        let mut dh = vec![F::zero(); hl];
        for (ci, g) in [(self.inp(0), &g_in0), (SKIP, &g_sk)] {
            conv_back(ci, &h, g, &mut dx, hl, &mut gp);
            for (a, v) in dh.iter_mut().zip(&dx) {
                *a += *v;
            }
        }
        let mut ds = vec![F::zero(); s_out.len()];
        self.pool.backward(
            &[],
            Back {
                x: &s_out,
                y: &h,
                dy: &dh,
                dx: Some(&mut ds),
                g: &mut [],
                b,
            },
            &ctx,
        );
        self.convs[STEM].0.backward(
            &packs[STEM],
            Back {
                x,
                y: &[],
                dy: &ds,
                dx: None,
                g: &mut gp[STEM],
                b,
            },
            &ctx,
        );
        for ((_, t), g) in self.convs.iter().zip(&gp) {
            let range = self.layout.tensors[*t].range();
            let n = range.len();
            for (a, v) in grad[range].iter_mut().zip(&g[..n]) {
                *a += *v;
            }
        }
        acc.loss = acc.cross_entropy + proto.stability * acc.stability;
        Ok((acc, grad))
    }
}
