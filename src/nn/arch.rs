//! [`Sequential`]: layers under one flat parameter vector, and the named architectures of
//! `train-cnn` ([`ArchSpec`]).
//!
//! Architectures for 28 × 28 single-channel images (MNIST, Fashion-MNIST); "block" is
//! conv → \[ReLU\] → \[normalization\], the normalization per [`Norm`] placed as in the
//! divisive-normalization study (conv → ReLU → divnorm → BatchNorm):
//!
//! - `small-alexnet`: conv1 5×5 (1→32, pad 2) block, max-pool 3/2 → 13×13; conv2 5×5 (32→64, pad 2)
//!   block, max-pool 3/2 → 6×6; conv3 3×3 (64→64, pad 1) block, max-pool 3/2 → 2×2; dropout 0.5,
//!   fc1 256→128, ReLU, dropout 0.5, fc2 128→10 (AlexNet's shape at MNIST scale).
//! - `small-vgg`: two 3×3 blocks of 16, max-pool 2/2 → 14×14; two 3×3 blocks of 32, max-pool →
//!   7×7; one 3×3 block of 64, max-pool → 3×3; fc1 576→128, ReLU, fc2 128→10.
//! - `static-organics`: the flattened image into a [`StaticOrganics`] layer of N units
//!   (`hidden`, 256), its output ⌊y*⌋² into fc 256→10 (Rawat, Heeger & Martiniani 2024).
//! - `organics-autoencoder`: the paper's MNIST network: an [`Autoencoder`] stem 784 → 360 → 120
//!   → 40 (its decoder trained on the reconstruction error, added to the loss), two
//!   [`StaticOrganics`] layers 40 → 128 → 64, fc 64→10.
//!
//! Tensor names are `<layer>.<param>` (`conv1.weight`, `bn1.running_mean`, `divnorm1.gamma`,
//! `fc2.bias`, `organics.W_zx`): a PyTorch module with attributes of these names loads them with
//! `load_state_dict` (`benches/peers/cnn_torch.py` builds that module).

use super::divnorm::DivNormOptions;
use super::*;
use crate::error::{Error, Result};
use rand::SeedableRng;
use std::ops::Range;

/// A network architecture.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    SmallAlexnet,
    SmallVgg,
    StaticOrganics,
    OrganicsAutoencoder,
}

impl Arch {
    /// The command-line name (`small-alexnet`, …).
    pub fn name(self) -> &'static str {
        match self {
            Arch::SmallAlexnet => "small-alexnet",
            Arch::SmallVgg => "small-vgg",
            Arch::StaticOrganics => "static-organics",
            Arch::OrganicsAutoencoder => "organics-autoencoder",
        }
    }

    /// The input scaling (m, s) of x = (pixel/255 − m)/s: the dataset's standardisation, but raw
    /// grey levels in [0, 1] for `organics-autoencoder` (the paper's inputs, which its logistic
    /// decoder reconstructs).
    pub fn input_scaling(self, dataset: crate::data::images::Dataset) -> (f64, f64) {
        match self {
            Arch::OrganicsAutoencoder => (0.0, 1.0),
            _ => dataset.mean_std(),
        }
    }
}

/// The normalization after each convolution.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// Nothing.
    None,
    /// BatchNorm.
    Batchnorm,
    /// Pooled divisive normalization (pools of 2^⌊log₂C/2⌋ channels), then BatchNorm.
    Divnorm,
    /// Divisive normalization over all channels (scalar γ, σ), then BatchNorm.
    DivnormAll,
    /// The Ken Miller variant, then BatchNorm.
    Miller,
}

/// What `train-cnn` builds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    pub arch: Arch,
    pub norm: Norm,
    pub relu: bool,
    /// Units of the static ORGaNICs layer.
    pub hidden: usize,
    /// Dropout probability before the fully connected layers (small-alexnet).
    pub dropout: f64,
    pub classes: usize,
}

