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
//! The general engine (any [`cell::Cell`] with a linear read-out, f64 or f32, class or trajectory
//! losses) is [`net::SeqNet`]; the digits data are in [`data`], the GPU trainer in [`gpu`].

pub mod cell;
pub mod data;
pub mod net;
pub mod real;

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
                // (Wᵀ v)_i = column i of W · v (contiguous in column-major storage).
                let back: Vec<f64> = (0..n)
                    .map(|i| w.col(i).iter().zip(&a_dx).map(|(a, b)| a * b).sum())
                    .collect();
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
            }
            // g_W += (α ⊙ δ_t) r_{t−1}ᵀ, column by column (contiguous).
            let c: Vec<f64> = (0..n).map(|i| dx[i] * alpha[i]).collect();
            for j in 0..n {
                let rj = r[j];
                for (g, ci) in g_w.col_mut(j).iter_mut().zip(&c) {
                    *g += ci * rj;
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

/// The tasks of spiking.md §B.3 (one step = 5 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// T = 200, one input; Go (u = 1 on steps 50..74) → output 1 from step 75, NoGo → 0.
    GoNoGo,
    /// T = 300, two inputs: s1 on steps 50..99, s2 on 110..159 (±1 each); target ±1 (same/different)
    /// on steps 170..269.
    Xor,
    /// T = 500, four inputs: two noisy modalities N(0,1) + μ_m (μ_m = ±0.5) on steps 50..249 and a
    /// context (u[2] or u[3] = 1); target sign(μ of the cued modality) from step 250.
    Mante,
}

/// A trial: inputs (T rows of N_in), target (T), and the label the criterion needs
/// (Go/NoGo: 1 = Go; XOR and Mante: ±1).
pub type Trial = (Vec<Vec<f64>>, Vec<f64>, f64);

impl std::str::FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "go-nogo" => Ok(Task::GoNoGo),
            "xor" => Ok(Task::Xor),
            "mante" | "context" => Ok(Task::Mante),
            _ => Err(Error::invalid("task", format!("unknown task `{s}` (go-nogo, xor or mante; the digits tasks are not implemented yet)"))),
        }
    }
}

impl Task {
    /// Number of inputs.
    pub fn n_in(self) -> usize {
        match self {
            Task::GoNoGo => 1,
            Task::Xor => 2,
            Task::Mante => 4,
        }
    }

    /// Draws a trial.
    pub fn trial(self, rng: &mut ChaCha8Rng) -> Trial {
        match self {
            Task::GoNoGo => {
                let (u, z, go) = go_nogo_trial(rng);
                (u, z, if go { 1.0 } else { 0.0 })
            }
            Task::Xor => {
                let s1 = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let s2 = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let label = s1 * s2;
                let u = (0..300)
                    .map(|t| {
                        vec![
                            if (50..100).contains(&t) { s1 } else { 0.0 },
                            if (110..160).contains(&t) { s2 } else { 0.0 },
                        ]
                    })
                    .collect();
                let z = (0..300)
                    .map(|t| if (170..270).contains(&t) { label } else { 0.0 })
                    .collect();
                (u, z, label)
            }
            Task::Mante => {
                let mu: [f64; 2] = [
                    if rng.random::<bool>() { 0.5 } else { -0.5 },
                    if rng.random::<bool>() { 0.5 } else { -0.5 },
                ];
                let cue = usize::from(rng.random::<bool>());
                let label = mu[cue].signum();
                let u = (0..500)
                    .map(|t| {
                        let mut row = vec![0.0; 4];
                        if (50..250).contains(&t) {
                            for m in 0..2 {
                                let z: f64 = StandardNormal.sample(rng);
                                row[m] = z + mu[m];
                            }
                        }
                        row[2 + cue] = 1.0;
                        row
                    })
                    .collect();
                let z = (0..500)
                    .map(|t| if t >= 250 { label } else { 0.0 })
                    .collect();
                (u, z, label)
            }
        }
    }

    /// The paper's criterion on outputs o_1..o_{T−1} (o[k] is the output at step k + 1).
    pub fn correct(self, o: &[f64], label: f64) -> bool {
        let max = |s: &[f64]| s.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
        let min = |s: &[f64]| s.iter().fold(f64::INFINITY, |m, v| m.min(*v));
        match self {
            Task::GoNoGo => go_nogo_correct(o, label > 0.5),
            // XOR: judged from step 200 on; Mante: over the last 200 steps.
            Task::Xor | Task::Mante => {
                let tail = if self == Task::Xor {
                    &o[199..]
                } else {
                    &o[o.len() - 200..]
                };
                if label > 0.0 {
                    max(tail) > 0.7
                } else {
                    min(tail) < -0.7
                }
            }
        }
    }
}

