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

/// The critical curve Δ_c(z) = √2 √(σ² + z²)/(1 − √(σ² + z²)) for μ = 0 (the stability sweep of Rawat, Heeger & Martiniani 2024); NaN where
/// the denominator is ≤ 0.
pub fn critical_delta(sigma: f64, z: f64) -> f64 {
    let r = (sigma * sigma + z * z).sqrt();
    if r >= 1.0 {
        f64::NAN
    } else {
        2f64.sqrt() * r / (1.0 - r)
    }
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
    Ok(rows)
}