impl ArchSpec {
    pub fn new(arch: Arch, norm: Norm, relu: bool) -> Self {
        ArchSpec {
            arch,
            norm,
            relu,
            hidden: 256,
            dropout: 0.5,
            classes: 10,
        }
    }

    /// Sets the options that only some architectures have — `hidden` (the static ORGaNICs
    /// layer's units) and `dropout` (small-alexnet's) — refusing one the architecture would
    /// ignore (it would be recorded in the run's configuration but change nothing).
    pub fn with_options(mut self, hidden: Option<usize>, dropout: Option<f64>) -> Result<Self> {
        let name = Arch::name;
        let arch = self.arch;
        let refuse = |field: &str, value: String, layer: &str, owner: Arch| {
            let problem = format!(
                "{value}: `{}` has no {layer} ({} has)",
                name(arch),
                name(owner)
            );
            Err(Error::invalid(field, problem))
        };
        if let Some(h) = hidden {
            if arch != Arch::StaticOrganics {
                return refuse(
                    "hidden",
                    h.to_string(),
                    "hidden layer",
                    Arch::StaticOrganics,
                );
            }
            self.hidden = h;
        }
        if let Some(d) = dropout {
            if arch != Arch::SmallAlexnet {
                return refuse("dropout", d.to_string(), "dropout", Arch::SmallAlexnet);
            }
            self.dropout = d;
        }
        Ok(self)
    }

    /// The network on `input`-shaped samples.
    pub fn build<F: Real>(&self, input: Shape) -> Result<Sequential<F>> {
        let mut b = Builder {
            layers: vec![],
            shape: input,
            spec: self,
            blocks: 0,
        };
        match self.arch {
            Arch::SmallAlexnet => {
                b.block(32, 5, 2)?;
                b.maxpool(3, 2)?;
                b.block(64, 5, 2)?;
                b.maxpool(3, 2)?;
                b.block(64, 3, 1)?;
                b.maxpool(3, 2)?;
                b.dropout()?;
                b.linear("fc1", 128)?;
                b.relu("fc1");
                b.dropout()?;
                b.linear("fc2", self.classes)?;
            }
            Arch::SmallVgg => {
                for (c, pool) in [(16, false), (16, true), (32, false), (32, true), (64, true)] {
                    b.block(c, 3, 1)?;
                    if pool {
                        b.maxpool(2, 2)?;
                    }
                }
                b.linear("fc1", 128)?;
                b.relu("fc1");
                b.linear("fc2", self.classes)?;
            }
            Arch::StaticOrganics | Arch::OrganicsAutoencoder => {
                if self.norm != Norm::None {
                    return Err(Error::invalid(
                        "norm",
                        "the ORGaNICs networks normalize by themselves: use --norm none",
                    ));
                }
                if self.arch == Arch::StaticOrganics {
                    let l = StaticOrganics::new(b.shape, self.hidden, 1.0)?;
                    b.push("organics", l);
                } else {
                    b.push("autoencoder", Autoencoder::new(b.shape, 40, 1.0)?);
                    for (k, n) in [(1, 128), (2, 64)] {
                        let l = StaticOrganics::new(b.shape, n, 1.0)?;
                        b.push(&format!("organics{k}"), l);
                    }
                }
                b.linear("fc", self.classes)?;
            }
        }
        Sequential::new(input, b.layers)
    }
}

struct Builder<'a, F: Real> {
    layers: Vec<(String, Box<dyn Layer<F>>)>,
    shape: Shape,
    spec: &'a ArchSpec,
    blocks: usize,
}

