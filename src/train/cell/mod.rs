//! Trainable recurrent cells: one discrete update `s_{t+1} = f(s_t, u_t; θ)` each, batched over
//! trials, with a hand-derived backward pass (the Jacobian-transpose product of the update plus
//! the parameter derivatives). Every backward pass is checked against finite differences in
//! `tests/suite/train_cells.rs`.
//!
//! | cell | state | update (all right-hand sides use the previous state) |
//! |---|---|---|
//! | [`RateCell`] | x (N) | x' = x + α ⊙ (−x + W φ(x) + W_in u), α = 1/τ(γ), W = relu(W_raw)·diag(d) with Dale's law (Kim, Li & Sejnowski 2019) |
//! | [`GammaCell`] | h (N) | h' = γ(U u + V h + b; n, s), n, s ∈ Rᴺ learned (Geadah et al. 2024) |
//! | [`AnruCell`] | h (N), g (M per unit) | Geadah et al. (2024): gⁱ' = tanh(u_ag aⁱ + b_g + W_gg gⁱ), nⁱ = w_gn·gⁱ' + b_gn, sⁱ = w_gs·gⁱ' + b_gs, h' = γ(a; n, s) with a = U_xh u + W_hh h + b_h |
//! | [`LstmCell`] | h, c (N each) | PyTorch's nn.LSTM: c' = σ(a_f) ⊙ c + σ(a_i) ⊙ tanh(a_g), h' = σ(a_o) ⊙ tanh(c'), a = W_ih u + b_ih + W_hh h + b_hh (gates i, f, g, o) |
//! | [`GruCell`] | h (N) | PyTorch's nn.GRU: r, z = σ(·), n = tanh(W_in u + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h |
//! | [`OrganicsCell`] | y, a, b0, b1 (N each) | Rawat, Heeger & Martiniani (2024), Euler RNN: z = ⌊W_zx u⌋, ŷ = ⌊W_r y⌋, B_k = σ(W_bxk u + W_byk y + W_bak a), b_k' = b_k + κ_bk(−b_k + B_k), y' = y + κ_y(−y + b1 z + (1 − √⌊a⌋) ŷ), a' = a + κ_a(−a + σ² b0² + W(⌊y⌋² ⊙ ⌊a⌋)), κ = κ_max σ(θ), W = clamp(e^{log W}, 0, 1) |
//!
//! Parameters live in one flat vector described by a [`Layout`] (named, row-major tensors, the
//! names the checkpoints use); a cell only reads its own slots, so the read-out can be appended.
//!
//! ## Adding a cell
//! One file here (the cell type with [`Cell`] — its update and backward pass, the accessors from
//! `cell_basics!` — and [`CellFamily`] — how `train` builds it, how a checkpoint stores and
//! restores it, what the f64 analyses see, and what the GPU trainer runs: its slots from
//! `cell_slots!`, its work regions), its WGSL shader (the hooks `common.wgsl`'s kernels call),
//! and one line in the `registry!` call below. Everything else (`train --cell`, checkpoints, `fixed-points` /
//! `lyapunov` / `simulate --checkpoint`, the GPU trainer) dispatches through the registry. A cell
//! that keeps the default [`CellFamily::analysis`] is analysed as the map of its own update
//! ([`CellMap`]), so it gets fixed points and Lyapunov spectra with no further code.

pub mod anru;
pub mod gamma;
pub mod gru;
pub mod lstm;
pub mod map;
pub mod organics;
pub mod rate;

pub use anru::AnruCell;
pub use gamma::GammaCell;
pub use gru::GruCell;
pub use lstm::LstmCell;
pub use map::CellMap;
pub use organics::{OrganicsCell, OrganicsPrep};
pub use rate::{RateCell, RatePhi, RatePrep};

