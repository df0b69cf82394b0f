//! Regenerates the fractional-derivative figures into `figures/`:
//!
//! * `fracdiff_t2`: D^α t² on [0, 1] for α ∈ {0.25, 0.5, 0.75} by Grünwald–Letnikov and Caputo L1
//!   (N = 41 samples, to make the O(h) / O(h^{2−α}) gap visible) against the exact
//!   Γ(3)/Γ(3−α) t^{2−α};
//! * `fracdiff_convergence`: log10 |error at t = 1| versus log10 N for the three schemes (α = 0.5,
//!   f = t²), with the fitted slopes in the legend (theory: −1 for GL, −1.5 for RL and L1).
//!
//! Run: `cargo run --release --example fracdiff_figures`.

use neurodyn::fracdiff::{fracdiff, power_derivative, Scheme};
use neurodyn::plot::LinePlot;
use std::path::Path;

fn main() -> neurodyn::Result<()> {
    let out = Path::new("figures");
    let n = 41;
    let h = 1.0 / (n - 1) as f64;
    let t: Vec<f64> = (0..n).map(|k| k as f64 * h).collect();
    let f: Vec<f64> = t.iter().map(|x| x * x).collect();
    let fine: Vec<f64> = (0..=400).map(|k| k as f64 / 400.0).collect();
    let mut p = LinePlot::new(
        "D^α t²: Grünwald–Letnikov and Caputo L1 (N = 41) vs exact",
        "t",
        "D^α t²",
    );
    for a in [0.25, 0.5, 0.75] {
        p = p.series(
            format!("exact α = {a}"),
            fine.iter()
                .map(|&x| (x, power_derivative(2.0, a, x)))
                .collect(),
        );
        let gl = fracdiff(&f, a, h, Scheme::GrunwaldLetnikov)?;
        p = p.series(format!("GL α = {a}"), t.iter().copied().zip(gl).collect());
        let l1 = fracdiff(&f, a, h, Scheme::CaputoL1)?;
        p = p.series(format!("L1 α = {a}"), t.iter().copied().zip(l1).collect());
    }
    p.save(&out.join("fracdiff_t2"))?;

    let ns: Vec<usize> = (0..9).map(|i| 100 * (1 << i) + 1).collect();
    let exact = power_derivative(2.0, 0.5, 1.0);
    let mut p = LinePlot::new(
        "Error of D^0.5 t² at t = 1 versus N",
        "log10 N",
        "log10 |error|",
    );
    for (name, s) in [
        ("GL", Scheme::GrunwaldLetnikov),
        ("RL trapezoid", Scheme::RiemannLiouville),
        ("Caputo L1", Scheme::CaputoL1),
    ] {
        let pts: Vec<(f64, f64)> = ns
            .iter()
            .map(|&n| {
                let h = 1.0 / (n - 1) as f64;
                let f: Vec<f64> = (0..n).map(|k| (k as f64 * h).powi(2)).collect();
                let d = fracdiff(&f, 0.5, h, s).expect("valid input");
                (((n - 1) as f64).log10(), (d[n - 1] - exact).abs().log10())
            })
            .collect();
        let k = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / k,
            pts.iter().map(|p| p.1).sum::<f64>() / k,
        );
        let slope = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
            / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
        eprintln!("{name}: fitted slope {slope:.3}");
        p = p.series(format!("{name} (slope {slope:.2})"), pts);
    }
    p.save(&out.join("fracdiff_convergence"))?;
    eprintln!("wrote figures/fracdiff_t2.*, figures/fracdiff_convergence.*");
    Ok(())
}