impl<F: Real> Builder<'_, F> {
    fn push(&mut self, name: &str, l: impl Layer<F> + 'static) {
        self.shape = l.out_shape();
        self.layers.push((name.to_string(), Box::new(l)));
    }
    fn relu(&mut self, tag: &str) {
        let s = self.shape;
        self.push(&format!("relu_{tag}"), Relu { shape: s });
    }
    fn block(&mut self, c: usize, k: usize, pad: usize) -> Result<()> {
        self.blocks += 1;
        let i = self.blocks;
        // ReLU fused onto the convolution (the same function as a separate layer, one pass
        // over the activations fewer each way).
        let conv = Conv2d::new(self.shape, c, k, 1, pad)?;
        let conv = if self.spec.relu {
            conv.with_relu()
        } else {
            conv
        };
        self.push(&format!("conv{i}"), conv);
        let s = self.shape;
        let dn = DivNormOptions::default();
        match self.spec.norm {
            Norm::None => return Ok(()),
            Norm::Batchnorm => {}
            Norm::Divnorm => self.push(&format!("divnorm{i}"), DivNorm::new(s, dn)?),
            Norm::DivnormAll => self.push(&format!("divnorm{i}"), DivNorm::all_channels(s, dn)?),
            Norm::Miller => self.push(&format!("miller{i}"), MillerNorm::new(s)),
        }
        self.push(&format!("bn{i}"), BatchNorm2d::new(s));
        Ok(())
    }
    fn maxpool(&mut self, k: usize, s: usize) -> Result<()> {
        let i = self.blocks;
        let l = MaxPool2d::new(self.shape, k, s, 0)?;
        self.push(&format!("pool{i}"), l);
        Ok(())
    }
    fn dropout(&mut self) -> Result<()> {
        if self.spec.dropout > 0.0 {
            let n = self.layers.len();
            let l = Dropout::new(self.shape, self.spec.dropout)?;
            self.push(&format!("dropout{n}"), l);
        }
        Ok(())
    }
    fn linear(&mut self, name: &str, out: usize) -> Result<()> {
        let l = Linear::new(self.shape, out)?;
        self.push(name, l);
        Ok(())
    }
}

/// Layers in sequence under one flat parameter vector.
#[derive(Debug)]
pub struct Sequential<F: Real> {
    pub input: Shape,
    pub layers: Vec<(String, Box<dyn Layer<F>>)>,
    /// Tensor `<layer>.<param>` → place in `params`.
    pub layout: Layout,
    pub params: Vec<F>,
    /// The gradient of the last [`Sequential::loss_grad`].
    pub grad: Vec<F>,
    ranges: Vec<Range<usize>>,
    ws: Workspace<F>,
}

/// Activations and per-layer contexts, kept between calls (resized, never shrunk).
#[derive(Debug, Default)]
struct Workspace<F> {
    acts: Vec<Vec<F>>,
    ctx: Vec<Ctx<F>>,
    d: [Vec<F>; 2],
}

impl<F: Real> Sequential<F> {
    /// Chains `layers` (each layer's input must be the previous layer's output size).
    pub fn new(input: Shape, layers: Vec<(String, Box<dyn Layer<F>>)>) -> Result<Self> {
        let mut layout = Layout::default();
        let mut ranges = vec![];
        let mut shape = input;
        for (name, l) in &layers {
            if l.in_shape().len() != shape.len() {
                return Err(Error::invalid(
                    "layers",
                    format!("layer `{name}` takes {} but receives {shape}", l.in_shape()),
                ));
            }
            let start = layout.len;
            for p in l.params() {
                layout.push(&format!("{name}.{}", p.name), &p.shape, p.train);
            }
            ranges.push(start..layout.len);
            shape = l.out_shape();
        }
        let n = layers.len();
        Ok(Sequential {
            input,
            params: vec![F::zero(); layout.len],
            grad: vec![F::zero(); layout.len],
            layout,
            ranges,
            ws: Workspace {
                acts: vec![vec![]; n + 1],
                ctx: vec![Ctx::default(); n],
                d: [vec![], vec![]],
            },
            layers,
        })
    }

    /// Output size (classes).
    pub fn outputs(&self) -> usize {
        self.layers
            .last()
            .map_or(self.input.len(), |(_, l)| l.out_shape().len())
    }

    /// Every layer's default initialisation, seeded.
    pub fn init(&mut self, seed: u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for ((_, l), r) in self.layers.iter().zip(&self.ranges) {
            l.init(&mut self.params[r.clone()], &mut rng);
        }
    }

