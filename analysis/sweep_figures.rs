//! Regenerates the stability-sweep figures of seed 000 into `figures/`:
//!
//! * `sweep_neurips_percent_stable` (+ `.csv`): the NeurIPS 2024 experiment (Rawat, Heeger &
//!   Martiniani 2024, §5): N = 100 circuits whose W_r has largest singular value δ, random input
//!   directions at ‖z‖ ∈ {0.1, 0.316, 1}, 10 trials per (δ, ‖z‖); the percentage ending at a fixed
//!   point, linearly stable there, periodic and undetermined, against δ = 0.5 … 4;
//! * `sweep_neurips_cycle`: the one δ = 2 trial of `models/sweep-neurips.toml` that the sweep
//!   leaves undetermined (‖z‖ = 0.316, trial 6), continued: ‖y‖ over two chunks against the
//!   unstable fixed point's ‖y*‖ — a limit cycle with two maxima per period, which the original
//!   periodic test (one maximum per period) cannot accept;
//! * `sweep_phase_delocalized`, `sweep_phase_localized` (+ `.csv`): the 2025 phase diagram
//!   (Morone, Rawat, Heeger & Martiniani 2025, Fig. 2): % of circuits W_yy = I + M (M symmetric,
//!   entry scale δ) ending at a fixed point over (‖z‖, δ), with the critical curve Δ_c(z), on a
//!   24 δ × 16 input × 4 trial grid (δ 0.02 … 5, ‖z‖ 0.01 … 1, N = 100) for each input type;
//! * `sweep_eig_hist` (+ `.csv`): histograms of Re λ·τ of the Jacobian at the fixed point
//!   (δ = 0.2, delocalized ‖z‖ = 0.1) for N = 50, 100, 200, from the sweep's stored `eigvals.npy`
//!   (the 2025 paper's eigenvalue-histogram runs, reduced).
//!
//! Run: `cargo run --release --example sweep_figures` (about 3 minutes on 2 cores; it prints
//! what each part found).

use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::plot::{HeatMap, LinePlot};
use neurodyn::sweep::*;
use std::path::Path;

const NEURIPS: &str = include_str!("../models/sweep-neurips.toml");

fn run(cfg: &SweepConfig, dir: &Path) -> neurodyn::Result<Vec<TrialResult>> {
    run_jobs(cfg, dir, (0, 1), &|_, _| {})?;
    finish(cfg, dir)
}

fn pct(rows: &[&TrialResult], f: impl Fn(&TrialResult) -> bool) -> f64 {
    100.0 * rows.iter().filter(|r| f(r)).count() as f64 / rows.len().max(1) as f64
}

