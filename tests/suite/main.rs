//! The integration tests, one crate (one link of the library and its dependencies instead of one
//! per file): each module is one area, `cargo test --release --test suite <module>::` runs one.

mod bad_input;
mod cli;
mod cli_continuation;
mod cli_fixed_points;
mod cli_fracdiff;
mod cli_lyapunov;
mod cli_sweep;
mod cli_train;
mod clv;
mod common;
mod continuation;
mod cordsnet;
mod cordsnet_train;
mod cycles;
mod fracdiff;
mod gpu_check;
mod integrate;
mod layers;
mod learn;
mod lyapunov;
mod model;
mod nn;
mod organics;
mod spiking;
mod spiking_convert;
mod sweep;
mod sweep_gpu;
mod system_api;
mod tables;
mod torch_rnn;
mod train;
mod train_cells;
mod train_custom;
mod train_gpu;
mod two_param;
