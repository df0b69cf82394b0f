//! Feed-forward layers with hand-derived backward passes: the convolutional networks of the
//! divisive-normalization study (Miller, Shou, Martiniani & Heeger, "Modeling divisive
//! normalization in visual cortex") and the static ORGaNICs layer (Rawat, Heeger & Martiniani
//! 2024), trained on the CPU in f32 and checked in f64.
//!
//! A batch is a row-major `B × (C·H·W)` slice, one sample per row in PyTorch's NCHW order, so a
//! flattened image is the same memory as a `C = 1` image and a fully connected layer reads a
//! convolution's output without a copy. Every layer implements [`Layer`]: its parameters (named
//! as PyTorch names them: `weight`, `bias`, `running_mean`, …), a forward pass that keeps what
//! the backward pass needs in its [`Ctx`], and a backward pass that accumulates the parameter
//! gradient and returns the input gradient. [`Sequential`] chains layers under one flat parameter
//! vector with a [`Layout`] (the same as the recurrent trainers'), which is what the optimisers
//! ([`crate::learn::optim`]) and the checkpoints work on.
//!
//! Parallelism: the heavy layers (convolution, pooling, normalization) split the batch into fixed
//! chunks of [`CHUNK`] samples that run on rayon, and sum the chunks' parameter gradients in chunk
//! order, so results do not depend on the thread count.
//!
//! | file | layers |
//! |---|---|
//! | `conv.rs` | [`Conv2d`] (stride, zero padding; im2col on faer's matrix product) |
//! | `pool.rs` | [`MaxPool2d`], [`AvgPool2d`] (`count_include_pad` as PyTorch) |
//! | `basic.rs` | [`Relu`], [`Linear`], [`Dropout`], [`BatchNorm2d`] |
//! | `divnorm.rs` | [`DivNorm`] (pooled and all-channel), [`MillerNorm`] |
//! | `organics.rs` | [`StaticOrganics`] |
//! | `autoencoder.rs` | [`Autoencoder`] (a stem trained on its own reconstruction error too) |
//! | `loss.rs` | softmax cross-entropy |
//! | `optim.rs` | SGD (momentum, weight decay), Adam |
//! | `arch.rs` | [`Sequential`], the small AlexNet / VGG and the static-ORGaNICs network |
//! | `fit.rs` | a resumable training run (what `train-cnn` calls) |

pub mod arch;
pub mod autoencoder;
pub mod basic;
pub mod conv;
pub mod divnorm;
pub mod fit;
pub mod loss;
pub mod organics;
pub mod pool;

pub use crate::tensor::Layout;
pub use crate::tensor::Real;
pub use arch::{Arch, ArchSpec, Norm, Sequential};
pub use autoencoder::Autoencoder;
pub use basic::{BatchNorm2d, Dropout, Linear, Relu};
pub use conv::Conv2d;
pub use divnorm::{DivNorm, MillerNorm};
pub use organics::StaticOrganics;
pub use pool::{AvgPool2d, MaxPool2d};

use rand_chacha::ChaCha8Rng;

/// Samples per parallel chunk (fixed: results do not depend on the thread count).
pub const CHUNK: usize = 8;

pub use crate::tensor::Shape;

/// What one layer keeps between its forward and backward passes (reused from step to step).
#[derive(Debug, Default, Clone)]
pub struct Ctx<F> {
    /// Training mode (batch statistics, dropout) or evaluation mode.
    pub train: bool,
    /// Seed of this forward pass (dropout masks), set by the network per step and layer.
    pub seed: u64,
    /// Floating-point values the layer saves (statistics, masks, intermediate results).
    pub f: Vec<F>,
    /// Indices the layer saves (max-pool argmax).
    pub idx: Vec<u32>,
}

/// A parameter tensor of a layer: name (PyTorch's), shape, and whether the optimiser trains it
/// (running statistics are buffers).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub train: bool,
}

impl Param {
    pub fn new(name: &'static str, shape: &[usize], train: bool) -> Self {
        Param {
            name,
            shape: shape.to_vec(),
            train,
        }
    }
}

