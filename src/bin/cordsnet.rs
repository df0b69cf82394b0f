//! `cordsnet`: CordsNet convolutional RNNs as dynamical systems — the layer table, matrix-free
//! The arguments and the run live in [`neurodyn::cli::cordsnet`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::cordsnet::Args>()
}
