//! The leaky rate RNN with Dale's law (Kim, Li & Sejnowski 2019), one Euler step per time step:
//!
//! $$ x' = x + \alpha \odot (-x + W \varphi(x) + W_{in} u), \qquad \alpha = 1/\tau(\gamma),
//!    \quad \tau = \tau_{min} + (\tau_{max} - \tau_{min})\,\sigma(\gamma), $$
//!
//! with $W = \mathrm{relu}(W_{raw})\,\mathrm{diag}(d)$ under Dale's law ($d_j = \pm 1$ the sign
//! of sending unit j), masked by $M_{som}$ when the network has SST units: with `som` = som_N > 0
//! the first som_N inhibitory units are SST units, which receive no inhibition
//! ($W_{ij} = 0$ for SST unit i and inhibitory unit j; Kim, Li & Sejnowski 2019, SI). Trained, it is analysed as its continuous flow
//! $\tau \odot \dot x = -x + W\varphi(x)$ ([`RateRnn`]).
use super::*;
use crate::model::RateRnn;
use crate::tensor::real::{rm, rm_mut, sig};
use crate::train::shader::{cell_slots, f32_slot, tensor_slot};
use faer::reborrow::{Reborrow, ReborrowMut};
use rand::Rng;

/// The pointwise nonlinearity of the rate cell.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
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
/// law (d = ±1 by sending unit) and W = W_raw otherwise, times the SST mask M_som (`som` SST units,
/// see [`RateCell::with_som`]). The read-out sees r = φ(x).
/// Tensors: `W_raw` `[N, N]`, `W_in` `[N, N_in]` (trained unless `fixed_input`), `gamma` `[N]`
/// (trained if `learn_tau`).
#[derive(Debug, Clone, PartialEq)]
pub struct RateCell {
    pub n: usize,
    pub n_in: usize,
    pub phi: RatePhi,
    pub dale: Option<Vec<f64>>,
    pub tau: (f64, f64),
    /// som_N: the first `som` inhibitory units are SST units (0: no mask).
    pub som: usize,
    /// Per row i: whether unit i is an SST unit (empty when `som` = 0).
    sst: Vec<bool>,
    layout: Layout,
}

/// Effective W (row-major) and α of the rate cell.
pub struct RatePrep<F> {
    w: Vec<F>,
    alpha: Vec<F>,
}

