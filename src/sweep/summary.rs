//! Summaries of a finished sweep: per-cell fractions, the results table, the critical curve
//! Δ_c(z), and [`finish`], which joins the journals into the final tables.

use super::config::*;
use super::jobs::*;
use super::trial::*;
use crate::error::{Error, Result};
use crate::io::{Column, Table, TableFormat};
use std::path::Path;

/// Per-cell summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSummary {
    pub delta: f64,
    pub input: f64,
    pub trials: usize,
    pub pct_fixed_point: f64,
    pub pct_periodic: f64,
    pub pct_diverging: f64,
    pub pct_undetermined: f64,
    /// Fixed points with max Re eig(J) < 0.
    pub pct_linearly_stable: f64,
}

/// Summaries per (δ, input) cell, δ outermost.
pub fn summarize(cfg: &SweepConfig, rows: &[TrialResult]) -> Vec<CellSummary> {
    let (deltas, inputs) = (cfg.deltas(), cfg.inputs());
    let mut out = vec![];
    for (i, &d) in deltas.iter().enumerate() {
        for (j, &z) in inputs.iter().enumerate() {
            let cell: Vec<&TrialResult> = rows
                .iter()
                .filter(|r| r.i_delta == i && r.j_input == j)
                .collect();
            let m = cell.len().max(1) as f64;
            let pct =
                |c: Condition| 100.0 * cell.iter().filter(|r| r.condition == c).count() as f64 / m;
            out.push(CellSummary {
                delta: d,
                input: z,
                trials: cell.len(),
                pct_fixed_point: pct(Condition::FixedPoint),
                pct_periodic: pct(Condition::Periodic),
                pct_diverging: pct(Condition::Diverging),
                pct_undetermined: pct(Condition::Undetermined),
                pct_linearly_stable: 100.0
                    * cell
                        .iter()
                        .filter(|r| r.condition == Condition::FixedPoint && r.max_re_eig < 0.0)
                        .count() as f64
                    / m,
            });
        }
    }
    out
}

/// The results table (one row per trial, sorted by job).
pub fn results_table(rows: &[TrialResult]) -> Table {
    let mut t = Table::new();
    let f = |g: fn(&TrialResult) -> f64| Column::F64(rows.iter().map(g).collect());
    let i = |g: fn(&TrialResult) -> i64| Column::I64(rows.iter().map(g).collect());
    t.push("job", i(|r| r.job as i64));
    t.push("i_delta", i(|r| r.i_delta as i64));
    t.push("j_input", i(|r| r.j_input as i64));
    t.push("k_trial", i(|r| r.k_trial as i64));
    t.push("delta", f(|r| r.delta));
    t.push("input", f(|r| r.input));
    t.push(
        "seed",
        Column::Str(rows.iter().map(|r| r.seed.to_string()).collect()),
    );
    t.push("condition", i(|r| r.condition as i64));
    t.push(
        "class",
        Column::Str(
            rows.iter()
                .map(|r| r.condition.label().to_string())
                .collect(),
        ),
    );
    t.push("chunks", i(|r| r.chunks as i64));
    t.push("spectral_radius", f(|r| r.spectral_radius));
    t.push("y_norm", f(|r| r.y_norm));
    t.push("max_re_eig", f(|r| r.max_re_eig));
    t.push(
        "linearly_stable",
        i(|r| i64::from(r.condition == Condition::FixedPoint && r.max_re_eig < 0.0)),
    );
    t.push("dist_y0", f(|r| r.dist_y0));
    t
}

/// The critical curve Δ_c(z) = √2 √(σ² + z²)/(1 − √(σ² + z²)) for μ = 0 (Morone, Rawat, Heeger &
/// Martiniani 2025; the same for both input types); NaN where the denominator is ≤ 0.
pub fn critical_delta(sigma: f64, z: f64) -> f64 {
    critical_delta_mu(InputType::Delocalized, 1, 0.0, sigma, z)
}

