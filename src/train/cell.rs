//! Trainable recurrent cells: one discrete update `s_{t+1} = f(s_t, u_t; θ)` each, batched over
//! trials, with a hand-derived backward pass (the Jacobian-transpose product of the update plus
//! the parameter derivatives). Every backward pass is checked against finite differences in
//! `tests/train_cells.rs`.
//!
//! | cell | state | update (all right-hand sides use the previous state) |
//! |---|---|---|
//! | [`RateCell`] | x (N) | x' = x + α ⊙ (−x + W φ(x) + W_in u), α = 1/τ(γ), W = relu(W_raw)·diag(d) with Dale's law (spiking.md §B.2) |
//! | [`GammaCell`] | h (N) | h' = γ(U u + V h + b; n, s), n, s ∈ Rᴺ learned (gamma-anru.md §A.2) |
//! | [`AnruCell`] | h (N), g (M per unit) | gamma-anru.md §A.3: gⁱ' = tanh(u_ag aⁱ + b_g + W_gg gⁱ), nⁱ = w_gn·gⁱ' + b_gn, sⁱ = w_gs·gⁱ' + b_gs, h' = γ(a; n, s) with a = U_xh u + W_hh h + b_h |
//! | [`OrganicsCell`] | y, a, b0, b1 (N each) | organics.md, Euler RNN: z = ⌊W_zx u⌋, ŷ = ⌊W_r y⌋, B_k = σ(W_bxk u + W_byk y + W_bak a), b_k' = b_k + κ_bk(−b_k + B_k), y' = y + κ_y(−y + b1 z + (1 − √⌊a⌋) ŷ), a' = a + κ_a(−a + σ² b0² + W(⌊y⌋² ⊙ ⌊a⌋)), κ = κ_max σ(θ), W = clamp(e^{log W}, 0, 1) |
//!
//! Parameters live in one flat vector described by a [`Layout`] (named, row-major tensors, the
//! names the checkpoints use); a cell only reads its own slots, so the read-out can be appended.

use super::real::{rm, rm_mut, sig, Real, Scratch};
use crate::error::{Error, Result};
use crate::model::gamma;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{MatMut, MatRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// One named tensor of the flat parameter vector (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    /// Trained (true) or a fixed buffer (initial states, fixed τ, input weights of Kim et al.).
    pub train: bool,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The tensors of a flat parameter vector, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub tensors: Vec<Tensor>,
    pub len: usize,
}

impl Layout {
    /// Appends a tensor; returns its offset.
    pub fn push(&mut self, name: &str, shape: &[usize], train: bool) -> usize {
        let off = self.len;
        let t = Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            offset: off,
            train,
        };
        self.len += t.len();
        self.tensors.push(t);
        off
    }
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// Offset of a tensor that must exist (the cells' own names).
    pub fn off(&self, name: &str) -> usize {
        self.get(name).map(|t| t.offset).unwrap_or(usize::MAX)
    }
    /// 1 for trained entries, 0 for buffers.
    pub fn train_mask(&self) -> Vec<bool> {
        let mut m = vec![false; self.len];
        for t in &self.tensors {
            for v in &mut m[t.range()] {
                *v = t.train;
            }
        }
        m
    }
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
    /// The initial state s₀ (one column of length S, the same for every trial).
    fn init_state(&self, p: &[F], s0: &mut [F]);
    /// `out` = f(s, u). `ws` holds the temporaries (reused from step to step).
    fn step(
        &self,
        p: &[F],
        prep: &Self::Prep,
        s: MatRef<F>,
        u: MatRef<F>,
        out: MatMut<F>,
        ws: &mut Scratch<F>,
    );
    /// `ds` = (∂f/∂s)ᵀ ds_next (overwritten); `g` += (∂f/∂θ)ᵀ ds_next, before [`Cell::finish_grad`].
    #[allow(clippy::too_many_arguments)]
    fn step_back(
        &self,
        p: &[F],
        prep: &Self::Prep,
        s: MatRef<F>,
        u: MatRef<F>,
        ds_next: MatRef<F>,
        ds: MatMut<F>,
        g: &mut [F],
        ws: &mut Scratch<F>,
    );
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

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn henaff_into<F: Real>(p: &mut [F], n: usize, rng: &mut ChaCha8Rng) {
    let w = crate::model::anru::henaff(n, rng);
    for i in 0..n {
        for j in 0..n {
            p[i * n + j] = F::c(w[(i, j)]);
        }
    }
}

/// Σ over the columns of a batch, added to `out`.
fn add_row_sums<F: Real>(m: MatRef<F>, out: &mut [F]) {
    for j in 0..m.ncols() {
        for (i, o) in out.iter_mut().enumerate() {
            *o += m[(i, j)];
        }
    }
}

/// The pointwise nonlinearity of the rate cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePhi {
    Tanh,
    Relu,
    Sigmoid,
}

impl RatePhi {
    #[inline]
    fn eval<F: Real>(self, x: F) -> (F, F) {
        match self {
            RatePhi::Tanh => {
                let t = x.tanh();
                (t, F::one() - t * t)
            }
            RatePhi::Relu => {
                if x > F::zero() {
                    (x, F::one())
                } else {
                    (F::zero(), F::zero())
                }
            }
            RatePhi::Sigmoid => {
                let s = sig(x);
                (s, s * (F::one() - s))
            }
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            RatePhi::Tanh => "tanh",
            RatePhi::Relu => "relu",
            RatePhi::Sigmoid => "sigmoid",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "tanh" => Ok(RatePhi::Tanh),
            "relu" => Ok(RatePhi::Relu),
            "sigmoid" => Ok(RatePhi::Sigmoid),
            _ => Err(Error::invalid(
                "activation",
                format!("`{s}`: the rate cell takes tanh, relu or sigmoid"),
            )),
        }
    }
    /// The analysis crate's activation.
    pub fn activation(self) -> crate::model::Activation {
        match self {
            RatePhi::Tanh => crate::model::Activation::Tanh,
            RatePhi::Relu => crate::model::Activation::Relu,
            RatePhi::Sigmoid => crate::model::Activation::Sigmoid,
        }
    }
}