fn main() -> neurodyn::Result<()> {
    faer::set_global_parallelism(faer::Par::Seq);
    let out = Path::new("figures");
    let tmp = tempfile::tempdir().map_err(|e| neurodyn::Error::file(".", e))?;

    // 1. The NeurIPS curve: % stable against the largest singular value δ.
    let t0 = std::time::Instant::now();
    let mut cfg = SweepConfig::from_toml(NEURIPS, "sweep-neurips.toml")?;
    cfg.delta_min = 0.5;
    cfg.delta_max = 4.0;
    cfg.delta_num = 8;
    let rows = run(&cfg, &tmp.path().join("neurips"))?;
    let deltas = cfg.deltas();
    let mut table = Table::new();
    let mut cols: [Vec<f64>; 4] = Default::default();
    for (i, _) in deltas.iter().enumerate() {
        let cell: Vec<&TrialResult> = rows.iter().filter(|r| r.i_delta == i).collect();
        cols[0].push(pct(&cell, |r| r.condition == Condition::FixedPoint));
        cols[1].push(pct(&cell, |r| {
            r.condition == Condition::FixedPoint && r.max_re_eig < 0.0
        }));
        cols[2].push(pct(&cell, |r| r.condition == Condition::Periodic));
        cols[3].push(pct(&cell, |r| r.condition == Condition::Undetermined));
    }
    table.push("delta", Column::F64(deltas.clone()));
    let names = [
        "pct_fixed_point",
        "pct_linearly_stable",
        "pct_periodic",
        "pct_undetermined",
    ];
    let mut plot = LinePlot::new(
        format!(
            "NeurIPS 2024 sweep: N = {}, {} inputs × {} trials per δ",
            cfg.n, cfg.input_num, cfg.trials
        ),
        "largest singular value δ of W_r",
        "% of circuits",
    );
    for (k, (name, col)) in names.iter().zip(&cols).enumerate() {
        table.push(*name, Column::F64(col.clone()));
        // Every fixed point found is linearly stable here: "linearly stable" is drawn dashed over
        // the solid "fixed point" so that both stay visible where they coincide.
        plot = plot.segment(
            name.trim_start_matches("pct_").replace('_', " "),
            deltas.iter().copied().zip(col.iter().copied()).collect(),
            neurodyn::plot::auto_color(k),
            k == 1,
        );
    }
    table.write(
        &out.join("sweep_neurips_percent_stable.csv"),
        TableFormat::Csv,
    )?;
    plot.save(&out.join("sweep_neurips_percent_stable"))?;
    println!(
        "NeurIPS curve ({} trials, {:.1} s):",
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
    for (i, d) in deltas.iter().enumerate() {
        println!(
            "  δ = {d:.1}: {:5.1} % fixed point, {:5.1} % linearly stable, {:5.1} % periodic, {:5.1} % undetermined",
            cols[0][i], cols[1][i], cols[2][i], cols[3][i]
        );
    }

    // 2. The δ = 2 trial the NeurIPS preset leaves undetermined, continued.
    let cfg = SweepConfig::from_toml(NEURIPS, "sweep-neurips.toml")?;
    let (d, z) = (cfg.deltas(), cfg.inputs());
    let job = cfg.input_num * cfg.trials + cfg.trials + 6; // (δ = 2, ‖z‖ = 0.316, trial 6)
    let setup = setup_trial(&cfg, &d, &z, job, None)?;
    let (c, chunks, x) = simulate_trial(&setup.model, &setup.x0, cfg.max_chunks);
    let dg = diagnose(&setup, &x, 40)?;
    println!(
        "δ = {}, ‖z‖ = {:.3}, trial {}: {:?} after {chunks} chunks; continued 40 chunks: {:?} → {:?}",
        d[setup.i_delta], z[setup.j_input], setup.k_trial, c, dg.continued, dg.verdict
    );
    let n = cfg.n;
    let mut cycle_plot = LinePlot::new(
        "δ = 2, ‖z‖ = 0.316, trial 6: the trajectory after 60 chunks",
        "time (s)",
        "‖y‖",
    );
    if let Some((xs, res, eig)) = &dg.fixed_point {
        println!(
            "  fixed point by Newton from the final state (‖f‖∞ = {res:.1e}): leading eigenvalues {:.3} ± {:.3}i, {:.3} (1/s)",
            eig[0].re,
            eig[0].im.abs(),
            eig[2].re
        );
        let ystar = xs[..n].iter().map(|v| v * v).sum::<f64>().sqrt();
        cycle_plot = cycle_plot.segment(
            "‖y*‖ at the unstable fixed point",
            vec![(0.0, ystar), (0.4, ystar)],
            1,
            true,
        );
    }
    if let Some(cy) = &dg.cycle {
        println!(
            "  limit cycle: period {:.2} ms ({:.1} Euler steps), {} maxima of ‖y‖ per period (maxima one period apart differ by {:.1e})",
            cy.period * 1e3,
            cy.period_steps,
            cy.maxima_per_period,
            cy.mismatch
        );
    }
    {
        use neurodyn::integrate::{Euler, FixedStepper};
        let (h, points) = chunk_grid(&setup.model);
        let mut xs = dg.final_state.clone();
        let mut e = Euler::new(2 * n);
        let trace: Vec<(f64, f64)> = (0..2 * points)
            .map(|k| {
                e.step(&setup.model, 0.0, &mut xs, h);
                (
                    (k + 1) as f64 * h,
                    xs[..n].iter().map(|v| v * v).sum::<f64>().sqrt(),
                )
            })
            .collect();
        cycle_plot = cycle_plot.segment("‖y(t)‖", trace, 0, false);
    }
    cycle_plot.save(&out.join("sweep_neurips_cycle"))?;

    // 3. The 2025 phase diagrams, both input types.
    for input_type in [InputType::Delocalized, InputType::Localized] {
        let t0 = std::time::Instant::now();
        let mut cfg = SweepConfig::from_toml(DEFAULT_CONFIG, "default")?;
        cfg.input_type = input_type;
        cfg.delta_min = 0.02;
        cfg.delta_max = 5.0;
        cfg.delta_num = 24;
        cfg.input_min = 0.01;
        cfg.input_max = 1.0;
        cfg.input_num = 16;
        cfg.trials = 4;
        let name = format!("{input_type:?}").to_lowercase();
        let dir = tmp.path().join(&name);
        let rows = run(&cfg, &dir)?;
        let cells = summarize(&cfg, &rows);
        HeatMap {
            title: format!(
                "% fixed point — N = {}, W = I + M (symmetric), {name} input, {} trials per cell",
                cfg.n, cfg.trials
            ),
            ..neurodyn::sweep::phase_diagram(&cfg, &cells)
        }
        .save(&out.join(format!("sweep_phase_{name}")))?;
        std::fs::copy(
            dir.join("summary.csv"),
            out.join(format!("sweep_phase_{name}.csv")),
        )
        .map_err(|e| neurodyn::Error::file(&dir, e))?;
        // Δ_c against the data: every cell below the curve, and where each input column's
        // fixed-point fraction first drops below 50 %.
        let below: Vec<&CellSummary> = cells
            .iter()
            .filter(|c| c.delta < critical_delta_mu(input_type, cfg.n, cfg.mu, cfg.sigma, c.input))
            .collect();
        let all_fixed = below.iter().filter(|c| c.pct_fixed_point == 100.0).count();
        println!(
            "phase diagram, {name} input: {} trials in {:.1} s; {all_fixed} of {} cells below Δc(z) have every trial at a fixed point",
            rows.len(),
            t0.elapsed().as_secs_f64(),
            below.len()
        );
        let ratios: Vec<String> = cfg
            .inputs()
            .iter()
            .step_by(3)
            .filter_map(|&z| {
                let edge = cells
                    .iter()
                    .find(|c| c.input == z && c.pct_fixed_point < 50.0)?
                    .delta;
                let dc = critical_delta_mu(input_type, cfg.n, cfg.mu, cfg.sigma, z);
                Some(format!(
                    "‖z‖ = {z:.3}: δ50 = {edge:.2} = {:.1} Δc",
                    edge / dc
                ))
            })
            .collect();
        println!("  first δ with < 50 % fixed points: {}", ratios.join("; "));
    }

    // 4. Eigenvalue histograms at fixed points for growing N (stored eigvals.npy).
    let mut hist = LinePlot::new(
        "Jacobian eigenvalues at the fixed point (δ = 0.2, delocalized ‖z‖ = 0.1)",
        "Re λ · τ",
        "density",
    );
    let mut ht = Table::new();
    let (lo, hi, bins) = (-1.5, 0.0, 60);
    ht.push(
        "re_lambda_tau",
        Column::F64(
            (0..bins)
                .map(|b| lo + (hi - lo) * (b as f64 + 0.5) / bins as f64)
                .collect(),
        ),
    );
    for (n, trials) in [(50usize, 40usize), (100, 20), (200, 10)] {
        let mut cfg = SweepConfig::from_toml(DEFAULT_CONFIG, "default")?;
        cfg.n = n;
        cfg.delta_min = 0.2;
        cfg.delta_max = 0.2;
        cfg.delta_num = 1;
        cfg.input_min = 0.1;
        cfg.input_max = 0.1;
        cfg.input_num = 1;
        cfg.trials = trials;
        cfg.store = vec![Store::Eigvals];
        let dir = tmp.path().join(format!("hist{n}"));
        run(&cfg, &dir)?;
        let e: ndarray::ArrayD<faer::c64> = ndarray_npy::read_npy(dir.join("eigvals.npy"))
            .map_err(|e| neurodyn::Error::file(&dir, e))?;
        let re: Vec<f64> = e
            .iter()
            .filter(|l| l.re.is_finite())
            .map(|l| l.re * cfg.tau_y)
            .collect();
        let mut counts = vec![0usize; bins];
        for r in &re {
            let b = ((r - lo) / (hi - lo) * bins as f64).floor();
            if b >= 0.0 && (b as usize) < bins {
                counts[b as usize] += 1;
            }
        }
        let width = (hi - lo) / bins as f64;
        let density: Vec<f64> = counts
            .iter()
            .map(|&c| c as f64 / (re.len().max(1) as f64 * width))
            .collect();
        println!(
            "eigenvalues, N = {n}: {} trials, {} eigenvalues, max Re λ·τ = {:.4}",
            trials,
            re.len(),
            re.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
        hist = hist.series(
            format!("N = {n}"),
            (0..bins)
                .map(|b| (lo + width * (b as f64 + 0.5), density[b]))
                .collect(),
        );
        ht.push(format!("density_n{n}"), Column::F64(density));
    }
    hist.save(&out.join("sweep_eig_hist"))?;
    ht.write(&out.join("sweep_eig_hist.csv"), TableFormat::Csv)?;
    println!("wrote figures/sweep_*.png/.svg/.csv");
    Ok(())
}