/// The critical curve Δ_c(z) for a mean μ of the random part (Morone, Rawat, Heeger & Martiniani
/// 2025; b0 = b1 = 1, W_yy = I + M with M the symmetric Gaussian ensemble of entry-std scale δ).
/// With G = (1 − √(σ² + z²))/(σ² + z²):
///
/// * delocalized: Δ_c = √(2N) [n + μ z G (1 − z²/(σ² + z²))/√N]/(G z), n = z/(√N √(σ² + z²));
/// * localized: Δ_c = √2 (n + μ z G)/(G z), n = z/√(σ² + z²).
///
/// Both reduce to [`critical_delta`] at μ = 0. NaN where G ≤ 0 (no normalization fixed point
/// with a positive gain) or where the formula gives Δ_c ≤ 0 (no stable range); NaN for the
/// other input types, which have no closed form.
pub fn critical_delta_mu(input_type: InputType, n: usize, mu: f64, sigma: f64, z: f64) -> f64 {
    let r2 = sigma * sigma + z * z;
    let g = (1.0 - r2.sqrt()) / r2;
    if !(g > 0.0) || !(z > 0.0) {
        return f64::NAN;
    }
    let nf = n as f64;
    let d = match input_type {
        InputType::Delocalized => {
            let nn = z / (nf.sqrt() * r2.sqrt());
            (2.0 * nf).sqrt() * (nn + mu * z * g * (1.0 - z * z / r2) / nf.sqrt()) / (g * z)
        }
        InputType::Localized => {
            let nn = z / r2.sqrt();
            2f64.sqrt() * (nn + mu * z * g) / (g * z)
        }
        InputType::Random | InputType::Gaussian => f64::NAN,
    };
    if d > 0.0 {
        d
    } else {
        f64::NAN
    }
}

/// The configuration's critical curve, sampled at `points` input norms across its input range
/// (log-spaced on a log grid): (z, Δ_c(z)) where defined. Empty where the formula does not apply
/// (a matrix other than the symmetric ensemble or the deterministic one, b0 or b1 ≠ 1, random or
/// Gaussian inputs).
pub fn critical_curve(cfg: &SweepConfig, points: usize) -> Vec<(f64, f64)> {
    let applies = matches!(
        cfg.matrix,
        MatrixType::GoeSymmetric | MatrixType::Deterministic
    ) && cfg.b0 == 1.0
        && cfg.b1 == 1.0
        && matches!(
            cfg.input_type,
            InputType::Delocalized | InputType::Localized
        );
    if !applies || points < 2 {
        return vec![];
    }
    let (lo, hi) = (cfg.input_min, cfg.input_max);
    (0..points)
        .map(|k| {
            let f = k as f64 / (points - 1) as f64;
            if cfg.input_scale == Scale::Log {
                lo * (hi / lo).powf(f)
            } else {
                lo + (hi - lo) * f
            }
        })
        .map(|z| {
            (
                z,
                critical_delta_mu(cfg.input_type, cfg.n, cfg.mu, cfg.sigma, z),
            )
        })
        .filter(|p| p.1.is_finite())
        .collect()
}

