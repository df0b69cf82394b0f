//! Training on the CPU in f64 (the reference the GPU trainer will be checked against): the leaky
//! rate RNN with Dale's law of Kim, Li & Sejnowski 2019 (spiking.md §B.2) trained by
//! backpropagation through time with Adam on the Go/NoGo task (§B.3).
//!
//! Discrete dynamics (one step = 5 ms, t = 1..T−1), α = 1/τ:
//!
//! $$ x_t = (1 - α) \odot x_{t-1} + α \odot (W r_{t-1} + W_{in} u_{t-1}) + ξ_t,\quad r_t = σ(x_t),\quad
//!    o_t = w_{out} \cdot r_t + b_{out}, $$
//!
//! with $W = \operatorname{relu}(\tilde W)\,\mathrm{diag}(d)$ (Dale's law, d = ±1 by sending unit),
//! $τ_i = τ_{min} + (τ_{max} - τ_{min})\,σ(γ_i)$ learned through γ, ξ ~ N(0, 0.1²). Loss: mean
//! squared error of o_t against the target z_t over the trial (o_t paired with z_t, spiking.md §B.7.1).
//! The backward pass is derived by hand (the model's Jacobian-transpose products plus the parameter
//! derivatives) and checked against finite differences in the tests.
//!
//! Not here yet (issue 7): the other cells (gamma, ANRU, ORGaNICs), the other tasks, the wgpu
//! trainer, checkpoints and the `train` binary.

use crate::error::{Error, Result};
use crate::model::activation::sigmoid;
use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// Trainable parameters of the Dale rate RNN.
#[derive(Debug, Clone, PartialEq)]
pub struct RateParams {
    /// W̃ (N×N); the effective W = relu(W̃)·diag(d).
    pub w_raw: Mat<f64>,
    /// w_out (N).
    pub w_out: Vec<f64>,
    pub b_out: f64,
    /// γ (N): τ_i = τ_min + (τ_max − τ_min) σ(γ_i).
    pub gamma: Vec<f64>,
}

/// Fixed parts of the network.
#[derive(Debug, Clone, PartialEq)]
pub struct RateNet {
    pub params: RateParams,
    /// Dale signs d (±1 per sending unit).
    pub dale: Vec<f64>,
    /// W_in (N × N_in), not trained.
    pub w_in: Mat<f64>,
    pub tau_min: f64,
    pub tau_max: f64,
    /// Recurrent noise std per step (0.1 in the paper).
    pub noise: f64,
}

