//! # neurodyn
//!
//! Fit and dissect recurrent neural circuit models. A system is a continuous flow
//! `dx/dt = f(t, x)` ([`Model`]) or a discrete map `h ← F_t(h)` ([`Map`](model::Map)), each with
//! its analytic Jacobian; every analysis takes any system. Start with [`prelude`].
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the systems: [`Model`] (flows) and [`Map`](model::Map) (maps) side by side, the rate RNN, ORGaNICs, gamma/ANRU, the RNN map, closures ([`FlowFn`](model::FlowFn), [`MapFn`](model::MapFn)), the variational system, [`check_jacobian`]; imports no analysis |
//! | [`source`] | the model resolver: preset / `.npy` / checkpoint / `--organics` / `--anru` → a flow or map and its initial state |
//! | [`integrate`](mod@integrate) | one front door [`integrate`](integrate::integrate()): Euler, RK4, Dormand–Prince 5(4) and Tsitouras 5(4) with dense output, BDF / ESDIRK34 / TR-BDF2 (diffsol) |
//! | [`fixed_points`], [`stability`] | fixed points of any flow or map, linear stability |
//! | [`lyapunov`] | Lyapunov spectra of any map or flow |
//! | [`gpu`] | the device code path every GPU computation shares (adapter, shader compilation, buffers, read-back, WGSL helpers) |
//! | [`gpu_check`] | the one-call GPU check: every wgpu path (training steps, batched Lyapunov spectra, sweep trials) against its CPU reference, timed, one table (`gpu-check`) |
//! | [`continuation`] | fixed points followed through a parameter; folds, branch points, Hopf (with l1), flips, Neimark–Sacker |
//! | [`cycles`] | periodic orbits: limit cycles of flows by shooting (dense or matrix-free) with their Floquet multipliers, period-k points of maps |
//! | [`fracdiff`] | fractional derivatives (Grünwald–Letnikov, Riemann–Liouville, Caputo L1) |
//! | [`sweep`] | the ORGaNICs stability sweep (sharded, resumable): config, trial, jobs, summary |
//! | [`spiking`] | rate RNN → leaky integrate-and-fire networks (Kim, Li & Sejnowski 2019): the LIF/QIF simulator (event-driven, sparse spikes), the conversion W_spk = λW, the λ grid search |
//! | [`cordsnet`] | CordsNet convolutional RNNs (Soo et al. 2024) as flows with a matrix-free JVP; the convolution as a linear operator |
//! | [`krylov`] | matrix-free Arnoldi (Ritz values and residuals), power iteration, GMRES, Newton–Krylov on any `LinearOperator` |
//! | [`nn`] | feed-forward layers with hand-derived backward passes (conv, pooling, BatchNorm, linear, dropout, divisive normalization, the static ORGaNICs layer), SGD/Adam, small AlexNet/VGG, the resumable `train-cnn` run |
//! | [`tensor`] | below the systems: `Real` (f64/f32), parameter layouts, safetensors files in and out |
//! | [`data`] | below the trainers: IDX digits and image sets, permutations, the custom-task arrays, the sequence minibatch |
//! | [`learn`] | the one training driver (epochs, schedules, the non-finite-loss rule, checkpoints with a versioned run state, resume, failpoints) and the optimisers every trainer shares |
//! | [`memory`] | memory estimates checked before allocating |
//! | [`seed`] | per-trial seed derivation (sweep and trainer) |
//! | [`cli`] | the binaries' command lines as a library (one module per binary: arguments, defaults, checks, run), callable by name ([`cli::run_named`]) — what the Python package runs |
//! | [`train`] | trainable cells (one file each, one registry), BPTT on the CPU (f64/f32) and in wgpu compute shaders, checkpoints that the analyses load, resumable runs |
//! | [`preset`] | TOML model presets |
//! | [`io`] | `.npy` reading with validation, Parquet/CSV tables, atomic (temp file + rename) writes |
//! | [`plot`] | PNG + SVG line plots |
//! | [`testing`] | reference problems with exact solutions, the matrix exponential |
//!
//! Equations in these docs are `$…$` TeX; `docs/katex-header.html` renders them
//! (`RUSTDOCFLAGS="--html-in-header docs/katex-header.html" cargo doc --no-deps`).

pub mod cli;
pub mod continuation;
pub mod cordsnet;
pub mod cycles;
pub mod data;
pub mod error;
pub mod fixed_points;
pub mod fracdiff;
pub mod gpu;
pub mod gpu_check;
pub mod integrate;
pub mod io;
pub mod krylov;
pub mod learn;
pub mod lyapunov;
pub mod memory;
pub mod model;
pub mod nn;
pub mod plot;
pub mod preset;
pub mod seed;
pub mod source;
pub mod spiking;
pub mod stability;
pub mod sweep;
pub mod tensor;
pub mod testing;
pub mod train;

pub use error::{Error, IntegrateError, Result};
/// The dense linear algebra every trait method takes (`MatRef`, `MatMut`): re-exported so that a
/// crate using neurodyn needs no faer dependency of its own (and cannot pin a different one).
pub use faer;
pub use integrate::{integrate, Method, Options, SaveAt, Solution, Stats, Status};
pub use model::{check_jacobian, Activation, Model, RateRnn};

/// Everything needed to define a system and analyse it, in one import:
///
/// ```
/// use neurodyn::prelude::*;
/// // A stable linear flow dx/dt = −x: one fixed point at 0, eigenvalue −1, all exponents −1.
/// let f = FlowFn::new(2, |_t, x, dx| {
///     dx[0] = -x[0];
///     dx[1] = -x[1];
/// });
/// let pts = find_fixed_points(&f, &random_starts(2, 4, -1.0, 1.0, 0), &FinderOptions::default())
///     .unwrap();
/// assert_eq!(pts.len(), 1);
/// assert!(pts[0].stability.class.is_stable());
/// let s = lyapunov_flow(&f, &[1.0, 0.5], &LyapunovOptions::new().dt(0.01).time(10.0)).unwrap();
/// assert!((s.exponents[0] + 1.0).abs() < 1e-6);
/// ```
pub mod prelude {
    pub use crate::error::{Error, Result};
    pub use crate::fixed_points::{
        find_fixed_points, find_map_fixed_points, find_system_fixed_points, newton, random_starts,
        FinderOptions, FixedPoint, NewtonOptions,
    };
    pub use crate::integrate::{integrate, Method, Options, SaveAt, Solution};
    pub use crate::lyapunov::{
        lyapunov_flow, lyapunov_map, lyapunov_system, InitialFrame, LyapunovOptions, Spectrum,
    };
    pub use crate::model::{
        check_jacobian, check_map_jacobian, fd_jacobian, jacobian_mat, map_jacobian_mat,
        Activation, EulerMap, FlowFn, Map, MapFn, MapResidual, Model, RateRnn, RnnMap, System,
    };
    pub use crate::stability::{
        analyze, analyze_jacobian, analyze_map, eigenvalues, Class, Stability, TimeKind,
    };
    pub use faer::{self, c64, Mat, MatMut, MatRef};
}