/// Fraction of `trials` fresh trials of `task` (with noise) answered correctly.
pub fn accuracy(net: &RateNet, task: Task, trials: usize, seed: u64) -> f64 {
    let ok = (0..trials)
        .into_par_iter()
        .filter(|&k| {
            let (u, _, label) = task.trial(&mut ChaCha8Rng::seed_from_u64(
                crate::sweep::trial_seed(seed, 1 << 30, k, 3),
            ));
            let (o, _) = net.forward(
                &u,
                Some(crate::sweep::trial_seed(seed, 1 << 30, k, 1)),
                false,
            );
            task.correct(&o, label)
        })
        .count();
    ok as f64 / trials as f64
}

/// Adam (Kingma & Ba) over the flattened parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    pub t: i32,
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

    /// One update of a flat parameter vector (entries with `train[k] == false` are left alone).
    pub fn step_flat<F: real::Real>(&mut self, p: &mut [F], g: &[F], train: &[bool]) {
        if self.m.len() != p.len() {
            self.m = vec![0.0; p.len()];
            self.v = vec![0.0; p.len()];
        }
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for k in 0..p.len() {
            if !train[k] {
                continue;
            }
            let gk = g[k].f();
            self.m[k] = b1 * self.m[k] + (1.0 - b1) * gk;
            self.v[k] = b2 * self.v[k] + (1.0 - b2) * gk * gk;
            let x = p[k].f() - self.lr * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + 1e-8);
            p[k] = F::c(x);
        }
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
    (0..iterations)
        .map(|it| train_step(net, &mut adam, it, batch, seed))
        .collect()
}

/// One minibatch update at iteration `it` (its trials and noise depend only on (seed, it), so a
/// run resumed from a checkpoint continues bit for bit). Returns the minibatch loss.
pub fn train_step(net: &mut RateNet, adam: &mut Adam, it: usize, batch: usize, seed: u64) -> f64 {
    train_task_step(net, Task::GoNoGo, adam, it, batch, seed)
}

/// [`train_step`] for any [`Task`].
pub fn train_task_step(
    net: &mut RateNet,
    task: Task,
    adam: &mut Adam,
    it: usize,
    batch: usize,
    seed: u64,
) -> f64 {
    {
        let trials: Vec<_> = (0..batch)
            .map(|k| {
                task.trial(&mut ChaCha8Rng::seed_from_u64(crate::sweep::trial_seed(
                    seed, it, k, 2,
                )))
            })
            .collect();
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
        loss
    }
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

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes the network (and the optimiser state) as safetensors, atomically. Tensor names (all
/// float64, row-major): `W_raw` [N, N], `W` [N, N] (effective, after Dale's law), `dale` [N],
/// `W_in` [N, N_in], `w_out` [N], `b_out` [1], `gamma` [N], `tau` [N] (steps), and
/// `adam_m`, `adam_v` [P], `adam_t` [1]; metadata `tau_min`, `tau_max`, `noise`.
pub fn save_checkpoint(net: &RateNet, adam: &Adam, path: &std::path::Path) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let n = net.n();
    let m_in = net.w_in.ncols();
    let row_major = |m: &Mat<f64>| -> Vec<f64> {
        (0..m.nrows())
            .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
            .collect()
    };
    let tau: Vec<f64> = net.alpha().iter().map(|a| 1.0 / a).collect();
    let adam_t = [adam.t as f64];
    let b_out = [net.params.b_out];
    let entries: Vec<(&str, Vec<usize>, Vec<u8>)> = vec![
        (
            "W_raw",
            vec![n, n],
            f64_bytes(&row_major(&net.params.w_raw)),
        ),
        ("W", vec![n, n], f64_bytes(&row_major(&net.w()))),
        ("dale", vec![n], f64_bytes(&net.dale)),
        ("W_in", vec![n, m_in], f64_bytes(&row_major(&net.w_in))),
        ("w_out", vec![n], f64_bytes(&net.params.w_out)),
        ("b_out", vec![1], f64_bytes(&b_out)),
        ("gamma", vec![n], f64_bytes(&net.params.gamma)),
        ("tau", vec![n], f64_bytes(&tau)),
        ("adam_m", vec![adam.m.len()], f64_bytes(&adam.m)),
        ("adam_v", vec![adam.v.len()], f64_bytes(&adam.v)),
        ("adam_t", vec![1], f64_bytes(&adam_t)),
    ];
    let views: Vec<(String, TensorView)> = entries
        .iter()
        .map(|(name, shape, data)| {
            Ok((
                name.to_string(),
                TensorView::new(Dtype::F64, shape.clone(), data)
                    .map_err(|e| Error::invalid("checkpoint", e.to_string()))?,
            ))
        })
        .collect::<Result<_>>()?;
    let meta: std::collections::HashMap<String, String> = [
        ("tau_min", net.tau_min),
        ("tau_max", net.tau_max),
        ("noise", net.noise),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), format!("{v:?}")))
    .collect();
    let bytes = safetensors::serialize(views, &Some(meta))
        .map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
    crate::io::write_atomic(path, |w| {
        std::io::Write::write_all(w, &bytes).map_err(|e| Error::file(path, e))
    })
}

