//! The ORGaNICs stability sweep (the stability sweep of Rawat, Heeger & Martiniani (2024)): random recurrent matrices at a grid of scales δ, a grid
//! of input strengths, trials per cell; each circuit is simulated in chunks of forward-Euler steps
//! and classified as fixed point / periodic / diverging / undetermined by the spec's criteria; at
//! fixed points the Jacobian spectrum is recorded (so both "stationary" and "linearly stable" are
//! reported) with the distance to the analytical normalization fixed point.
//!
//! Reproducibility: every trial (i_δ, j_input, k_trial) draws from its own ChaCha8 stream seeded by
//! a hash of (seed, i, j, k), so results are bitwise identical whatever the number of threads,
//! shards or restarts. [`run_jobs`] appends each finished trial to a journal (one CSV line, flushed),
//! so a killed run resumes where it stopped; [`finish`] turns the journals into the final table.
//!
//! | file | what |
//! |---|---|
//! | [`config`] | the TOML configuration, its validation and grids |
//! | [`trial`] | one trial: the matrix and input draws, the chunked Euler simulation, its criteria |
//! | [`jobs`] | job numbering, shards, the per-trial journal and resuming |
//! | [`summary`] | per-cell summaries, the results table, Δ_c, the final tables |
//! | [`gpu`] | trials on a GPU: the Euler chunks and the classification in WGSL, f32 (`device = "gpu"`) |
//! | [`mod@diagnose`] | what an undetermined trial is: continued, its fixed point and spectrum, cycles with several maxima per period |

pub mod config;
pub mod diagnose;
pub mod gpu;
pub mod jobs;
pub mod summary;
pub mod trial;

pub use config::*;
pub use diagnose::*;
pub use jobs::*;
pub use summary::*;
pub use trial::*;
