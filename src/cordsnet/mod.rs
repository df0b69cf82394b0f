//! CordsNet: a ResNet-like CNN turned into a continuous-time convolutional RNN (Soo, Battista,
//! Radmard & Wang, NeurIPS 2024). Layer l holds rates r_l ∈ ℝ^{C_l×H_l×W_l}:
//!
//! $$ \tau\,\dot r_l = -r_l + \mathrm{relu}\big(K^{rec}_l \circledast r_l + b_l
//!    + K^{in}_l \circledast_{s_l} u_l(r, x)\big), $$
//!
//! with a per-unit bias b_l, and inputs wired as ResNet-18's skips:
//! h = AvgPool_{3,2,1}(K_stem ⊛_{2,3} x) (static), u_0 = h, u_1 = relu(r_0) + K_skip ⊛ h,
//! u_l = relu(r_{l−1}) + relu(r_{l−2}) for even l ≥ 2 (identity skip) and
//! u_l = relu(r_{l−1}) + P ⊛_{2,0} relu(r_{l−2}) for odd l ≥ 3 (1×1 projection). Read-out
//! y = W_fc mean_{ij}(relu(r_{L−1}) + relu(r_{L−2})) + c. The simulation is forward Euler with
//! α = Δt/τ = 0.2, synchronous across layers: 100 spontaneous steps (x = 0), then 100 with the
//! image. As a [`Model`]: the flow above (time in ms, τ = 10), with the matrix-free
//! Jacobian-vector product of its linearisation
//!
//! $$ J v = \big(-v + D\,(K^{rec} \circledast v + K^{in} \circledast \delta u)\big)/\tau,
//!    \qquad D = \mathrm{diag}(1[\mathrm{pre} > 0]), $$
//!
//! δu the inputs' variation through the relu(r) terms — so the toolkit's integrators, Newton–
//! Krylov steady states ([`crate::krylov`]) and spectra apply to networks with 10⁵–10⁶ units;
//! the dense Jacobian (N JVPs) is for small networks only.
//!
//! Conventions (spec A.2): convolutions are PyTorch's cross-correlations with zero padding; the
//! average pool divides by 9 everywhere (count_include_pad).

pub mod analyze;
pub mod conv;
pub mod fit;
pub mod spec;
pub mod train;

use crate::error::{Error, Result};
use crate::model::Model;
use conv::{avg_pool_3_2_1, conv2d};
use faer::{MatMut, MatRef};

/// The architecture: channels, strides and sizes per layer (spec A.3 for R8).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Arch {
    pub img_channels: usize,
    pub img_size: usize,
    /// Channels of the stem (the output of K_stem and of the pool).
    pub stem: usize,
    /// C_l, l = 0..L−1.
    pub channels: Vec<usize>,
    /// Stride s_l of K^in_l.
    pub strides: Vec<usize>,
    pub classes: usize,
    /// α = Δt/τ.
    pub alpha: f64,
    /// τ in ms.
    pub tau: f64,
}

/// Spatial size after a conv or pool: ⌊(n + 2p − k)/s⌋ + 1.
pub fn out_size(n: usize, k: usize, s: usize, p: usize) -> usize {
    (n + 2 * p).saturating_sub(k) / s + 1
}