/// Joins the journals of `dir` into the final tables when every job of the configuration is
/// present: `results.parquet` and `results.csv` (one row per trial), `summary.csv` (one per cell).
/// Returns the rows, or an error naming how many jobs are missing.
pub fn finish(cfg: &SweepConfig, dir: &Path) -> Result<Vec<TrialResult>> {
    let rows = read_journals(dir)?;
    let rows: Vec<TrialResult> = rows.into_iter().filter(|r| r.job < cfg.jobs()).collect();
    if rows.len() != cfg.jobs() {
        return Err(Error::invalid(
            "shard",
            format!(
                "{} of {} trials present in {}: run the missing shards first",
                rows.len(),
                cfg.jobs(),
                dir.display()
            ),
        ));
    }
    let t = results_table(&rows);
    t.write(&dir.join("results.parquet"), TableFormat::Parquet)?;
    t.write(&dir.join("results.csv"), TableFormat::Csv)?;
    let s = summarize(cfg, &rows);
    let mut st = Table::new();
    st.push("delta", Column::F64(s.iter().map(|c| c.delta).collect()));
    st.push("input", Column::F64(s.iter().map(|c| c.input).collect()));
    st.push(
        "trials",
        Column::I64(s.iter().map(|c| c.trials as i64).collect()),
    );
    st.push(
        "pct_fixed_point",
        Column::F64(s.iter().map(|c| c.pct_fixed_point).collect()),
    );
    st.push(
        "pct_periodic",
        Column::F64(s.iter().map(|c| c.pct_periodic).collect()),
    );
    st.push(
        "pct_diverging",
        Column::F64(s.iter().map(|c| c.pct_diverging).collect()),
    );
    st.push(
        "pct_undetermined",
        Column::F64(s.iter().map(|c| c.pct_undetermined).collect()),
    );
    st.push(
        "pct_linearly_stable",
        Column::F64(s.iter().map(|c| c.pct_linearly_stable).collect()),
    );
    st.write(&dir.join("summary.csv"), TableFormat::Csv)?;
    write_arrays(cfg, dir)?;
    Ok(rows)
}

/// Writes the stored per-trial arrays of `cfg.store` from the record journals of `dir` as `.npy`
/// files shaped (δ, input, trial, N) in f64 — `eigvals.npy` (δ, input, trial, 2N) complex128 —
/// streamed in job order (the C order of that shape), so no array is ever held whole.
pub fn write_arrays(cfg: &SweepConfig, dir: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    if cfg.store.is_empty() {
        return Ok(());
    }
    let (mut files, index) = index_records(cfg, dir)?;
    let n = cfg.n;
    let mut offset = 0usize; // f64 values into the record
    for group in &cfg.store {
        for name in group.arrays() {
            let len = if *name == "eigvals" { 4 * n } else { n };
            let path = dir.join(format!("{name}.npy"));
            let mut buf = vec![0u8; 8 * len];
            crate::io::write_atomic(&path, |w| {
                let shape = [
                    cfg.delta_num,
                    cfg.input_num,
                    cfg.trials,
                    len / if *name == "eigvals" { 2 } else { 1 },
                ];
                let header = if *name == "eigvals" {
                    ndarray_npy::write_zeroed_npy::<faer::c64, _>(
                        w.get_ref(),
                        ndarray::IxDyn(&shape),
                    )
                } else {
                    ndarray_npy::write_zeroed_npy::<f64, _>(w.get_ref(), ndarray::IxDyn(&shape))
                };
                header.map_err(|e| Error::file(&path, e))?;
                for &(fi, off) in &index {
                    let (f, fpath) = &mut files[fi as usize];
                    f.seek(SeekFrom::Start(off + 8 * offset as u64))
                        .and_then(|_| f.read_exact(&mut buf))
                        .map_err(|e| Error::file(&*fpath, e))?;
                    w.write_all(&buf).map_err(|e| Error::file(&path, e))?;
                }
                Ok(())
            })?;
            offset += len;
        }
    }
    Ok(())
}

/// The "% stable" phase diagram: the share of fixed-point trials per cell over (‖z‖, δ), with the
/// critical curve Δ_c(z) where the configuration has one (log axes when both grids are log).
pub fn phase_diagram(cfg: &SweepConfig, cells: &[CellSummary]) -> crate::plot::HeatMap {
    let curve = critical_curve(cfg, 200);
    crate::plot::HeatMap {
        title: format!(
            "% stable (fixed point) — N = {}, {:?}, {:?} input",
            cfg.n, cfg.matrix, cfg.input_type
        ),
        xlabel: "input norm ‖z‖".into(),
        ylabel: "δ".into(),
        xs: cfg.inputs(),
        ys: cfg.deltas(),
        values: cells.iter().map(|c| c.pct_fixed_point).collect(),
        vmin: 0.0,
        vmax: 100.0,
        log: cfg.delta_scale == Scale::Log && cfg.input_scale == Scale::Log,
        curve: (!curve.is_empty()).then(|| ("Δc(z)".to_string(), curve)),
    }
}
