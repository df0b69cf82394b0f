//! Jobs of the sweep: numbering, shards, the per-trial journal (one flushed CSV line per finished
//! trial, so a killed run resumes where it stopped).

use super::config::*;
use super::trial::*;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The jobs of shard `i` of `n` (numpy.array_split: the first `len % n` shards get one more).
pub fn shard_jobs(total: usize, i: usize, n: usize) -> std::ops::Range<usize> {
    let (q, r) = (total / n, total % n);
    let start = i * q + i.min(r);
    start..start + q + usize::from(i < r)
}

const JOURNAL_HEADER: &str = "job,i_delta,j_input,k_trial,delta,input,seed,condition,chunks,spectral_radius,y_norm,max_re_eig,dist_y0";

fn journal_line(r: &TrialResult) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{}",
        r.job,
        r.i_delta,
        r.j_input,
        r.k_trial,
        r.delta,
        r.input,
        r.seed,
        r.condition as u8,
        r.chunks,
        r.spectral_radius,
        r.y_norm,
        r.max_re_eig,
        r.dist_y0
    )
}

fn parse_line(line: &str) -> Option<TrialResult> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 13 {
        return None;
    }
    let u = |k: usize| f[k].parse::<usize>().ok();
    let x = |k: usize| f[k].parse::<f64>().ok();
    let condition = match f[7] {
        "0" => Condition::Undetermined,
        "1" => Condition::Diverging,
        "2" => Condition::FixedPoint,
        "3" => Condition::Periodic,
        _ => return None,
    };
    Some(TrialResult {
        job: u(0)?,
        i_delta: u(1)?,
        j_input: u(2)?,
        k_trial: u(3)?,
        delta: x(4)?,
        input: x(5)?,
        seed: f[6].parse().ok()?,
        condition,
        chunks: u(8)?,
        spectral_radius: x(9)?,
        y_norm: x(10)?,
        max_re_eig: x(11)?,
        dist_y0: x(12)?,
    })
}

/// Reads every journal (`rows.*.csv`) in `dir`; complete lines only (a line cut by a kill is
/// dropped and its trial recomputed), first occurrence of a job wins; a line with every field
/// that does not parse is an error naming the file and line.
pub fn read_journals(dir: &Path) -> Result<Vec<TrialResult>> {
    let mut out: Vec<TrialResult> = vec![];
    let mut seen = std::collections::HashSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return Ok(out),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rows.") && n.ends_with(".csv"))
        })
        .collect();
    files.sort();
    for p in files {
        let text = std::fs::read_to_string(&p).map_err(|e| Error::file(&p, e))?;
        let complete = text.rfind('\n').map(|i| &text[..i]).unwrap_or("");
        for (k, line) in complete.lines().enumerate().skip(1) {
            // A row cut by a kill (fewer than 13 fields; the resumed run appends after it) is
            // dropped and its trial recomputed; a row with all its fields that does not parse is
            // corruption: name it.
            let r = match parse_line(line) {
                Some(r) => r,
                None if line.split(',').count() < 13 => continue,
                None => {
                    return Err(Error::invalid(
                        "journal",
                        format!(
                            "{}, line {}: unreadable row `{}` (delete the line to recompute that trial)",
                            p.display(),
                            k + 1,
                            line.chars().take(80).collect::<String>()
                        ),
                    ))
                }
            };
            if seen.insert(r.job) {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| r.job);
    Ok(out)
}

/// Runs the jobs of shard `shard = (i, n)` not yet in the journals of `dir`, appending each result
/// to `dir/rows.<i>of<n>.csv` as it completes. `progress(done, total)` is called after each trial.
pub fn run_jobs(
    cfg: &SweepConfig,
    dir: &Path,
    shard: (usize, usize),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    run_jobs_cancellable(
        cfg,
        dir,
        shard,
        progress,
        &std::sync::atomic::AtomicBool::new(false),
    )
}

/// [`run_jobs`] that stops starting trials once `cancel` is set (trials already running finish
/// and are journalled; the run resumes from the journal) and then returns a run failure.
pub fn run_jobs_cancellable(
    cfg: &SweepConfig,
    dir: &Path,
    shard: (usize, usize),
    progress: &(dyn Fn(usize, usize) + Sync),
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    cfg.validate()?;
    let (si, sn) = shard;
    if sn == 0 || si >= sn {
        return Err(Error::invalid(
            "shard",
            format!("{si}/{sn}: need 0 ≤ i < n"),
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the output folder: {e}")))?;
    let done: std::collections::HashSet<usize> =
        read_journals(dir)?.into_iter().map(|r| r.job).collect();
    let jobs: Vec<usize> = shard_jobs(cfg.jobs(), si, sn)
        .filter(|j| !done.contains(j))
        .collect();
    let total = shard_jobs(cfg.jobs(), si, sn).len();
    let path = dir.join(format!("rows.{si}of{sn}.csv"));
    let fresh = !path.exists()
        || std::fs::metadata(&path)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::file(&path, e))?;
    if fresh {
        writeln!(file, "{JOURNAL_HEADER}").map_err(|e| Error::file(&path, e))?;
    } else {
        // A kill may have cut the last line: end it so new rows start on a fresh line.
        let text = std::fs::read(&path).map_err(|e| Error::file(&path, e))?;
        if text.last() != Some(&b'\n') {
            writeln!(file).map_err(|e| Error::file(&path, e))?;
        }
    }
    let file = Mutex::new(file);
    let counter = std::sync::atomic::AtomicUsize::new(total - jobs.len());
    progress(total - jobs.len(), total);
    let (deltas, inputs) = (cfg.deltas(), cfg.inputs());
    jobs.par_iter().try_for_each(|&job| -> Result<()> {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::failed(
                "sweep",
                "interrupted (the journal keeps the finished trials)",
            ));
        }
        let r = run_trial(cfg, &deltas, &inputs, job)?;
        let line = journal_line(&r);
        {
            let mut f = file
                .lock()
                .map_err(|_| Error::invalid("journal", "lock poisoned"))?;
            writeln!(f, "{line}")
                .and_then(|_| f.flush())
                .map_err(|e| Error::file(&path, e))?;
        }
        let d = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(d, total);
        Ok(())
    })
}
