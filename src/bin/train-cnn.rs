//! `train-cnn`: train a convolutional network with divisive normalization, or the static ORGaNICs
//! The arguments and the run live in [`neurodyn::cli::train_cnn`].

fn main() -> std::process::ExitCode {
    neurodyn::cli::main::<neurodyn::cli::train_cnn::Args>()
}
