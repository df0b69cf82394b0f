//! `simulate`: integrate a flow (preset, `.npy` weights, checkpoint, ORGaNICs) and write the
//! The arguments and the run live in [`neurodyn::cli::simulate`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::simulate::Args>()
}
