//! PyTorch's GRU as a trainable cell (Cho et al. 2014, in `nn.GRU`'s gate order r, z, n — the
//! other baseline of Geadah et al. 2024's psMNIST table):
//!
//! $$ \begin{aligned} r &= \sigma(W_{ir} u + b_{ir} + W_{hr} h + b_{hr}), \quad
//!    z = \sigma(W_{iz} u + b_{iz} + W_{hz} h + b_{hz}),\\
//!    n &= \tanh(W_{in} u + b_{in} + r \odot (W_{hn} h + b_{hn})), \qquad
//!    h' = (1 - z) \odot n + z \odot h. \end{aligned} $$
//!
//! Tensors carry PyTorch's names (`weight_ih_l0` [3N, N_in], `weight_hh_l0` [3N, N],
//! `bias_ih_l0`, `bias_hh_l0` `[3N]`): a checkpoint is also an `nn.GRU` state dict, and the
//! analyses take it as the layer's map at zero input
//! ([`TorchRnn`](crate::model::torch_rnn::TorchRnn)).
//!
//! Backward (δh' given): e_n = δh' ⊙ (1 − z) ⊙ (1 − n²), e_z = δh' ⊙ (h − n) ⊙ z(1 − z),
//! e_r = e_n ⊙ (W_hn h + b_hn) ⊙ r(1 − r); the input side of the gates has errors (e_r, e_z, e_n),
//! the recurrent side (e_r, e_z, e_n ⊙ r); δh = δh' ⊙ z + W_hhᵀ (recurrent errors).
use super::gates_in_place;
use super::*;
use crate::model::Activation;
use crate::tensor::real::{rm, rm_mut};
use crate::train::shader::{cell_slots, tensor_slot, WorkLayout};
use faer::reborrow::{Reborrow, ReborrowMut};

/// The GRU's gates from the input-side and recurrent-side pre-activations (3N × B each, PyTorch's
/// order r, z, n), written over `ai`: r = σ(a_r + h_r), z = σ(a_z + h_z),
/// n = tanh(a_n + r ⊙ h_n) — vectorised a block at a time.
fn gru_gates<F: Real>(n: usize, mut ai: MatMut<'_, F>, ah: MatRef<'_, F>) {
    for j in 0..ai.ncols() {
        for k in 0..2 * n {
            ai[(k, j)] = ai[(k, j)] + ah[(k, j)];
        }
    }
    gates_in_place(
        ai.rb_mut().subrows_mut(0, 2 * n),
        n,
        &[Activation::Sigmoid; 2],
    );
    for j in 0..ai.ncols() {
        for i in 0..n {
            ai[(2 * n + i, j)] = ai[(2 * n + i, j)] + ai[(i, j)] * ah[(2 * n + i, j)];
        }
    }
    gates_in_place(ai.rb_mut().subrows_mut(2 * n, n), n, &[Activation::Tanh]);
}
use rand::Rng;

/// PyTorch `nn.GRU` (one layer) as a trainable cell; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct GruCell {
    pub n: usize,
    pub n_in: usize,
    layout: Layout,
}

/// The four tensors of a PyTorch recurrent layer with G gates.
pub(crate) fn gated_layout(gates: usize, n: usize, n_in: usize) -> Layout {
    let mut l = Layout::default();
    l.push("weight_ih_l0", &[gates * n, n_in], true);
    l.push("weight_hh_l0", &[gates * n, n], true);
    l.push("bias_ih_l0", &[gates * n], true);
    l.push("bias_hh_l0", &[gates * n], true);
    l
}

/// PyTorch's initialisation of its recurrent layers: every entry U(−1/√N, 1/√N).
pub(crate) fn gated_init<F: Real>(layout: &Layout, n: usize, p: &mut [F], rng: &mut ChaCha8Rng) {
    let k = 1.0 / (n as f64).sqrt();
    for name in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"] {
        if let Some(t) = layout.get(name) {
            for v in &mut p[t.range()] {
                *v = F::c(rng.random_range(-k..k));
            }
        }
    }
}

/// (N, N_in) of a checkpoint's gated layer with G gates, its shapes checked.
pub(crate) fn gated_load(ck: &CheckpointReader, gates: usize) -> Result<(usize, usize)> {
    let hh = ck.shape("weight_hh_l0")?;
    let ih = ck.shape("weight_ih_l0")?;
    match (hh.as_slice(), ih.as_slice()) {
        ([r, n], [r2, k]) if *n > 0 && *r == gates * n && r2 == r && *k > 0 => Ok((*n, *k)),
        _ => Err(ck.error(format!(
            "`weight_hh_l0` {hh:?} / `weight_ih_l0` {ih:?}: a {}-gate layer needs [{gates}·N, N] and [{gates}·N, N_in]",
            gates
        ))),
    }
}

