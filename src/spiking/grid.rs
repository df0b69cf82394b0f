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
    if task.is_digits() {
        return Err(Error::invalid(
            "task",
            format!(
                "`{}` is not a rate-network task (go-nogo, xor or mante)",
                task.name()
            ),
        ));
    }
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

/// The grid search. `done` holds rows already finished (a resumed run; they must be a prefix of
/// `opts.scalings`); `on_row` sees each new row as it finishes (to journal it).
pub fn grid_search(
    rate: &RateNetwork,
    task: Task,
    opts: &GridOptions,
    done: Vec<GridRow>,
    on_row: &mut dyn FnMut(&GridRow) -> Result<()>,
    tick: &(dyn Fn() + Sync),
) -> Result<GridResult> {
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
    for (k, row) in done.iter().enumerate() {
        if opts.scalings.get(k) != Some(&row.scaling) || row.trials != opts.trials {
            return Err(Error::invalid(
                "resume",
                format!(
                    "finished row {k} (s = {}, {} trials) does not match this grid",
                    row.scaling, row.trials
                ),
            ));
        }
    }
    let mut rows = done;
    for &s in &opts.scalings[rows.len()..] {
        let row = evaluate_scaling(rate, task, s, opts, tick)?;
        on_row(&row)?;
        rows.push(row);
    }
    let best = best_index(&rows).expect("non-empty grid");
    Ok(GridResult { rows, best })
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

/// The resume journal of a grid run: a header naming the run, then one line per finished value of
/// s (`s,correct,trials,mean_rate`, exact decimal round trips), appended and synced as each
/// finishes. A rerun with the same header continues after the last line; another header is refused.
#[derive(Debug)]
pub struct Journal {
    path: std::path::PathBuf,
}

impl Journal {
    /// Opens (or creates) the journal at `path` for the run described by `header` (one line),
    /// returning the rows already finished.
    pub fn open(path: &std::path::Path, header: &str) -> Result<(Journal, Vec<GridRow>)> {
        let head = format!("# neurodyn spiking grid v1 {header}");
        let mut rows = vec![];
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut lines = text.lines();
                if lines.next() != Some(head.as_str()) {
                    return Err(Error::invalid(
                        "out",
                        format!(
                            "{} belongs to a different grid (checkpoint, task, trials, seed or \
                             simulation options differ); use another --out or delete it",
                            path.display()
                        ),
                    ));
                }
                for (k, line) in lines.enumerate() {
                    let bad = || {
                        Error::invalid(
                            "out",
                            format!(
                                "{} line {}: `{line}` is not `s,correct,trials,mean_rate`",
                                path.display(),
                                k + 2
                            ),
                        )
                    };
                    let f: Vec<&str> = line.split(',').collect();
                    if f.len() != 4 {
                        return Err(bad());
                    }
                    rows.push(GridRow {
                        scaling: f[0].parse().map_err(|_| bad())?,
                        correct: f[1].parse().map_err(|_| bad())?,
                        trials: f[2].parse().map_err(|_| bad())?,
                        mean_rate: f[3].parse().map_err(|_| bad())?,
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::io::write_atomic(path, |w| {
                    use std::io::Write;
                    writeln!(w, "{head}").map_err(|e| Error::file(path, e))
                })?;
            }
            Err(e) => return Err(Error::file(path, e)),
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
            },
            rows,
        ))
    }

    /// Appends a finished row and syncs it to disk.
    pub fn append(&mut self, row: &GridRow) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::file(&self.path, e))?;
        writeln!(
            f,
            "{:?},{},{},{:?}",
            row.scaling, row.correct, row.trials, row.mean_rate
        )
        .and_then(|_| f.sync_data())
        .map_err(|e| Error::file(&self.path, e))
    }
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