impl RateNet {
    /// spiking.md §B.2 initialisation: 20 % inhibitory units, connection probability 0.2,
    /// W̃ = |gain N(0,1)/√(N p)| (gain 1.5), W_in ~ N(0, 1), w_out ~ N(0, 1)/100, γ ~ N(0, 1).
    pub fn init(n: usize, n_in: usize, tau: (f64, f64), seed: u64) -> Result<Self> {
        if n == 0 || n_in == 0 {
            return Err(Error::invalid(
                "hidden",
                "the network needs at least one unit and one input",
            ));
        }
        if !(tau.0 > 1.0 && tau.1 >= tau.0) {
            return Err(Error::invalid(
                "tau",
                format!("{:?}: need 1 < τ_min ≤ τ_max (in steps)", tau),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = 0.2;
        let scale = 1.5 / ((n as f64) * p).sqrt();
        let dale: Vec<f64> = (0..n)
            .map(|_| if rng.random::<f64>() < 0.2 { -1.0 } else { 1.0 })
            .collect();
        let normal = move |rng: &mut ChaCha8Rng| -> f64 { StandardNormal.sample(rng) };
        let w_raw = Mat::from_fn(n, n, |_, _| {
            let z = normal(&mut rng);
            if rng.random::<f64>() < p {
                (scale * z).abs()
            } else {
                0.0
            }
        });
        let w_in = Mat::from_fn(n, n_in, |_, _| normal(&mut rng));
        let w_out = (0..n).map(|_| normal(&mut rng) / 100.0).collect();
        let gamma = (0..n).map(|_| normal(&mut rng)).collect();
        Ok(RateNet {
            params: RateParams {
                w_raw,
                w_out,
                b_out: 0.0,
                gamma,
            },
            dale,
            w_in,
            tau_min: tau.0,
            tau_max: tau.1,
            noise: 0.1,
        })
    }

    pub fn n(&self) -> usize {
        self.dale.len()
    }

    /// The effective recurrent matrix relu(W̃)·diag(d).
    pub fn w(&self) -> Mat<f64> {
        let n = self.n();
        Mat::from_fn(n, n, |i, j| {
            self.dale[j] * self.params.w_raw[(i, j)].max(0.0)
        })
    }

    /// α_i = 1/τ_i.
    pub fn alpha(&self) -> Vec<f64> {
        self.params
            .gamma
            .iter()
            .map(|&g| 1.0 / (self.tau_min + (self.tau_max - self.tau_min) * sigmoid(g)))
            .collect()
    }

    /// Runs a trial (inputs `u`: T rows of N_in, row t = u_t); returns the outputs o_1..o_{T−1}
    /// and, when asked, the states x_0..x_{T−1}. `noise_seed` seeds ξ (None: no noise).
    pub fn forward(
        &self,
        u: &[Vec<f64>],
        noise_seed: Option<u64>,
        keep: bool,
    ) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n = self.n();
        let w = self.w();
        let alpha = self.alpha();
        let mut rng = noise_seed.map(ChaCha8Rng::seed_from_u64);
        let mut x = vec![0.0; n];
        if let Some(r) = rng.as_mut() {
            for v in x.iter_mut() {
                let z: f64 = StandardNormal.sample(r);
                *v = z / 100.0;
            }
        }
        let mut xs = if keep { vec![x.clone()] } else { vec![] };
        let mut out = Vec::with_capacity(u.len().saturating_sub(1));
        let mut r = vec![0.0; n];
        let mut drive = vec![0.0; n];
        for t in 1..u.len() {
            for i in 0..n {
                r[i] = sigmoid(x[i]);
            }
            drive.fill(0.0);
            crate::model::kernels::gemv_add(w.as_ref(), &r, &mut drive);
            crate::model::kernels::gemv_add(self.w_in.as_ref(), &u[t - 1], &mut drive);
            for i in 0..n {
                x[i] = (1.0 - alpha[i]) * x[i] + alpha[i] * drive[i];
                if let Some(g) = rng.as_mut() {
                    let z: f64 = StandardNormal.sample(g);
                    x[i] += self.noise * z;
                }
            }
            let o: f64 = (0..n)
                .map(|i| self.params.w_out[i] * sigmoid(x[i]))
                .sum::<f64>()
                + self.params.b_out;
            out.push(o);
            if keep {
                xs.push(x.clone());
            }
        }
        (out, xs)
    }

    /// Loss (mean squared error of o_t − z_t, t = 1..T−1) and its gradient by BPTT.
    pub fn loss_and_grad(
        &self,
        u: &[Vec<f64>],
        z: &[f64],
        noise_seed: Option<u64>,
    ) -> (f64, RateParams) {
        let n = self.n();
        let tlen = u.len();
        let (o, xs) = self.forward(u, noise_seed, true);
        let w = self.w();
        let alpha = self.alpha();
        let m = (tlen - 1) as f64;
        let loss = o
            .iter()
            .zip(&z[1..])
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / m;
        let mut g = RateParams {
            w_raw: Mat::zeros(n, n),
            w_out: vec![0.0; n],
            b_out: 0.0,
            gamma: vec![0.0; n],
        };
        let mut g_w = Mat::<f64>::zeros(n, n);
        let mut g_alpha = vec![0.0; n];
        // dx_next = ∂L/∂x_{t+1} (already including everything downstream).
        let mut dx_next = vec![0.0; n];
        let mut r = vec![0.0; n];
        let mut drive = vec![0.0; n];
        for t in (1..tlen).rev() {
            // x_t = xs[t]; o_t = o[t−1].
            let x = &xs[t];
            let dout = 2.0 * (o[t - 1] - z[t]) / m;
            g.b_out += dout;
            let mut dx = vec![0.0; n];
            for i in 0..n {
                let s = sigmoid(x[i]);
                g.w_out[i] += dout * s;
                // From o_t through r_t, and from x_{t+1} through the leak.
                dx[i] = dout * self.params.w_out[i] * s * (1.0 - s);
                if t + 1 < tlen {
                    dx[i] += (1.0 - alpha[i]) * dx_next[i];
                }
            }
            if t + 1 < tlen {
                // From x_{t+1} through r_t = σ(x_t): Wᵀ (α ⊙ dx_next) ⊙ σ'(x_t).
                let a_dx: Vec<f64> = (0..n).map(|i| alpha[i] * dx_next[i]).collect();
                let mut back = vec![0.0; n];
                crate::model::kernels::gemv_add(w.transpose(), &a_dx, &mut back);
                for i in 0..n {
                    let s = sigmoid(x[i]);
                    dx[i] += back[i] * s * (1.0 - s);
                }
            }
            // Parameter gradients of the step x_{t−1} → x_t: ∂x_t/∂W_ij = α_i r_{t−1,j},
            // ∂x_t/∂α_i = −x_{t−1,i} + (W r_{t−1} + W_in u_{t−1})_i.
            let xp = &xs[t - 1];
            for i in 0..n {
                r[i] = sigmoid(xp[i]);
            }
            drive.fill(0.0);
            crate::model::kernels::gemv_add(w.as_ref(), &r, &mut drive);
            crate::model::kernels::gemv_add(self.w_in.as_ref(), &u[t - 1], &mut drive);
            for i in 0..n {
                g_alpha[i] += dx[i] * (drive[i] - xp[i]);
                let c = dx[i] * alpha[i];
                if c != 0.0 {
                    for j in 0..n {
                        g_w[(i, j)] += c * r[j];
                    }
                }
            }
            dx_next = dx;
        }
        // Through W = relu(W̃)·diag(d) (relu'(0) = 0, spiking.md §B.7.7) and α = 1/τ(γ).
        for j in 0..n {
            for i in 0..n {
                g.w_raw[(i, j)] = if self.params.w_raw[(i, j)] > 0.0 {
                    g_w[(i, j)] * self.dale[j]
                } else {
                    0.0
                };
            }
        }
        let dt = self.tau_max - self.tau_min;
        for i in 0..n {
            let s = sigmoid(self.params.gamma[i]);
            let tau = self.tau_min + dt * s;
            g.gamma[i] = g_alpha[i] * (-dt * s * (1.0 - s) / (tau * tau));
        }
        (loss, g)
    }
}

/// One Go/NoGo trial (spiking.md §B.3): T = 200 steps; Go (prob. 0.5): u = 1 on steps 50..74 and
/// target 1 on steps 75..199; NoGo: no input, target 0. Returns (u rows, target, is_go).
pub fn go_nogo_trial(rng: &mut ChaCha8Rng) -> (Vec<Vec<f64>>, Vec<f64>, bool) {
    let go = rng.random::<bool>();
    let u = (0..200)
        .map(|t| {
            vec![if go && (50..75).contains(&t) {
                1.0
            } else {
                0.0
            }]
        })
        .collect();
    let z = (0..200)
        .map(|t| if go && t >= 75 { 1.0 } else { 0.0 })
        .collect();
    (u, z, go)
}

/// The Go/NoGo criterion on outputs o_1..o_{199} (o[k] is the output at step k + 1): Go correct if
/// max(o over steps ≥ 75) > 0.7, NoGo if max |o| there < 0.3.
pub fn go_nogo_correct(o: &[f64], go: bool) -> bool {
    let tail = &o[74..];
    if go {
        tail.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v)) > 0.7
    } else {
        tail.iter().fold(0.0f64, |m, v| m.max(v.abs())) < 0.3
    }
}

