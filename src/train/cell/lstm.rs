//! PyTorch's LSTM as a trainable cell (Hochreiter & Schmidhuber 1997, in `nn.LSTM`'s gate order
//! i, f, g, o — the baseline of Geadah et al. 2024's psMNIST table), state s = [h; c] (2N):
//!
//! $$ \begin{aligned} (\tilde\imath, \tilde f, \tilde g, \tilde o) &= W_{ih} u + b_{ih} + W_{hh} h + b_{hh},\\
//!    i, f, o &= \sigma(\cdot), \quad g = \tanh(\tilde g),\\
//!    c' &= f \odot c + i \odot g, \qquad h' = o \odot \tanh(c'). \end{aligned} $$
//!
//! Tensors carry PyTorch's names (`weight_ih_l0` [4N, N_in], `weight_hh_l0` [4N, N],
//! `bias_ih_l0`, `bias_hh_l0` `[4N]`), so a checkpoint is also an `nn.LSTM` state dict: it loads
//! into PyTorch with `load_state_dict`, and `fixed-points` / `lyapunov` / `simulate --checkpoint`
//! analyse it as the layer's map at zero input ([`TorchRnn`](crate::model::torch_rnn::TorchRnn)).
//! The read-out reads h.
//!
//! Backward (δh', δc' given): δc̄ = δc' + δh' ⊙ o ⊙ (1 − tanh² c'), then the gate pre-activations
//! get e_i = δc̄ ⊙ g ⊙ i(1 − i), e_f = δc̄ ⊙ c ⊙ f(1 − f), e_g = δc̄ ⊙ i ⊙ (1 − g²),
//! e_o = δh' ⊙ tanh c' ⊙ o(1 − o); δh = W_hhᵀ e, δc = δc̄ ⊙ f; the weight gradients are e hᵀ,
//! e uᵀ and Σ e for both biases.
use super::gates_in_place;
use super::gru::{gated_family, gated_weight_grads};
use super::*;
use crate::model::Activation;
use crate::tensor::real::rm;
use faer::reborrow::{Reborrow, ReborrowMut};

/// The LSTM's gates in PyTorch's order: input, forget, cell (candidate), output.
const GATES: [Activation; 4] = [
    Activation::Sigmoid,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Sigmoid,
];

/// PyTorch `nn.LSTM` (one layer) as a trainable cell; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCell {
    pub n: usize,
    pub n_in: usize,
    layout: Layout,
}

impl LstmCell {
    /// a = W_hh h + W_ih u + b_ih + b_hh (4N × B).
    fn pre<F: Real>(&self, p: &[F], h: MatRef<F>, u: MatRef<F>, mut a: MatMut<F>) {
        let (n, l) = (self.n, &self.layout);
        F::matmul(
            a.rb_mut(),
            false,
            rm(&p[l.off("weight_hh_l0")..], 4 * n, n),
            h,
        );
        F::matmul(
            a.rb_mut(),
            true,
            rm(&p[l.off("weight_ih_l0")..], 4 * n, self.n_in),
            u,
        );
        let (bi, bh) = (l.off("bias_ih_l0"), l.off("bias_hh_l0"));
        for j in 0..a.ncols() {
            for r in 0..4 * n {
                a[(r, j)] += p[bi + r] + p[bh + r];
            }
        }
    }
}

impl<F: Real> Cell<F> for LstmCell {
    type Prep = ();
    cell_basics!("lstm", |c| 2 * c.n);
    fn prepare(&self, _p: &[F]) {}
    fn step(&self, x: StepIn<F, Self::Prep>, mut out: MatMut<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let (n, b) = (self.n, s.ncols());
        let [mut a] = ws.take(0, [(4 * n, b)]);
        self.pre(p, s.subrows(0, n), u, a.rb_mut());
        gates_in_place(a.rb_mut(), n, &GATES);
        // c' = f ⊙ c + i ⊙ g, written to the state and (for tanh c') over the spent input gate.
        for j in 0..b {
            for i in 0..n {
                let c = a[(n + i, j)] * s[(n + i, j)] + a[(i, j)] * a[(2 * n + i, j)];
                out[(n + i, j)] = c;
                a[(i, j)] = c;
            }
        }
        gates_in_place(a.rb_mut().subrows_mut(0, n), n, &[Activation::Tanh]);
        for j in 0..b {
            for i in 0..n {
                out[(i, j)] = a[(3 * n + i, j)] * a[(i, j)];
            }
        }
    }
    fn step_back(&self, x: StepIn<F, Self::Prep>, back: StepBack<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let StepBack { dn, mut ds, g } = back;
        let (n, b, one) = (self.n, s.ncols(), F::one());
        let [mut a, mut t] = ws.take(0, [(4 * n, b), (n, b)]);
        self.pre(p, s.subrows(0, n), u, a.rb_mut());
        gates_in_place(a.rb_mut(), n, &GATES);
        for j in 0..b {
            for i in 0..n {
                t[(i, j)] = a[(n + i, j)] * s[(n + i, j)] + a[(i, j)] * a[(2 * n + i, j)];
            }
        }
        gates_in_place(t.rb_mut(), n, &[Activation::Tanh]);
        // a ← e = ∂L/∂(pre-activations); ds's c part ← δc.
        for j in 0..b {
            for i in 0..n {
                let (ig, fg) = (a[(i, j)], a[(n + i, j)]);
                let (gg, og) = (a[(2 * n + i, j)], a[(3 * n + i, j)]);
                let c = s[(n + i, j)];
                let tc = t[(i, j)];
                let (dh, dc) = (dn[(i, j)], dn[(n + i, j)]);
                let dcb = dc + dh * og * (one - tc * tc);
                a[(i, j)] = dcb * gg * ig * (one - ig);
                a[(n + i, j)] = dcb * c * fg * (one - fg);
                a[(2 * n + i, j)] = dcb * ig * (one - gg * gg);
                a[(3 * n + i, j)] = dh * tc * og * (one - og);
                ds[(n + i, j)] = dcb * fg;
            }
        }
        let l = &self.layout;
        let wh = l.off("weight_hh_l0");
        F::matmul(
            ds.rb_mut().subrows_mut(0, n),
            false,
            rm(&p[wh..], 4 * n, n).transpose(),
            a.rb(),
        );
        gated_weight_grads(l, a.rb(), a.rb(), s.subrows(0, n), u, g);
    }
}

gated_family!(LstmCell, 4);
