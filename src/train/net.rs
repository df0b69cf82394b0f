//! A recurrent cell plus a linear read-out, trained by backpropagation through time on batches of
//! sequences, in f64 or f32 on the CPU.
//!
//! Sequences: inputs u_0..u_{T−1}; s_{t+1} = f(s_t, u_t) from the cell's s₀; read-out
//! o_t = W_out φ(s_{t+1}[..N]) + b_out (φ: the cell's feature map, e.g. r = σ(x) for the rate cell).
//! Losses (mean over the batch):
//! - [`Targets::Class`]: cross-entropy of softmax(o_{T−1}) against a label (the digits tasks);
//! - [`Targets::Trajectory`]: (1/T) Σ_t ‖o_t − z_t‖² ([`TrajLoss::MeanSquare`], the default), or Kim,
//!   Li & Sejnowski's (2019) per-trial √(Σ_t ‖o_t − z_t‖²) ([`TrajLoss::RootSum`]), for the rate-network tasks.
//!
//! A minibatch is split into fixed chunks of [`CHUNK`] trials that run in parallel with rayon, each
//! chunk batched through the cell's matrix products; the chunks' gradients are summed in a fixed
//! order, so a seed gives the same bits whatever the thread count.

use crate::data::{Batch, Targets};
use crate::error::{Error, Result};
use crate::tensor::real::{cm, cm_mut, rm, rm_mut, Real, Scratch};
use crate::tensor::Layout;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{MatMut, MatRef};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// What one step of a cell reads: the parameters θ, the prepared quantities ([`Cell::prepare`]),
/// the states s (S × B, one column per trial) and the inputs u (N_in × B).
pub struct StepIn<'a, F, P> {
    pub p: &'a [F],
    pub prep: &'a P,
    pub s: MatRef<'a, F>,
    pub u: MatRef<'a, F>,
}

/// What one backward step reads and writes: the state error of the next step `dn` = ∂L/∂s_{t+1}
/// (S × B), the state error it overwrites, `ds` = ∂L/∂s_t, and the parameter gradient it adds to.
pub struct StepBack<'a, F> {
    pub dn: MatRef<'a, F>,
    pub ds: MatMut<'a, F>,
    pub g: &'a mut [F],
}

/// A trainable recurrent cell. `s`, `ds`: state batches `S × B`; `u`: inputs `N_in × B`;
/// `p`: the flat parameters, `g`: their gradient (accumulated).
pub trait Cell<F: Real>: Send + Sync {
    /// Derived quantities computed once per forward/backward pass (effective weights, rates).
    type Prep: Send + Sync;
    fn name(&self) -> &'static str;
    /// Units N (the read-out reads the first N state entries).
    fn hidden(&self) -> usize;
    /// State size S.
    fn state_dim(&self) -> usize;
    fn n_in(&self) -> usize;
    fn layout(&self) -> &Layout;
    fn prepare(&self, p: &[F]) -> Self::Prep;
    /// The initial state s₀ (one column of length S, the same for every trial; zero unless the
    /// cell learns it).
    fn init_state(&self, _p: &[F], s0: &mut [F]) {
        s0.fill(F::zero());
    }
    /// `out` = f(s, u). `ws` holds the temporaries (reused from step to step).
    fn step(&self, x: StepIn<'_, F, Self::Prep>, out: MatMut<F>, ws: &mut Scratch<F>);
    /// `back.ds` = (∂f/∂s)ᵀ `back.dn` (overwritten); `back.g` += (∂f/∂θ)ᵀ `back.dn`,
    /// before [`Cell::finish_grad`].
    fn step_back(&self, x: StepIn<'_, F, Self::Prep>, back: StepBack<'_, F>, ws: &mut Scratch<F>);
    /// Maps gradients accumulated with respect to derived quantities (effective W, α, κ) onto
    /// the raw parameters, once per pass (the maps are linear and constant over the sequence).
    fn finish_grad(&self, _p: &[F], _g: &mut [F]) {}
    /// Projects the parameters back onto the cell's constraint set after an optimiser step
    /// (nothing unless the cell has a constraint).
    fn project(&self, _p: &mut [F]) {}
    /// The read-out feature of a state entry and its derivative (identity unless overridden).
    #[inline]
    fn feature(&self, x: F) -> (F, F) {
        (x, F::one())
    }
}

/// Trials per parallel chunk (fixed, so results do not depend on the thread count).
pub const CHUNK: usize = 16;

/// The loss on trajectory targets (per trial, then the batch mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrajLoss {
    /// (1/T) Σ_t ‖o_t − z_t‖².
    #[default]
    MeanSquare,
    /// √(Σ_t ‖o_t − z_t‖²): Kim, Li & Sejnowski (2019), the square root of a sum, not of a mean.
    RootSum,
}

