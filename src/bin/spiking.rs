//! `spiking`: a trained rate network → a leaky integrate-and-fire network (Kim, Li & Sejnowski 2019).
//! Argument parsing → `neurodyn::spiking::grid_search` (or one simulated trial) → tables, figures
//! and a summary → exit code.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use neurodyn::error::Error;
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::plot::LinePlot;
use neurodyn::spiking::grid::{parse_scalings, rate_accuracy, Journal};
use neurodyn::spiking::{
    compare, grid_search, Comparison, GridOptions, GridResult, Neuron, RateNetwork, SimOptions,
};
use neurodyn::train::Task;
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
struct Args {
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
    o
}

fn prepare_out(out: &Path) -> Result<(), Error> {
    neurodyn::io::check_out_dir(out)?;
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
        prepare_out(&a.out)?;
        let c = compare(&rate, a.task, s, &sim, a.seed, a.trial)?;
        return write_single(&a, s, &c);
    }
    let scalings = match &a.scaling {
        Some(s) => parse_scalings(s)?,
        None => rate.default_scalings(),
    };
    prepare_out(&a.out)?;
    let opts = GridOptions {
        scalings,
        trials: a.trials,
        seed: a.seed,
        sim,
    };
    let ck_bytes = std::fs::read(&a.checkpoint).map_err(|e| Error::file(&a.checkpoint, e))?;
    let header = format!(
        "checkpoint-fnv={:016x} task={} trials={} seed={} neuron={:?} downsample={} initial_refractory={} scalings={:?}",
        fnv1a(&ck_bytes),
        a.task.name(),
        opts.trials,
        opts.seed,
        opts.sim.neuron,
        opts.sim.downsample,
        opts.sim.initial_refractory,
        opts.scalings
    );
    let (mut journal, done) = Journal::open(&a.out.join("grid.journal"), &header)?;
    let total = (opts.scalings.len() * opts.trials) as u64;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} trials {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position((done.len() * opts.trials) as u64);
    let tick = || bar.inc(1);
    let result = grid_search(
        &rate,
        a.task,
        &opts,
        done,
        &mut |row| {
            bar.set_message(format!(
                "s = {}: {:.0} %",
                row.scaling,
                100.0 * row.accuracy()
            ));
            journal.append(row)
        },
        &tick,
    )?;
    bar.finish_and_clear();
    let rate_acc = rate_accuracy(&rate, a.task, opts.trials, opts.seed)?;
    write_grid(&a, &rate, &opts, &result, rate_acc)
}

/// FNV-1a of the checkpoint bytes: the journal names the network it belongs to.
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn both(t: &Table, stem: &Path) -> Result<(), Error> {
    t.write(&stem.with_extension("csv"), TableFormat::Csv)?;
    t.write(&stem.with_extension("parquet"), TableFormat::Parquet)
}

fn condition_name(task: Task, label: f64) -> &'static str {
    match task {
        Task::GoNoGo if label > 0.5 => "go",
        Task::GoNoGo => "nogo",
        Task::Xor if label > 0.0 => "same",
        Task::Xor => "different",
        _ if label > 0.0 => "plus",
        _ => "minus",
    }
}

/// Raster (spike time, unit) and LIF read-out over the rate read-out of one trial.
fn trial_figures(out: &Path, name: &str, c: &Comparison, s: f64) -> Result<(), Error> {
    let raster: Vec<(f64, f64)> = c
        .trial
        .spikes
        .iter()
        .map(|&(u, i)| (i as f64 * c.trial.dt, u as f64))
        .collect();
    LinePlot::new(
        format!("LIF raster, {name} trial (s = {s})"),
        "time (s)",
        "unit",
    )
    .points("spikes", raster)
    .save(&out.join(format!("raster_{name}")))?;
    let stride = (c.trial.output.len() / 2000).max(1);
    let lif: Vec<(f64, f64)> = c
        .trial
        .output
        .iter()
        .enumerate()
        .step_by(stride)
        .map(|(i, v)| ((i + 1) as f64 * c.trial.dt, *v))
        .collect();
    let rate: Vec<(f64, f64)> = c
        .rate_output
        .iter()
        .enumerate()
        .map(|(k, v)| ((k + 1) as f64 * neurodyn::spiking::RATE_STEP, *v))
        .collect();
    LinePlot::new(
        format!("read-out, {name} trial (Pearson r = {:.3})", c.r),
        "time (s)",
        "output",
    )
    .series("LIF", lif)
    .series("rate", rate)
    .save(&out.join(format!("output_{name}")))?;
    Ok(())
}