use super::net::SeqNet;
use super::shader::GpuCell;
use super::CellSpec;
use crate::error::{Error, Result};
use crate::tensor::real::{Real, Scratch};
use crate::tensor::safetensors::{CheckpointReader, CheckpointWriter};
pub use crate::tensor::{Layout, Tensor};
use faer::reborrow::ReborrowMut;
use faer::{MatMut, MatRef};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `out[i] = φ(x[i])` for φ = tanh or the logistic sigmoid, vectorised
/// ([`Activation::eval_into`](crate::model::Activation::eval_into), within a few ulps of libm;
/// f32 through it in f64, then rounded): the cells' nonlinearities were more than half of a
/// training step as scalar libm calls. In place: [`act_in_place`].
pub fn act_into<F: Real>(act: crate::model::Activation, x: &[F], out: &mut [F]) {
    if F::NAME == "f64" {
        // F is f64: the same memory, no copy.
        let (x, out): (&[f64], &mut [f64]) =
            (bytemuck::cast_slice(x), bytemuck::cast_slice_mut(out));
        return act.eval_into(x, out);
    }
    let (mut a, mut t) = ([0.0f64; 256], [0.0f64; 256]);
    for (xc, oc) in x.chunks(256).zip(out.chunks_mut(256)) {
        let k = xc.len();
        for (d, &v) in a.iter_mut().zip(xc) {
            *d = v.f();
        }
        act.eval_into(&a[..k], &mut t[..k]);
        for (o, &v) in oc.iter_mut().zip(&t[..k]) {
            *o = F::c(v);
        }
    }
}

/// `x[i] ← φ(x[i])` in place, vectorised ([`act_into`] through a stack copy).
pub fn act_in_place<F: Real>(act: crate::model::Activation, x: &mut [F]) {
    let mut buf = [F::zero(); 256];
    for c in x.chunks_mut(256) {
        let k = c.len();
        buf[..k].copy_from_slice(c);
        act_into(act, &buf[..k], c);
    }
}

/// Each column of `m` split into blocks of `n` rows, block g mapped through `acts[g]` in place
/// (the gated cells' gates: σ for input/forget/output, tanh for the candidate).
pub fn gates_in_place<F: Real>(mut m: MatMut<'_, F>, n: usize, acts: &[crate::model::Activation]) {
    for j in 0..m.ncols() {
        let col = m.rb_mut().col_mut(j);
        match col.try_as_col_major_mut() {
            Some(c) => {
                let c = c.as_slice_mut();
                for (g, &act) in acts.iter().enumerate() {
                    act_in_place(act, &mut c[g * n..(g + 1) * n]);
                }
            }
            None => {
                let mut c = m.rb_mut().col_mut(j);
                for (g, &act) in acts.iter().enumerate() {
                    for i in g * n..(g + 1) * n {
                        c[i] = F::c(act.eval(c[i].f()));
                    }
                }
            }
        }
    }
}

pub use super::net::{Cell, StepBack, StepIn};

/// The [`Cell`] accessors every cell answers from the same fields (`n`, `n_in`, `layout`):
/// `cell_basics!("name", |c| state size)` inside the cell's `impl Cell<F>`.
macro_rules! cell_basics {
    ($name:literal, |$c:ident| $state:expr) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn hidden(&self) -> usize {
            self.n
        }
        fn state_dim(&self) -> usize {
            let $c = self;
            $state
        }
        fn n_in(&self) -> usize {
            self.n_in
        }
        fn layout(&self) -> &Layout {
            &self.layout
        }
    };
}
pub(crate) use cell_basics;

/// A trained network as a system for the f64 analyses (input off).
pub enum Analysis {
    /// Rate cell: τ ⊙ dx/dt = −x + W φ(x) (time in steps).
    Flow(crate::model::RateRnn),
    /// Gamma cell: h ← γ(V h + b; n, s).
    Map(crate::model::RnnMap),
    /// ANRU as a map of (h, g).
    Anru(crate::model::Anru),
    /// Any other cell (the ORGaNICs Euler RNN) as a map through its own step and backward pass.
    Cell(CellMap),
}

pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

pub(crate) fn henaff_into<F: Real>(p: &mut [F], n: usize, rng: &mut ChaCha8Rng) {
    let w = crate::model::anru::henaff(n, rng);
    for i in 0..n {
        for j in 0..n {
            p[i * n + j] = F::c(w[(i, j)]);
        }
    }
}

/// Σ over the columns of a batch, added to `out`.
pub(crate) fn add_row_sums<F: Real>(m: MatRef<F>, out: &mut [F]) {
    for j in 0..m.ncols() {
        for (i, o) in out.iter_mut().enumerate() {
            *o += m[(i, j)];
        }
    }
}

