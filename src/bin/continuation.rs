//! `continuation`: follow a branch of fixed points through one parameter and locate its
//! The arguments and the run live in [`neurodyn::cli::continuation`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::continuation::Args>()
}