impl Arch {
    /// CordsNet-R8 (ImageNet, 224 × 224, 1000 classes).
    pub fn r8() -> Self {
        Arch {
            img_channels: 3,
            img_size: 224,
            stem: 64,
            channels: vec![64, 64, 128, 128, 256, 256, 512, 512],
            strides: vec![1, 1, 2, 1, 2, 1, 2, 1],
            classes: 1000,
            alpha: 0.2,
            tau: 10.0,
        }
    }
    /// The tiny R8-wired network of the spec's X11 cross-check (1 × 32 × 32 input).
    pub fn mini() -> Self {
        Arch {
            img_channels: 1,
            img_size: 32,
            stem: 2,
            channels: vec![2, 2, 3, 3, 4, 4, 5, 5],
            strides: vec![1, 1, 2, 1, 2, 1, 2, 1],
            classes: 3,
            alpha: 0.2,
            tau: 10.0,
        }
    }
    /// A small MNIST network (28 × 28 → stem 7 × 7): depth 4, channels 8, 8, 16, 16.
    pub fn mnist() -> Self {
        Arch {
            img_channels: 1,
            img_size: 28,
            stem: 8,
            channels: vec![8, 8, 16, 16],
            strides: vec![1, 1, 2, 1],
            classes: 10,
            alpha: 0.2,
            tau: 10.0,
        }
    }
    /// The MNIST network at twice the width: stem 16, channels 16, 16, 32, 32 (what `cordsnet
    /// train` uses by default: the read-out sees 32 features instead of 16).
    pub fn mnist_wide() -> Self {
        Arch {
            stem: 16,
            channels: vec![16, 16, 32, 32],
            ..Self::mnist()
        }
    }
    /// By name: `r8`, `mini`, `mnist`, `mnist-wide`.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "r8" => Ok(Self::r8()),
            "mini" => Ok(Self::mini()),
            "mnist" => Ok(Self::mnist()),
            "mnist-wide" => Ok(Self::mnist_wide()),
            other => Err(Error::invalid(
                "arch",
                format!("`{other}`: the presets are r8, mini, mnist and mnist-wide"),
            )),
        }
    }

    pub fn depth(&self) -> usize {
        self.channels.len()
    }
    /// Size of the stem output h (after conv 7×7/2/3 and pool 3/2/1).
    pub fn stem_size(&self) -> usize {
        out_size(out_size(self.img_size, 7, 2, 3), 3, 2, 1)
    }
    /// H_l = W_l.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![];
        let mut n = self.stem_size();
        for &st in &self.strides {
            n = out_size(n, 3, st, 1);
            s.push(n);
        }
        s
    }
    /// Channels of u_l (the input of K^in_l).
    pub fn in_channels(&self, l: usize) -> usize {
        if l == 0 {
            self.stem
        } else {
            self.channels[l - 1]
        }
    }
    /// Units per layer, and their offsets in the state vector.
    pub fn layer_units(&self) -> Vec<usize> {
        let s = self.sizes();
        (0..self.depth())
            .map(|l| self.channels[l] * s[l] * s[l])
            .collect()
    }
    pub fn units(&self) -> usize {
        self.layer_units().iter().sum()
    }
    fn offsets(&self) -> Vec<usize> {
        let mut o = vec![0];
        for u in self.layer_units() {
            o.push(o.last().unwrap() + u);
        }
        o
    }

    /// The layer table (`cordsnet info`): per layer its input and output channels, grid size,
    /// stride and units, then the recurrent units and the parameter count.
    pub fn layer_table(&self) -> String {
        let s = self.sizes();
        let mut t = String::from("layer  C_in  C    H=W  stride  units\n");
        t += &format!(
            "stem   {:<5} {:<4} {:<4} 2+2     (static)\n",
            self.img_channels,
            self.stem,
            self.stem_size()
        );
        for l in 0..self.depth() {
            t += &format!(
                "{l:<6} {:<5} {:<4} {:<4} {:<7} {}\n",
                self.in_channels(l),
                self.channels[l],
                s[l],
                self.strides[l],
                self.channels[l] * s[l] * s[l]
            );
        }
        t + &format!(
            "recurrent units {}, parameters {}",
            self.units(),
            self.params()
        )
    }

    /// Checks the wiring: depth ≥ 2, s_0 = 1, C_0 = channels of u_1, identity skips between
    /// equal shapes, projections that land on the next layer's grid.
    pub fn validate(&self) -> Result<()> {
        let l = self.depth();
        if l < 2 || self.strides.len() != l {
            return Err(Error::invalid(
                "arch",
                "need at least 2 layers and one stride per layer",
            ));
        }
        if [self.img_channels, self.img_size, self.stem, self.classes].contains(&0)
            || self.channels.contains(&0)
            || self.strides.contains(&0)
        {
            return Err(Error::invalid("arch", "sizes must be positive"));
        }
        if self.strides[0] != 1 {
            return Err(Error::invalid(
                "arch",
                "layer 0 keeps the stem's grid (stride 1)",
            ));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) || !(self.tau > 0.0) {
            return Err(Error::invalid("arch", "need 0 < α ≤ 1 and τ > 0"));
        }
        let s = self.sizes();
        if s[0] != self.stem_size() {
            return Err(Error::invalid("arch", "layer 0 must keep the stem's size"));
        }
        for k in 2..l {
            let (c1, c2) = (self.channels[k - 1], self.channels[k - 2]);
            if k % 2 == 0 && (c1 != c2 || s[k - 1] != s[k - 2]) {
                return Err(Error::invalid(
                    "arch",
                    format!(
                        "layer {k}: the identity skip adds r_{} ({c2}×{}) to r_{} ({c1}×{})",
                        k - 2,
                        s[k - 2],
                        k - 1,
                        s[k - 1]
                    ),
                ));
            }
            if k % 2 == 1 && out_size(s[k - 2], 1, 2, 0) != s[k - 1] {
                return Err(Error::invalid(
                    "arch",
                    format!(
                        "layer {k}: the 1×1/2 projection of r_{} does not land on r_{}'s grid",
                        k - 2,
                        k - 1
                    ),
                ));
            }
        }
        crate::memory::check(
            "arch",
            self.units() as u128 * 8 * 8 + self.params() as u128 * 8,
            None,
        )
    }

    /// Number of projections (odd layers ≥ 3).
    fn projections(&self) -> Vec<usize> {
        (3..self.depth()).filter(|k| k % 2 == 1).collect()
    }

    /// Parameters as the original stores them (weight norm: V plus one g per output channel).
    pub fn params(&self) -> usize {
        let s = self.sizes();
        let mut n = 0;
        n += self.stem * self.img_channels * 49 + self.stem; // inp_conv V + g
        n += self.channels[0] * self.stem * 9 + self.channels[0]; // inp_skip V + g
        for l in 0..self.depth() {
            let c = self.channels[l];
            n += c * c * 9 + c; // area_conv
            n += c * self.in_channels(l) * 9 + c; // area_area
            n += c * s[l] * s[l]; // conv_bias
        }
        for k in self.projections() {
            n += self.channels[k - 1] * self.channels[k - 2] + self.channels[k - 1];
        }
        n += self.classes * self.channels[self.depth() - 1] + 2 * self.classes; // out_fc
        n
    }
}