impl TrajLoss {
    pub fn name(self) -> &'static str {
        match self {
            TrajLoss::MeanSquare => "mean-square",
            TrajLoss::RootSum => "root-sum",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mean-square" => Some(TrajLoss::MeanSquare),
            "root-sum" => Some(TrajLoss::RootSum),
            _ => None,
        }
    }
}

/// Result of a forward(-backward) pass over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass<F> {
    /// Mean loss over the batch.
    pub loss: f64,
    /// Gradient of the mean loss (empty for forward-only passes).
    pub grad: Vec<F>,
    /// Read-outs `[t][b][c]` (trajectory targets) or `[b][c]` (the last step, class targets).
    pub outputs: Vec<f64>,
    /// Trials whose arg-max read-out equals the label (class targets; 0 otherwise).
    pub correct: usize,
}

/// Cell + linear read-out with its flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqNet<F, C> {
    pub cell: C,
    /// Read-out outputs C.
    pub outputs: usize,
    /// The cell's tensors followed by `W_out` `[C, N]` and `b_out` `[C]`.
    pub layout: Layout,
    pub params: Vec<F>,
    /// Std of the recurrent noise added to the first N state entries after every step.
    pub noise: f64,
    /// Std of a random initial state added to the cell's s₀ (first N entries) per noisy trial,
    /// drawn from the trial's noise stream before the first step (Kim et al.: x(0) ~ N(0, 1)/100).
    pub x0_noise: f64,
    /// The loss on trajectory targets.
    pub traj_loss: TrajLoss,
}

impl<F: Real, C: Cell<F>> SeqNet<F, C> {
    /// A network with zero parameters (fill them with the cell's `init` and [`SeqNet::init_readout`]).
    pub fn new(cell: C, outputs: usize) -> Result<Self> {
        if outputs == 0 {
            return Err(Error::invalid("outputs", "need at least one read-out"));
        }
        let mut layout = cell.layout().clone();
        let n = cell.hidden();
        layout.push("W_out", &[outputs, n], true);
        layout.push("b_out", &[outputs], true);
        let params = vec![F::zero(); layout.len];
        Ok(SeqNet {
            cell,
            outputs,
            layout,
            params,
            noise: 0.0,
            x0_noise: 0.0,
            traj_loss: TrajLoss::MeanSquare,
        })
    }

    /// The same network in precision `G` (parameters converted, everything else as is).
    pub fn cast<G: Real>(&self) -> SeqNet<G, C>
    where
        C: Clone,
    {
        SeqNet {
            cell: self.cell.clone(),
            outputs: self.outputs,
            layout: self.layout.clone(),
            params: self.params.iter().map(|v| G::c(v.f())).collect(),
            noise: self.noise,
            x0_noise: self.x0_noise,
            traj_loss: self.traj_loss,
        }
    }

    /// nn.Linear's initialisation of the read-out: U(±1/√N) for W_out and b_out, times `scale`.
    pub fn init_readout(&mut self, rng: &mut ChaCha8Rng, scale: f64) {
        use rand::Rng;
        let bound = scale / (self.cell.hidden() as f64).sqrt();
        for name in ["W_out", "b_out"] {
            let r = self.layout.get(name).expect("read-out").range();
            for v in &mut self.params[r] {
                *v = F::c(rng.random_range(-bound..bound));
            }
        }
    }

    fn readout(&self) -> (usize, usize) {
        (self.layout.off("W_out"), self.layout.off("b_out"))
    }

