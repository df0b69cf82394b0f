//! `fixed-points`: fixed points (and slow points) of a flow or a map, with their linear stability.
//! The arguments and the run live in [`neurodyn::cli::fixed_points`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::fixed_points::Args>()
}
