//! The grid search for the scaling factor s = 1/λ (Kim, Li & Sejnowski 2019): for each s, the LIF
//! network λW is run on the same seeded trials and scored by the task's LIF criterion; the chosen
//! s is the most accurate, ties going to the smaller s (MATLAB's `max` returns the first maximum).
//!
//! Trials run in parallel with rayon; each trial's inputs and noise come from its own seed
//! ([`seeded_trial`]), so results are identical whatever the thread count, and a grid interrupted
//! after some values of s resumes from the rows already finished (see the `spiking` binary).

use super::{lif_correct, seeded_trial, simulate, RateNetwork, SimOptions};
use crate::error::{Error, Result};
use crate::train::Task;
use rayon::prelude::*;

/// What the grid search runs.
#[derive(Debug, Clone)]
pub struct GridOptions {
    /// Values of s = 1/λ, in the order they are run.
    pub scalings: Vec<f64>,
    /// Trials per value of s (the original: 100).
    pub trials: usize,
    pub seed: u64,
    pub sim: SimOptions,
}

/// One value of s.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    pub scaling: f64,
    pub correct: usize,
    pub trials: usize,
    /// Mean firing rate over units and trials (Hz).
    pub mean_rate: f64,
}

impl GridRow {
    /// Fraction of trials correct.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.trials.max(1) as f64
    }
}

/// The whole grid.
#[derive(Debug, Clone, PartialEq)]
pub struct GridResult {
    pub rows: Vec<GridRow>,
    /// Index of the chosen s in `rows`.
    pub best: usize,
}

impl GridResult {
    pub fn best_row(&self) -> &GridRow {
        &self.rows[self.best]
    }
}

/// The index of the most accurate row; ties go to the smaller s.
pub fn best_index(rows: &[GridRow]) -> Option<usize> {
    (0..rows.len()).reduce(|a, b| {
        let (ra, rb) = (&rows[a], &rows[b]);
        match rb.correct.cmp(&ra.correct) {
            std::cmp::Ordering::Greater => b,
            std::cmp::Ordering::Equal if rb.scaling < ra.scaling => b,
            _ => a,
        }
    })
}

fn check_task(rate: &RateNetwork, task: Task) -> Result<()> {
    super::rate_task(task)?;
    if task.n_in() != rate.n_in() {
        return Err(Error::invalid(
            "task",
            format!(
                "`{}` has {} inputs, the network {} (was it trained on another task?)",
                task.name(),
                task.n_in(),
                rate.n_in()
            ),
        ));
    }
    Ok(())
}

/// Runs `trials` seeded trials at scaling factor `s`; `tick` is called after each trial.
pub fn evaluate_scaling(
    rate: &RateNetwork,
    task: Task,
    s: f64,
    opts: &GridOptions,
    tick: &(dyn Fn() + Sync),
) -> Result<GridRow> {
    check_task(rate, task)?;
    let net = rate.to_spiking(s)?;
    let results: Vec<(bool, u64, f64)> = (0..opts.trials)
        .into_par_iter()
        .map(|k| {
            crate::io::check_interrupt(
                "grid search stopped; the journal keeps the finished values of s",
            )?;
            let (cols, trial, noise) = seeded_trial(task, opts.seed, k)?;
            let out = simulate(&net, &cols, &opts.sim, noise)?;
            let ok = lif_correct(task, &out.output, out.dt, trial.2);
            let spikes: u64 = out.counts.iter().map(|&c| c as u64).sum();
            tick();
            Ok((ok, spikes, out.duration()))
        })
        .collect::<Result<_>>()?;
    let correct = results.iter().filter(|r| r.0).count();
    let rate_hz = results
        .iter()
        .map(|r| r.1 as f64 / (r.2 * net.n() as f64))
        .sum::<f64>()
        / results.len().max(1) as f64;
    Ok(GridRow {
        scaling: s,
        correct,
        trials: opts.trials,
        mean_rate: rate_hz,
    })
}

