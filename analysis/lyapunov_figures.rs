//! Regenerates the seed-002 figures (gamma nonlinearity and Lyapunov spectra) into `figures/`:
//!
//! * `gamma_shape_n`, `gamma_shape_s`: the gamma family γ(x; n, s) over the gain n (s = 0) and the
//!   saturation s (n = 5), as the seed's `gamma_shape` figure;
//! * `lyap_spectra_tanh`: full spectra λ_i versus i/N of random tanh RNN maps h ← tanh(W h),
//!   W = g Z/√N (N = 200) for several g — the size-invariant spectrum of Engelken et al.;
//! * `lyap_vs_g_lambda_max`, `lyap_vs_g_dky`: λ_max and the Kaplan–Yorke dimension versus g (N = 100),
//!   computed in parallel.
//!
//! Run: `cargo run --release --example lyapunov_figures` (about a minute on 2 cores).

use faer::Mat;
use neurodyn::lyapunov::{lyapunov_map, sweep, LyapunovOptions, SweepSummary};
use neurodyn::model::RnnMap;
use neurodyn::model::{gamma::gamma, Activation};
use neurodyn::plot::LinePlot;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

fn tanh_map(n: usize, g: f64, seed: u64) -> (RnnMap, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = g / (n as f64).sqrt();
    let w = Mat::<f64>::from_fn(n, n, |_, _| {
        let z: f64 = StandardNormal.sample(&mut rng);
        s * z
    });
    let h0 = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    (RnnMap::new(w, Activation::Tanh).expect("valid W"), h0)
}

fn main() -> neurodyn::Result<()> {
    let out = Path::new("figures");
    let xs: Vec<f64> = (0..=400).map(|i| -3.0 + 6.0 * i as f64 / 400.0).collect();
    let mut p = LinePlot::new("γ(x; n, s = 0): gain", "x", "γ");
    for n in [1.0, 2.0, 5.0, 10.0] {
        p = p.series(
            format!("n = {n}"),
            xs.iter().map(|&x| (x, gamma(x, n, 0.0))).collect(),
        );
    }
    p.save(&out.join("gamma_shape_n"))?;
    let mut p = LinePlot::new("γ(x; n = 5, s): saturation", "x", "γ");
    for s in [0.0, 0.25, 0.5, 0.75, 1.0] {
        p = p.series(
            format!("s = {s}"),
            xs.iter().map(|&x| (x, gamma(x, 5.0, s))).collect(),
        );
    }
    p.save(&out.join("gamma_shape_s"))?;

    let n = 200;
    let opts = LyapunovOptions {
        warmup: 500,
        transient: 100,
        steps: 1000,
        ..Default::default()
    };
    let gains = [1.5, 2.0, 3.0, 4.0];
    let spectra = sweep(&gains, |g| {
        let (m, h0) = tanh_map(n, g, 1);
        lyapunov_map(&m, &h0, &opts)
    })?;
    let mut p = LinePlot::new(
        format!("Lyapunov spectra of tanh RNN maps (N = {n})"),
        "i / N",
        "λ_i (per step)",
    );
    for (g, s) in gains.iter().zip(&spectra) {
        p = p.series(
            format!("g = {g}"),
            s.sorted()
                .iter()
                .enumerate()
                .map(|(i, &l)| ((i + 1) as f64 / n as f64, l))
                .collect(),
        );
        eprintln!(
            "g = {g}: λ_max = {:.4}, D_KY = {:.2}, entropy = {:.4}",
            s.max(),
            s.kaplan_yorke(),
            s.entropy()
        );
    }
    p.save(&out.join("lyap_spectra_tanh"))?;

    let n = 100;
    let gs: Vec<f64> = (0..=14).map(|i| 0.5 + 0.25 * i as f64).collect();
    let opts = LyapunovOptions {
        warmup: 500,
        transient: 100,
        steps: 1500,
        ..Default::default()
    };
    let sp = sweep(&gs, |g| {
        let (m, h0) = tanh_map(n, g, 2);
        lyapunov_map(&m, &h0, &opts)
    })?;
    let rows: Vec<SweepSummary> = gs.iter().zip(&sp).map(|(&g, s)| (g, s).into()).collect();
    LinePlot::new(
        format!("λ_max versus g (tanh map, N = {n})"),
        "g",
        "λ_max (per step)",
    )
    // The zero line dashed and grey, drawn first: λ_max ≈ 0 on the edge of chaos stays visible.
    .segment("λ = 0", vec![(0.5, 0.0), (4.0, 0.0)], 19, true)
    .segment(
        "λ_max",
        rows.iter().map(|r| (r.value, r.lambda_max)).collect(),
        0,
        false,
    )
    .save(&out.join("lyap_vs_g_lambda_max"))?;
    LinePlot::new(
        format!("Kaplan–Yorke dimension versus g (tanh map, N = {n})"),
        "g",
        "D_KY",
    )
    .series(
        "D_KY",
        rows.iter().map(|r| (r.value, r.kaplan_yorke)).collect(),
    )
    .save(&out.join("lyap_vs_g_dky"))?;
    eprintln!("wrote figures/gamma_shape_*, figures/lyap_spectra_tanh.*, figures/lyap_vs_g_*");
    Ok(())
}