/// Leaky rate cell (Kim, Li & Sejnowski 2019 with `dale`): x' = x + α ⊙ (−x + W φ(x) + W_in u),
/// α_i = 1/τ_i, τ_i = τ_min + (τ_max − τ_min) σ(γ_i) (steps), W = relu(W_raw)·diag(d) under Dale's
/// law (d = ±1 by sending unit) and W = W_raw otherwise. The read-out sees r = φ(x).
/// Tensors: `W_raw` `[N, N]`, `W_in` `[N, N_in]` (trained unless `fixed_input`), `gamma` `[N]`
/// (trained if `learn_tau`).
#[derive(Debug, Clone, PartialEq)]
pub struct RateCell {
    pub n: usize,
    pub n_in: usize,
    pub phi: RatePhi,
    pub dale: Option<Vec<f64>>,
    pub tau: (f64, f64),
    layout: Layout,
}

/// Effective W (row-major) and α of the rate cell.
pub struct RatePrep<F> {
    w: Vec<F>,
    alpha: Vec<F>,
}

impl RateCell {
    pub fn new(
        n: usize,
        n_in: usize,
        phi: RatePhi,
        dale: Option<Vec<f64>>,
        tau: (f64, f64),
        learn_tau: bool,
        fixed_input: bool,
    ) -> Result<Self> {
        check_sizes(n, n_in)?;
        if !(tau.0 >= 1.0 && tau.1 >= tau.0 && tau.1.is_finite()) {
            return Err(Error::invalid(
                "tau",
                format!("{tau:?}: need 1 ≤ τ_min ≤ τ_max (in steps)"),
            ));
        }
        if let Some(d) = &dale {
            if d.len() != n || d.iter().any(|v| v.abs() != 1.0) {
                return Err(Error::invalid("dale", "need N signs ±1"));
            }
        }
        let mut layout = Layout::default();
        layout.push("W_raw", &[n, n], true);
        layout.push("W_in", &[n, n_in], !fixed_input);
        layout.push("gamma", &[n], learn_tau);
        Ok(RateCell {
            n,
            n_in,
            phi,
            dale,
            tau,
            layout,
        })
    }

    /// spiking.md §B.2 initialisation into `p`: connection probability 0.2, W_raw = |g N(0,1)/√(Np)|
    /// with gain 1.5 under Dale's law (20 % inhibitory), g N(0,1)/√N otherwise; W_in ~ N(0, 1);
    /// γ ~ N(0, 1).
    pub fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        let n = self.n;
        let w = self.layout.off("W_raw");
        for k in 0..n * n {
            p[w + k] = if self.dale.is_some() {
                let z = normal(rng);
                if rng.random::<f64>() < 0.2 {
                    F::c((1.5 * z / (0.2 * n as f64).sqrt()).abs())
                } else {
                    F::zero()
                }
            } else {
                F::c(1.5 * normal(rng) / (n as f64).sqrt())
            };
        }
        let wi = self.layout.off("W_in");
        for k in 0..n * self.n_in {
            p[wi + k] = F::c(normal(rng));
        }
        let g = self.layout.off("gamma");
        for k in 0..n {
            p[g + k] = F::c(normal(rng));
        }
    }

    /// Dale signs: 20 % inhibitory.
    pub fn draw_dale(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        (0..n)
            .map(|_| if rng.random::<f64>() < 0.2 { -1.0 } else { 1.0 })
            .collect()
    }

    /// Effective recurrent matrix (row-major) and τ (steps) of parameters `p`.
    pub fn effective<F: Real>(&self, p: &[F]) -> (Vec<f64>, Vec<f64>) {
        let pr = <Self as Cell<F>>::prepare(self, p);
        (
            pr.w.iter().map(|v| v.f()).collect(),
            pr.alpha.iter().map(|a| 1.0 / a.f()).collect(),
        )
    }
}

fn check_sizes(n: usize, n_in: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("hidden", "must be at least 1"));
    }
    if n_in == 0 {
        return Err(Error::invalid(
            "inputs",
            "the cell needs at least one input",
        ));
    }
    Ok(())
}

