//! The RNN with per-neuron gamma units (Geadah et al. 2024, "RNN+γ" with per-neuron n, s):
//!
//! $$ h' = \gamma(U u + V h + b;\, n, s), \qquad
//!    \gamma(x; n, s) = (1 - s)\,\frac{\ln(1 + e^{n x})}{n} + s\,\sigma(n x), $$
//!
//! with n, s ∈ Rᴺ learned. Trained, it is analysed as the RNN map [`RnnMap`].
use super::rate::{
    single_population_work, BIAS, GAMMA_N, GAMMA_S, IS_GAMMA, LEARN_NL, TAU_PARAM, W_IN, W_REC,
};
use super::*;
use crate::model::{Activation, RnnMap};
use crate::tensor::real::{rm, rm_mut};
use crate::train::shader::tensor_slot;
use faer::reborrow::{Reborrow, ReborrowMut};
use rand::Rng;

/// Gamma RNN (Geadah et al. (2024), per-neuron "gamma2"): h' = γ(U u + V h + b; n, s).
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
pub(crate) fn gamma_all<F: Real>(x: F, n: F, s: F) -> (F, F, F, F) {
    let (g, dx, dn, ds) = crate::model::gamma::gamma_with_partials(x.f(), n.f(), s.f());
    (F::c(g), F::c(dx), F::c(dn), F::c(ds))
}

impl<F: Real> Cell<F> for GammaCell {
    type Prep = ();
    cell_basics!("gamma", |c| c.n);
    fn prepare(&self, _p: &[F]) {}
    fn step(&self, x: StepIn<F, Self::Prep>, mut out: MatMut<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let [mut a] = ws.take(0, [(self.n, s.ncols())]);
        self.pre(p, s, u, a.rb_mut());
        let (nn, ss) = (self.layout.off("n"), self.layout.off("s"));
        for j in 0..s.ncols() {
            for i in 0..self.n {
                let (x, ni, si) = (a[(i, j)].f(), p[nn + i].f(), p[ss + i].f());
                out[(i, j)] = F::c(crate::model::gamma::gamma(x, ni, si));
            }
        }
    }
    fn step_back(&self, x: StepIn<F, Self::Prep>, back: StepBack<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let StepBack { dn, mut ds, g } = back;
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

impl CellFamily for GammaCell {
    const SIGNATURE: &'static str = "V";

    fn build(spec: &CellSpec, n_in: usize, _rng: &mut ChaCha8Rng) -> Result<Self> {
        GammaCell::new(spec.hidden, n_in, true)
    }

    /// The seed's initialisation: U kaiming N(0, 2/N_in), V 'henaff', b = b_U + b_V with
    /// nn.Linear's U(±1/√fan_in) each, n = 5 + 2 U(0, 1), s = 0 (per neuron).
    fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
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

    fn save<F: Real>(&self, layout: &Layout, _p: &[F], out: &mut CheckpointWriter) {
        let train = layout.get("n").map(|t| t.train).unwrap_or(true);
        out.meta("learn_ns", train);
    }

    fn load(ck: &CheckpointReader) -> Result<Self> {
        GammaCell::new(
            ck.dim("U", 0)?,
            ck.dim("U", 1)?,
            ck.meta_bool("learn_ns", true),
        )
    }

    fn analysis(&self, net: &SeqNet<f64, AnyCell>) -> Result<Analysis> {
        let (l, p) = (&net.layout, &net.params);
        let v = |name: &str| -> Vec<f64> {
            l.get(name)
                .map(|t| p[t.range()].to_vec())
                .unwrap_or_default()
        };
        let n = self.n;
        let vo = l.off("V");
        let w = faer::Mat::from_fn(n, n, |i, j| p[vo + i * n + j]);
        Ok(Analysis::Map(
            RnnMap::new(w, Activation::Linear)?
                .with_bias(v("b"))?
                .with_gamma_per_neuron(v("n"), v("s"))?,
        ))
    }

    fn gpu(&self, layout: &Layout) -> Result<GpuCell> {
        let train = |name: &str| layout.get(name).is_some_and(|t| t.train);
        Ok(GpuCell {
            shader: include_str!("../cells.wgsl"),
            wg_arrays: 1,
            slots: super::rate::SLOTS,
            cfg: vec![
                (W_IN, tensor_slot(layout, "U")),
                (TAU_PARAM, layout.len as u32),
                (LEARN_NL, u32::from(train("n"))),
                (IS_GAMMA, 1),
                (W_REC, tensor_slot(layout, "V")),
                (BIAS, tensor_slot(layout, "b")),
                (GAMMA_N, tensor_slot(layout, "n")),
                (GAMMA_S, tensor_slot(layout, "s")),
            ],
            prep: vec![],
            work: single_population_work,
        })
    }
}