pub(crate) fn check_sizes(n: usize, n_in: usize) -> Result<()> {
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

/// What the rest of neurodyn needs from a cell beyond its update: how `train` builds it, how a
/// checkpoint stores and restores it, which f64 system the analyses see, and how the GPU trainer
/// runs it. One impl per cell file; the `registry!` macro dispatches to it.
pub trait CellFamily: Sized {
    /// A tensor only this cell has: recognises checkpoints written without metadata (PyTorch's
    /// `safetensors.torch.save_file` under the documented names).
    const SIGNATURE: &'static str;
    /// Whether a checkpoint without metadata holds this cell, from its tensor names and shapes
    /// (default: it has [`CellFamily::SIGNATURE`]; the gated cells also check the gate count).
    fn recognises(has: &dyn Fn(&str) -> bool, _shape: &dyn Fn(&str) -> Option<Vec<usize>>) -> bool {
        has(Self::SIGNATURE)
    }
    /// The cell for `spec` with `n_in` inputs (structural random draws, e.g. Dale signs, from
    /// `rng`, before the parameters are initialised).
    fn build(spec: &CellSpec, n_in: usize, rng: &mut ChaCha8Rng) -> Result<Self>;
    /// The seed initialisation of the cell's parameters into `p`.
    fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng);
    /// The cell's configuration (metadata) and any derived tensors, into a checkpoint.
    fn save<F: Real>(&self, layout: &Layout, p: &[F], out: &mut CheckpointWriter);
    /// The cell from a checkpoint (its configuration and tensor shapes).
    fn load(ck: &CheckpointReader) -> Result<Self>;
    /// The trained network (this cell + read-out, f64) as a system for the analyses. Default:
    /// the map of the cell's own update, with its Jacobian from the backward pass ([`CellMap`]).
    fn analysis(&self, net: &SeqNet<f64, AnyCell>) -> Result<Analysis> {
        Ok(Analysis::Cell(CellMap::new(net.clone())))
    }
    /// What the GPU trainer needs: the shader, named uniform slots, the work-buffer layout.
    fn gpu(&self, layout: &Layout) -> Result<GpuCell>;
}

