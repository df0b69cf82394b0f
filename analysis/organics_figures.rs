//! Regenerates the ORGaNICs figures (seed 000) into `figures/`:
//!
//! * `organics_phase_w{0.5,2,2_hi}`: phase portraits of the scalar 2-D circuit (W_r = w, W = 1,
//!   b1 = 0.5, z = 0.1, τ_y = τ_a = 2 ms) with both nullclines, trajectories and the fixed points
//!   from the quartic, in the three regimes of Rawat, Heeger & Martiniani (2024): 0 < w ≤ 1 (one stable point); w > 1 with
//!   b0σ < 1 − 1/w (one stable, two unstable); w > 1 with b0σ > 1 − 1/w (one stable);
//! * `organics_eigs_vs_w`: real parts of the Jacobian's eigenvalues at the stable fixed point
//!   versus the recurrent weight w;
//! * `organics_phase_diagram`: "% stable" over (input norm, δ) from the embedded reduced sweep
//!   (the stability sweep of Rawat, Heeger & Martiniani (2024)), with the critical curve Δ_c(z).
//!
//! Run: `cargo run --release --example organics_figures` (about 30 s on 2 cores).

use faer::Mat;
use neurodyn::integrate::{integrate, Method, Options, SaveAt};
use neurodyn::model::organics::{scalar_fixed_points, Organics, Variant};
use neurodyn::plot::{HeatMap, LinePlot};
use neurodyn::stability::analyze;
use neurodyn::sweep::{critical_delta, finish, run_jobs, summarize, SweepConfig, DEFAULT_CONFIG};
use std::path::Path;

fn scalar(w: f64, c: f64) -> Organics {
    let m = |v: f64| Mat::from_fn(1, 1, |_, _| v);
    Organics::new(
        Variant::Unrectified,
        m(w),
        m(1.0),
        vec![1.0],
        vec![0.5],
        vec![c],
        vec![0.002],
        vec![0.002],
        vec![0.1],
    )
    .expect("valid parameters")
}

fn main() -> neurodyn::Result<()> {
    let out = Path::new("figures");
    for (name, w, c) in [("w0.5", 0.5, 0.05), ("w2", 2.0, 0.05), ("w2_hi", 2.0, 0.8)] {
        let m = scalar(w, c);
        let fps = scalar_fixed_points(w, 1.0, 1.0, 0.5, c, 0.1);
        let amax = fps.iter().map(|p| p.1).fold(0.05f64, f64::max) * 1.6;
        // Nullclines: ẏ = 0 ⇔ y = b1 z / (1 − w(1 − √a)); ȧ = 0 ⇔ a = c² / (1 − y²).
        let ys: Vec<(f64, f64)> = (1..400)
            .map(|k| amax * k as f64 / 400.0)
            .map(|a| (0.05 / (1.0 - w * (1.0 - a.sqrt())), a))
            .filter(|p| p.0.abs() < 2.0)
            .collect();
        let an: Vec<(f64, f64)> = (0..400)
            .map(|k| -0.999 + 1.998 * k as f64 / 399.0)
            .map(|y| (y, c * c / (1.0 - y * y)))
            .filter(|p| p.1 <= amax)
            .collect();
        let mut p = LinePlot::new(
            format!(
                "ORGaNICs 2-D, w = {w}, b0σ = {c}: {} fixed point(s)",
                fps.len()
            ),
            "y",
            "a",
        );
        p = p.points("ẏ = 0", ys).points("ȧ = 0", an);
        for (k, y0) in [-0.8, -0.3, 0.2, 0.6, 0.95].iter().enumerate() {
            let sol = integrate(
                &m,
                &[*y0, amax * (0.2 + 0.15 * k as f64)],
                (0.0, 0.06),
                &Method::dopri5(1e-8, 1e-10),
                &Options::new().save(SaveAt::Uniform(3000)),
            )?;
            // Stop drawing where the trajectory leaves the window (no jumps).
            p = p.series(
                format!("trajectory {k}"),
                (0..sol.len())
                    .map(|i| (sol.state(i)[0], sol.state(i)[1]))
                    .take_while(|q| q.1 <= amax && q.0.abs() < 2.0)
                    .collect(),
            );
        }
        for (y, a) in &fps {
            let st = analyze(&m, &[*y, *a])?;
            eprintln!(
                "w = {w}, b0σ = {c}: fixed point ({y:.5}, {a:.5}) {}",
                st.class.label()
            );
            p = p.points(format!("fixed point: {}", st.class.label()), vec![(*y, *a)]);
        }
        p.save(&out.join(format!("organics_phase_{name}")))?;
    }

    let ws: Vec<f64> = (0..=60).map(|k| 0.05 * k as f64).collect();
    let (mut re1, mut re2) = (vec![], vec![]);
    for &w in &ws {
        let fps = scalar_fixed_points(w, 1.0, 1.0, 0.5, 0.05, 0.1);
        let m = scalar(w, 0.05);
        if let Some(st) = fps
            .iter()
            .filter_map(|&(y, a)| analyze(&m, &[y, a]).ok())
            .find(|s| s.class.is_stable())
        {
            re1.push((w, st.eigenvalues[0].re));
            re2.push((w, st.eigenvalues[1].re));
        }
    }
    LinePlot::new(
        "Eigenvalues at the stable fixed point versus w (b0σ = 0.05)",
        "w",
        "Re λ (1/s)",
    )
    .series("Re λ₁", re1)
    .series("Re λ₂", re2)
    .save(&out.join("organics_eigs_vs_w"))?;

    let cfg = SweepConfig::from_toml(DEFAULT_CONFIG, "default")?;
    let dir = std::env::temp_dir().join(format!("neurodyn-figures-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run_jobs(&cfg, &dir, (0, 1), &|_, _| {})?;
    let rows = finish(&cfg, &dir)?;
    let cells = summarize(&cfg, &rows);
    let inputs = cfg.inputs();
    let curve: Vec<(f64, f64)> = (0..200)
        .map(|k| inputs[0] * (inputs[inputs.len() - 1] / inputs[0]).powf(k as f64 / 199.0))
        .map(|z| (z, critical_delta(cfg.sigma, z)))
        .filter(|p| p.1.is_finite())
        .collect();
    HeatMap {
        title: format!(
            "% stable circuits — N = {}, delocalized input, {} trials per cell",
            cfg.n, cfg.trials
        ),
        xlabel: "input norm ‖z‖".into(),
        ylabel: "δ".into(),
        xs: inputs,
        ys: cfg.deltas(),
        values: cells.iter().map(|c| c.pct_fixed_point).collect(),
        vmin: 0.0,
        vmax: 100.0,
        log: true,
        curve: Some(("Δc(z)".into(), curve)),
    }
    .save(&out.join("organics_phase_diagram"))?;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("wrote figures/organics_phase_*, figures/organics_eigs_vs_w.*, figures/organics_phase_diagram.*");
    Ok(())
}