impl<F: Real> Cell<F> for RateCell {
    type Prep = RatePrep<F>;
    fn name(&self) -> &'static str {
        "rate"
    }
    fn hidden(&self) -> usize {
        self.n
    }
    fn state_dim(&self) -> usize {
        self.n
    }
    fn n_in(&self) -> usize {
        self.n_in
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn prepare(&self, p: &[F]) -> RatePrep<F> {
        let n = self.n;
        let w0 = self.layout.off("W_raw");
        let w = (0..n * n)
            .map(|k| match &self.dale {
                Some(d) => F::c(d[k % n]) * p[w0 + k].max(F::zero()),
                None => p[w0 + k],
            })
            .collect();
        let g = self.layout.off("gamma");
        let alpha = (0..n)
            .map(|i| F::one() / (F::c(self.tau.0) + F::c(self.tau.1 - self.tau.0) * sig(p[g + i])))
            .collect();
        RatePrep { w, alpha }
    }
    fn init_state(&self, _p: &[F], s0: &mut [F]) {
        s0.fill(F::zero());
    }
    fn step(
        &self,
        p: &[F],
        pr: &RatePrep<F>,
        s: MatRef<F>,
        u: MatRef<F>,
        mut out: MatMut<F>,
        ws: &mut Scratch<F>,
    ) {
        let (n, b) = (self.n, s.ncols());
        let [mut r] = ws.take(0, [(n, b)]);
        for j in 0..b {
            for i in 0..n {
                r[(i, j)] = self.phi.eval(s[(i, j)]).0;
            }
        }
        F::matmul(out.rb_mut(), false, rm(&pr.w, n, n), r.rb());
        let wi = self.layout.off("W_in");
        F::matmul(out.rb_mut(), true, rm(&p[wi..], n, self.n_in), u);
        for j in 0..b {
            for i in 0..n {
                let x = s[(i, j)];
                out[(i, j)] = x + pr.alpha[i] * (out[(i, j)] - x);
            }
        }
    }
    fn step_back(
        &self,
        p: &[F],
        pr: &RatePrep<F>,
        s: MatRef<F>,
        u: MatRef<F>,
        dn: MatRef<F>,
        mut ds: MatMut<F>,
        g: &mut [F],
        ws: &mut Scratch<F>,
    ) {
        let (n, b, m) = (self.n, s.ncols(), self.n_in);
        let [mut r, mut dr, mut a, mut ax] = ws.take(0, [(n, b); 4]);
        for j in 0..b {
            for i in 0..n {
                let (v, d) = self.phi.eval(s[(i, j)]);
                r[(i, j)] = v;
                dr[(i, j)] = d;
            }
        }
        // drive a = W r + W_in u (for ∂/∂α).
        F::matmul(a.rb_mut(), false, rm(&pr.w, n, n), r.rb());
        let wi = self.layout.off("W_in");
        F::matmul(a.rb_mut(), true, rm(&p[wi..], n, m), u);
        for j in 0..b {
            for i in 0..n {
                ax[(i, j)] = pr.alpha[i] * dn[(i, j)];
            }
        }
        let gg = self.layout.off("gamma");
        for j in 0..b {
            for i in 0..n {
                g[gg + i] += dn[(i, j)] * (a[(i, j)] - s[(i, j)]);
            }
        }
        // ds = (1 − α) dn + φ'(x) ⊙ Wᵀ(α ⊙ dn).
        F::matmul(ds.rb_mut(), false, rm(&pr.w, n, n).transpose(), ax.rb());
        for j in 0..b {
            for i in 0..n {
                ds[(i, j)] = (F::one() - pr.alpha[i]) * dn[(i, j)] + dr[(i, j)] * ds[(i, j)];
            }
        }
        let w0 = self.layout.off("W_raw");
        F::matmul(
            rm_mut(&mut g[w0..], n, n),
            true,
            ax.rb(),
            r.rb().transpose(),
        );
        F::matmul(rm_mut(&mut g[wi..], n, m), true, ax.rb(), u.transpose());
    }
    fn finish_grad(&self, p: &[F], g: &mut [F]) {
        let n = self.n;
        let w0 = self.layout.off("W_raw");
        if let Some(d) = &self.dale {
            for k in 0..n * n {
                // relu'(0) = 0 (spiking.md §B.7.7).
                g[w0 + k] = if p[w0 + k] > F::zero() {
                    g[w0 + k] * F::c(d[k % n])
                } else {
                    F::zero()
                };
            }
        }
        let gg = self.layout.off("gamma");
        let span = F::c(self.tau.1 - self.tau.0);
        for i in 0..n {
            let sg = sig(p[gg + i]);
            let tau = F::c(self.tau.0) + span * sg;
            // α = 1/τ(γ): dα/dγ = −(τ_max − τ_min) σ'(γ)/τ².
            g[gg + i] *= -(span * sg * (F::one() - sg)) / (tau * tau);
        }
    }
    #[inline]
    fn feature(&self, x: F) -> (F, F) {
        self.phi.eval(x)
    }
}

/// Gamma RNN (gamma-anru.md §A.2, per-neuron "gamma2"): h' = γ(U u + V h + b; n, s).
/// Tensors: `U` `[N, N_in]`, `V` `[N, N]`, `b` `[N]` (the seed's b_U + b_V), `n` `[N]`, `s` `[N]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GammaCell {
    pub n: usize,
    pub n_in: usize,
    layout: Layout,
}

impl GammaCell {
    pub fn new(n: usize, n_in: usize, learn_ns: bool) -> Result<Self> {
        check_sizes(n, n_in)?;
        let mut layout = Layout::default();
        layout.push("U", &[n, n_in], true);
        layout.push("V", &[n, n], true);
        layout.push("b", &[n], true);
        layout.push("n", &[n], learn_ns);
        layout.push("s", &[n], learn_ns);
        Ok(GammaCell { n, n_in, layout })
    }

    /// The seed's initialisation: U kaiming N(0, 2/N_in), V 'henaff', b = b_U + b_V with
    /// nn.Linear's U(±1/√fan_in) each, n = 5 + 2 U(0, 1), s = 0 (per neuron).
    pub fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        let (n, m) = (self.n, self.n_in);
        let u = self.layout.off("U");
        for k in 0..n * m {
            p[u + k] = F::c(normal(rng) * (2.0 / m as f64).sqrt());
        }
        henaff_into(&mut p[self.layout.off("V")..], n, rng);
        let b = self.layout.off("b");
        let (bu, bv) = (1.0 / (m as f64).sqrt(), 1.0 / (n as f64).sqrt());
        for k in 0..n {
            p[b + k] = F::c(rng.random_range(-bu..bu) + rng.random_range(-bv..bv));
        }
        let nn = self.layout.off("n");
        let ss = self.layout.off("s");
        for k in 0..n {
            p[nn + k] = F::c(5.0 + 2.0 * rng.random::<f64>());
            p[ss + k] = F::zero();
        }
    }

    /// a = V h + U u + b, into `a`.
    fn pre<F: Real>(&self, p: &[F], s: MatRef<F>, u: MatRef<F>, mut a: MatMut<F>) {
        let (n, b) = (self.n, s.ncols());
        F::matmul(a.rb_mut(), false, rm(&p[self.layout.off("V")..], n, n), s);
        F::matmul(
            a.rb_mut(),
            true,
            rm(&p[self.layout.off("U")..], n, self.n_in),
            u,
        );
        let bo = self.layout.off("b");
        for j in 0..b {
            for i in 0..n {
                a[(i, j)] += p[bo + i];
            }
        }
    }
}

/// γ(x; n, s) and its three partial derivatives, evaluated in f64.
#[inline]
fn gamma_all<F: Real>(x: F, n: F, s: F) -> (F, F, F, F) {
    let (x, n, s) = (x.f(), n.f(), s.f());
    (
        F::c(gamma::gamma(x, n, s)),
        F::c(gamma::gamma_dx(x, n, s)),
        F::c(gamma::gamma_dn(x, n, s)),
        F::c(gamma::gamma_ds(x, n, s)),
    )
}