/// The weight gradients of a PyTorch recurrent layer from the pre-activation errors of a step:
/// `e_in` (input side, G·N × B) and `e_rec` (recurrent side; the same but for the GRU's n gate),
/// the previous hidden state `h` (N × B) and the inputs `u`: g_Wih += e_in uᵀ, g_Whh += e_rec hᵀ,
/// g_bih += Σ e_in, g_bhh += Σ e_rec.
pub(crate) fn gated_weight_grads<F: Real>(
    l: &Layout,
    e_in: MatRef<F>,
    e_rec: MatRef<F>,
    h: MatRef<F>,
    u: MatRef<F>,
    g: &mut [F],
) {
    let (rows, n, n_in) = (e_in.nrows(), h.nrows(), u.nrows());
    let (wh, wi) = (l.off("weight_hh_l0"), l.off("weight_ih_l0"));
    F::matmul(rm_mut(&mut g[wh..], rows, n), true, e_rec, h.transpose());
    F::matmul(rm_mut(&mut g[wi..], rows, n_in), true, e_in, u.transpose());
    let (bi, bh) = (l.off("bias_ih_l0"), l.off("bias_hh_l0"));
    for j in 0..e_in.ncols() {
        for r in 0..rows {
            g[bi + r] += e_in[(r, j)];
            g[bh + r] += e_rec[(r, j)];
        }
    }
}

/// The constructor and the [`CellFamily`] of a PyTorch gated cell with `gates` gate blocks
/// (the LSTM: 4, the GRU: 3): PyTorch's tensor names and initialisation, recognised by the row
/// count of `weight_hh_l0`, nothing but the tensors in a checkpoint, `gated.wgsl` on the GPU.
macro_rules! gated_family {
    ($ty:ident, $gates:literal) => {
        impl $ty {
            pub fn new(n: usize, n_in: usize) -> Result<Self> {
                check_sizes(n, n_in)?;
                Ok($ty {
                    n,
                    n_in,
                    layout: $crate::train::cell::gru::gated_layout($gates, n, n_in),
                })
            }
        }

        impl CellFamily for $ty {
            const SIGNATURE: &'static str = "weight_hh_l0";

            fn recognises(
                has: &dyn Fn(&str) -> bool,
                shape: &dyn Fn(&str) -> Option<Vec<usize>>,
            ) -> bool {
                has(Self::SIGNATURE) && $crate::train::cell::gru::torch_shape_is(shape, $gates)
            }

            fn build(spec: &CellSpec, n_in: usize, _rng: &mut ChaCha8Rng) -> Result<Self> {
                $ty::new(spec.hidden, n_in)
            }

            /// PyTorch's initialisation: every weight and bias U(−1/√N, 1/√N).
            fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
                $crate::train::cell::gru::gated_init(&self.layout, self.n, p, rng);
            }

            fn save<F: Real>(&self, _layout: &Layout, _p: &[F], _out: &mut CheckpointWriter) {}

            fn load(ck: &CheckpointReader) -> Result<Self> {
                let (n, n_in) = $crate::train::cell::gru::gated_load(ck, $gates)?;
                $ty::new(n, n_in)
            }

            fn gpu(&self, layout: &Layout) -> Result<GpuCell> {
                $crate::train::cell::gru::gated_gpu(layout, $gates)
            }
        }
    };
}
pub(crate) use gated_family;

/// Whether `weight_hh_l0` has G·N rows for N columns.
pub(crate) fn torch_shape_is(shape: &dyn Fn(&str) -> Option<Vec<usize>>, gates: usize) -> bool {
    matches!(shape("weight_hh_l0").as_deref(), Some([r, n]) if *n > 0 && *r == gates * n)
}

// The uniform slots of `gated.wgsl`, by name.
cell_slots! {
    H = 17,
    CC = 18,
    GA = 19,
    EA = 31,
    W_IH = 32,
    W_HH = 33,
    B_IH = 34,
    B_HH = 35,
    GATES = 36,
    IS_LSTM = 37,
}

/// h and c per state (T + 1), gate values and errors per step (4N each), then the common arrays.
fn gated_work(t: usize, b: usize, n: usize, _c: usize, _cfg: &[u32]) -> Vec<(usize, usize)> {
    let (state, step) = ((t + 1) * b * n, t * b * 4 * n);
    vec![(H, state), (CC, state), (GA, step), (EA, step)]
}

