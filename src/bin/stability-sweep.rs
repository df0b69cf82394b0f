//! `stability-sweep`: the ORGaNICs stability phase diagram (the stability sweep of Rawat, Heeger & Martiniani (2024)). A thin shell over
//! The arguments and the run live in [`neurodyn::cli::stability_sweep`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::stability_sweep::Args>()
}