/// Adam (Kingma & Ba) over the flattened parameters.
#[derive(Debug, Clone)]
pub struct Adam {
    pub lr: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            m: vec![],
            v: vec![],
            t: 0,
        }
    }

    fn flat(p: &RateParams) -> Vec<f64> {
        let n = p.w_out.len();
        let mut v: Vec<f64> = (0..n * n).map(|k| p.w_raw[(k % n, k / n)]).collect();
        v.extend_from_slice(&p.w_out);
        v.push(p.b_out);
        v.extend_from_slice(&p.gamma);
        v
    }

    fn unflat(p: &mut RateParams, v: &[f64]) {
        let n = p.w_out.len();
        for k in 0..n * n {
            p.w_raw[(k % n, k / n)] = v[k];
        }
        p.w_out.copy_from_slice(&v[n * n..n * n + n]);
        p.b_out = v[n * n + n];
        p.gamma.copy_from_slice(&v[n * n + n + 1..]);
    }

    /// One update of `p` with gradient `g` (β₁ = 0.9, β₂ = 0.999, ε = 1e-8).
    pub fn step(&mut self, p: &mut RateParams, g: &RateParams) {
        let (mut x, gv) = (Self::flat(p), Self::flat(g));
        if self.m.is_empty() {
            self.m = vec![0.0; x.len()];
            self.v = vec![0.0; x.len()];
        }
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for k in 0..x.len() {
            self.m[k] = b1 * self.m[k] + (1.0 - b1) * gv[k];
            self.v[k] = b2 * self.v[k] + (1.0 - b2) * gv[k] * gv[k];
            x[k] -= self.lr * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + 1e-8);
        }
        Self::unflat(p, &x);
    }
}

