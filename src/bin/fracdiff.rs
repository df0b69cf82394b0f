//! `fracdiff`: fractional derivatives of recorded signals, or per-signal fractional-order estimates.
//! The arguments and the run live in [`neurodyn::cli::fracdiff`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::fracdiff::Args>()
}