/// A CordsNet with its effective weights (weight normalisation applied).
#[derive(Debug, Clone)]
pub struct CordsNet {
    pub arch: Arch,
    /// K_stem `[C_stem, C_img, 7, 7]`.
    pub stem: Vec<f64>,
    /// K_skip `[C_0, C_stem, 3, 3]`.
    pub inp_skip: Vec<f64>,
    /// K^rec_l `[C_l, C_l, 3, 3]`.
    pub rec: Vec<Vec<f64>>,
    /// K^in_l `[C_l, Cin_l, 3, 3]`.
    pub inp: Vec<Vec<f64>>,
    /// b_l `[C_l, H_l, W_l]`.
    pub bias: Vec<Vec<f64>>,
    /// Projections `[C_{k−1}, C_{k−2}, 1, 1]` for odd k ≥ 3.
    pub proj: Vec<Vec<f64>>,
    /// W_fc `[classes, C_{L−1}]`, c `[classes]`.
    pub fc_w: Vec<f64>,
    pub fc_b: Vec<f64>,
}

/// The tensors of a network, in the spec's X11 order: (name, shape).
pub fn tensor_shapes(a: &Arch) -> Vec<(String, Vec<usize>)> {
    let s = a.sizes();
    let mut t = vec![
        ("inp_conv".to_string(), vec![a.stem, a.img_channels, 7, 7]),
        ("inp_skip".to_string(), vec![a.channels[0], a.stem, 3, 3]),
    ];
    for l in 0..a.depth() {
        t.push((
            format!("area_conv.{l}"),
            vec![a.channels[l], a.channels[l], 3, 3],
        ));
    }
    for l in 0..a.depth() {
        t.push((
            format!("area_area.{l}"),
            vec![a.channels[l], a.in_channels(l), 3, 3],
        ));
    }
    for l in 0..a.depth() {
        t.push((format!("conv_bias.{l}"), vec![a.channels[l], s[l], s[l]]));
    }
    for (i, k) in a.projections().into_iter().enumerate() {
        t.push((
            format!("skip_area.{i}"),
            vec![a.channels[k - 1], a.channels[k - 2], 1, 1],
        ));
    }
    t.push((
        "out_fc.weight".into(),
        vec![a.classes, a.channels[a.depth() - 1]],
    ));
    t.push(("out_fc.bias".into(), vec![a.classes]));
    t
}

