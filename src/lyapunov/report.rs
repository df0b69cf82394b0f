//! A spectrum's evidence as tables and figures (what `lyapunov` writes and the Python bindings
//! return): the exponents with their 95 % intervals, block and local standard deviations and
//! participation ratios; the local exponents and running estimates over time; a sweep's summary
//! rows; the spectrum, convergence, λ_max(g) and Kaplan–Yorke plots. The re-orthonormalisation
//! schedule as `--reorth` spells it.

use super::{LyapunovOptions, Spectrum, SweepSummary};
use crate::io::{Column, Table};
use crate::plot::LinePlot;

/// When to re-orthonormalise: every n steps, or adaptively (`auto:D`: before the frame's
/// condition number exceeds 10^D).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reorth {
    Every(usize),
    Auto(f64),
}

impl Reorth {
    /// Parses `N` (≥ 1), `auto` (D = 8) or `auto:D` (1 ≤ D ≤ 12).
    pub fn parse(s: &str) -> std::result::Result<Reorth, String> {
        let bad = || format!("`{s}`: give a number of steps (≥ 1), auto, or auto:D (1 ≤ D ≤ 12)");
        if s == "auto" {
            return Ok(Reorth::Auto(8.0));
        }
        if let Some(d) = s.strip_prefix("auto:") {
            return d
                .parse::<f64>()
                .ok()
                .filter(|d| (1.0..=12.0).contains(d))
                .map(Reorth::Auto)
                .ok_or_else(bad);
        }
        s.parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Reorth::Every)
            .ok_or_else(bad)
    }

    /// Sets `reorth` and `adaptive` of `opts`.
    pub fn apply(self, opts: LyapunovOptions) -> LyapunovOptions {
        match self {
            Reorth::Every(n) => LyapunovOptions {
                reorth: n,
                adaptive: None,
                ..opts
            },
            Reorth::Auto(d) => LyapunovOptions {
                reorth: 1,
                adaptive: Some(d),
                ..opts
            },
        }
    }
}

/// The sample standard deviation of each column of `rows` (n − 1 in the denominator, at least
/// 1).
fn column_sd<'a>(rows: impl Iterator<Item = &'a [f64]> + Clone, k: usize) -> Vec<f64> {
    let m = rows.clone().count() as f64;
    (0..k)
        .map(|i| {
            let mean = rows.clone().map(|v| v[i]).sum::<f64>() / m;
            (rows.clone().map(|v| (v[i] - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0)).sqrt()
        })
        .collect()
}

impl Spectrum {
    /// The standard deviation of each exponent over the blocks (empty without blocks).
    pub fn block_sd(&self) -> Vec<f64> {
        if self.block_exponents.is_empty() {
            return vec![];
        }
        column_sd(
            self.block_exponents.iter().map(|v| v.as_slice()),
            self.exponents.len(),
        )
    }

    /// The standard deviation of each local exponent over time (empty when not recorded).
    pub fn local_sd(&self) -> Vec<f64> {
        if self.local.is_empty() {
            return vec![];
        }
        column_sd(
            self.local.iter().map(|(_, v)| v.as_slice()),
            self.exponents.len(),
        )
    }

    /// One row per exponent: index, exponent (and its log2 with `bits`), unit, participation
    /// ratio; with blocks the 95 % interval and the block standard deviation; with local
    /// exponents their standard deviation; with `two_trajectories` the λ₁ that estimate gave.
    pub fn table(&self, unit: &str, bits: bool, two_trajectories: Option<f64>) -> Table {
        let k = self.exponents.len();
        let mut t = Table::new();
        t.push("index", Column::I64((0..k as i64).collect()));
        t.push("exponent", Column::F64(self.exponents.clone()));
        if bits {
            t.push("exponent_bits", Column::F64(self.bits()));
        }
        t.push("unit", Column::Str(vec![unit.to_string(); k]));
        // Localisation of the final backward (Gram–Schmidt) vectors.
        t.push("participation", Column::F64(self.participation.clone()));
        if let Some(ci) = self.confidence(0.95) {
            t.push("ci_lo", Column::F64(ci.iter().map(|c| c.0).collect()));
            t.push("ci_hi", Column::F64(ci.iter().map(|c| c.1).collect()));
            t.push("block_sd", Column::F64(self.block_sd()));
        }
        if !self.local.is_empty() {
            t.push("local_sd", Column::F64(self.local_sd()));
        }
        if let Some(r) = two_trajectories {
            t.push("lambda1_two_trajectories", Column::F64(vec![r; k]));
        }
        t
    }

    /// `(time, λ_0 … λ_{k−1})` rows: the local exponents (`local`) or the running estimates.
    pub fn over_time_table(&self, local: bool) -> Table {
        let rows = if local { &self.local } else { &self.history };
        let mut t = Table::new();
        t.push("time", Column::F64(rows.iter().map(|(t, _)| *t).collect()));
        for i in 0..self.exponents.len() {
            t.push(
                format!("lambda{i}"),
                Column::F64(rows.iter().map(|(_, v)| v[i]).collect()),
            );
        }
        t
    }

    /// The spectrum λ_i against i, and the running estimates of the first eight against time.
    pub fn plots(&self, unit: &str) -> (LinePlot, LinePlot) {
        let k = self.exponents.len();
        let spectrum = LinePlot::new(
            format!("Lyapunov spectrum (N = {}, k = {k})", self.n),
            "i",
            format!("λ_i ({unit})"),
        )
        .series(
            "λ_i",
            self.exponents
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as f64, l))
                .collect(),
        )
        .series("0", vec![(0.0, 0.0), ((k.max(2) - 1) as f64, 0.0)]);
        let mut conv = LinePlot::new(
            "Convergence of the running estimates",
            "time",
            format!("λ_i ({unit})"),
        );
        for i in 0..k.min(8) {
            conv = conv.series(
                format!("λ_{i}"),
                self.history.iter().map(|(t, v)| (*t, v[i])).collect(),
            );
        }
        (spectrum, conv)
    }
}

