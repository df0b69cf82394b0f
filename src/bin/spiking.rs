//! `spiking`: a trained rate network → a leaky integrate-and-fire network (Kim, Li & Sejnowski 2019).
//! The arguments and the run live in [`neurodyn::cli::spiking`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::spiking::Args>()
}