    /// Bytes of activations, contexts and gradients a batch of `b` samples needs (the memory
    /// check before a run allocates).
    pub fn batch_bytes(&self, b: usize) -> u128 {
        let per: usize = self.input.len()
            + self
                .layers
                .iter()
                .map(|(_, l)| 2 * l.out_shape().len())
                .sum::<usize>();
        let widest = self
            .layers
            .iter()
            .map(|(_, l)| l.in_shape().len().max(l.out_shape().len()))
            .max()
            .unwrap_or(0);
        (b as u128) * ((per + 2 * widest) as u128) * std::mem::size_of::<F>() as u128
    }

    /// Multiply-adds of one sample's forward pass.
    pub fn flops(&self) -> usize {
        self.layers.iter().map(|(_, l)| l.flops()).sum()
    }

    /// Logits of `b` samples `x` (`b × input.len()`). `train` selects batch statistics and
    /// dropout; `seed` seeds this pass's dropout masks.
    pub fn forward(&mut self, x: &[F], b: usize, train: bool, seed: u64) -> &[F] {
        let c = self.outputs();
        let ws = &mut self.ws;
        ws.acts[0].clear();
        ws.acts[0].extend_from_slice(&x[..b * self.input.len()]);
        for (i, ((_, l), r)) in self.layers.iter().zip(&self.ranges).enumerate() {
            let n = b * l.out_shape().len();
            let (head, tail) = ws.acts.split_at_mut(i + 1);
            let y = &mut tail[0];
            y.resize(n, F::zero());
            let ctx = &mut ws.ctx[i];
            ctx.train = train;
            ctx.seed = crate::seed::trial_seed(seed, i, 0, 0);
            l.forward(&mut self.params[r.clone()], &head[i], y, b, ctx);
        }
        &ws.acts[self.layers.len()][..b * c]
    }

    /// Backward pass from ∂L/∂logits after [`Sequential::forward`]; the gradient goes to
    /// `self.grad` (overwritten).
    pub fn backward(&mut self, dlogits: &[F], b: usize) {
        self.grad.iter_mut().for_each(|g| *g = F::zero());
        let c = self.outputs();
        let ws = &mut self.ws;
        let [cur, next] = &mut ws.d;
        cur.clear();
        cur.extend_from_slice(&dlogits[..b * c]);
        for (i, ((_, l), r)) in self.layers.iter().zip(&self.ranges).enumerate().rev() {
            let want_dx = i > 0;
            if want_dx {
                next.resize(b * l.in_shape().len(), F::zero());
            }
            l.backward(
                &self.params[r.clone()],
                Back {
                    x: &ws.acts[i],
                    y: &ws.acts[i + 1],
                    dy: cur,
                    dx: want_dx.then_some(&mut next[..]),
                    g: &mut self.grad[r.clone()],
                    b,
                },
                &ws.ctx[i],
            );
            std::mem::swap(cur, next);
        }
    }

    /// Forward in training mode, softmax cross-entropy against `labels` plus the layers'
    /// penalties ([`Layer::penalty`]), backward: returns (mean loss, correct predictions); the
    /// gradient is in `self.grad`.
    pub fn loss_grad(&mut self, x: &[F], labels: &[u8], seed: u64) -> Result<(f64, usize)> {
        let b = labels.len();
        let c = self.outputs();
        let logits = self.forward(x, b, true, seed).to_vec();
        let mut d = vec![F::zero(); b * c];
        let (l, correct) = loss::softmax_cross_entropy(&logits, labels, c, Some(&mut d))?;
        let l = l + self.penalties(b);
        self.backward(&d, b);
        Ok((l, correct))
    }

    /// The layers' loss terms ([`Layer::penalty`]) of the last forward pass over `b` samples.
    fn penalties(&self, b: usize) -> f64 {
        let ws = &self.ws;
        self.layers
            .iter()
            .enumerate()
            .map(|(i, (_, l))| l.penalty(&ws.acts[i], b, &ws.ctx[i]))
            .sum()
    }

