//! `train`: fit a recurrent circuit on a task and write a checkpoint that the analysis binaries load.
//! The arguments and the run live in [`neurodyn::cli::train`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::train::Args>()
}
