//! Jobs of the sweep: numbering, shards, the per-trial journal (one flushed CSV line per finished
//! trial, so a killed run resumes where it stopped).

use super::config::*;
use super::trial::*;
use crate::error::{Error, Result};
use crate::io::journal::Journal;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use crate::io::{parse_shard, shard_jobs};

const JOURNAL_HEADER: &str = "job,i_delta,j_input,k_trial,delta,input,seed,condition,chunks,spectral_radius,y_norm,max_re_eig,dist_y0";

/// A finished trial in the journal ([`crate::io::journal`]): its coordinates and summary.
impl crate::io::journal::JournalRow for TrialResult {
    const FIELDS: usize = 13;
    const SHAPE: &'static str = JOURNAL_HEADER;
    fn to_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.job,
            self.i_delta,
            self.j_input,
            self.k_trial,
            self.delta,
            self.input,
            self.seed,
            self.condition as u8,
            self.chunks,
            self.spectral_radius,
            self.y_norm,
            self.max_re_eig,
            self.dist_y0
        )
    }
    fn parse(f: &[&str]) -> Option<Self> {
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
        let rows: Vec<TrialResult> = Journal::read(&p, None, "journal", "")?;
        for r in rows {
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
/// Once [`crate::io::interrupt`] is called no trial starts (those running finish and are
/// journalled) and the run returns [`Error::Interrupted`]; rerunning resumes from the journal.
pub fn run_jobs(
    cfg: &SweepConfig,
    dir: &Path,
    shard: (usize, usize),
    progress: &(dyn Fn(usize, usize) + Sync),
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
    let (file, _) = Journal::open::<TrialResult>(&path, JOURNAL_HEADER, "out", "the columns")?;
    let arrays = if cfg.store.is_empty() {
        None
    } else {
        Some(open_record_journal(cfg, dir, shard)?)
    };
    let custom = cfg.initial_states()?;
    let file = Mutex::new((file, arrays));
    let counter = std::sync::atomic::AtomicUsize::new(total - jobs.len());
    progress(total - jobs.len(), total);
    let (deltas, inputs) = (cfg.deltas(), cfg.inputs());
    let interrupted =
        || crate::io::check_interrupt("sweep stopped; the journal keeps the finished trials");
    let journal = |out: &TrialOutput| -> Result<()> {
        let record =
            (!cfg.store.is_empty()).then(|| record_bytes(out.result.job, &out.record(&cfg.store)));
        {
            let mut guard = file
                .lock()
                .map_err(|_| Error::invalid("journal", "lock poisoned"))?;
            let (f, arrays) = &mut *guard;
            // The record first: a trial is done once its results row exists, and then its arrays do.
            if let (Some((a, apath)), Some(rec)) = (arrays.as_mut(), record.as_ref()) {
                a.write_all(rec)
                    .and_then(|_| a.flush())
                    .map_err(|e| Error::file(&*apath, e))?;
            }
            f.append(&out.result)?;
        }
        let d = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(d, total);
        Ok(())
    };
    match cfg.device {
        crate::gpu::Device::Cpu => jobs.par_iter().try_for_each(|&job| -> Result<()> {
            interrupted()?;
            journal(&run_trial_full(
                cfg,
                &deltas,
                &inputs,
                job,
                custom.as_ref(),
            )?)
        }),
        crate::gpu::Device::Gpu => {
            // Batches of trials: drawn on the CPU threads, simulated and classified on the device,
            // finished (f64 spectra at fixed points) on the CPU threads, journalled in job order.
            // A batch's circuits hold two N × N f64 matrices each: ≤ 512 MB per batch.
            let batch = ((512usize << 20) / (16 * cfg.n * cfg.n + 1)).clamp(1, 4096);
            if jobs.is_empty() {
                return Ok(());
            }
            // One device for the whole run, opened once (each batch compiles its two small shaders).
            let device = super::gpu::SweepDevice::open()?;
            for part in jobs.chunks(batch) {
                interrupted()?;
                let setups = part
                    .par_iter()
                    .map(|&job| setup_trial(cfg, &deltas, &inputs, job, custom.as_ref()))
                    .collect::<Result<Vec<_>>>()?;
                let pairs: Vec<_> = setups.iter().map(|s| (&s.model, s.x0.as_slice())).collect();
                let ran = device.simulate(&pairs, cfg.max_chunks, cfg.criterion)?;
                let outs: Vec<TrialOutput> = setups
                    .into_par_iter()
                    .zip(ran)
                    .map(|(s, r)| finish_trial(s, &deltas, &inputs, r.condition, r.chunks, r.state))
                    .collect();
                outs.iter().try_for_each(&journal)?;
            }
            Ok(())
        }
    }
}

/// The first bytes of a per-trial array journal: magic and the record's f64 count.
const RECORD_MAGIC: &[u8; 8] = b"NDSWEEP1";

fn record_bytes(job: usize, values: &[f64]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + 8 * values.len());
    b.extend_from_slice(&(job as u64).to_le_bytes());
    for v in values {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

/// Opens (or creates) `dir/arrays.<i>of<n>.bin` for appending: 16 header bytes, then one fixed-size
/// record per trial (job as u64, then the stored f64 values, little-endian). A record cut by a kill
/// is cut off, so the next one starts at a record boundary.
fn open_record_journal(
    cfg: &SweepConfig,
    dir: &Path,
    (si, sn): (usize, usize),
) -> Result<(std::fs::File, PathBuf)> {
    let path = dir.join(format!("arrays.{si}of{sn}.bin"));
    let rec = 8 + 8 * cfg.record_len() as u64;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::file(&path, e))?;
    let len = f.metadata().map_err(|e| Error::file(&path, e))?.len();
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(RECORD_MAGIC);
    header[8..].copy_from_slice(&(cfg.record_len() as u64).to_le_bytes());
    if len < 16 {
        f.set_len(0).map_err(|e| Error::file(&path, e))?;
        f.write_all(&header).map_err(|e| Error::file(&path, e))?;
    } else {
        let mut got = [0u8; 16];
        std::io::Read::read_exact(&mut f, &mut got).map_err(|e| Error::file(&path, e))?;
        if got != header {
            return Err(Error::invalid(
                "journal",
                format!(
                    "{}: not a per-trial array journal of this configuration",
                    path.display()
                ),
            ));
        }
        let whole = 16 + (len - 16) / rec * rec;
        f.set_len(whole).map_err(|e| Error::file(&path, e))?;
    }
    std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(|e| Error::file(&path, e))?;
    Ok((f, path))
}

/// Where each trial's record lies: (file, byte offset of its values) per job, from every
/// `arrays.*.bin` in `dir` (first occurrence of a job wins). Errors name the first missing job.
pub(crate) fn index_records(
    cfg: &SweepConfig,
    dir: &Path,
) -> Result<(Vec<(std::fs::File, PathBuf)>, Vec<(u32, u64)>)> {
    let rec = 8 + 8 * cfg.record_len() as u64;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::file(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("arrays.") && n.ends_with(".bin"))
        })
        .collect();
    paths.sort();
    let jobs = cfg.jobs();
    let mut index = vec![(u32::MAX, 0u64); jobs];
    let mut files = vec![];
    for p in paths {
        let bytes_len = std::fs::metadata(&p).map_err(|e| Error::file(&p, e))?.len();
        let mut f = std::fs::File::open(&p).map_err(|e| Error::file(&p, e))?;
        let mut r = std::io::BufReader::new(&mut f);
        let mut header = [0u8; 16];
        std::io::Read::read_exact(&mut r, &mut header).map_err(|e| Error::file(&p, e))?;
        if &header[..8] != RECORD_MAGIC || header[8..] != (cfg.record_len() as u64).to_le_bytes() {
            return Err(Error::invalid(
                "journal",
                format!(
                    "{}: not a per-trial array journal of this configuration",
                    p.display()
                ),
            ));
        }
        let count = (bytes_len - 16) / rec;
        let fi = files.len() as u32;
        let mut job_bytes = [0u8; 8];
        for k in 0..count {
            let off = 16 + k * rec;
            if k > 0 {
                r.seek_relative(rec as i64 - 8)
                    .map_err(|e| Error::file(&p, e))?;
            }
            std::io::Read::read_exact(&mut r, &mut job_bytes).map_err(|e| Error::file(&p, e))?;
            let job = u64::from_le_bytes(job_bytes) as usize;
            if job < jobs && index[job].0 == u32::MAX {
                index[job] = (fi, off + 8);
            }
        }
        drop(r);
        files.push((f, p));
    }
    if let Some(missing) = index.iter().position(|e| e.0 == u32::MAX) {
        return Err(Error::invalid(
            "store",
            format!(
                "the stored arrays of trial {missing} are missing from {} (delete its row from rows.*.csv to recompute it)",
                dir.display()
            ),
        ));
    }
    Ok((files, index))
}