impl<F: Real> Cell<F> for GammaCell {
    type Prep = ();
    fn name(&self) -> &'static str {
        "gamma"
    }
    fn hidden(&self) -> usize {
        self.n
    }
    fn state_dim(&self) -> usize {
        self.n
    }
    fn n_in(&self) -> usize {
        self.n_in
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn prepare(&self, _p: &[F]) {}
    fn init_state(&self, _p: &[F], s0: &mut [F]) {
        s0.fill(F::zero());
    }
    fn step(
        &self,
        p: &[F],
        _: &(),
        s: MatRef<F>,
        u: MatRef<F>,
        mut out: MatMut<F>,
        ws: &mut Scratch<F>,
    ) {
        let [mut a] = ws.take(0, [(self.n, s.ncols())]);
        self.pre(p, s, u, a.rb_mut());
        let (nn, ss) = (self.layout.off("n"), self.layout.off("s"));
        for j in 0..s.ncols() {
            for i in 0..self.n {
                let (x, ni, si) = (a[(i, j)].f(), p[nn + i].f(), p[ss + i].f());
                out[(i, j)] = F::c(gamma::gamma(x, ni, si));
            }
        }
    }
    fn step_back(
        &self,
        p: &[F],
        _: &(),
        s: MatRef<F>,
        u: MatRef<F>,
        dn: MatRef<F>,
        mut ds: MatMut<F>,
        g: &mut [F],
        ws: &mut Scratch<F>,
    ) {
        let (n, b) = (self.n, s.ncols());
        let [mut a] = ws.take(0, [(n, b)]);
        self.pre(p, s, u, a.rb_mut());
        let (nn, ss, bo) = (
            self.layout.off("n"),
            self.layout.off("s"),
            self.layout.off("b"),
        );
        for j in 0..b {
            for i in 0..n {
                let (_, gx, gn, gs) = gamma_all(a[(i, j)], p[nn + i], p[ss + i]);
                let d = dn[(i, j)];
                g[nn + i] += d * gn;
                g[ss + i] += d * gs;
                g[bo + i] += d * gx;
                a[(i, j)] = d * gx; // now ∂L/∂a
            }
        }
        let (vo, uo) = (self.layout.off("V"), self.layout.off("U"));
        F::matmul(ds.rb_mut(), false, rm(&p[vo..], n, n).transpose(), a.rb());
        F::matmul(rm_mut(&mut g[vo..], n, n), true, a.rb(), s.transpose());
        F::matmul(
            rm_mut(&mut g[uo..], n, self.n_in),
            true,
            a.rb(),
            u.transpose(),
        );
    }
}

/// ANRU (gamma-anru.md §A.3, the code version): every unit i carries a controller gⁱ ∈ Rᴹ,
/// stored after h in the state (S = N + N·M, unit i's controller at N + iM).
/// Tensors: `U_xh` `[N, N_in]`, `b_h` `[N]` (b_xh + b_hh), `W_hh` `[N, N]`, `u_ag` `[M]`, `b_g` `[M]`
/// (b_ag + b_gg), `W_gg` `[M, M]`, `w_gn` `[M]`, `b_gn` `[1]`, `w_gs` `[M]`, `b_gs` `[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnruCell {
    pub n: usize,
    pub m: usize,
    pub n_in: usize,
    layout: Layout,
    /// Offsets of w_gn, b_gn, w_gs, b_gs (read for every unit of every trial at every step).
    gain_off: [usize; 4],
}

impl AnruCell {
    pub fn new(n: usize, m: usize, n_in: usize) -> Result<Self> {
        check_sizes(n, n_in)?;
        if m == 0 {
            return Err(Error::invalid("controller", "M must be at least 1"));
        }
        let mut layout = Layout::default();
        layout.push("U_xh", &[n, n_in], true);
        layout.push("b_h", &[n], true);
        layout.push("W_hh", &[n, n], true);
        layout.push("u_ag", &[m], true);
        layout.push("b_g", &[m], true);
        layout.push("W_gg", &[m, m], true);
        layout.push("w_gn", &[m], true);
        layout.push("b_gn", &[1], true);
        layout.push("w_gs", &[m], true);
        layout.push("b_gs", &[1], true);
        let gain_off = ["w_gn", "b_gn", "w_gs", "b_gs"].map(|t| layout.off(t));
        Ok(AnruCell {
            n,
            m,
            n_in,
            layout,
            gain_off,
        })
    }

