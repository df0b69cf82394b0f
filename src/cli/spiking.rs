//! `spiking`: a trained rate network → a leaky integrate-and-fire network (Kim, Li & Sejnowski 2019).
//! Argument parsing → `crate::spiking::grid_search` (or one simulated trial) → tables, figures
//! and a summary → exit code.

use crate::error::Error;
use crate::io::progress_bar;
use crate::spiking::grid::{parse_scalings, rate_accuracy, resumable_grid_search};
use crate::spiking::report::{write_grid, write_single, Report};
use crate::spiking::{compare, GridOptions, Neuron, RateNetwork, SimOptions};
use crate::train::Task;
use clap::Parser;
use std::path::{Path, PathBuf};

/// Convert a trained Dale rate RNN into a spiking LIF network and find the scaling factor.
///
/// W_spk = λW and w_out_spk = λ w_out with λ = 1/s; W_in and the synaptic decay times (the trained
/// τ × 5 ms) carry over unchanged. The grid search runs --trials seeded trials per value of s (the
/// same trials for every s) and scores the LIF read-out by the task's criterion; the chosen s is
/// the most accurate (ties: the smaller). Writes grid.csv/.parquet (scaling_factor, lambda,
/// accuracy, correct, trials, mean_rate_hz), summary.toml, and figures (accuracy vs s; raster and
/// LIF-vs-rate output of one trial per condition; ISI and firing-rate histograms). Rerunning with
/// the same --out resumes after the last finished value of s (grid.journal).
///
/// --simulate S runs one trial at s = S instead and writes spikes.csv/.parquet (unit, step,
/// time_s), output.csv/.parquet (the LIF read-out at every step) and rate_output.csv (the rate
/// network on the same input), with a raster.
///
/// Exit codes: 0 done, 2 invalid input (bad option, checkpoint that is not a rate network, task
/// with another input size), 1 a run that failed.
///
/// Example: spiking --checkpoint run/checkpoint.safetensors --task go-nogo --out spk/
#[derive(Parser, Debug)]
#[command(name = "spiking", version, allow_negative_numbers = true)]
pub struct Args {
    /// A rate-network checkpoint (`train --cell rate`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The task the network was trained on: go-nogo, xor or mante.
    #[arg(long, value_enum)]
    task: Task,
    /// Output folder.
    #[arg(long, default_value = "out/spiking")]
    out: PathBuf,
    /// Trials per value of s.
    #[arg(long, default_value_t = 100)]
    trials: usize,
    /// Grid of s = 1/λ as start:stop:step [default: 20:75:5 for sigmoid networks, 4:26:2 for ReLU].
    #[arg(long, allow_hyphen_values = true)]
    scaling: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// dt = 0.05 ms × downsample (the input columns are subsampled alike, as the original does).
    #[arg(long, default_value_t = 1)]
    downsample: usize,
    /// lif or qif (quadratic integrate-and-fire).
    #[arg(long, value_enum, default_value = "lif")]
    neuron: Neuron,
    /// Start every unit free (i_last = −∞) instead of frozen for its first 2 ms (the original).
    #[arg(long)]
    no_initial_refractory: bool,
    /// Simulate one trial at this s instead of the grid search.
    #[arg(long, allow_hyphen_values = true)]
    simulate: Option<f64>,
    /// --simulate: record the membrane voltage (mV) of these units (comma-separated) →
    /// voltage.csv/.parquet (time_s, then v<unit>_mV per unit).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "UNITS",
        requires = "simulate"
    )]
    voltage: Vec<usize>,
    /// Run only block i of n of the grid (0-based; e.g. a SLURM array task), journalled in
    /// --out beside the other shards'. The report is written by the run that finds the whole
    /// grid done — the last shard, or a rerun without --shard (which runs what is missing).
    #[arg(long, value_name = "I/N", conflicts_with = "simulate")]
    shard: Option<String>,
    /// Which seeded trial --simulate runs.
    #[arg(long, default_value_t = 0)]
    trial: usize,
    #[arg(long, short)]
    quiet: bool,
    /// Print a machine-readable summary on stdout (status, exit code, files written; the error
    /// and its field on failure).
    #[arg(long)]
    json: bool,
}