    /// Loss, gradient and outputs over a batch (`grad`: also run the backward pass).
    pub fn pass(&self, batch: &Batch<F>, grad: bool) -> Result<Pass<F>> {
        self.check_batch(batch)?;
        let prep = self.cell.prepare(&self.params);
        let chunks: Vec<(usize, usize)> = (0..batch.b)
            .step_by(CHUNK)
            .map(|b0| (b0, (b0 + CHUNK).min(batch.b)))
            .collect();
        let parts: Vec<Pass<F>> = chunks
            .par_iter()
            .map(|&(b0, b1)| self.chunk(batch, &prep, b0, b1, grad))
            .collect();
        let mut total = Pass {
            loss: 0.0,
            grad: if grad {
                vec![F::zero(); self.layout.len]
            } else {
                vec![]
            },
            outputs: vec![],
            correct: 0,
        };
        let c = self.outputs;
        let traj = matches!(batch.targets, Targets::Trajectory(_));
        if traj {
            total.outputs = vec![0.0; batch.t * batch.b * c];
        }
        for (&(b0, b1), part) in chunks.iter().zip(&parts) {
            total.loss += part.loss;
            total.correct += part.correct;
            for (g, v) in total.grad.iter_mut().zip(&part.grad) {
                *g += *v;
            }
            if traj {
                let nb = b1 - b0;
                for t in 0..batch.t {
                    for bi in 0..nb {
                        for k in 0..c {
                            total.outputs[(t * batch.b + b0 + bi) * c + k] =
                                part.outputs[(t * nb + bi) * c + k];
                        }
                    }
                }
            } else {
                total.outputs.extend_from_slice(&part.outputs);
            }
        }
        let inv = 1.0 / batch.b as f64;
        total.loss *= inv;
        for g in &mut total.grad {
            *g *= F::c(inv);
        }
        if grad {
            self.cell.finish_grad(&self.params, &mut total.grad);
        }
        Ok(total)
    }

    fn check_batch(&self, batch: &Batch<F>) -> Result<()> {
        if batch.n_in != self.cell.n_in() {
            return Err(Error::invalid(
                "inputs",
                format!(
                    "the batch has {} inputs per step, the network {}",
                    batch.n_in,
                    self.cell.n_in()
                ),
            ));
        }
        if batch.u.len() != batch.t * batch.b * batch.n_in || batch.t == 0 || batch.b == 0 {
            return Err(Error::invalid("batch", "inputs do not match T × B × N_in"));
        }
        match &batch.targets {
            Targets::Class(l) => {
                if l.len() != batch.b || l.iter().any(|&k| k >= self.outputs) {
                    return Err(Error::invalid(
                        "labels",
                        format!("need B = {} labels below {}", batch.b, self.outputs),
                    ));
                }
            }
            Targets::Trajectory(z) => {
                if z.len() != batch.t * batch.b * self.outputs {
                    return Err(Error::invalid("targets", "need T × B × C target values"));
                }
            }
        }
        if let Some(m) = &batch.mask {
            if m.len() != batch.t * batch.b * self.outputs
                || !matches!(batch.targets, Targets::Trajectory(_))
            {
                return Err(Error::invalid(
                    "mask",
                    "needs T × B × C weights and trajectory targets",
                ));
            }
        }
        if let Some(s) = &batch.noise_seeds {
            if s.len() != batch.b {
                return Err(Error::invalid("noise_seeds", "need one seed per trial"));
            }
        }
        Ok(())
    }

    /// Read-out o = W_out φ(s[..N]) + b_out of a state batch, with the features f = φ(s[..N]) and
    /// their derivatives, into `o`, `f`, `df`.
    fn read(&self, s: MatRef<F>, mut o: MatMut<F>, mut f: MatMut<F>, mut df: MatMut<F>) {
        let (n, nb, c) = (self.cell.hidden(), s.ncols(), self.outputs);
        for j in 0..nb {
            for i in 0..n {
                let (v, d) = self.cell.feature(s[(i, j)]);
                f[(i, j)] = v;
                df[(i, j)] = d;
            }
        }
        let (wo, bo) = self.readout();
        F::matmul(o.rb_mut(), false, rm(&self.params[wo..], c, n), f.rb());
        for j in 0..nb {
            for k in 0..c {
                o[(k, j)] += self.params[bo + k];
            }
        }
    }