    /// The seed's initialisation (§A.3): kaiming U_xh and u_ag, henaff W_hh and W_gg, zero biases,
    /// w_gn ~ N(0, 0.1²·2/(M+1)), w_gs ~ N(0, 0.01²·2/(M+1)), b_gn = 5 + 2 U(0, 1), b_gs = 0.
    pub fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        let (n, m, k) = (self.n, self.m, self.n_in);
        let l = &self.layout;
        for i in 0..n * k {
            p[l.off("U_xh") + i] = F::c(normal(rng) * (2.0 / k as f64).sqrt());
        }
        henaff_into(&mut p[l.off("W_hh")..], n, rng);
        for i in 0..m {
            p[l.off("u_ag") + i] = F::c(normal(rng) * 2f64.sqrt());
        }
        henaff_into(&mut p[l.off("W_gg")..], m, rng);
        let sd = (2.0 / (m as f64 + 1.0)).sqrt();
        for i in 0..m {
            p[l.off("w_gn") + i] = F::c(0.1 * sd * normal(rng));
            p[l.off("w_gs") + i] = F::c(0.01 * sd * normal(rng));
        }
        p[l.off("b_gn")] = F::c(5.0 + 2.0 * rng.random::<f64>());
        for name in ["b_h", "b_g", "b_gs"] {
            let t = l.get(name).expect("own tensor");
            p[t.range()].fill(F::zero());
        }
    }

    /// a = W_hh h + U_xh u + b_h, into `a`.
    fn pre<F: Real>(&self, p: &[F], s: MatRef<F>, u: MatRef<F>, mut a: MatMut<F>) {
        let (n, b) = (self.n, s.ncols());
        let l = &self.layout;
        F::matmul(
            a.rb_mut(),
            false,
            rm(&p[l.off("W_hh")..], n, n),
            s.subrows(0, n),
        );
        F::matmul(a.rb_mut(), true, rm(&p[l.off("U_xh")..], n, self.n_in), u);
        let bo = l.off("b_h");
        for j in 0..b {
            for i in 0..n {
                a[(i, j)] += p[bo + i];
            }
        }
    }

    /// Controller update of one trial: G' = tanh(W_gg G + u_ag aᵀ + b_g) (M × N).
    fn controller<F: Real>(&self, p: &[F], g_old: MatRef<F>, a: MatRef<F>, mut out: MatMut<F>) {
        let (n, m) = (self.n, self.m);
        let l = &self.layout;
        F::matmul(out.rb_mut(), false, rm(&p[l.off("W_gg")..], m, m), g_old);
        let (ua, bg) = (l.off("u_ag"), l.off("b_g"));
        for i in 0..n {
            for k in 0..m {
                out[(k, i)] = (out[(k, i)] + p[ua + k] * a[(i, 0)] + p[bg + k]).tanh();
            }
        }
    }

    fn gains<F: Real>(&self, p: &[F], gnew: MatRef<F>, i: usize) -> (F, F) {
        let [wn, bn, ws, bs] = self.gain_off;
        let mut nv = p[bn];
        let mut sv = p[bs];
        for k in 0..self.m {
            nv += p[wn + k] * gnew[(k, i)];
            sv += p[ws + k] * gnew[(k, i)];
        }
        (nv, sv)
    }
}

impl<F: Real> Cell<F> for AnruCell {
    type Prep = ();
    fn name(&self) -> &'static str {
        "anru"
    }
    fn hidden(&self) -> usize {
        self.n
    }
    fn state_dim(&self) -> usize {
        self.n * (1 + self.m)
    }
    fn n_in(&self) -> usize {
        self.n_in
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn prepare(&self, _p: &[F]) {}
    fn init_state(&self, _p: &[F], s0: &mut [F]) {
        s0.fill(F::zero());
    }
    fn step(
        &self,
        p: &[F],
        _: &(),
        s: MatRef<F>,
        u: MatRef<F>,
        mut out: MatMut<F>,
        ws: &mut Scratch<F>,
    ) {
        let (n, m, b) = (self.n, self.m, s.ncols());
        let [mut a, mut g_old, mut gnew] = ws.take(0, [(n, b), (m, n), (m, n)]);
        self.pre(p, s, u, a.rb_mut());
        for j in 0..b {
            for i in 0..n {
                for k in 0..m {
                    g_old[(k, i)] = s[(n + i * m + k, j)];
                }
            }
            self.controller(p, g_old.rb(), a.rb().subcols(j, 1), gnew.rb_mut());
            for i in 0..n {
                let (nv, sv) = self.gains(p, gnew.rb(), i);
                out[(i, j)] = F::c(gamma::gamma(a[(i, j)].f(), nv.f(), sv.f()));
                for k in 0..m {
                    out[(n + i * m + k, j)] = gnew[(k, i)];
                }
            }
        }
    }
    fn step_back(
        &self,
        p: &[F],
        _: &(),
        s: MatRef<F>,
        u: MatRef<F>,
        dn: MatRef<F>,
        mut ds: MatMut<F>,
        g: &mut [F],
        ws: &mut Scratch<F>,
    ) {
        let (n, m, b) = (self.n, self.m, s.ncols());
        let l = &self.layout;
        // da holds a, then ∂L/∂a column by column (a's column is copied to acol first).
        let [mut da, mut acol, mut g_old, mut gnew, mut dpre, mut dg] =
            ws.take(0, [(n, b), (n, 1), (m, n), (m, n), (m, n), (m, n)]);
        self.pre(p, s, u, da.rb_mut());
        let (wn, wsn, bgn, bgs) = (l.off("w_gn"), l.off("w_gs"), l.off("b_gn"), l.off("b_gs"));
        let (ua, bg, wgg) = (l.off("u_ag"), l.off("b_g"), l.off("W_gg"));
        for j in 0..b {
            for i in 0..n {
                acol[(i, 0)] = da[(i, j)];
                for k in 0..m {
                    g_old[(k, i)] = s[(n + i * m + k, j)];
                }
            }
            self.controller(p, g_old.rb(), acol.rb(), gnew.rb_mut());
            // dpre = (dG' + w_gn dnᵀ + w_gs dsᵀ) ⊙ (1 − G'²)
            for i in 0..n {
                let ai = acol[(i, 0)];
                let (nv, sv) = self.gains(p, gnew.rb(), i);
                let (_, gx, gn, gs) = gamma_all(ai, nv, sv);
                let dh = dn[(i, j)];
                let (dnv, dsv) = (dh * gn, dh * gs);
                g[bgn] += dnv;
                g[bgs] += dsv;
                let mut dai = dh * gx;
                for k in 0..m {
                    let gk = gnew[(k, i)];
                    g[wn + k] += dnv * gk;
                    g[wsn + k] += dsv * gk;
                    let d = (dn[(n + i * m + k, j)] + p[wn + k] * dnv + p[wsn + k] * dsv)
                        * (F::one() - gk * gk);
                    dpre[(k, i)] = d;
                    g[bg + k] += d;
                    g[ua + k] += d * ai;
                    dai += p[ua + k] * d;
                }
                da[(i, j)] = dai;
            }
            F::matmul(
                rm_mut(&mut g[wgg..], m, m),
                true,
                dpre.rb(),
                g_old.rb().transpose(),
            );
            F::matmul(
                dg.rb_mut(),
                false,
                rm(&p[wgg..], m, m).transpose(),
                dpre.rb(),
            );
            for i in 0..n {
                for k in 0..m {
                    ds[(n + i * m + k, j)] = dg[(k, i)];
                }
            }
        }
        let (wh, ux, bh) = (l.off("W_hh"), l.off("U_xh"), l.off("b_h"));
        F::matmul(
            ds.rb_mut().subrows_mut(0, n),
            false,
            rm(&p[wh..], n, n).transpose(),
            da.rb(),
        );
        F::matmul(
            rm_mut(&mut g[wh..], n, n),
            true,
            da.rb(),
            s.subrows(0, n).transpose(),
        );
        F::matmul(
            rm_mut(&mut g[ux..], n, self.n_in),
            true,
            da.rb(),
            u.transpose(),
        );
        add_row_sums(da.rb(), &mut g[bh..bh + n]);
    }
}