/// A histogram as a step line.
fn histogram(values: &[f64], bins: usize) -> Vec<(f64, f64)> {
    if values.is_empty() {
        return vec![];
    }
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w = ((hi - lo) / bins as f64).max(1e-12);
    let mut counts = vec![0usize; bins];
    for v in values {
        counts[(((v - lo) / w) as usize).min(bins - 1)] += 1;
    }
    let mut pts = vec![];
    for (k, c) in counts.iter().enumerate() {
        let (x0, x1) = (lo + w * k as f64, lo + w * (k + 1) as f64);
        pts.push((x0, *c as f64));
        pts.push((x1, *c as f64));
    }
    pts
}

fn write_grid(
    a: &Args,
    rate: &RateNetwork,
    opts: &GridOptions,
    res: &GridResult,
    rate_acc: f64,
) -> Result<(), Error> {
    let best = res.best_row();
    let s = best.scaling;
    // One trial per condition at the chosen s (the first seeded trials with each label).
    let mut shown: Vec<(String, Comparison)> = vec![];
    for k in 0..opts.trials.max(64) {
        let c = compare(rate, a.task, s, &opts.sim, opts.seed, k)?;
        let name = condition_name(a.task, c.label);
        if !shown.iter().any(|(n, _)| n == name) {
            shown.push((name.to_string(), c));
        }
        if shown.len() == 2 {
            break;
        }
    }
    let mut t = Table::new();
    t.push(
        "scaling_factor",
        Column::F64(res.rows.iter().map(|r| r.scaling).collect()),
    )
    .push(
        "lambda",
        Column::F64(res.rows.iter().map(|r| 1.0 / r.scaling).collect()),
    )
    .push(
        "accuracy",
        Column::F64(res.rows.iter().map(|r| r.accuracy()).collect()),
    )
    .push(
        "correct",
        Column::I64(res.rows.iter().map(|r| r.correct as i64).collect()),
    )
    .push(
        "trials",
        Column::I64(res.rows.iter().map(|r| r.trials as i64).collect()),
    )
    .push(
        "mean_rate_hz",
        Column::F64(res.rows.iter().map(|r| r.mean_rate).collect()),
    );
    both(&t, &a.out.join("grid"))?;
    let mut summary = toml::Table::new();
    let mut put = |k: &str, v: toml::Value| {
        summary.insert(k.into(), v);
    };
    put("checkpoint", a.checkpoint.display().to_string().into());
    put("task", a.task.name().into());
    put("neuron", format!("{:?}", a.neuron).to_lowercase().into());
    put("scaling_factor", s.into());
    put("lambda", (1.0 / s).into());
    put("accuracy", best.accuracy().into());
    put("rate_accuracy", rate_acc.into());
    put("trials", (opts.trials as i64).into());
    put("seed", (opts.seed as i64).into());
    put("dt_ms", (opts.sim.dt() * 1e3).into());
    put("downsample", (opts.sim.downsample as i64).into());
    put("mean_rate_hz", best.mean_rate.into());
    put(
        "at_grid_edge",
        (res.best == 0 || res.best + 1 == res.rows.len()).into(),
    );
    for (name, c) in &shown {
        put(&format!("pearson_r_{name}"), c.r.into());
    }
    let text = toml::to_string(&summary).map_err(|e| Error::failed("summary", e.to_string()))?;
    let sp = a.out.join("summary.toml");
    neurodyn::io::write_atomic(&sp, |w| {
        std::io::Write::write_all(w, text.as_bytes()).map_err(|e| Error::file(&sp, e))
    })?;
    let acc: Vec<(f64, f64)> = res.rows.iter().map(|r| (r.scaling, r.accuracy())).collect();
    let (x0, x1) = (res.rows[0].scaling, res.rows[res.rows.len() - 1].scaling);
    LinePlot::new(
        format!(
            "LIF accuracy vs scaling factor ({}, {} trials each)",
            a.task.name(),
            opts.trials
        ),
        "scaling factor s = 1/λ",
        "fraction correct",
    )
    .series("LIF", acc.clone())
    .points("", acc)
    .segment(
        "rate network",
        vec![(x0, rate_acc), (x1, rate_acc)],
        1,
        true,
    )
    .save(&a.out.join("accuracy"))?;
    let mut isis = vec![];
    let mut rates = vec![];
    for (name, c) in &shown {
        trial_figures(&a.out, name, c, s)?;
        isis.extend(c.trial.isis().iter().map(|v| v * 1e3));
        rates.extend(c.trial.rates());
    }
    LinePlot::new("interspike intervals (shown trials)", "ISI (ms)", "count")
        .series("ISI", histogram(&isis, 40))
        .save(&a.out.join("isi"))?;
    LinePlot::new("firing rates per unit (shown trials)", "rate (Hz)", "units")
        .series("rate", histogram(&rates, 30))
        .save(&a.out.join("rates"))?;
    if !a.quiet {
        eprintln!(
            "chosen s = {s} (λ = 1/{s}): LIF accuracy {:.1} % on {} trials (rate network {:.1} %){}; wrote {}/grid.csv/.parquet, summary.toml, figures",
            100.0 * best.accuracy(),
            opts.trials,
            100.0 * rate_acc,
            if res.best == 0 || res.best + 1 == res.rows.len() {
                " — at the edge of the grid: widen --scaling"
            } else {
                ""
            },
            a.out.display()
        );
    }
    Ok(())
}