impl CordsNet {
    /// A network from its tensors in [`tensor_shapes`] order (shapes checked).
    pub fn from_tensors(arch: Arch, tensors: Vec<Vec<f64>>) -> Result<Self> {
        arch.validate()?;
        let shapes = tensor_shapes(&arch);
        if tensors.len() != shapes.len() {
            return Err(Error::invalid(
                "weights",
                format!(
                    "{} tensors, the architecture has {}",
                    tensors.len(),
                    shapes.len()
                ),
            ));
        }
        for ((name, shape), t) in shapes.iter().zip(&tensors) {
            let n: usize = shape.iter().product();
            if t.len() != n {
                return Err(Error::invalid(
                    "weights",
                    format!("`{name}` has {} entries, expected {shape:?}", t.len()),
                ));
            }
        }
        let l = arch.depth();
        let np = arch.projections().len();
        let mut it = tensors.into_iter();
        let mut take = |k: usize| -> Vec<Vec<f64>> { (0..k).map(|_| it.next().unwrap()).collect() };
        let stem = take(1).remove(0);
        let inp_skip = take(1).remove(0);
        let rec = take(l);
        let inp = take(l);
        let bias = take(l);
        let proj = take(np);
        let fc_w = take(1).remove(0);
        let fc_b = take(1).remove(0);
        Ok(CordsNet {
            arch,
            stem,
            inp_skip,
            rec,
            inp,
            bias,
            proj,
            fc_w,
            fc_b,
        })
    }

    /// The spec's deterministic X11 fill: tensor t, flat index k ↦ A_t sin(1.7 k + 0.3 t + 1),
    /// A_t = gain_t / √(fan-in) for weights and gain_t for biases (gains 1, 0.5, 0.5 per
    /// recurrent, 1 per input conv, 0.1 per bias, 1 per projection, 1 and 0.1 for the read-out).
    pub fn sine_filled(arch: Arch) -> Result<Self> {
        let shapes = tensor_shapes(&arch);
        let tensors = shapes
            .iter()
            .enumerate()
            .map(|(t, (name, shape))| {
                let gain = if name == "inp_conv" {
                    1.0
                } else if name == "inp_skip" || name.starts_with("area_conv") {
                    0.5
                } else if name.starts_with("conv_bias") || name == "out_fc.bias" {
                    0.1
                } else {
                    1.0
                };
                let bias = name.starts_with("conv_bias") || name == "out_fc.bias";
                let fan: usize = shape[1..].iter().product();
                let a = if bias {
                    gain
                } else {
                    gain / (fan as f64).sqrt()
                };
                let n: usize = shape.iter().product();
                (0..n)
                    .map(|k| a * (1.7 * k as f64 + 0.3 * t as f64 + 1.0).sin())
                    .collect()
            })
            .collect();
        Self::from_tensors(arch, tensors)
    }