/// The GPU description shared by the LSTM (G = 4) and the GRU (G = 3).
pub(crate) fn gated_gpu(layout: &Layout, gates: usize) -> Result<GpuCell> {
    let work: WorkLayout = gated_work;
    Ok(GpuCell {
        shader: include_str!("../gated.wgsl"),
        wg_arrays: 4,
        slots: SLOTS,
        cfg: vec![
            (W_IH, tensor_slot(layout, "weight_ih_l0")),
            (W_HH, tensor_slot(layout, "weight_hh_l0")),
            (B_IH, tensor_slot(layout, "bias_ih_l0")),
            (B_HH, tensor_slot(layout, "bias_hh_l0")),
            (GATES, gates as u32),
            (IS_LSTM, u32::from(gates == 4)),
        ],
        prep: vec![],
        work,
    })
}

impl GruCell {
    /// ai = W_ih u + b_ih, ah = W_hh h + b_hh (3N × B each).
    fn pre<F: Real>(
        &self,
        p: &[F],
        h: MatRef<F>,
        u: MatRef<F>,
        mut ai: MatMut<F>,
        mut ah: MatMut<F>,
    ) {
        let (n, l) = (self.n, &self.layout);
        F::matmul(
            ah.rb_mut(),
            false,
            rm(&p[l.off("weight_hh_l0")..], 3 * n, n),
            h,
        );
        F::matmul(
            ai.rb_mut(),
            false,
            rm(&p[l.off("weight_ih_l0")..], 3 * n, self.n_in),
            u,
        );
        let (bi, bh) = (l.off("bias_ih_l0"), l.off("bias_hh_l0"));
        for j in 0..h.ncols() {
            for r in 0..3 * n {
                ai[(r, j)] += p[bi + r];
                ah[(r, j)] += p[bh + r];
            }
        }
    }
}

impl<F: Real> Cell<F> for GruCell {
    type Prep = ();
    cell_basics!("gru", |c| c.n);
    fn prepare(&self, _p: &[F]) {}
    fn step(&self, x: StepIn<F, Self::Prep>, mut out: MatMut<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let (n, b) = (self.n, s.ncols());
        let [mut ai, mut ah] = ws.take(0, [(3 * n, b), (3 * n, b)]);
        self.pre(p, s, u, ai.rb_mut(), ah.rb_mut());
        gru_gates(n, ai.rb_mut(), ah.rb());
        for j in 0..b {
            for i in 0..n {
                let (z, nn) = (ai[(n + i, j)], ai[(2 * n + i, j)]);
                out[(i, j)] = (F::one() - z) * nn + z * s[(i, j)];
            }
        }
    }
    fn step_back(&self, x: StepIn<F, Self::Prep>, back: StepBack<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let StepBack { dn, mut ds, g } = back;
        let (n, b, one) = (self.n, s.ncols(), F::one());
        let [mut ai, mut ah] = ws.take(0, [(3 * n, b), (3 * n, b)]);
        self.pre(p, s, u, ai.rb_mut(), ah.rb_mut());
        gru_gates(n, ai.rb_mut(), ah.rb());
        // ai ← input-side errors (e_r, e_z, e_n), ah ← recurrent-side (e_r, e_z, e_n ⊙ r).
        for j in 0..b {
            for i in 0..n {
                let (r, z, nn) = (ai[(i, j)], ai[(n + i, j)], ai[(2 * n + i, j)]);
                let hn = ah[(2 * n + i, j)];
                let d = dn[(i, j)];
                let e_n = d * (one - z) * (one - nn * nn);
                let e_z = d * (s[(i, j)] - nn) * z * (one - z);
                let e_r = e_n * hn * r * (one - r);
                ai[(i, j)] = e_r;
                ai[(n + i, j)] = e_z;
                ai[(2 * n + i, j)] = e_n;
                ah[(i, j)] = e_r;
                ah[(n + i, j)] = e_z;
                ah[(2 * n + i, j)] = e_n * r;
                ds[(i, j)] = d * z;
            }
        }
        let l = &self.layout;
        let wh = l.off("weight_hh_l0");
        F::matmul(
            ds.rb_mut(),
            true,
            rm(&p[wh..], 3 * n, n).transpose(),
            ah.rb(),
        );
        gated_weight_grads(l, ai.rb(), ah.rb(), s, u, g);
    }
}

gated_family!(GruCell, 3);