fn sim_options(a: &Args) -> SimOptions {
    let mut o = SimOptions::new(a.neuron);
    o.downsample = a.downsample;
    o.initial_refractory = !a.no_initial_refractory;
    o.record_voltage = a.voltage.clone();
    o
}

fn prepare_out(out: &Path, single: bool) -> Result<(), Error> {
    crate::io::check_out_dir(out)?;
    crate::spiking::report::check_outputs(out, single)?;
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, e))
}

fn run(a: Args) -> Result<(), Error> {
    if a.trials == 0 {
        return Err(Error::invalid("trials", "need at least one trial"));
    }
    if a.trials > 1_000_000 {
        return Err(Error::invalid(
            "trials",
            format!("{}: at most 1,000,000", a.trials),
        ));
    }
    let rate = RateNetwork::load(&a.checkpoint)?;
    if a.task.is_digits() || a.task.n_in() != rate.n_in() {
        return Err(Error::invalid(
            "task",
            format!(
                "`{}` takes {} inputs; the network in {} takes {} (go-nogo 1, xor 2, mante 4)",
                a.task.name(),
                a.task.n_in(),
                a.checkpoint.display(),
                rate.n_in()
            ),
        ));
    }
    let sim = sim_options(&a);
    if sim.downsample == 0 || sim.downsample > 100 {
        return Err(Error::invalid(
            "downsample",
            format!("{}: need 1 ≤ downsample ≤ 100", a.downsample),
        ));
    }
    if let Some(s) = a.simulate {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::invalid(
                "simulate",
                format!("{s}: s = 1/λ must be positive"),
            ));
        }
        prepare_out(&a.out, true)?;
        let c = compare(&rate, a.task, s, &sim, a.seed, a.trial)?;
        return write_single(&report(&a), s, &c);
    }
    let scalings = match &a.scaling {
        Some(s) => parse_scalings(s)?,
        None => rate.default_scalings(),
    };
    prepare_out(&a.out, false)?;
    let opts = GridOptions {
        scalings,
        trials: a.trials,
        seed: a.seed,
        sim,
    };
    let shard = crate::io::parse_shard(&a.shard)?;
    let block = crate::io::shard_jobs(
        opts.scalings.len(),
        shard.0,
        shard.1.min(opts.scalings.len()),
    );
    let total = (block.len() * opts.trials) as u64;
    let bar = progress_bar(a.quiet, total, "{pos}/{len} trials {msg}");
    let result = resumable_grid_search(
        &a.checkpoint,
        &rate,
        a.task,
        &opts,
        &a.out,
        shard,
        &mut |row, before| match row {
            None => {
                // The trials a resumed search found done took no time here.
                bar.set_position(before as u64);
                crate::io::restart_eta(&bar);
            }
            Some(r) => bar.set_message(format!("s = {}: {:.0} %", r.scaling, 100.0 * r.accuracy())),
        },
        &|| bar.inc(1),
    )?;
    bar.finish_and_clear();
    let Some(result) = result else {
        if !a.quiet {
            eprintln!(
                "shard {}/{} done; the report appears when the last shard finishes (or rerun without --shard)",
                shard.0, shard.1
            );
        }
        return Ok(());
    };
    let rate_acc = rate_accuracy(&rate, a.task, opts.trials, opts.seed)?;
    write_grid(&report(&a), &rate, &opts, &result, rate_acc)
}

fn report(a: &Args) -> Report<'_> {
    Report {
        checkpoint: &a.checkpoint,
        task: a.task,
        neuron: format!("{:?}", a.neuron).to_lowercase(),
        out: &a.out,
        quiet: a.quiet,
        voltage_units: &a.voltage,
    }
}

super::command!("spiking", RESUMABLE = true);
