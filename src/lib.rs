//! # neurodyn
//!
//! Fit and dissect recurrent neural circuit models. A model is a continuous ODE system
//! `dx/dt = f(t, x)` with an analytic Jacobian ([`model::Model`]); every analysis takes any model.
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the [`Model`] trait, [`check_jacobian`], the rate RNN |
//! | [`integrate`](mod@integrate) | one front door [`integrate`](integrate::integrate()): Euler, RK4, Dormand–Prince 5(4) with dense output, BDF / ESDIRK34 / TR-BDF2 (diffsol) |
//! | [`fixed_points`], [`stability`] | fixed points of any model or map, linear stability |
//! | [`lyapunov`] | Lyapunov spectra of any map or flow |
//! | [`fracdiff`] | fractional derivatives (Grünwald–Letnikov, Riemann–Liouville, Caputo L1) |
//! | [`sweep`] | the ORGaNICs stability sweep (sharded, resumable) |
//! | [`train`] | trainable cells (rate, gamma, ANRU, ORGaNICs), BPTT on the CPU (f64/f32) and in wgpu compute shaders, checkpoints that the analyses load |
//! | [`preset`] | TOML model presets and `.npy` weights |
//! | [`io`] | `.npy` reading with validation, Parquet/CSV tables, atomic (temp file + rename) writes |
//! | [`plot`] | PNG + SVG line plots |
//! | [`testing`] | reference problems with exact solutions, the matrix exponential |

pub mod error;
pub mod fixed_points;
pub mod fracdiff;
pub mod integrate;
pub mod io;
pub mod lyapunov;
pub mod model;
pub mod plot;
pub mod preset;
pub mod stability;
pub mod sweep;
pub mod testing;
pub mod train;

pub use error::{Error, IntegrateError, Result};
pub use integrate::{integrate, Method, Options, SaveAt, Solution, Stats, Status};
pub use model::{check_jacobian, Activation, Model, RateRnn};