    /// Seeded random weights: kernels N(0, gain²/fan-in) (recurrent gain `rec_gain`), biases
    /// N(0, 0.1²) — synthetic networks for tests and benchmarks.
    pub fn random(arch: Arch, seed: u64, rec_gain: f64) -> Result<Self> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let tensors = tensor_shapes(&arch)
            .iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let fan: usize = shape[1..].iter().product();
                let sd = if name.starts_with("conv_bias") || name == "out_fc.bias" {
                    0.1
                } else if name.starts_with("area_conv") {
                    rec_gain / (fan as f64).sqrt()
                } else {
                    1.0 / (fan as f64).sqrt()
                };
                (0..n)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        sd * z
                    })
                    .collect()
            })
            .collect();
        Self::from_tensors(arch, tensors)
    }

    /// Loads a safetensors file with the original's state-dict names (spec A.5): weight-normed
    /// tensors as `<name>.parametrizations.weight.original0` (g) and `…original1` (V), or plain
    /// `<name>.weight` / `<name>` effective tensors; `conv_bias.{l}`, `out_fc.bias`.
    pub fn load(path: &std::path::Path, arch: Arch) -> Result<Self> {
        let all = crate::tensor::safetensors::read_tensors(path)?;
        let find = |n: &str| all.iter().find(|t| t.0 == n);
        let mut tensors = vec![];
        for (name, shape) in tensor_shapes(&arch) {
            let base = name.trim_end_matches(".weight").to_string();
            let g = find(&format!("{base}.parametrizations.weight.original0"));
            let v = find(&format!("{base}.parametrizations.weight.original1"));
            let t = match (g, v) {
                (Some(g), Some(v)) => {
                    if v.1 != shape {
                        return Err(Error::invalid(
                            "checkpoint",
                            format!("`{base}` V has shape {:?}, expected {shape:?}", v.1),
                        ));
                    }
                    weight_norm(&g.2, &v.2, shape[0])?
                }
                _ => {
                    let t = find(&name)
                        .or_else(|| find(&format!("{name}.weight")))
                        .ok_or_else(|| {
                            Error::invalid(
                                "checkpoint",
                                format!("{}: no tensor `{name}`", path.display()),
                            )
                        })?;
                    if t.1 != shape {
                        return Err(Error::invalid(
                            "checkpoint",
                            format!("`{name}` has shape {:?}, expected {shape:?}", t.1),
                        ));
                    }
                    t.2.clone()
                }
            };
            tensors.push(t);
        }
        Self::from_tensors(arch, tensors)
    }

    /// A network trained by `cordsnet train`: the architecture from the checkpoint's `arch`
    /// metadata, the tensors by [`CordsNet::load`].
    pub fn load_checkpoint(path: &std::path::Path) -> Result<Self> {
        let meta = crate::tensor::safetensors::read_metadata(path)?;
        let arch: Arch = meta
            .get("arch")
            .ok_or_else(|| {
                Error::invalid(
                    "checkpoint",
                    format!(
                        "{}: no `arch` metadata (not written by `cordsnet train`; pass --arch and --weights)",
                        path.display()
                    ),
                )
            })
            .and_then(|t| {
                toml::from_str(t).map_err(|e| {
                    Error::invalid(
                        "checkpoint",
                        format!("{}: unreadable `arch` ({e})", path.display()),
                    )
                })
            })?;
        Self::load(path, arch)
    }

    /// The stem's output h for an image `[C_img, S, S]` (zeros for a blank image).
    pub fn stem_forward(&self, x: &[f64]) -> Result<Vec<f64>> {
        let a = &self.arch;
        if x.len() != a.img_channels * a.img_size * a.img_size {
            return Err(Error::invalid(
                "image",
                format!(
                    "has {} values, the network takes {}×{}×{}",
                    x.len(),
                    a.img_channels,
                    a.img_size,
                    a.img_size
                ),
            ));
        }
        let (c, n) = conv2d(x, a.img_channels, a.img_size, &self.stem, a.stem, 7, 2, 3);
        Ok(avg_pool_3_2_1(&c, a.stem, n).0)
    }

    /// The flow for a fixed stem output h (see the module documentation).
    pub fn flow<'a>(&'a self, h: &'a [f64]) -> CordsFlow<'a> {
        CordsFlow::new(
            std::borrow::Cow::Borrowed(self),
            std::borrow::Cow::Borrowed(h),
        )
    }

    /// The flow for stem output `h`, owning the network (a model of its own, e.g. for
    /// [`Source`](crate::source::Source)).
    pub fn into_flow(self, h: Vec<f64>) -> CordsFlow<'static> {
        CordsFlow::new(std::borrow::Cow::Owned(self), std::borrow::Cow::Owned(h))
    }

    /// Logits of a state.
    pub fn logits(&self, r: &[f64]) -> Vec<f64> {
        let a = &self.arch;
        let l = a.depth();
        let off = a.offsets();
        let s = a.sizes();
        let c = a.channels[l - 1];
        let plane = s[l - 1] * s[l - 1];
        // mean over the grid of relu(r_{L−1}) + relu(r_{L−2}) (same shape by the wiring).
        let feat: Vec<f64> = (0..c)
            .map(|ch| {
                let mut sum = 0.0;
                for q in 0..plane {
                    sum += r[off[l - 1] + ch * plane + q].max(0.0);
                    sum += r[off[l - 2] + ch * plane + q].max(0.0);
                }
                sum / plane as f64
            })
            .collect();
        (0..a.classes)
            .map(|k| self.fc_b[k] + (0..c).map(|j| self.fc_w[k * c + j] * feat[j]).sum::<f64>())
            .collect()
    }

    /// The protocol of spec A.4 from r = 0: `spont` steps with x = 0, then `stim` steps with the
    /// image. Returns the final state and, per step, each layer's sum of rates.
    pub fn run(&self, image: &[f64], spont: usize, stim: usize) -> Result<Response> {
        self.run_with_progress(image, spont, stim, &mut |_| {})
    }

    /// [`CordsNet::run`], calling `progress(steps done)` as it goes. The per-step table it keeps
    /// is checked against the memory first (naming the longer phase).
    pub fn run_with_progress(
        &self,
        image: &[f64],
        spont: usize,
        stim: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Response> {
        let a = &self.arch;
        let field = if spont >= stim { "spont" } else { "stim" };
        let steps = spont as u128 + stim as u128;
        crate::memory::check(field, steps * (a.depth() as u128 * 8 + 48) * 3, None)?;
        let blank = vec![0.0; a.stem * a.stem_size() * a.stem_size()];
        let h = self.stem_forward(image)?;
        let mut r = vec![0.0; a.units()];
        let mut sums = vec![];
        let mut f = vec![0.0; r.len()];
        for step in 0..spont + stim {
            let hh = if step < spont { &blank } else { &h };
            let flow = self.flow(hh);
            flow.rhs(0.0, &r, &mut f);
            let dt = a.alpha * a.tau;
            for (ri, fi) in r.iter_mut().zip(&f) {
                *ri += dt * fi;
            }
            sums.push(self.layer_sums(&r));
            progress(step + 1);
        }
        Ok(Response {
            logits: self.logits(&r),
            state: r,
            layer_sums: sums,
        })
    }

    /// Σ of each layer's rates.
    pub fn layer_sums(&self, r: &[f64]) -> Vec<f64> {
        let off = self.arch.offsets();
        (0..self.arch.depth())
            .map(|l| r[off[l]..off[l + 1]].iter().sum())
            .collect()
    }
}

