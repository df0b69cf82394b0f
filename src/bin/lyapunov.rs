//! `lyapunov`: Lyapunov spectra of any flow or map the resolver knows (Benettin/QR), and sweeps
//! The arguments and the run live in [`neurodyn::cli::lyapunov`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::lyapunov::Args>()
}