    /// The mean loss and correct predictions of one forward pass (`train`: training mode, the
    /// same dropout masks as [`Sequential::loss_grad`] with this `seed`), without a backward pass.
    pub fn loss(&mut self, x: &[F], labels: &[u8], train: bool, seed: u64) -> Result<(f64, usize)> {
        let c = self.outputs();
        let logits = self.forward(x, labels.len(), train, seed).to_vec();
        let (l, correct) = loss::softmax_cross_entropy(&logits, labels, c, None)?;
        Ok((l + self.penalties(labels.len()), correct))
    }

    /// Evaluation-mode loss (mean) and correct predictions over `labels.len()` samples, in
    /// batches of `batch`.
    pub fn evaluate(&mut self, x: &[F], labels: &[u8], batch: usize) -> Result<(f64, usize)> {
        let d = self.input.len();
        let c = self.outputs();
        let (mut loss, mut correct) = (0.0, 0);
        for (k, lb) in labels.chunks(batch.max(1)).enumerate() {
            let s0 = k * batch.max(1);
            let logits = self
                .forward(&x[s0 * d..(s0 + lb.len()) * d], lb.len(), false, 0)
                .to_vec();
            let (l, cc) = loss::softmax_cross_entropy(&logits, lb, c, None)?;
            loss += l * lb.len() as f64;
            correct += cc;
        }
        Ok((loss / labels.len().max(1) as f64, correct))
    }

    /// Seconds per layer for one training pass over `x` (forward, backward), averaged over
    /// `reps` passes: the benchmarks' per-layer table.
    pub fn profile(&mut self, x: &[F], b: usize, reps: usize) -> Vec<(String, f64, f64)> {
        let reps = reps.max(1);
        let n = self.layers.len();
        let mut fwd = vec![0.0; n];
        let mut bwd = vec![0.0; n];
        let c = self.outputs();
        for rep in 0..reps {
            let ws = &mut self.ws;
            ws.acts[0].clear();
            ws.acts[0].extend_from_slice(&x[..b * self.input.len()]);
            for (i, ((_, l), r)) in self.layers.iter().zip(&self.ranges).enumerate() {
                let t0 = std::time::Instant::now();
                let (head, tail) = ws.acts.split_at_mut(i + 1);
                tail[0].resize(b * l.out_shape().len(), F::zero());
                ws.ctx[i].train = true;
                ws.ctx[i].seed = rep as u64;
                l.forward(
                    &mut self.params[r.clone()],
                    &head[i],
                    &mut tail[0],
                    b,
                    &mut ws.ctx[i],
                );
                fwd[i] += t0.elapsed().as_secs_f64();
            }
            let [cur, next] = &mut ws.d;
            cur.clear();
            cur.resize(b * c, F::c(1e-3));
            for (i, ((_, l), r)) in self.layers.iter().zip(&self.ranges).enumerate().rev() {
                let t0 = std::time::Instant::now();
                next.resize(b * l.in_shape().len(), F::zero());
                l.backward(
                    &self.params[r.clone()],
                    Back {
                        x: &ws.acts[i],
                        y: &ws.acts[i + 1],
                        dy: cur,
                        dx: (i > 0).then_some(&mut next[..]),
                        g: &mut self.grad[r.clone()],
                        b,
                    },
                    &ws.ctx[i],
                );
                std::mem::swap(cur, next);
                bwd[i] += t0.elapsed().as_secs_f64();
            }
        }
        self.layers
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), fwd[i] / reps as f64, bwd[i] / reps as f64))
            .collect()
    }

    /// Which parameter entries the optimiser trains.
    pub fn train_mask(&self) -> Vec<bool> {
        self.layout.train_mask()
    }

    /// The parameters in another precision (layer structure rebuilt by `rebuild`).
    pub fn params_as<G: Real>(&self) -> Vec<G> {
        self.params.iter().map(|v| G::c(v.f())).collect()
    }
}