/// ORGaNICs Euler RNN (organics.md; dynamic-divisive-norm's `rnnCell`). State (y, a, b0, b1).
/// Tensors: `W_zx` `[N, N_in]`, `W_r` `[N, N]`, `W_bx0` `[N, N_in]`, `W_by0`, `W_ba0` `[N, N]`, `W_bx1`
/// `[N, N_in]`, `W_by1`, `W_ba1` `[N, N]`, `log_W` `[N, N]`, `theta_y`, `theta_a`, `theta_b0`,
/// `theta_b1` `[N]` (trained if `learn_tau`), and the fixed initial states `y0`, `a0`, `b00`,
/// `b10` `[N]`. κ_max = (0.01, 0.01, 0.1) for (y, a, b) and σ = 1 as in the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganicsCell {
    pub n: usize,
    pub n_in: usize,
    /// κ_max for y, a and the gains b0, b1.
    pub kappa_max: (f64, f64, f64),
    pub sigma: f64,
    /// Keep the largest singular value of W_r at most this (projected after every optimiser
    /// step): organics.md's stability guarantee holds for σ_max(W_r) ≤ 1.
    pub wr_max_sv: Option<f64>,
    layout: Layout,
}

/// W = clamp(e^{log W}, 0, 1) (row-major) and κ_y, κ_a, κ_b0, κ_b1.
pub struct OrganicsPrep<F> {
    wn: Vec<F>,
    k: [Vec<F>; 4],
}

const ORG_W: [&str; 8] = [
    "W_zx", "W_r", "W_bx0", "W_by0", "W_ba0", "W_bx1", "W_by1", "W_ba1",
];
const ORG_THETA: [&str; 4] = ["theta_y", "theta_a", "theta_b0", "theta_b1"];

impl OrganicsCell {
    pub fn new(n: usize, n_in: usize, learn_tau: bool) -> Result<Self> {
        check_sizes(n, n_in)?;
        let mut layout = Layout::default();
        for name in ORG_W {
            let cols = if name.contains('x') { n_in } else { n };
            layout.push(name, &[n, cols], true);
        }
        layout.push("log_W", &[n, n], true);
        for name in ORG_THETA {
            layout.push(name, &[n], learn_tau);
        }
        for name in ["y0", "a0", "b00", "b10"] {
            layout.push(name, &[n], false);
        }
        Ok(OrganicsCell {
            n,
            n_in,
            kappa_max: (0.01, 0.01, 0.1),
            sigma: 1.0,
            wr_max_sv: None,
            layout,
        })
    }

    /// The seed's initialisation: kaiming-uniform (a = √5, i.e. U(±1/√fan_in)) gain weights and
    /// W_zx (then scaled to spectral norm 1), orthogonal W_r, log W ~ U(−1, 0) with a zero diagonal,
    /// θ ~ N(0, 1) (learned τ) or 1 (fixed), initial states U(0, 1) with y0 normalised.
    pub fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        let (n, k) = (self.n, self.n_in);
        let l = self.layout.clone();
        for name in ORG_W {
            let t = l.get(name).expect("own tensor");
            let fan_in = t.shape[1] as f64;
            let bound = 1.0 / fan_in.sqrt();
            for v in &mut p[t.range()] {
                *v = F::c(rng.random_range(-bound..bound));
            }
        }
        // W_zx / its largest singular value.
        let wzx = l.off("W_zx");
        let m = faer::Mat::<f64>::from_fn(n, k, |i, j| p[wzx + i * k + j].f());
        if let Ok(sv) = m.singular_values() {
            let s0 = sv.first().copied().unwrap_or(1.0);
            if s0 > 0.0 {
                for v in &mut p[wzx..wzx + n * k] {
                    *v = F::c(v.f() / s0);
                }
            }
        }
        // Orthogonal W_r: Q of a Gaussian matrix (sign-corrected).
        let g = faer::Mat::<f64>::from_fn(n, n, |_, _| normal(rng));
        let qr = g.qr();
        let q = qr.compute_Q();
        let r = qr.R();
        let wr = l.off("W_r");
        for i in 0..n {
            for j in 0..n {
                let sgn = if r[(j, j)] < 0.0 { -1.0 } else { 1.0 };
                p[wr + i * n + j] = F::c(q[(i, j)] * sgn);
            }
        }
        let lw = l.off("log_W");
        for i in 0..n {
            for j in 0..n {
                p[lw + i * n + j] = if i == j {
                    F::zero()
                } else {
                    F::c(rng.random_range(-1.0..0.0))
                };
            }
        }
        let learn = l.get("theta_y").map(|t| t.train).unwrap_or(true);
        for name in ORG_THETA {
            for v in &mut p[l.get(name).expect("own tensor").range()] {
                *v = if learn { F::c(normal(rng)) } else { F::one() };
            }
        }
        for name in ["y0", "a0", "b00", "b10"] {
            for v in &mut p[l.get(name).expect("own tensor").range()] {
                *v = F::c(rng.random::<f64>());
            }
        }
        let y0 = l.off("y0");
        let norm = p[y0..y0 + n]
            .iter()
            .map(|v| v.f() * v.f())
            .sum::<f64>()
            .sqrt();
        for v in &mut p[y0..y0 + n] {
            *v = F::c(v.f() / norm.max(1e-300));
        }
    }

    fn kmax(&self, which: usize) -> f64 {
        match which {
            0 => self.kappa_max.0,
            1 => self.kappa_max.1,
            _ => self.kappa_max.2,
        }
    }

    /// Gain pre-activations W_bxk u + W_byk y + W_bak a for k = 0, 1 (N × B each).
    fn gain_pre<F: Real>(&self, p: &[F], s: MatRef<F>, u: MatRef<F>, k: usize, mut out: MatMut<F>) {
        let n = self.n;
        let l = &self.layout;
        let (x, y, a) = (
            l.off(["W_bx0", "W_bx1"][k]),
            l.off(["W_by0", "W_by1"][k]),
            l.off(["W_ba0", "W_ba1"][k]),
        );
        F::matmul(out.rb_mut(), false, rm(&p[x..], n, self.n_in), u);
        F::matmul(out.rb_mut(), true, rm(&p[y..], n, n), s.subrows(0, n));
        F::matmul(out.rb_mut(), true, rm(&p[a..], n, n), s.subrows(n, n));
    }

    /// Shared forward quantities into `m` = [pre_z = W_zx u, pre_ŷ = W_r y, the two gain
    /// pre-activations, q = ⌊y⌋² ⌊a⌋, W q].
    fn fwd<F: Real>(
        &self,
        p: &[F],
        pr: &OrganicsPrep<F>,
        s: MatRef<F>,
        u: MatRef<F>,
        m: &mut [MatMut<F>; 6],
    ) {
        let (n, b) = (self.n, s.ncols());
        let l = &self.layout;
        let [pz, py, g0, g1, q, wq] = m;
        F::matmul(pz.rb_mut(), false, rm(&p[l.off("W_zx")..], n, self.n_in), u);
        F::matmul(
            py.rb_mut(),
            false,
            rm(&p[l.off("W_r")..], n, n),
            s.subrows(0, n),
        );
        self.gain_pre(p, s, u, 0, g0.rb_mut());
        self.gain_pre(p, s, u, 1, g1.rb_mut());
        for j in 0..b {
            for i in 0..n {
                let (y, a) = (s[(i, j)].max(F::zero()), s[(n + i, j)].max(F::zero()));
                q[(i, j)] = y * y * a;
            }
        }
        F::matmul(wq.rb_mut(), false, rm(&pr.wn, n, n), q.as_ref());
    }
}

