//! The divisive-normalization ablation of Miller, Shou, Martiniani & Heeger at MNIST scale:
//! small-alexnet on MNIST and Fashion-MNIST with {ReLU, ReLU + divnorm, divnorm only (ReLU off),
//! BatchNorm, none}, several seeds, test accuracy mean ± std.
//!
//! Writes `figures/cnn_ablation.csv` (one row per run: dataset, config, seed, test_accuracy,
//! seconds), `figures/cnn_ablation.png/.svg`, and prints the Markdown table of the README.
//!
//! Run: `cargo run --release --example cnn_ablation` (the bundled slices, 3 epochs, 3 seeds:
//! about 4 minutes on 2 cores). `ABLATION_EPOCHS`, `ABLATION_SEEDS`, `MNIST_DIR` and
//! `FASHION_DIR` (folders with the full IDX files) scale it up.

use neurodyn::data::Dataset;
use neurodyn::learn::Learner;
use neurodyn::nn::fit::{CnnConfig, CnnRun};
use neurodyn::nn::{Arch, Norm};
use neurodyn::plot::LinePlot;
use std::path::{Path, PathBuf};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("figures");
    std::fs::create_dir_all(&out)?;
    let epochs = env_usize("ABLATION_EPOCHS", 3);
    let seeds = env_usize("ABLATION_SEEDS", 3) as u64;
    let configs: [(&str, Norm, bool); 5] = [
        ("ReLU", Norm::None, true),
        ("ReLU + divnorm", Norm::Divnorm, true),
        ("divnorm only", Norm::Divnorm, false),
        ("ReLU + BatchNorm", Norm::Batchnorm, true),
        ("none", Norm::None, false),
    ];
    let datasets = [
        (
            Dataset::Mnist,
            std::env::var("MNIST_DIR").ok().map(PathBuf::from),
        ),
        (
            Dataset::FashionMnist,
            std::env::var("FASHION_DIR").ok().map(PathBuf::from),
        ),
    ];
    let mut rows = vec![];
    let mut csv = String::from("dataset,config,seed,test_accuracy,seconds\n");
    for (ds, dir) in &datasets {
        for (ci, (name, norm, relu)) in configs.iter().enumerate() {
            for seed in 1..=seeds {
                let tmp = tempfile::tempdir()?;
                let mut c = CnnConfig::new(*ds, Arch::SmallAlexnet, *norm, *relu);
                c.epochs = epochs;
                c.seed = seed;
                c.data_dir = dir.clone();
                let t0 = std::time::Instant::now();
                let mut run = CnnRun::open(c, tmp.path(), None)?;
                let acc = run
                    .train(&mut |_| {})?
                    .last()
                    .map_or(f64::NAN, |r| r.test_accuracy);
                let secs = t0.elapsed().as_secs_f64();
                eprintln!(
                    "{} {name} seed {seed}: {:.2} % ({secs:.1} s)",
                    ds.name(),
                    100.0 * acc
                );
                csv.push_str(&format!("{},{name},{seed},{acc},{secs:.2}\n", ds.name()));
                rows.push((*ds, ci, acc));
            }
        }
    }
    std::fs::write(out.join("cnn_ablation.csv"), csv)?;
    let stat = |ds: Dataset, ci: usize| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.0 == ds && r.1 == ci)
            .map(|r| r.2)
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd =
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt();
        (m, sd)
    };
    println!("| small-alexnet, {epochs} epochs, {seeds} seeds | MNIST | Fashion-MNIST |");
    println!("|---|---|---|");
    for (ci, (name, _, _)) in configs.iter().enumerate() {
        let (a, sa) = stat(Dataset::Mnist, ci);
        let (b, sb) = stat(Dataset::FashionMnist, ci);
        println!(
            "| {name} | {:.1} ± {:.1} % | {:.1} ± {:.1} % |",
            100.0 * a,
            100.0 * sa,
            100.0 * b,
            100.0 * sb
        );
    }
    let mut plot = LinePlot::new(
        format!("small-alexnet ablation ({epochs} epochs; 0 ReLU, 1 ReLU+divnorm, 2 divnorm only, 3 ReLU+BN, 4 none)"),
        "configuration",
        "test accuracy",
    );
    for (ds, _) in &datasets {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.0 == *ds)
            .map(|r| (r.1 as f64, r.2))
            .collect();
        plot = plot.points(format!("{} runs", ds.name()), pts);
        let mean: Vec<(f64, f64)> = (0..configs.len())
            .map(|ci| (ci as f64, stat(*ds, ci).0))
            .collect();
        plot = plot.series(format!("{} mean", ds.name()), mean);
    }
    plot.save(&out.join("cnn_ablation"))?;
    Ok(())
}