/// The grid search. `done` holds rows already finished (a resumed run, or other shards' rows:
/// any values of the grid, with its number of trials); `on_row` sees each new row as it finishes
/// (to journal it).
pub fn grid_search(
    rate: &RateNetwork,
    task: Task,
    opts: &GridOptions,
    done: Vec<GridRow>,
    on_row: &mut dyn FnMut(&GridRow) -> Result<()>,
    tick: &(dyn Fn() + Sync),
) -> Result<GridResult> {
    let all = 0..opts.scalings.len();
    let rows = grid_block(rate, task, opts, all, done, on_row, tick)?;
    let best = best_index(&rows).expect("non-empty grid");
    Ok(GridResult { rows, best })
}

/// Runs the values of s with index in `block` that `done` lacks, and returns every row known
/// (`done` and the new ones) in grid order.
fn grid_block(
    rate: &RateNetwork,
    task: Task,
    opts: &GridOptions,
    block: std::ops::Range<usize>,
    done: Vec<GridRow>,
    on_row: &mut dyn FnMut(&GridRow) -> Result<()>,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<GridRow>> {
    check_task(rate, task)?;
    if opts.scalings.is_empty() {
        return Err(Error::invalid("scaling", "the grid has no values"));
    }
    if opts.trials == 0 {
        return Err(Error::invalid(
            "trials",
            "need at least one trial per value",
        ));
    }
    if let Some(s) = opts.scalings.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(Error::invalid(
            "scaling",
            format!("{s}: every s = 1/λ must be positive and finite"),
        ));
    }
    let mut slots: Vec<Option<GridRow>> = vec![None; opts.scalings.len()];
    for row in done {
        let k = opts.scalings.iter().position(|&s| s == row.scaling);
        match k {
            Some(k) if row.trials == opts.trials => slots[k] = Some(row),
            _ => {
                return Err(Error::invalid(
                    "resume",
                    format!(
                        "a finished row (s = {}, {} trials) does not match this grid",
                        row.scaling, row.trials
                    ),
                ))
            }
        }
    }
    for k in block {
        if slots[k].is_none() {
            let row = evaluate_scaling(rate, task, opts.scalings[k], opts, tick)?;
            on_row(&row)?;
            slots[k] = Some(row);
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// The rate network's accuracy on the same seeded trials (its own criterion, with its recurrent
/// noise seeded per trial).
pub fn rate_accuracy(rate: &RateNetwork, task: Task, trials: usize, seed: u64) -> Result<f64> {
    check_task(rate, task)?;
    let mut set = Vec::with_capacity(trials);
    let mut seeds = Vec::with_capacity(trials);
    for k in 0..trials {
        let (_, trial, noise) = seeded_trial(task, seed, k)?;
        set.push(trial);
        seeds.push(noise);
    }
    let outs = rate.outputs(&set, Some(seeds))?;
    let ok = outs
        .iter()
        .zip(&set)
        .filter(|(o, t)| task.correct(o, t.2))
        .count();
    Ok(ok as f64 / trials.max(1) as f64)
}

/// A finished value of s in the grid's resume journal ([`crate::io::journal`]):
/// `s,correct,trials,mean_rate`, exact decimal round trips.
impl crate::io::journal::JournalRow for GridRow {
    const FIELDS: usize = 4;
    const SHAPE: &'static str = "s,correct,trials,mean_rate";
    fn to_line(&self) -> String {
        format!(
            "{:?},{},{},{:?}",
            self.scaling, self.correct, self.trials, self.mean_rate
        )
    }
    fn parse(f: &[&str]) -> Option<Self> {
        Some(GridRow {
            scaling: f[0].parse().ok()?,
            correct: f[1].parse().ok()?,
            trials: f[2].parse().ok()?,
            mean_rate: f[3].parse().ok()?,
        })
    }
}

/// Opens the grid's journal at `path` for the run described by `header` (one line): the
/// journal, and the rows already finished.
pub fn open_journal(
    path: &std::path::Path,
    header: &str,
) -> Result<(crate::io::journal::Journal, Vec<GridRow>)> {
    crate::io::journal::Journal::open(
        path,
        &format!("# neurodyn spiking grid v1 {header}"),
        "out",
        "checkpoint, task, trials, seed or simulation options",
    )
}

/// [`grid_search`] that can be killed and resumed, and split into shards: the journal names the
/// run (the checkpoint's FNV-1a hash, task, trials, seed, neuron, simulation options and grid),
/// keeps every finished value of s (synced to disk as each finishes), and a rerun with the same
/// arguments continues with the values not yet done; another run in the same folder is refused
/// (`out`). Shard `(i, n)` runs the i-th of n contiguous blocks of the grid into
/// `out/grid.<i>of<n>.journal` (the whole grid: `out/grid.journal`); every run reads the rows of
/// all the journals in `out`, so the values another shard finished are not run again. Returns
/// the result once every value of the grid is done (in any journal), else `None`.
/// `progress(done_trials_before, row)` reports the rows of this run's block already done at the
/// start (`None`) and each row as it finishes.
#[allow(clippy::too_many_arguments)]
pub fn resumable_grid_search(
    checkpoint: &std::path::Path,
    rate: &RateNetwork,
    task: Task,
    opts: &GridOptions,
    out: &std::path::Path,
    shard: (usize, usize),
    progress: &mut dyn FnMut(Option<&GridRow>, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Option<GridResult>> {
    let bytes = std::fs::read(checkpoint).map_err(|e| Error::file(checkpoint, e))?;
    let header = format!(
        "checkpoint-fnv={:016x} task={} trials={} seed={} neuron={:?} downsample={} initial_refractory={} scalings={:?}",
        crate::io::fnv1a(&bytes),
        task.name(),
        opts.trials,
        opts.seed,
        opts.sim.neuron,
        opts.sim.downsample,
        opts.sim.initial_refractory,
        opts.scalings
    );
    let (si, sn) = shard;
    if sn == 0 || si >= sn || sn > opts.scalings.len() {
        return Err(Error::invalid(
            "shard",
            format!(
                "{si}/{sn}: need 0 ≤ i < n ≤ {} (the grid's values of s)",
                opts.scalings.len()
            ),
        ));
    }
    let name = if sn == 1 {
        "grid.journal".to_string()
    } else {
        format!("grid.{si}of{sn}.journal")
    };
    let (mut journal, mut done) = open_journal(&out.join(&name), &header)?;
    for other in grid_journals(out)?
        .into_iter()
        .filter(|p| !p.ends_with(&name))
    {
        let rows: Vec<GridRow> = crate::io::journal::Journal::read(
            &other,
            Some(&format!("# neurodyn spiking grid v1 {header}")),
            "out",
            "checkpoint, task, trials, seed or simulation options",
        )?;
        for r in rows {
            if !done.iter().any(|d| d.scaling == r.scaling) {
                done.push(r);
            }
        }
    }
    let block = crate::io::shard_jobs(opts.scalings.len(), si, sn);
    let before = done
        .iter()
        .filter(|r| opts.scalings[block.clone()].iter().any(|&s| s == r.scaling))
        .count();
    progress(None, before * opts.trials);
    let rows = grid_block(
        rate,
        task,
        opts,
        block,
        done,
        &mut |row| {
            progress(Some(row), 0);
            journal.append(row)?;
            journal.sync()
        },
        tick,
    )?;
    if rows.len() < opts.scalings.len() {
        return Ok(None);
    }
    let best = best_index(&rows).expect("non-empty grid");
    Ok(Some(GridResult { rows, best }))
}

/// The grid journals in `out` (`grid.journal`, `grid.<i>of<n>.journal`), sorted.
fn grid_journals(out: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(vec![]);
    };
    let mut v: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("grid.") && n.ends_with(".journal"))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Parses `start:stop:step` (stop included when the steps land on it) into the grid of s.
pub fn parse_scalings(s: &str) -> Result<Vec<f64>> {
    let bad = |why: &str| {
        Error::invalid(
            "scaling",
            format!("`{s}`: expected start:stop:step with 0 < start ≤ stop and step > 0 ({why})"),
        )
    };
    let p: Vec<&str> = s.split(':').collect();
    if p.len() != 3 {
        return Err(bad("three numbers"));
    }
    let v: Vec<f64> = p
        .iter()
        .map(|x| x.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("not numbers"))?;
    let (a, b, h) = (v[0], v[1], v[2]);
    if !(a.is_finite() && b.is_finite() && h.is_finite()) || a <= 0.0 || b < a || h <= 0.0 {
        return Err(bad("out of range"));
    }
    let count = ((b - a) / h + 1e-9).floor() + 1.0;
    if count > 10_000.0 {
        return Err(bad(&format!("{count} values; at most 10,000")));
    }
    Ok((0..count as usize).map(|k| a + h * k as f64).collect())
}
