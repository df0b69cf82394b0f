//! What a cell gives the GPU trainer ([`super::gpu`]): its WGSL, its uniform slots (the common
//! ones named once in [`slot`], emitted into every shader's prelude), its fixed slot values and
//! its work-buffer layout. Below the cells and the trainer, so each cell file describes its
//! shader without depending on the trainer that runs it.

/// Largest hidden size the shader is built for (workgroup memory: N floats).
pub const MAX_HIDDEN: usize = 2048;

/// The uniform slots every shader shares, named once: the Rust side writes `cfg[slot::W_OUT]`,
/// the shaders read `cu(S_W_OUT)` from constants generated into their prelude ([`prelude`]).
pub mod slot {
    /// (name, slot) of the slots every cell's shader uses.
    pub const COMMON: &[(&str, usize)] = &[
        ("N", N),
        ("N_IN", N_IN),
        ("C", C),
        ("T", T),
        ("B", B),
        ("P", P),
        ("LOSS_KIND", LOSS_KIND),
        ("NOISE_ON", NOISE_ON),
        ("W_OUT", W_OUT),
        ("B_OUT", B_OUT),
        ("INPUTS", INPUTS),
        ("TARGETS", TARGETS),
        ("NOISE", NOISE),
        ("D_OUT", D_OUT),
        ("LOSSES", LOSSES),
        ("HITS", HITS),
        ("LR", LR),
        ("BC1", BC1),
        ("BC2", BC2),
        ("CLIP", CLIP),
        ("WEIGHT_DECAY", WEIGHT_DECAY),
    ];
    /// Units N, inputs N_in, read-out size C, steps T, trials B, parameters P.
    pub const N: usize = 0;
    pub const N_IN: usize = 1;
    pub const C: usize = 2;
    pub const T: usize = 3;
    pub const B: usize = 4;
    pub const P: usize = 5;
    /// 0: cross-entropy on the last step; 1: trajectory MSE.
    pub const LOSS_KIND: usize = 8;
    /// 1 when the batch carries recurrent noise.
    pub const NOISE_ON: usize = 9;
    /// Parameter offsets of the read-out.
    pub const W_OUT: usize = 12;
    pub const B_OUT: usize = 13;
    /// Data-buffer offsets: inputs, targets (or labels), noise.
    pub const INPUTS: usize = 14;
    pub const TARGETS: usize = 15;
    pub const NOISE: usize = 16;
    /// Work-buffer offsets: ∂L/∂o, per-trial losses, per-trial hits.
    pub const D_OUT: usize = 20;
    pub const LOSSES: usize = 21;
    pub const HITS: usize = 22;
    /// Adam: learning rate, 1 − β₁ᵗ, 1 − β₂ᵗ (f32 bits).
    pub const LR: usize = 25;
    pub const BC1: usize = 26;
    pub const BC2: usize = 27;
    /// Gradient clip (f32 bits; 0: off).
    pub const CLIP: usize = 59;
    /// Adam's L2 weight decay (f32 bits; 0: none).
    pub const WEIGHT_DECAY: usize = 60;
    /// Slots 6, 7, 10, 11, 17–19, 23, 24, 28–58 belong to the cells ([`super::GpuCell::slots`]).
    pub const COUNT: usize = 64;
}

/// The WGSL constants `const S_<NAME>: u32 = <slot>u;` for the common slots and a cell's own.
pub fn prelude(cell: &[(&str, usize)]) -> String {
    slot::COMMON
        .iter()
        .chain(cell)
        .map(|(name, k)| format!("const S_{name}: u32 = {k}u;\n"))
        .collect()
}

/// A cell's own work-buffer regions for T steps × B trials (N units, C outputs; `cfg` holds the
/// cell's fixed slots): (slot, length) in the order they are laid out. [`lay_out`] places them one
/// after another and appends the regions every cell has.
pub type WorkLayout =
    fn(t: usize, b: usize, n: usize, c: usize, cfg: &[u32]) -> Vec<(usize, usize)>;

/// The whole work buffer: the cell's `regions` one after another, then the common ∂L/∂o
/// [T][B][C], the per-trial losses [B] and hits [B], and two flags per trial (`common.wgsl`'s
/// `begin`/`end`: "a kernel started and did not finish", "a kernel's loops were cut short").
/// Returns the (slot, offset) pairs to set and the length in floats.
pub fn lay_out(
    regions: &[(usize, usize)],
    t: usize,
    b: usize,
    c: usize,
) -> (Vec<(usize, usize)>, usize) {
    let common = [(slot::D_OUT, t * b * c), (slot::LOSSES, b), (slot::HITS, b)];
    let mut offset = 0;
    let mut slots = Vec::with_capacity(regions.len() + common.len());
    for &(slot, len) in regions.iter().chain(&common) {
        slots.push((slot, offset));
        offset += len;
    }
    (slots, offset + 2 * b)
}

/// A cell shader's own uniform slots, named once: `cell_slots! { H = 17, A = 18 }` declares the
/// constants and `SLOTS`, the (name, slot) table emitted into the shader's prelude as `S_<NAME>`.
macro_rules! cell_slots {
    ($($name:ident = $slot:literal),* $(,)?) => {
        $( pub(crate) const $name: usize = $slot; )*
        pub(crate) const SLOTS: &[(&str, usize)] = &[$((stringify!($name), $name)),*];
    };
}
pub(crate) use cell_slots;

/// The offsets of the tensors `names` (in `layout`) for the consecutive slots `first`, `first + 1`, …
pub fn tensor_slots(
    layout: &crate::tensor::Layout,
    first: usize,
    names: &[&str],
) -> Vec<(usize, u32)> {
    names
        .iter()
        .enumerate()
        .map(|(k, name)| (first + k, tensor_slot(layout, name)))
        .collect()
}

/// What the GPU trainer needs from a cell ([`CellFamily::gpu`](super::cell::CellFamily::gpu)).
pub struct GpuCell {
    /// The cell's WGSL (appended to `common.wgsl`, whose `forward`, `backward` and `gradients`
    /// kernels call the hooks it defines: `forward_start`, `forward_step`, `feature_of`,
    /// `forward_finish`, `backward_start`, `backward_step`, `gradient`, `feature_at`, `frozen`;
    /// and its own `prepare` kernel).
    pub shader: &'static str,
    /// Workgroup-memory arrays of NMAX floats the shader declares (for the device-limit check).
    pub wg_arrays: usize,
    /// The cell's named uniform slots (emitted into the shader as `S_<NAME>`).
    pub slots: &'static [(&'static str, usize)],
    /// Slot values fixed for the run (tensor offsets, flags, constants as f32 bits).
    pub cfg: Vec<(usize, u32)>,
    /// Initial entries of the prep buffer (e.g. Dale signs).
    pub prep: Vec<(usize, f32)>,
    /// The work-buffer layout.
    pub work: WorkLayout,
}

/// The offset of tensor `name` in `layout` as a slot value (P, an empty range, when absent).
pub fn tensor_slot(layout: &crate::tensor::Layout, name: &str) -> u32 {
    layout
        .get(name)
        .map(|t| t.offset as u32)
        .unwrap_or(layout.len as u32)
}

/// f32 bits of a constant for a slot.
pub fn f32_slot(v: f64) -> u32 {
    (v as f32).to_bits()
}