    fn chunk(&self, batch: &Batch<F>, prep: &C::Prep, b0: usize, b1: usize, grad: bool) -> Pass<F> {
        let (t_len, nb, n_in) = (batch.t, b1 - b0, batch.n_in);
        let (sd, n, c) = (self.cell.state_dim(), self.cell.hidden(), self.outputs);
        let p = &self.params;
        let keep = if grad { t_len + 1 } else { 2 };
        let mut states = vec![F::zero(); keep * sd * nb];
        let mut s0 = vec![F::zero(); sd];
        self.cell.init_state(p, &mut s0);
        for j in 0..nb {
            states[j * sd..(j + 1) * sd].copy_from_slice(&s0);
        }
        let mut rngs: Option<Vec<ChaCha8Rng>> = batch.noise_seeds.as_ref().map(|s| {
            s[b0..b1]
                .iter()
                .map(|&x| ChaCha8Rng::seed_from_u64(x))
                .collect()
        });
        if let (Some(rs), true) = (rngs.as_mut(), self.x0_noise != 0.0) {
            for (j, r) in rs.iter_mut().enumerate() {
                for i in 0..n {
                    let z: f64 = StandardNormal.sample(r);
                    states[j * sd + i] += F::c(self.x0_noise * z);
                }
            }
        }
        let noise = F::c(self.noise);
        let u_at = |t: usize| -> MatRef<F> { cm(&batch.u[(t * batch.b + b0) * n_in..], n_in, nb) };
        let mut out = Pass {
            loss: 0.0,
            grad: vec![],
            outputs: vec![],
            correct: 0,
        };
        let traj = match &batch.targets {
            Targets::Trajectory(z) => Some(z),
            Targets::Class(_) => None,
        };
        if traj.is_some() {
            out.outputs = vec![0.0; t_len * nb * c];
        }
        let blk = sd * nb;
        // Σ_t ‖o_t − z_t‖² per trial (trajectory targets).
        let mut sq = vec![0.0f64; nb];
        // The cell's and the read-out's temporaries, reused by every step of this chunk.
        let mut ws = Scratch::new();
        let mut rs = Scratch::new();
        let shapes = [(c, nb), (n, nb), (n, nb), (c, nb), (n, nb)];
        for t in 0..t_len {
            let (cur, nxt) = if grad {
                (t, t + 1)
            } else {
                (t % 2, (t + 1) % 2)
            };
            let (lo, hi) = states.split_at_mut(cur.max(nxt) * blk);
            let (s_cur, s_next) = if cur < nxt {
                (&lo[cur * blk..], &mut hi[..blk])
            } else {
                (&hi[..blk] as &[F], &mut lo[nxt * blk..nxt * blk + blk])
            };
            let x = StepIn {
                p,
                prep,
                s: cm(s_cur, sd, nb),
                u: u_at(t),
            };
            self.cell.step(x, cm_mut(s_next, sd, nb), &mut ws);
            if let Some(rs) = rngs.as_mut() {
                for (j, r) in rs.iter_mut().enumerate() {
                    for i in 0..n {
                        let z: f64 = StandardNormal.sample(r);
                        s_next[j * sd + i] += noise * F::c(z);
                    }
                }
            }
            if let Some(z) = traj {
                let [mut o, f, df, _, _] = rs.take(0, shapes);
                self.read(cm(s_next, sd, nb), o.rb_mut(), f, df);
                for j in 0..nb {
                    for k in 0..c {
                        let v = o[(k, j)].f();
                        out.outputs[(t * nb + j) * c + k] = v;
                        let at = (t * batch.b + b0 + j) * c + k;
                        let d = v - z[at];
                        let w = batch.mask.as_ref().map_or(1.0, |m| m[at]);
                        sq[j] += w * d * d;
                    }
                }
            }
        }
        if traj.is_some() {
            out.loss = match self.traj_loss {
                TrajLoss::MeanSquare => sq.iter().sum::<f64>() / t_len as f64,
                TrajLoss::RootSum => sq.iter().map(|v| v.sqrt()).sum(),
            };
        }
        if let Targets::Class(labels) = &batch.targets {
            let last = if grad { t_len } else { t_len % 2 };
            let [mut o, f, df, _, _] = rs.take(0, shapes);
            self.read(cm(&states[last * blk..], sd, nb), o.rb_mut(), f, df);
            for j in 0..nb {
                let (lse, arg) =
                    log_sum_exp(&o.rb().col(j).iter().map(|v| v.f()).collect::<Vec<_>>());
                out.loss += lse - o[(labels[b0 + j], j)].f();
                out.correct += usize::from(arg == labels[b0 + j]);
                out.outputs.extend(o.rb().col(j).iter().map(|v| v.f()));
            }
        }
        if !grad {
            return out;
        }
        // Backward through time.
        let mut g = vec![F::zero(); self.layout.len];
        let mut ds_next = faer::Mat::<F>::zeros(sd, nb);
        let mut ds = faer::Mat::<F>::zeros(sd, nb);
        let (wo, bo) = self.readout();
        for t in (0..t_len).rev() {
            let s_next = cm(&states[(t + 1) * blk..], sd, nb);
            // ∂L/∂o at step t, if the loss reads it.
            let reads = match &batch.targets {
                Targets::Trajectory(_) => true,
                Targets::Class(_) => t + 1 == t_len,
            };
            if reads {
                let [mut o, mut f, mut df, mut d_o, mut dfeat] = rs.take(0, shapes);
                self.read(s_next, o.rb_mut(), f.rb_mut(), df.rb_mut());
                for j in 0..nb {
                    match &batch.targets {
                        Targets::Trajectory(z) => {
                            // ∂L/∂o: 2d/T (mean square) or d/√S (root sum, 0 at S = 0).
                            let scale = match self.traj_loss {
                                TrajLoss::MeanSquare => 2.0 / t_len as f64,
                                TrajLoss::RootSum if sq[j] > 0.0 => 1.0 / sq[j].sqrt(),
                                TrajLoss::RootSum => 0.0,
                            };
                            for k in 0..c {
                                let v = out.outputs[(t * nb + j) * c + k];
                                let at = (t * batch.b + b0 + j) * c + k;
                                let w = batch.mask.as_ref().map_or(1.0, |m| m[at]);
                                d_o[(k, j)] = F::c(scale * w * (v - z[at]));
                            }
                        }
                        Targets::Class(labels) => {
                            let col: Vec<f64> = (0..c).map(|k| o[(k, j)].f()).collect();
                            let (lse, _) = log_sum_exp(&col);
                            for k in 0..c {
                                let pk = (col[k] - lse).exp();
                                d_o[(k, j)] = F::c(pk - f64::from(u8::from(k == labels[b0 + j])));
                            }
                        }
                    }
                }
                F::matmul(
                    rm_mut(&mut g[wo..], c, n),
                    true,
                    d_o.rb(),
                    f.rb().transpose(),
                );
                for j in 0..nb {
                    for k in 0..c {
                        g[bo + k] += d_o[(k, j)];
                    }
                }
                F::matmul(
                    dfeat.rb_mut(),
                    false,
                    rm(&p[wo..], c, n).transpose(),
                    d_o.rb(),
                );
                for j in 0..nb {
                    for i in 0..n {
                        ds_next[(i, j)] += dfeat[(i, j)] * df[(i, j)];
                    }
                }
            }
            let s_cur = cm(&states[t * blk..], sd, nb);
            let x = StepIn {
                p,
                prep,
                s: s_cur,
                u: u_at(t),
            };
            let back = StepBack {
                dn: ds_next.as_ref(),
                ds: ds.as_mut(),
                g: &mut g,
            };
            self.cell.step_back(x, back, &mut ws);
            std::mem::swap(&mut ds, &mut ds_next);
        }
        out.grad = g;
        out
    }

    /// Gradient of the mean loss by central finite differences (for tests; O(P) passes).
    pub fn fd_grad(&self, batch: &Batch<F>, h: f64) -> Result<Vec<f64>>
    where
        C: Clone,
    {
        let mut net = self.clone();
        let mut g = vec![0.0; self.layout.len];
        for (k, gk) in g.iter_mut().enumerate() {
            let x = self.params[k];
            net.params[k] = x + F::c(h);
            let lp = net.pass(batch, false)?.loss;
            net.params[k] = x - F::c(h);
            let lm = net.pass(batch, false)?.loss;
            net.params[k] = x;
            *gk = (lp - lm) / (2.0 * h);
        }
        Ok(g)
    }
}

/// (log Σ e^{x_k}, arg max x_k).
fn log_sum_exp(x: &[f64]) -> (f64, usize) {
    let (arg, m) = x
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |(a, m), (k, v)| {
                if v > m {
                    (k, v)
                } else {
                    (a, m)
                }
            },
        );
    (m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln(), arg)
}
