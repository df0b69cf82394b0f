//! The command lines of the binaries, as a library: each submodule holds one binary's arguments
//! (a clap `Parser`) and its run, so that `src/bin/*.rs` is one line and the Python package calls
//! the very same parsing, defaults, checks and outputs by the binary's name ([`run_named`]).
//!
//! A run is argument parsing → one library call → its outputs → an exit code (0 done, 2 invalid
//! input naming the field, 1 a run that failed, 130 interrupted).

use crate::error::{Error, Result};
use crate::io::Outputs;

/// One binary: its arguments and how its run behaves.
pub trait Command: clap::Parser {
    /// The binary's name.
    const NAME: &'static str;
    /// Run faer sequentially (the work is parallel across trials or starts instead).
    const FAER_SEQ: bool = false;
    /// A resumable run: its files appear as they come (every epoch, trial or grid value is
    /// kept), not together at its end as a one-shot command's.
    const RESUMABLE: bool = false;
    /// Whether the run's files are staged (one-shot) or written as they come (resumable).
    fn outputs(&self) -> Outputs {
        if Self::RESUMABLE {
            Outputs::AsTheyCome
        } else {
            Outputs::Staged
        }
    }
    /// Whether a machine-readable summary goes to stdout (`--json`).
    fn json(&self) -> bool;
    /// The run.
    fn run(self) -> Result<()>;
}

/// `impl Command for Args` of a module whose `Args` has a `json` flag and whose `run(Args)` is
/// the run: `command!("train", RESUMABLE = true)`.
macro_rules! command {
    ($name:literal $(, $c:ident = $v:expr)*) => {
        impl super::Command for Args {
            const NAME: &'static str = $name;
            $(const $c: bool = $v;)*
            fn json(&self) -> bool {
                self.json
            }
            fn run(self) -> crate::error::Result<()> {
                run(self)
            }
        }
    };
}
pub(crate) use command;

pub mod continuation;
pub mod cordsnet;
pub mod fixed_points;
pub mod fracdiff;
pub mod gpu_check;
pub mod lyapunov;
pub mod simulate;
pub mod spiking;
pub mod stability_sweep;
pub mod train;
pub mod train_cnn;

/// A binary's `main`: parse the process's arguments, run, exit with the run's code.
pub fn main<C: Command>() -> std::process::ExitCode {
    if C::FAER_SEQ {
        faer::set_global_parallelism(faer::Par::Seq);
    }
    let args = C::parse();
    if args.outputs() == Outputs::Staged {
        crate::io::stage_outputs();
    }
    let json = args.json();
    crate::io::exit_with(args.run(), json)
}

/// Runs command `C` on `argv` (without the program name) in this process, as its binary would:
/// the same defaults and checks, the same files (staged ones appear together or not at all).
/// A parse error is [`Error::Invalid`] naming the flag.
pub fn run_argv<C: Command>(argv: &[String]) -> Result<()> {
    let args = C::try_parse_from(std::iter::once(C::NAME.to_string()).chain(argv.iter().cloned()))
        .map_err(parse_error)?;
    let before = faer::get_global_parallelism();
    if C::FAER_SEQ {
        faer::set_global_parallelism(faer::Par::Seq);
    }
    let staged = args.outputs() == Outputs::Staged;
    if staged {
        crate::io::stage_outputs();
    }
    let result = args.run();
    let result = match (result, staged) {
        (Ok(()), true) => crate::io::commit_outputs(),
        (Err(e), true) => {
            crate::io::discard_outputs();
            Err(e)
        }
        (r, false) => r,
    };
    faer::set_global_parallelism(before);
    result
}

/// The binaries by name.
pub const NAMES: [&str; 11] = [
    "continuation",
    "cordsnet",
    "fixed-points",
    "fracdiff",
    "gpu-check",
    "lyapunov",
    "simulate",
    "spiking",
    "stability-sweep",
    "train",
    "train-cnn",
];

macro_rules! by_name {
    ($name:expr, $f:ident $(, $arg:expr)*) => {
        match $name {
            "continuation" => Ok($f::<continuation::Args>($($arg),*)),
            "cordsnet" => Ok($f::<cordsnet::Args>($($arg),*)),
            "fixed-points" => Ok($f::<fixed_points::Args>($($arg),*)),
            "fracdiff" => Ok($f::<fracdiff::Args>($($arg),*)),
            "gpu-check" => Ok($f::<gpu_check::Args>($($arg),*)),
            "lyapunov" => Ok($f::<lyapunov::Args>($($arg),*)),
            "simulate" => Ok($f::<simulate::Args>($($arg),*)),
            "spiking" => Ok($f::<spiking::Args>($($arg),*)),
            "stability-sweep" => Ok($f::<stability_sweep::Args>($($arg),*)),
            "train" => Ok($f::<train::Args>($($arg),*)),
            "train-cnn" => Ok($f::<train_cnn::Args>($($arg),*)),
            other => Err(Error::invalid(
                "command",
                format!("unknown command `{other}` ({})", NAMES.join(", ")),
            )),
        }
    };
}

/// Runs the binary called `name` on `argv` in this process ([`run_argv`]).
pub fn run_named(name: &str, argv: &[String]) -> Result<()> {
    by_name!(name, run_argv, argv)?
}

fn help_of<C: Command>() -> String {
    C::command().render_long_help().to_string()
}

/// The `--help` text of the binary called `name`: the reference for every option and default.
pub fn help(name: &str) -> Result<String> {
    by_name!(name, help_of)
}

/// A clap error as invalid input naming the flag (`--epochs`, or `arguments` when clap names none).
fn parse_error(e: clap::Error) -> Error {
    use clap::error::{ContextKind, ContextValue};
    let field = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s
            .split_whitespace()
            .next()
            .unwrap_or("arguments")
            .trim_start_matches('-')
            .to_string(),
        _ => "arguments".to_string(),
    };
    let text = e.render().to_string();
    let problem = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string();
    Error::invalid(field, problem)
}