/// A sweep's summary: the key column (`g` or `checkpoint`), then λ_max, Σλ, the Kaplan–Yorke
/// dimension, the entropy and the number of positive exponents per row.
pub fn summary_table(key_name: &str, key: Column, rows: &[SweepSummary]) -> Table {
    let mut t = Table::new();
    t.push(key_name, key);
    let f = |g: fn(&SweepSummary) -> f64| Column::F64(rows.iter().map(g).collect());
    t.push("lambda_max", f(|r| r.lambda_max));
    t.push("sum", f(|r| r.sum));
    t.push("kaplan_yorke", f(|r| r.kaplan_yorke));
    t.push("entropy", f(|r| r.entropy));
    t.push(
        "n_positive",
        Column::I64(rows.iter().map(|r| r.n_positive as i64).collect()),
    );
    t
}

/// λ_max and the Kaplan–Yorke dimension against the gain of a sweep.
pub fn gain_plots(rows: &[SweepSummary], unit: &str) -> (LinePlot, LinePlot) {
    let (g0, g1) = (
        rows.first().map_or(0.0, |r| r.value),
        rows.last().map_or(1.0, |r| r.value),
    );
    let lmax = LinePlot::new(
        "Largest Lyapunov exponent vs gain",
        "g",
        format!("λ_max ({unit})"),
    )
    .series(
        "λ_max",
        rows.iter().map(|r| (r.value, r.lambda_max)).collect(),
    )
    .series("0", vec![(g0, 0.0), (g1, 0.0)]);
    let dky = LinePlot::new("Kaplan–Yorke dimension vs gain", "g", "D_KY").series(
        "D_KY",
        rows.iter()
            .filter(|r| r.kaplan_yorke.is_finite())
            .map(|r| (r.value, r.kaplan_yorke))
            .collect(),
    );
    (lmax, dky)
}

/// One network of a batch: the system, its initial state, and the options to analyse it with.
pub type Network = (crate::model::System, Vec<f64>, LyapunovOptions);