impl RateCell {
    /// r = φ(s) and (optionally) dr = φ'(s) over a block of states; tanh and the sigmoid
    /// vectorised a column at a time ([`act_into`](super::act_into)), φ' from the value (1 − r², r(1 − r)).
    fn phi_block<F: Real>(&self, s: MatRef<F>, mut r: MatMut<F>, mut dr: Option<MatMut<F>>) {
        let (n, b) = (s.nrows(), s.ncols());
        for j in 0..b {
            let vectorised = self.phi != RatePhi::Relu
                && match (
                    s.col(j).try_as_col_major(),
                    r.rb_mut().col_mut(j).try_as_col_major_mut(),
                ) {
                    (Some(sc), Some(rc)) => {
                        super::act_into(self.phi.activation(), sc.as_slice(), rc.as_slice_mut());
                        true
                    }
                    _ => false,
                };
            for i in 0..n {
                let d = if vectorised {
                    let v = r[(i, j)];
                    if self.phi == RatePhi::Tanh {
                        F::one() - v * v
                    } else {
                        v * (F::one() - v)
                    }
                } else {
                    let (v, d) = self.phi.eval(s[(i, j)]);
                    r[(i, j)] = v;
                    d
                };
                if let Some(dm) = dr.as_mut() {
                    dm[(i, j)] = d;
                }
            }
        }
    }

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
            som: 0,
            sst: Vec::new(),
            layout,
        })
    }

    /// The SST motif of Kim, Li & Sejnowski (2019): the first `som` inhibitory units (in unit
    /// order) are SST units, and the rows of the SST units are zeroed in the columns of all
    /// inhibitory units (M_som; SST units receive no inhibition). Needs Dale's law and at least
    /// `som` inhibitory units; `som` = 0 removes the mask.
    pub fn with_som(mut self, som: usize) -> Result<Self> {
        if som == 0 {
            self.som = 0;
            self.sst.clear();
            return Ok(self);
        }
        let Some(d) = &self.dale else {
            return Err(Error::invalid(
                "som",
                format!("{som} SST units need Dale's law (a network with inhibitory units)"),
            ));
        };
        let inh: Vec<usize> = (0..self.n).filter(|&j| d[j] < 0.0).collect();
        if som > inh.len() {
            return Err(Error::invalid(
                "som",
                format!(
                    "{som} SST units, but the network has only {} inhibitory units",
                    inh.len()
                ),
            ));
        }
        let mut sst = vec![false; self.n];
        for &i in &inh[..som] {
            sst[i] = true;
        }
        self.som = som;
        self.sst = sst;
        Ok(self)
    }

    /// Whether M_som zeroes entry k = i N + j (SST row i, inhibitory column j).
    #[inline]
    fn masked(&self, k: usize) -> bool {
        match (&self.dale, self.som) {
            (Some(d), s) if s > 0 => self.sst[k / self.n] && d[k % self.n] < 0.0,
            _ => false,
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

impl<F: Real> Cell<F> for RateCell {
    type Prep = RatePrep<F>;
    cell_basics!("rate", |c| c.n);
    fn prepare(&self, p: &[F]) -> RatePrep<F> {
        let n = self.n;
        let w0 = self.layout.off("W_raw");
        let w = (0..n * n)
            .map(|k| match &self.dale {
                _ if self.masked(k) => F::zero(),
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
    fn step(&self, x: StepIn<F, Self::Prep>, mut out: MatMut<F>, ws: &mut Scratch<F>) {
        let StepIn { p, prep: pr, s, u } = x;
        let (n, b) = (self.n, s.ncols());
        let [mut r] = ws.take(0, [(n, b)]);
        self.phi_block(s, r.rb_mut(), None);
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
    fn step_back(&self, x: StepIn<F, Self::Prep>, back: StepBack<F>, ws: &mut Scratch<F>) {
        let StepIn { p, prep: pr, s, u } = x;
        let StepBack { dn, mut ds, g } = back;
        let (n, b, m) = (self.n, s.ncols(), self.n_in);
        let [mut r, mut dr, mut a, mut ax] = ws.take(0, [(n, b); 4]);
        self.phi_block(s, r.rb_mut(), Some(dr.rb_mut()));
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
                // relu'(0) = 0 (Kim, Li & Sejnowski 2019); M_som entries get no gradient.
                g[w0 + k] = if p[w0 + k] > F::zero() && !self.masked(k) {
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

impl CellFamily for RateCell {
    const SIGNATURE: &'static str = "W_raw";

    fn build(spec: &CellSpec, n_in: usize, rng: &mut ChaCha8Rng) -> Result<Self> {
        let dale = spec.dale.then(|| RateCell::draw_dale(spec.hidden, rng));
        // Kim et al. keep W_in fixed; on digits it is learned.
        RateCell::new(
            spec.hidden,
            n_in,
            spec.phi,
            dale,
            spec.tau,
            !spec.fixed_tau,
            spec.dale,
        )?
        .with_som(spec.som)
    }

    /// Kim, Li & Sejnowski (2019) initialisation into `p`: connection probability 0.2, W_raw = |g N(0,1)/√(Np)|
    /// with gain 1.5 under Dale's law (20 % inhibitory), g N(0,1)/√N otherwise; W_in ~ N(0, 1);
    /// γ ~ N(0, 1).
    fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
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

    fn save<F: Real>(&self, layout: &Layout, p: &[F], out: &mut CheckpointWriter) {
        out.meta("phi", self.phi.name());
        out.meta_f64("tau_min", self.tau.0);
        out.meta_f64("tau_max", self.tau.1);
        let train = |n: &str| layout.get(n).map(|t| t.train).unwrap_or(true);
        out.meta("learn_tau", train("gamma"));
        out.meta("fixed_input", !train("W_in"));
        if self.som > 0 {
            out.meta("som", self.som);
        }
        let n = self.n;
        if let Some(d) = &self.dale {
            out.tensor("dale", vec![n], d.clone());
        }
        let (w, tau) = self.effective(p);
        out.tensor("W", vec![n, n], w);
        out.tensor("tau", vec![n], tau);
    }

    fn load(ck: &CheckpointReader) -> Result<Self> {
        let (n, k) = (ck.dim("W_in", 0)?, ck.dim("W_in", 1)?);
        let dale = if ck.has("dale") {
            Some(ck.tensor("dale")?.1)
        } else {
            None
        };
        let phi = RatePhi::parse(ck.meta("phi").unwrap_or("sigmoid"))?;
        RateCell::new(
            n,
            k,
            phi,
            dale,
            (ck.meta_f64("tau_min", 4.0)?, ck.meta_f64("tau_max", 20.0)?),
            ck.meta_bool("learn_tau", true),
            ck.meta_bool("fixed_input", false),
        )?
        .with_som(ck.meta_usize("som", 0)?)
    }

    fn analysis(&self, net: &SeqNet<f64, AnyCell>) -> Result<Analysis> {
        let (w, tau) = self.effective(&net.params);
        let n = self.n;
        let w = faer::Mat::from_fn(n, n, |i, j| w[i * n + j]);
        Ok(Analysis::Flow(
            RateRnn::new(w, self.phi.activation())?.with_tau(tau)?,
        ))
    }

    fn gpu(&self, layout: &Layout) -> Result<GpuCell> {
        if self.som > 0 {
            return Err(Error::invalid(
                "som",
                "the SST mask is trained on the CPU only (--device cpu)",
            ));
        }
        let p = layout.len as u32;
        let train = |name: &str| layout.get(name).is_some_and(|t| t.train);
        let n = self.n;
        Ok(GpuCell {
            shader: include_str!("../cells.wgsl"),
            wg_arrays: 1,
            slots: SLOTS,
            cfg: vec![
                (
                    PHI,
                    match self.phi {
                        RatePhi::Tanh => 0,
                        RatePhi::Relu => 1,
                        RatePhi::Sigmoid => 2,
                    },
                ),
                (DALE, u32::from(self.dale.is_some())),
                (W_IN, tensor_slot(layout, "W_in")),
                (TAU_PARAM, tensor_slot(layout, "gamma")),
                (TAU_MIN, f32_slot(self.tau.0)),
                (TAU_MAX, f32_slot(self.tau.1)),
                (FIXED_INPUT, u32::from(!train("W_in"))),
                (LEARN_NL, u32::from(train("gamma"))),
                (IS_GAMMA, 0),
                (W_REC, tensor_slot(layout, "W_raw")),
                (BIAS, p),
                (GAMMA_N, p),
                (GAMMA_S, p),
            ],
            // prep: W [N, N] | α [N] | Dale signs [N] | Wᵀ [N, N]
            prep: self
                .dale
                .iter()
                .flatten()
                .enumerate()
                .map(|(j, s)| (n * n + n + j, *s as f32))
                .collect(),
            work: single_population_work,
        })
    }
}

// The uniform slots of `cells.wgsl` (the rate and gamma cells), by name.
cell_slots! {
    PHI = 6,
    DALE = 7,
    W_IN = 10,
    TAU_PARAM = 11,
    X = 17,
    A = 18,
    D = 19,
    TAU_MIN = 23,
    TAU_MAX = 24,
    FIXED_INPUT = 28,
    LEARN_NL = 29,
    IS_GAMMA = 30,
    R = 31,
    W_REC = 32,
    BIAS = 33,
    GAMMA_N = 34,
    GAMMA_S = 35,
    E = 36,
}

/// Work buffer of `cells.wgsl`: X, R [(T+1)][B][N] | A, D, E [T][B][N] | ∂L/∂o [T][B][C] |
/// losses [B] | hits [B].
pub(crate) fn single_population_work(
    t: usize,
    b: usize,
    n: usize,
    _c: usize,
    _cfg: &[u32],
) -> Vec<(usize, usize)> {
    let (state, step) = ((t + 1) * b * n, t * b * n);
    vec![(X, state), (R, state), (A, step), (D, step), (E, step)]
}