/// Output of [`CordsNet::run`].
#[derive(Debug, Clone)]
pub struct Response {
    pub state: Vec<f64>,
    pub logits: Vec<f64>,
    /// Per step, per layer: Σ r_l.
    pub layer_sums: Vec<Vec<f64>>,
}

impl Response {
    /// One row per step (1, 2, …): `step`, `sum_r0`, `sum_r1`, ….
    pub fn table(&self) -> crate::io::Table {
        use crate::io::{Column, Table};
        let mut t = Table::new();
        t.push(
            "step",
            Column::I64((1..=self.layer_sums.len() as i64).collect()),
        );
        let depth = self.layer_sums.first().map_or(0, Vec::len);
        for l in 0..depth {
            t.push(
                format!("sum_r{l}"),
                Column::F64(self.layer_sums.iter().map(|s| s[l]).collect()),
            );
        }
        t
    }
}

/// `K[o] = g[o] V[o] / ‖V[o]‖_F` (PyTorch's weight normalisation along dim 0).
pub fn weight_norm(g: &[f64], v: &[f64], out: usize) -> Result<Vec<f64>> {
    if g.len() != out || v.len() % out != 0 {
        return Err(Error::invalid(
            "weights",
            format!("weight norm: g has {} entries for {out} outputs", g.len()),
        ));
    }
    let per = v.len() / out;
    let mut k = v.to_vec();
    for o in 0..out {
        let row = &mut k[o * per..(o + 1) * per];
        let n = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        for x in row.iter_mut() {
            *x *= g[o] / n;
        }
    }
    Ok(k)
}

/// The CordsNet flow at a fixed stem output h.
pub struct CordsFlow<'a> {
    /// Borrowed for an analysis of one network at many inputs; owned (`CordsFlow<'static>`,
    /// [`CordsNet::into_flow`]) where the flow is a [`System`](crate::model::System) of its own.
    pub net: std::borrow::Cow<'a, CordsNet>,
    pub h: std::borrow::Cow<'a, [f64]>,
    /// Layer offsets in the state, H_l, and each layer's projection index (odd l ≥ 3), derived
    /// once from the architecture.
    off: Vec<usize>,
    sizes: Vec<usize>,
    proj_of: Vec<Option<usize>>,
    /// D = 1[pre > 0] per layer at the last state a JVP was asked at: the Krylov solvers call
    /// the JVP many times at one state, and D costs a full forward pass.
    active: std::sync::Mutex<Option<(Vec<f64>, Vec<Vec<bool>>)>>,
}