/// The summary rows of many networks, one per value (a gain, a checkpoint's index): each network
/// built by `resolve` where it is analysed — on the CPU in parallel (never all held at once), or
/// with `gpu` all at once on the device (f32, the k leading exponents after `warmup`, over
/// `steps`, from the identity frame). `done` is called after each CPU network.
pub fn summarise_networks(
    values: &[f64],
    gpu: bool,
    resolve: impl Fn(f64) -> crate::error::Result<Network> + Sync,
    done: impl Fn() + Sync,
) -> crate::error::Result<Vec<SweepSummary>> {
    if gpu {
        let nets = values
            .iter()
            .map(|&v| resolve(v))
            .collect::<crate::error::Result<Vec<_>>>()?;
        let Some((_, x0, o)) = nets.first() else {
            return Ok(vec![]);
        };
        let n = x0.len();
        let (k, warmup, steps) = (o.k.unwrap_or(n).min(n), o.warmup, o.steps);
        let pairs: Vec<_> = nets.iter().map(|(s, x, _)| (s, x.as_slice())).collect();
        let spectra = super::gpu::system_spectra(&pairs, k, warmup, steps)?;
        return Ok(values
            .iter()
            .zip(&spectra)
            .map(|(&v, e)| SweepSummary::from_exponents(v, e))
            .collect());
    }
    let spectra = super::sweep(values, |v| {
        let (system, x0, opts) = resolve(v)?;
        let s = super::lyapunov_system(&system, &x0, &opts);
        done();
        s
    })?;
    Ok(values
        .iter()
        .zip(&spectra)
        .map(|(&v, s)| (v, s).into())
        .collect())
}

/// What a spectrum run writes besides its table (the `lyapunov` command's output options).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReportArgs {
    /// Also write the running estimates (one row per QR batch) to this table.
    #[arg(long)]
    pub history: Option<std::path::PathBuf>,
    /// Record a running estimate every this many QRs (for --history and --plot).
    #[arg(long, default_value_t = 10)]
    pub every: usize,
    /// Add log2 (bits) columns.
    #[arg(long)]
    pub bits: bool,
    /// Confidence intervals: split the accumulated QRs into this many blocks and add columns
    /// `ci_lo`, `ci_hi` (95 %, Student's t over the block averages) and `block_sd`.
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Also write the local (finite-time) exponents of every QR interval to this table (time,
    /// lambda0, …), and add the columns `local_sd` (their standard deviation) to the output.
    #[arg(long)]
    pub local: Option<std::path::PathBuf>,
    /// Also compute λ₁ by the two-trajectory method (a neighbour at distance 1e-8, renormalised
    /// every step) over the same warm-up and steps: column `lambda1_two_trajectories`.
    #[arg(long)]
    pub brute_force: bool,
    /// Draw the spectrum and its convergence (or λ_max and D_KY versus g) as PNG + SVG.
    #[arg(long)]
    pub plot: bool,
    /// Covariant Lyapunov vectors (Ginelli et al. 2007) over the accumulated steps (--transient
    /// steps before them let the Gram–Schmidt frame converge): their growth rates become the
    /// column `clv_exponent`, and this table gets, at every QR of the window, the smallest angle
    /// between the expanding and the contracting subspaces (time, angle_rad).
    #[arg(long, value_name = "ANGLES")]
    pub clv: Option<std::path::PathBuf>,
    /// With --clv: steps after the window for the backward iteration to converge.
    #[arg(long, default_value_t = 500, requires = "clv")]
    pub clv_backward: usize,
    /// With --clv: the vectors themselves as float64 .npy, window × N × k (unit columns).
    #[arg(long, value_name = "FILE.npy", requires = "clv")]
    pub clv_vectors: Option<std::path::PathBuf>,
}