/// The cell registry (`registry!`): one line per cell (`Variant(Type) = "name"`) generates [`AnyCell`] (every
/// cell behind one type), [`AnyPrep`], [`CellKind`] (the names `train --cell` accepts) and the
/// dispatch of [`Cell`] and [`CellFamily`] over them.
macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal ),* $(,)?) => {
        /// Every cell behind one type (what `train` and the checkpoints work with).
        #[derive(Debug, Clone, PartialEq)]
        pub enum AnyCell {
            $( $(#[$doc])* $variant($ty), )*
        }

        /// The prepared quantities of [`AnyCell`].
        pub enum AnyPrep<F: Real> {
            $( $variant(<$ty as Cell<F>>::Prep), )*
        }

        /// The cells `train --cell` accepts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
        pub enum CellKind {
            $( $(#[$doc])* #[value(name = $name)] #[serde(rename = $name)] $variant, )*
        }

        impl CellKind {
            /// Every registered cell.
            pub const ALL: &'static [CellKind] = &[$(CellKind::$variant),*];
            /// The registry name (`--cell`, checkpoint metadata).
            pub fn name(self) -> &'static str {
                match self { $(CellKind::$variant => $name,)* }
            }
            /// Builds a cell of this kind for `spec` with `n_in` inputs.
            pub fn build(self, spec: &CellSpec, n_in: usize, rng: &mut ChaCha8Rng) -> Result<AnyCell> {
                match self { $(CellKind::$variant => Ok(AnyCell::$variant(<$ty as CellFamily>::build(spec, n_in, rng)?)),)* }
            }
            /// The cell a checkpoint without metadata holds, from its tensor names and shapes.
            pub fn from_tensors(has: impl Fn(&str) -> bool, shape: impl Fn(&str) -> Option<Vec<usize>>) -> Option<CellKind> {
                $( if <$ty as CellFamily>::recognises(&has, &shape) { return Some(CellKind::$variant); } )*
                None
            }
            /// Restores a cell of this kind from a checkpoint.
            pub fn load(self, ck: &CheckpointReader) -> Result<AnyCell> {
                match self { $(CellKind::$variant => Ok(AnyCell::$variant(<$ty as CellFamily>::load(ck)?)),)* }
            }
        }

        impl std::str::FromStr for CellKind {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($name => Ok(CellKind::$variant),)*
                    _ => Err(Error::invalid("cell", format!(
                        "unknown cell `{s}` ({})",
                        CellKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        }

        impl AnyCell {
            /// Which registered cell this is.
            pub fn kind(&self) -> CellKind {
                match self { $(AnyCell::$variant(_) => CellKind::$variant,)* }
            }
            /// The seed initialisation of the cell's parameters into `p`.
            pub fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
                match self { $(AnyCell::$variant(c) => CellFamily::init(c, p, rng),)* }
            }
            /// Metadata and derived tensors for a checkpoint.
            pub fn save<F: Real>(&self, layout: &Layout, p: &[F], out: &mut CheckpointWriter) {
                match self { $(AnyCell::$variant(c) => c.save(layout, p, out),)* }
            }
            /// The trained network as a system for the f64 analyses.
            pub fn analysis(&self, net: &SeqNet<f64, AnyCell>) -> Result<Analysis> {
                match self { $(AnyCell::$variant(c) => c.analysis(net),)* }
            }
            /// The GPU trainer's description of the cell.
            pub fn gpu(&self, layout: &Layout) -> Result<GpuCell> {
                match self { $(AnyCell::$variant(c) => c.gpu(layout),)* }
            }
        }

        impl<F: Real> Cell<F> for AnyCell {
            type Prep = AnyPrep<F>;
            fn name(&self) -> &'static str {
                match self { $(AnyCell::$variant(c) => Cell::<F>::name(c),)* }
            }
            fn hidden(&self) -> usize {
                match self { $(AnyCell::$variant(c) => Cell::<F>::hidden(c),)* }
            }
            fn state_dim(&self) -> usize {
                match self { $(AnyCell::$variant(c) => Cell::<F>::state_dim(c),)* }
            }
            fn n_in(&self) -> usize {
                match self { $(AnyCell::$variant(c) => Cell::<F>::n_in(c),)* }
            }
            fn layout(&self) -> &Layout {
                match self { $(AnyCell::$variant(c) => Cell::<F>::layout(c),)* }
            }
            fn prepare(&self, p: &[F]) -> AnyPrep<F> {
                match self { $(AnyCell::$variant(c) => AnyPrep::$variant(c.prepare(p)),)* }
            }
            fn init_state(&self, p: &[F], s0: &mut [F]) {
                match self { $(AnyCell::$variant(c) => c.init_state(p, s0),)* }
            }
            fn step(&self, x: StepIn<'_, F, AnyPrep<F>>, out: MatMut<F>, ws: &mut Scratch<F>) {
                let StepIn { p, prep, s, u } = x;
                match (self, prep) {
                    $((AnyCell::$variant(c), AnyPrep::$variant(prep)) => c.step(StepIn { p, prep, s, u }, out, ws),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("prepare() pairs each cell with its own quantities"),
                }
            }
            fn step_back(&self, x: StepIn<'_, F, AnyPrep<F>>, back: StepBack<'_, F>, ws: &mut Scratch<F>) {
                let StepIn { p, prep, s, u } = x;
                match (self, prep) {
                    $((AnyCell::$variant(c), AnyPrep::$variant(prep)) => c.step_back(StepIn { p, prep, s, u }, back, ws),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("prepare() pairs each cell with its own quantities"),
                }
            }
            fn finish_grad(&self, p: &[F], g: &mut [F]) {
                match self { $(AnyCell::$variant(c) => c.finish_grad(p, g),)* }
            }
            fn project(&self, p: &mut [F]) {
                match self { $(AnyCell::$variant(c) => c.project(p),)* }
            }
            fn feature(&self, x: F) -> (F, F) {
                match self { $(AnyCell::$variant(c) => c.feature(x),)* }
            }
        }
    };
}

registry! {
    /// The leaky rate RNN with Dale's law (Kim, Li & Sejnowski 2019).
    Rate(RateCell) = "rate",
    /// The RNN with per-neuron gamma units (Geadah et al. 2024).
    Gamma(GammaCell) = "gamma",
    /// The adaptive nonlinearity recurrent unit (Geadah et al. 2024).
    Anru(AnruCell) = "anru",
    /// The ORGaNICs Euler RNN (Rawat, Heeger & Martiniani 2024).
    Organics(OrganicsCell) = "organics",
    /// PyTorch's LSTM (state [h; c]; the psMNIST baseline).
    Lstm(LstmCell) = "lstm",
    /// PyTorch's GRU (the psMNIST baseline).
    Gru(GruCell) = "gru",
}

/// Seeded generator for initialisations.
pub fn init_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