impl<'a> CordsFlow<'a> {
    fn new(net: std::borrow::Cow<'a, CordsNet>, h: std::borrow::Cow<'a, [f64]>) -> Self {
        let a = &net.arch;
        let proj = a.projections();
        let (off, sizes) = (a.offsets(), a.sizes());
        let proj_of = (0..a.depth())
            .map(|l| proj.iter().position(|&k| k == l))
            .collect();
        CordsFlow {
            net,
            h,
            off,
            sizes,
            proj_of,
            active: std::sync::Mutex::new(None),
        }
    }
}

impl CordsFlow<'_> {
    /// D per layer at state r, from the cache when r is the state of the previous call.
    fn active_at(&self, r: &[f64]) -> Vec<Vec<bool>> {
        use rayon::prelude::*;
        if let Ok(c) = self.active.lock() {
            if let Some((x, d)) = c.as_ref() {
                if x.as_slice() == r {
                    return d.clone();
                }
            }
        }
        let d: Vec<Vec<bool>> = (0..self.net.arch.depth())
            .into_par_iter()
            .map(|l| self.pre(r, l).iter().map(|p| *p > 0.0).collect())
            .collect();
        if let Ok(mut c) = self.active.lock() {
            *c = Some((r.to_vec(), d.clone()));
        }
        d
    }

    /// u_l of state r (channels `in_channels(l)`, grid of r_{l−1} or of h).
    fn input(&self, r: &[f64], l: usize, relu: bool) -> Vec<f64> {
        let net = &*self.net;
        let a = &net.arch;
        let off = &self.off;
        let s = &self.sizes;
        let act = |x: f64| if relu { x.max(0.0) } else { x };
        match l {
            0 => self.h.to_vec(),
            1 => {
                let (sk, _) = conv2d(
                    &self.h,
                    a.stem,
                    a.stem_size(),
                    &net.inp_skip,
                    a.channels[0],
                    3,
                    1,
                    1,
                );
                r[off[0]..off[1]]
                    .iter()
                    .zip(&sk)
                    .map(|(x, y)| act(*x) + y)
                    .collect()
            }
            _ => {
                let prev = &r[off[l - 1]..off[l]];
                let two = &r[off[l - 2]..off[l - 1]];
                if l % 2 == 0 {
                    prev.iter()
                        .zip(two)
                        .map(|(x, y)| act(*x) + act(*y))
                        .collect()
                } else {
                    let i = self.proj_of[l].expect("odd layer ≥ 3 has a projection");
                    let two_act: Vec<f64> = two.iter().map(|x| act(*x)).collect();
                    let (p, _) = conv2d(
                        &two_act,
                        a.channels[l - 2],
                        s[l - 2],
                        &net.proj[i],
                        a.channels[l - 1],
                        1,
                        2,
                        0,
                    );
                    prev.iter().zip(&p).map(|(x, y)| act(*x) + y).collect()
                }
            }
        }
    }

    /// pre_l = K^rec ⊛ r_l + b_l + K^in ⊛ u_l.
    fn pre(&self, r: &[f64], l: usize) -> Vec<f64> {
        let net = &*self.net;
        let a = &net.arch;
        let off = &self.off;
        let s = &self.sizes;
        let in_size = if l == 0 { a.stem_size() } else { s[l - 1] };
        let u = self.input(r, l, true);
        let (mut p, _) = conv2d(
            &u,
            a.in_channels(l),
            in_size,
            &net.inp[l],
            a.channels[l],
            3,
            a.strides[l],
            1,
        );
        let (rc, _) = conv2d(
            &r[off[l]..off[l + 1]],
            a.channels[l],
            s[l],
            &net.rec[l],
            a.channels[l],
            3,
            1,
            1,
        );
        for ((pi, ri), bi) in p.iter_mut().zip(&rc).zip(&net.bias[l]) {
            *pi += ri + bi;
        }
        p
    }

    /// δu_l for a state perturbation v (through the relu(r) terms; h is fixed).
    fn dinput(&self, r: &[f64], v: &[f64], l: usize) -> Option<Vec<f64>> {
        let a = &self.net.arch;
        let off = &self.off;
        let s = &self.sizes;
        let d = |x: f64, dv: f64| if x > 0.0 { dv } else { 0.0 };
        match l {
            0 => None,
            1 => Some(
                r[off[0]..off[1]]
                    .iter()
                    .zip(&v[off[0]..off[1]])
                    .map(|(x, dv)| d(*x, *dv))
                    .collect(),
            ),
            _ => {
                let prev: Vec<f64> = r[off[l - 1]..off[l]]
                    .iter()
                    .zip(&v[off[l - 1]..off[l]])
                    .map(|(x, dv)| d(*x, *dv))
                    .collect();
                let two: Vec<f64> = r[off[l - 2]..off[l - 1]]
                    .iter()
                    .zip(&v[off[l - 2]..off[l - 1]])
                    .map(|(x, dv)| d(*x, *dv))
                    .collect();
                if l % 2 == 0 {
                    Some(prev.iter().zip(&two).map(|(x, y)| x + y).collect())
                } else {
                    let i = self.proj_of[l].expect("odd layer ≥ 3 has a projection");
                    let (p, _) = conv2d(
                        &two,
                        a.channels[l - 2],
                        s[l - 2],
                        &self.net.proj[i],
                        a.channels[l - 1],
                        1,
                        2,
                        0,
                    );
                    Some(prev.iter().zip(&p).map(|(x, y)| x + y).collect())
                }
            }
        }
    }
}