impl ReportArgs {
    /// Checks the options against a run of `steps` accumulated steps, and every extra output
    /// path, before any work.
    pub fn check(&self, steps: usize) -> crate::error::Result<()> {
        use crate::error::Error;
        use crate::io::{check_output, TableFormat};
        for (field, p) in [
            ("history", &self.history),
            ("local", &self.local),
            ("clv", &self.clv),
        ] {
            if let Some(p) = p {
                check_output(field, p)?;
                TableFormat::from_path(p).map_err(|_| {
                    Error::invalid(field, format!("{}: use .csv or .parquet", p.display()))
                })?;
            }
        }
        if let Some(b) = self.blocks.filter(|&b| b < 2 || b > steps.max(1)) {
            return Err(Error::invalid(
                "blocks",
                format!("{b}: need at least 2 blocks and no more than --steps ({steps})"),
            ));
        }
        if self.every == 0 && (self.history.is_some() || self.plot) {
            return Err(Error::invalid(
                "every",
                "must be at least 1 (a running estimate every this many QRs)",
            ));
        }
        // The rows these outputs keep in memory (at least a time and one exponent each, f64,
        // with the table's copies): refused up front when they cannot fit.
        let rows = |every: usize| steps as u128 / every.max(1) as u128 + 1;
        if self.history.is_some() || self.plot {
            let field = if self.history.is_some() {
                "history"
            } else {
                "plot"
            };
            crate::memory::check(field, rows(self.every) * 16 * 3, None)?;
        }
        if self.local.is_some() {
            crate::memory::check("local", rows(1) * 16 * 3, None)?;
        }
        if let Some(p) = &self.clv_vectors {
            check_output("clv-vectors", p)?;
            if p.extension().and_then(|e| e.to_str()) != Some("npy") {
                return Err(Error::invalid(
                    "clv-vectors",
                    format!("{}: use .npy", p.display()),
                ));
            }
        }
        Ok(())
    }

    /// The covariant vectors asked for with --clv, over the run `opts` describes (its transient
    /// as the forward transient, its steps as the window).
    pub fn covariant(
        &self,
        system: &crate::model::System,
        x0: &[f64],
        opts: &super::LyapunovOptions,
    ) -> crate::error::Result<Option<super::Covariant>> {
        if self.clv.is_none() {
            return Ok(None);
        }
        let every = opts.reorth.max(1);
        let clv = super::ClvOptions {
            forward: opts.transient.div_ceil(every),
            window: opts.steps.div_ceil(every),
            backward: self.clv_backward.div_ceil(every),
        };
        super::clv::covariant_vectors(system, x0, opts, &clv).map(Some)
    }

    /// Running estimates every `every` QRs when something reads them (bounded memory otherwise).
    pub fn history_every(&self) -> usize {
        if self.history.is_some() || self.plot {
            self.every
        } else {
            0
        }
    }

    /// Writes the spectrum's table to `out` and the extra outputs asked for; `brute` is λ₁ by
    /// two trajectories when computed.
    pub fn write(
        &self,
        s: &Spectrum,
        unit: &str,
        brute: Option<f64>,
        clv: Option<&super::Covariant>,
        out: &std::path::Path,
    ) -> crate::error::Result<()> {
        use crate::io::TableFormat;
        let mut table = s.table(unit, self.bits, brute);
        if let (Some(c), Some(p)) = (clv, &self.clv) {
            table.push("clv_exponent", Column::F64(c.exponents.clone()));
            let mut a = crate::io::Table::new();
            let (times, angles) = if c.angles.is_empty() {
                (vec![], vec![])
            } else {
                (c.times.clone(), c.angles.clone())
            };
            a.push("time", Column::F64(times))
                .push("angle_rad", Column::F64(angles));
            a.write(p, TableFormat::from_path(p)?)?;
            if let Some(v) = &self.clv_vectors {
                let (w, n, k) = (c.vectors.len(), s.n, c.exponents.len());
                let arr =
                    ndarray::Array3::from_shape_fn((w, n, k), |(m, i, j)| c.vectors[m][(i, j)]);
                crate::io::write_npy_array(v, &arr)?;
            }
        }
        table.write(out, TableFormat::from_path(out)?)?;
        if let Some(p) = &self.local {
            s.over_time_table(true)
                .write(p, TableFormat::from_path(p)?)?;
        }
        if let Some(p) = &self.history {
            s.over_time_table(false)
                .write(p, TableFormat::from_path(p)?)?;
        }
        if self.plot {
            let (spectrum, conv) = s.plots(unit);
            spectrum.save(&out.with_extension(""))?;
            conv.save(&crate::io::suffixed(out, "convergence"))?;
        }
        Ok(())
    }
}