fn write_single(a: &Args, s: f64, c: &Comparison) -> Result<(), Error> {
    let mut sp = Table::new();
    sp.push(
        "unit",
        Column::I64(c.trial.spikes.iter().map(|x| x.0 as i64).collect()),
    )
    .push(
        "step",
        Column::I64(c.trial.spikes.iter().map(|x| x.1 as i64).collect()),
    )
    .push(
        "time_s",
        Column::F64(
            c.trial
                .spikes
                .iter()
                .map(|x| x.1 as f64 * c.trial.dt)
                .collect(),
        ),
    );
    both(&sp, &a.out.join("spikes"))?;
    let mut o = Table::new();
    o.push(
        "time_s",
        Column::F64((1..=c.trial.steps).map(|i| i as f64 * c.trial.dt).collect()),
    )
    .push("output", Column::F64(c.trial.output.clone()));
    both(&o, &a.out.join("output"))?;
    let mut r = Table::new();
    r.push(
        "time_s",
        Column::F64(
            (1..=c.rate_output.len())
                .map(|k| k as f64 * neurodyn::spiking::RATE_STEP)
                .collect(),
        ),
    )
    .push("rate_output", Column::F64(c.rate_output.clone()))
    .push("lif_output", Column::F64(c.lif_on_grid.clone()));
    r.write(&a.out.join("rate_output.csv"), TableFormat::Csv)?;
    let name = condition_name(a.task, c.label);
    trial_figures(&a.out, name, c, s)?;
    if !a.quiet {
        eprintln!(
            "{name} trial at s = {s}: {} spikes ({:.1} Hz per unit), LIF {} / rate {}, Pearson r = {:.3}; wrote {}/spikes.csv, output.csv, rate_output.csv, figures",
            c.trial.spikes.len(),
            c.trial.rates().iter().sum::<f64>() / c.trial.counts.len() as f64,
            if c.lif_correct { "correct" } else { "wrong" },
            if c.rate_correct { "correct" } else { "wrong" },
            c.r,
            a.out.display()
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let json = args.json;
    neurodyn::io::exit_with(run(args), json)
}