/// Trains on Go/NoGo with minibatches (gradients averaged, trials in parallel with rayon; each
/// trial's noise seeded from (seed, iteration, index), so the run is reproducible whatever the
/// thread count). Returns the loss per iteration.
pub fn train_go_nogo(
    net: &mut RateNet,
    iterations: usize,
    batch: usize,
    lr: f64,
    seed: u64,
) -> Vec<f64> {
    let mut adam = Adam::new(lr);
    let mut task_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut losses = vec![];
    for it in 0..iterations {
        let trials: Vec<_> = (0..batch).map(|_| go_nogo_trial(&mut task_rng)).collect();
        let results: Vec<(f64, RateParams)> = trials
            .par_iter()
            .enumerate()
            .map(|(k, (u, z, _))| {
                net.loss_and_grad(u, z, Some(crate::sweep::trial_seed(seed, it, k, 0)))
            })
            .collect();
        let n = net.n();
        let mut g = RateParams {
            w_raw: Mat::zeros(n, n),
            w_out: vec![0.0; n],
            b_out: 0.0,
            gamma: vec![0.0; n],
        };
        let mut loss = 0.0;
        for (l, gi) in &results {
            loss += l / batch as f64;
            g.w_raw += &gi.w_raw * faer::Scale(1.0 / batch as f64);
            for i in 0..n {
                g.w_out[i] += gi.w_out[i] / batch as f64;
                g.gamma[i] += gi.gamma[i] / batch as f64;
            }
            g.b_out += gi.b_out / batch as f64;
        }
        adam.step(&mut net.params, &g);
        losses.push(loss);
    }
    losses
}

/// Fraction of `trials` fresh Go/NoGo trials (with noise) answered correctly.
pub fn go_nogo_accuracy(net: &RateNet, trials: usize, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let set: Vec<_> = (0..trials).map(|_| go_nogo_trial(&mut rng)).collect();
    let ok = set
        .par_iter()
        .enumerate()
        .filter(|(k, (u, _, go))| {
            let (o, _) = net.forward(
                u,
                Some(crate::sweep::trial_seed(seed, 1 << 30, *k, 1)),
                false,
            );
            go_nogo_correct(&o, *go)
        })
        .count();
    ok as f64 / trials as f64
}