impl<F: Real> Cell<F> for OrganicsCell {
    type Prep = OrganicsPrep<F>;
    fn name(&self) -> &'static str {
        "organics"
    }
    fn hidden(&self) -> usize {
        self.n
    }
    fn state_dim(&self) -> usize {
        4 * self.n
    }
    fn n_in(&self) -> usize {
        self.n_in
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn prepare(&self, p: &[F]) -> OrganicsPrep<F> {
        let n = self.n;
        let lw = self.layout.off("log_W");
        let wn = (0..n * n)
            .map(|k| p[lw + k].exp().min(F::one()).max(F::zero()))
            .collect();
        let k = std::array::from_fn(|w| {
            let t = self.layout.off(ORG_THETA[w]);
            (0..n).map(|i| F::c(self.kmax(w)) * sig(p[t + i])).collect()
        });
        OrganicsPrep { wn, k }
    }
    fn init_state(&self, p: &[F], s0: &mut [F]) {
        let n = self.n;
        for (w, name) in ["y0", "a0", "b00", "b10"].iter().enumerate() {
            let o = self.layout.off(name);
            s0[w * n..(w + 1) * n].copy_from_slice(&p[o..o + n]);
        }
    }
    fn step(
        &self,
        p: &[F],
        pr: &OrganicsPrep<F>,
        s: MatRef<F>,
        u: MatRef<F>,
        mut out: MatMut<F>,
        ws: &mut Scratch<F>,
    ) {
        let n = self.n;
        let mut m = ws.take(0, [(n, s.ncols()); 6]);
        self.fwd(p, pr, s, u, &mut m);
        let [pz, py, g0, g1, _, wq] = m;
        let sig2 = F::c(self.sigma * self.sigma);
        let [ky, ka, kb0, kb1] = &pr.k;
        for j in 0..s.ncols() {
            for i in 0..n {
                let (y, a, b0, b1) = (
                    s[(i, j)],
                    s[(n + i, j)],
                    s[(2 * n + i, j)],
                    s[(3 * n + i, j)],
                );
                let z = pz[(i, j)].max(F::zero());
                let yh = py[(i, j)].max(F::zero());
                let sa = a.max(F::zero()).sqrt();
                out[(i, j)] = y + ky[i] * (-y + b1 * z + (F::one() - sa) * yh);
                out[(n + i, j)] = a + ka[i] * (-a + sig2 * b0 * b0 + wq[(i, j)]);
                out[(2 * n + i, j)] = b0 + kb0[i] * (-b0 + sig(g0[(i, j)]));
                out[(3 * n + i, j)] = b1 + kb1[i] * (-b1 + sig(g1[(i, j)]));
            }
        }
    }
    fn step_back(
        &self,
        p: &[F],
        pr: &OrganicsPrep<F>,
        s: MatRef<F>,
        u: MatRef<F>,
        dn: MatRef<F>,
        mut ds: MatMut<F>,
        g: &mut [F],
        ws: &mut Scratch<F>,
    ) {
        let (n, b) = (self.n, s.ncols());
        let l = &self.layout;
        let [pz, py, g0, g1, q, wq, mut dpz, mut dpy, mut dg0, mut dg1, mut dwq, mut dq] =
            ws.take(0, [(n, b); 12]);
        let mut m = [pz, py, g0, g1, q, wq];
        self.fwd(p, pr, s, u, &mut m);
        let [pz, py, g0, g1, q, wq] = m;
        let sig2 = F::c(self.sigma * self.sigma);
        let [ky, ka, kb0, kb1] = &pr.k;
        let (ty, ta, tb0, tb1) = (
            l.off("theta_y"),
            l.off("theta_a"),
            l.off("theta_b0"),
            l.off("theta_b1"),
        );
        // Pre-activation gradients of the matrix products (dpz ... dwq, all overwritten below).
        for j in 0..b {
            for i in 0..n {
                let (y, a, b0, b1) = (
                    s[(i, j)],
                    s[(n + i, j)],
                    s[(2 * n + i, j)],
                    s[(3 * n + i, j)],
                );
                let (dy1, da1, db01, db11) = (
                    dn[(i, j)],
                    dn[(n + i, j)],
                    dn[(2 * n + i, j)],
                    dn[(3 * n + i, j)],
                );
                let z = pz[(i, j)].max(F::zero());
                let yh = py[(i, j)].max(F::zero());
                let sa = a.max(F::zero()).sqrt();
                let (s0, s1) = (sig(g0[(i, j)]), sig(g1[(i, j)]));
                // κ gradients (accumulated as ∂L/∂κ; mapped to θ in finish_grad).
                g[ty + i] += dy1 * (-y + b1 * z + (F::one() - sa) * yh);
                g[ta + i] += da1 * (-a + sig2 * b0 * b0 + wq[(i, j)]);
                g[tb0 + i] += db01 * (-b0 + s0);
                g[tb1 + i] += db11 * (-b1 + s1);
                let (gy, ga) = (ky[i] * dy1, ka[i] * da1);
                let dy = (F::one() - ky[i]) * dy1;
                let mut da = (F::one() - ka[i]) * da1;
                let db0 = (F::one() - kb0[i]) * db01 + ga * F::c(2.0) * sig2 * b0;
                let db1 = (F::one() - kb1[i]) * db11 + gy * z;
                dpz[(i, j)] = if pz[(i, j)] > F::zero() {
                    gy * b1
                } else {
                    F::zero()
                };
                dpy[(i, j)] = if py[(i, j)] > F::zero() {
                    gy * (F::one() - sa)
                } else {
                    F::zero()
                };
                if a > F::zero() {
                    da += -gy * yh / (F::c(2.0) * sa);
                }
                dwq[(i, j)] = ga;
                dg0[(i, j)] = kb0[i] * db01 * s0 * (F::one() - s0);
                dg1[(i, j)] = kb1[i] * db11 * s1 * (F::one() - s1);
                // q = ⌊y⌋² ⌊a⌋ enters through W q: its gradient is added below.
                ds[(i, j)] = dy;
                ds[(n + i, j)] = da;
                ds[(2 * n + i, j)] = db0;
                ds[(3 * n + i, j)] = db1;
            }
        }
        // W q: dW += dwq qᵀ, dq = Wᵀ dwq.
        let lw = l.off("log_W");
        F::matmul(
            rm_mut(&mut g[lw..], n, n),
            true,
            dwq.as_ref(),
            q.transpose(),
        );
        F::matmul(
            dq.rb_mut(),
            false,
            rm(&pr.wn, n, n).transpose(),
            dwq.as_ref(),
        );
        for j in 0..b {
            for i in 0..n {
                let (y, a) = (s[(i, j)].max(F::zero()), s[(n + i, j)]);
                let ap = a.max(F::zero());
                ds[(i, j)] += dq[(i, j)] * F::c(2.0) * y * ap;
                if a > F::zero() {
                    ds[(n + i, j)] += dq[(i, j)] * y * y;
                }
            }
        }
        // Matrix products: z = ⌊W_zx u⌋, ŷ = ⌊W_r y⌋, gains.
        let k = self.n_in;
        F::matmul(
            rm_mut(&mut g[l.off("W_zx")..], n, k),
            true,
            dpz.as_ref(),
            u.transpose(),
        );
        let wr = l.off("W_r");
        F::matmul(
            rm_mut(&mut g[wr..], n, n),
            true,
            dpy.as_ref(),
            s.subrows(0, n).transpose(),
        );
        F::matmul(
            ds.rb_mut().subrows_mut(0, n),
            true,
            rm(&p[wr..], n, n).transpose(),
            dpy.as_ref(),
        );
        for (w, dgk) in [dg0, dg1].iter().enumerate() {
            let (x, y, a) = (
                l.off(["W_bx0", "W_bx1"][w]),
                l.off(["W_by0", "W_by1"][w]),
                l.off(["W_ba0", "W_ba1"][w]),
            );
            F::matmul(rm_mut(&mut g[x..], n, k), true, dgk.as_ref(), u.transpose());
            F::matmul(
                rm_mut(&mut g[y..], n, n),
                true,
                dgk.as_ref(),
                s.subrows(0, n).transpose(),
            );
            F::matmul(
                rm_mut(&mut g[a..], n, n),
                true,
                dgk.as_ref(),
                s.subrows(n, n).transpose(),
            );
            F::matmul(
                ds.rb_mut().subrows_mut(0, n),
                true,
                rm(&p[y..], n, n).transpose(),
                dgk.as_ref(),
            );
            F::matmul(
                ds.rb_mut().subrows_mut(n, n),
                true,
                rm(&p[a..], n, n).transpose(),
                dgk.as_ref(),
            );
        }
    }
    fn project(&self, p: &mut [F]) {
        let Some(c) = self.wr_max_sv else { return };
        let n = self.n;
        let o = self.layout.off("W_r");
        let w = faer::Mat::<f64>::from_fn(n, n, |i, j| p[o + i * n + j].f());
        let smax = w
            .singular_values()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(0.0);
        if smax > c {
            let k = F::c(c / smax);
            for v in &mut p[o..o + n * n] {
                *v *= k;
            }
        }
    }
    fn finish_grad(&self, p: &[F], g: &mut [F]) {
        let n = self.n;
        let lw = self.layout.off("log_W");
        for k in 0..n * n {
            // W = clamp(e^{log W}, 0, 1): dW/dlog W = e^{log W} below the clamp, 0 above.
            let e = p[lw + k].exp();
            g[lw + k] = if e <= F::one() {
                g[lw + k] * e
            } else {
                F::zero()
            };
        }
        for (w, name) in ORG_THETA.iter().enumerate() {
            let t = self.layout.off(name);
            for i in 0..n {
                let sg = sig(p[t + i]);
                g[t + i] = g[t + i] * F::c(self.kmax(w)) * sg * (F::one() - sg);
            }
        }
    }
}

/// Seeded generator for initialisations.
pub fn init_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