impl Spectrum {
    /// The run in a few lines for the terminal: λ_max, Σλ, the block interval, the two-trajectory
    /// check, the sum identity, D_KY and the entropy.
    pub fn summary(&self, unit: &str, is_map: bool, brute: Option<f64>) -> String {
        let mut t = format!(
            "λ_max = {:.6e} {unit}; Σλ = {:.10}; {} QR factorisations",
            self.max(),
            self.sum(),
            self.factorizations
        );
        if let Some(ci) = self.confidence(0.95) {
            t += &format!(
                "\nλ_max 95 % interval from {} blocks: [{:.6e}, {:.6e}]",
                self.block_exponents.len(),
                ci[0].0,
                ci[0].1
            );
        }
        if let Some(r) = brute {
            t += &format!(
                "\nλ₁ by two nearby trajectories = {r:.6e} {unit} (QR: {:.6e}, difference {:.1e})",
                self.max(),
                r - self.max()
            );
        }
        if let Some(r) = self.sum_reference {
            let what = if is_map {
                "⟨ln|det D|⟩"
            } else {
                "⟨tr J⟩"
            };
            t += &format!(
                "\nsum identity: {what} = {r:.10} (difference {:.2e})",
                self.sum() - r
            );
        }
        t + &format!(
            "\nKaplan–Yorke dimension = {:.4}; entropy (Σ λ>0) = {:.6e} nats {unit}",
            self.kaplan_yorke(),
            self.entropy()
        )
    }
}

/// The rows of a sweep over networks as a text table (`g` or `#`, λ_max, Σλ, D_KY, entropy).
pub fn summary_text(rows: &[SweepSummary], key: &str) -> String {
    let mut t = format!(
        "{:>8} {:>12} {:>12} {:>8} {:>10}",
        key, "λ_max", "Σλ", "D_KY", "entropy"
    );
    for r in rows {
        t += &format!(
            "\n{:>8.3} {:>12.5} {:>12.5} {:>8.3} {:>10.5}",
            r.value, r.lambda_max, r.sum, r.kaplan_yorke, r.entropy
        );
    }
    t
}

/// Gains from a comma list (`0.5,1,2`) or `start:stop:count` (`0.5:3:11`), each finite and ≥ 0
/// (field `sweep-g`).
pub fn parse_gains(s: &str) -> crate::error::Result<Vec<f64>> {
    use crate::error::Error;
    let bad = || {
        Error::invalid(
            "sweep-g",
            format!("`{s}`: give a comma list (0.5,1,2) or start:stop:count (0.5:3:11)"),
        )
    };
    let v: Vec<f64> = if s.contains(':') {
        crate::io::parse_range(s, "sweep-g", 2)?
    } else {
        s.split(',')
            .map(|x| x.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?
    };
    if v.is_empty() || v.iter().any(|g| !(g.is_finite() && *g >= 0.0)) {
        return Err(bad());
    }
    Ok(v)
}

/// The GPU computes many spectra at once (a gain sweep or a list of checkpoints), from the
/// identity frame with no transient: anything else asked of it is refused, naming the option.
pub fn check_device(
    gpu: bool,
    batch: bool,
    transient: usize,
    seed: Option<u64>,
) -> crate::error::Result<()> {
    use crate::error::Error;
    if gpu && !batch {
        return Err(Error::invalid(
            "device",
            "--device gpu computes many spectra at once: give --sweep-g or --checkpoints",
        ));
    }
    if gpu && (transient > 0 || seed.is_some()) {
        return Err(Error::invalid(
            if transient > 0 { "transient" } else { "seed" },
            "the GPU spectra start from the identity frame with no transient (use --device cpu)",
        ));
    }
    Ok(())
}

/// The rows of a run over many networks: the gains of `--sweep-g` (key column `g`), or the
/// checkpoints' paths (key column `checkpoint`, values their indices); `None` for one network.
pub fn batch_rows(
    sweep_g: Option<&str>,
    checkpoints: &[std::path::PathBuf],
) -> crate::error::Result<Option<(Column, Vec<f64>)>> {
    if let Some(gs) = sweep_g {
        let gains = parse_gains(gs)?;
        return Ok(Some((Column::F64(gains.clone()), gains)));
    }
    if checkpoints.is_empty() {
        return Ok(None);
    }
    let names = checkpoints
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let index = (0..checkpoints.len()).map(|i| i as f64).collect();
    Ok(Some((Column::Str(names), index)))
}
