//! `gpu-check`: every GPU path against its CPU reference, timed, one table.
//! The arguments and the run live in [`neurodyn::cli::gpu_check`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::gpu_check::Args>()
}