/// Reads a checkpoint written by [`save_checkpoint`] (or by PyTorch with the same tensor names
/// and float64 dtype); every tensor's dtype and shape is checked.
pub fn load_checkpoint(path: &std::path::Path) -> Result<(RateNet, Adam)> {
    use safetensors::tensor::Dtype;
    let bytes = std::fs::read(path).map_err(|e| {
        Error::invalid("checkpoint", format!("cannot read {}: {e}", path.display()))
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::invalid(
            "checkpoint",
            format!("{}: not a safetensors file ({e})", path.display()),
        )
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
    let get = |name: &str, shape: Option<&[usize]>| -> Result<(Vec<usize>, Vec<f64>)> {
        let t = st.tensor(name).map_err(|_| {
            Error::invalid(
                "checkpoint",
                format!("{}: tensor `{name}` is missing", path.display()),
            )
        })?;
        if t.dtype() != Dtype::F64 {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "{}: tensor `{name}` is {:?}, expected F64",
                    path.display(),
                    t.dtype()
                ),
            ));
        }
        if let Some(s) = shape {
            if t.shape() != s {
                return Err(Error::invalid(
                    "checkpoint",
                    format!(
                        "{}: tensor `{name}` has shape {:?}, expected {:?}",
                        path.display(),
                        t.shape(),
                        s
                    ),
                ));
            }
        }
        let v: Vec<f64> = t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        crate::error::ensure_finite(&format!("checkpoint tensor {name}"), &v)?;
        Ok((t.shape().to_vec(), v))
    };
    let (ds, dale) = get("dale", None)?;
    let n = ds.first().copied().unwrap_or(0);
    if n == 0 {
        return Err(Error::invalid("checkpoint", "empty network"));
    }
    let (_, w_raw) = get("W_raw", Some(&[n, n]))?;
    let (wis, w_in) = get("W_in", None)?;
    if wis.len() != 2 || wis[0] != n {
        return Err(Error::invalid(
            "checkpoint",
            format!("tensor `W_in` has shape {wis:?}, expected [{n}, N_in]"),
        ));
    }
    let (_, w_out) = get("w_out", Some(&[n]))?;
    let (_, b_out) = get("b_out", Some(&[1]))?;
    let (_, gamma) = get("gamma", Some(&[n]))?;
    let meta_f = |k: &str| -> Result<f64> {
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| {
                Error::invalid(
                    "checkpoint",
                    format!("metadata `{k}` missing or not a number"),
                )
            })
    };
    let net = RateNet {
        params: RateParams {
            w_raw: Mat::from_fn(n, n, |i, j| w_raw[i * n + j]),
            w_out,
            b_out: b_out[0],
            gamma,
        },
        dale,
        w_in: Mat::from_fn(n, wis[1], |i, j| w_in[i * wis[1] + j]),
        tau_min: meta_f("tau_min")?,
        tau_max: meta_f("tau_max")?,
        noise: meta_f("noise")?,
    };
    let adam = match (
        get("adam_m", None),
        get("adam_v", None),
        get("adam_t", Some(&[1])),
    ) {
        (Ok((_, m)), Ok((_, v)), Ok((_, t))) => Adam {
            lr: 0.0,
            m,
            v,
            t: t[0] as i32,
        },
        _ => Adam::new(0.0),
    };
    Ok((net, adam))
}

impl RateNet {
    /// The trained network as a continuous model for analysis: τ ⊙ dx/dt = −x + W σ(x) (time in
    /// steps, input off), ready for `fixed-points`, `lyapunov`, `simulate`.
    pub fn to_model(&self) -> Result<crate::model::RateRnn> {
        crate::model::RateRnn::new(self.w(), crate::model::Activation::Sigmoid)?
            .with_tau(self.alpha().iter().map(|a| 1.0 / a).collect())
    }
}