/// What a layer's backward pass reads and writes, for a batch of `b`: its input x and output y,
/// the output error ∂L/∂y, the input error ∂L/∂x to write (None when nothing needs it) and the
/// parameter gradient to add to.
pub struct Back<'a, F> {
    pub x: &'a [F],
    pub y: &'a [F],
    pub dy: &'a [F],
    pub dx: Option<&'a mut [F]>,
    pub g: &'a mut [F],
    pub b: usize,
}

/// A feed-forward layer. `p` and `g` are this layer's own parameters and gradient, in the order
/// of [`Layer::params`]; `x` is the input batch (`b` rows of `in_shape().len()`), `y` the output.
pub trait Layer<F: Real>: Send + Sync + std::fmt::Debug {
    /// The layer type (`conv`, `relu`, `divnorm`, …).
    fn kind(&self) -> &'static str;
    fn in_shape(&self) -> Shape;
    fn out_shape(&self) -> Shape {
        self.in_shape()
    }
    /// The parameter tensors, in storage order.
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    /// The default initialisation (PyTorch's where the layer exists there).
    fn init(&self, _p: &mut [F], _rng: &mut ChaCha8Rng) {}
    /// y = layer(x). `p` is mutable for buffers a training pass updates (running statistics).
    fn forward(&self, p: &mut [F], x: &[F], y: &mut [F], b: usize, ctx: &mut Ctx<F>);
    /// Given `d.dy` = ∂L/∂y, accumulates ∂L/∂p into `d.g` and writes ∂L/∂x into `d.dx` (when
    /// asked for).
    fn backward(&self, p: &[F], d: Back<'_, F>, ctx: &Ctx<F>);
    /// Multiply-adds of one sample's forward pass (the benchmarks' floor accounting).
    fn flops(&self) -> usize {
        0
    }
    /// A term the layer adds to the training loss (a regulariser such as the autoencoder's
    /// reconstruction error), from the `ctx` of a training-mode forward pass on `x`; its
    /// gradient is part of the layer's backward pass. Zero for most layers.
    fn penalty(&self, _x: &[F], _b: usize, _ctx: &Ctx<F>) -> f64 {
        0.0
    }
}

/// Splits `b` samples into the fixed chunks `[b0, b1)`.
pub fn chunks(b: usize) -> Vec<(usize, usize)> {
    (0..b)
        .step_by(CHUNK)
        .map(|b0| (b0, (b0 + CHUNK).min(b)))
        .collect()
}

/// The chunk-parallel backward pass of a layer whose samples are independent: `work(chunk, dx)`
/// handles samples `[b0, b1)`, writes their ∂L/∂x into its slice of `dx` (when asked for) and
/// returns its part of the parameter gradient; the parts are summed into `g` in chunk order.
pub(crate) fn chunked_backward<F: Real>(
    b: usize,
    len: usize,
    dx: Option<&mut [F]>,
    g: &mut [F],
    work: impl Fn((usize, usize), Option<&mut [F]>) -> Vec<F> + Sync,
) {
    use rayon::prelude::*;
    let ch = chunks(b);
    let parts: Vec<Vec<F>> = match dx {
        Some(dx) => dx[..b * len]
            .par_chunks_mut(CHUNK * len)
            .zip(ch.par_iter())
            .map(|(dxc, &c)| work(c, Some(dxc)))
            .collect(),
        None => ch.par_iter().map(|&c| work(c, None)).collect(),
    };
    reduce_into(g, &parts);
}

/// Sums per-chunk gradient parts into `g` in chunk order (deterministic).
pub(crate) fn reduce_into<F: Real>(g: &mut [F], parts: &[Vec<F>]) {
    for part in parts {
        for (a, v) in g.iter_mut().zip(part) {
            *a += *v;
        }
    }
}

/// PyTorch's default initialisation of a weight with fan-in `fan_in` (kaiming-uniform with
/// a = √5, i.e. U(−1/√fan_in, 1/√fan_in)), the same bound for the bias.
pub(crate) fn torch_uniform<F: Real>(p: &mut [F], fan_in: usize, rng: &mut ChaCha8Rng) {
    use rand::Rng;
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    for v in p {
        *v = F::c(rng.random_range(-bound..bound));
    }
}