impl Model for CordsFlow<'_> {
    fn dim(&self) -> usize {
        self.net.arch.units()
    }
    fn rhs(&self, _t: f64, r: &[f64], dr: &mut [f64]) {
        use rayon::prelude::*;
        let a = &self.net.arch;
        let off = &self.off;
        let tau = a.tau;
        let pres: Vec<Vec<f64>> = (0..a.depth())
            .into_par_iter()
            .map(|l| self.pre(r, l))
            .collect();
        for (l, p) in pres.iter().enumerate() {
            for (k, pk) in p.iter().enumerate() {
                let i = off[l] + k;
                dr[i] = (-r[i] + pk.max(0.0)) / tau;
            }
        }
    }
    fn jacobian(&self, t: f64, r: &[f64], mut jac: MatMut<'_, f64>) {
        let n = self.dim();
        let mut e = vec![0.0; n];
        let mut col = vec![0.0; n];
        for j in 0..n {
            e[j] = 1.0;
            self.jvp(t, r, &e, &mut col);
            e[j] = 0.0;
            for i in 0..n {
                jac[(i, j)] = col[i];
            }
        }
    }
    /// Column by column through the matrix-free JVP (D is computed once per state, cached):
    /// never the N × N Jacobian the default would assemble.
    fn jac_mul_mat(&self, t: f64, r: &[f64], y: MatRef<'_, f64>, mut out: MatMut<'_, f64>) {
        let n = self.dim();
        let (mut v, mut jv) = (vec![0.0; n], vec![0.0; n]);
        for j in 0..y.ncols() {
            for (i, vi) in v.iter_mut().enumerate() {
                *vi = y[(i, j)];
            }
            self.jvp(t, r, &v, &mut jv);
            for (i, x) in jv.iter().enumerate() {
                out[(i, j)] = *x;
            }
        }
    }
    fn jvp(&self, _t: f64, r: &[f64], v: &[f64], out: &mut [f64]) {
        use rayon::prelude::*;
        let net = &*self.net;
        let a = &net.arch;
        let off = &self.off;
        let s = &self.sizes;
        let active = self.active_at(r);
        let parts: Vec<Vec<f64>> = (0..a.depth())
            .into_par_iter()
            .map(|l| {
                let pre = &active[l];
                let (mut dp, _) = conv2d(
                    &v[off[l]..off[l + 1]],
                    a.channels[l],
                    s[l],
                    &net.rec[l],
                    a.channels[l],
                    3,
                    1,
                    1,
                );
                if let Some(du) = self.dinput(r, v, l) {
                    let in_size = s[l - 1];
                    let (di, _) = conv2d(
                        &du,
                        a.in_channels(l),
                        in_size,
                        &net.inp[l],
                        a.channels[l],
                        3,
                        a.strides[l],
                        1,
                    );
                    for (x, y) in dp.iter_mut().zip(&di) {
                        *x += y;
                    }
                }
                dp.iter()
                    .zip(pre)
                    .zip(&v[off[l]..off[l + 1]])
                    .map(|((d, on), vi)| (-vi + if *on { *d } else { 0.0 }) / a.tau)
                    .collect()
            })
            .collect();
        for (l, p) in parts.iter().enumerate() {
            out[off[l]..off[l + 1]].copy_from_slice(p);
        }
    }
    fn name(&self) -> String {
        "cordsnet".into()
    }
}
