//! The committed sequential-MNIST ORGaNICs checkpoints (`models/*-organics-*`) on the whole
//! MNIST test set — 10,000 digits, where the trainer's per-epoch evaluation reads the first
//! 2,000 — in f32 as they were trained, psMNIST with the seed's permutation. Rawat, Heeger &
//! Martiniani (2024) report test accuracy on these 10,000 digits.
//!
//! Writes `figures/organics_seq_mnist_test.csv` (run, task, epochs, the last per-epoch held-out
//! accuracy, the test-set accuracy and loss) and prints it.
//!
//! Run: `cargo run --release --example seq_mnist_test -- path/to/mnist` (the folder with the
//! four IDX files; ≈ 1 min per checkpoint on 2 cores).

use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::train::checkpoint::load;
use neurodyn::train::run::RunConfig;
use neurodyn::train::{DataSource, EvalSet};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mnist = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: seq_mnist_test path/to/mnist (the four IDX files)")?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root.join("models"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("mnist-organics"))
                && p.join("checkpoint.safetensors").exists()
        })
        .collect();
    runs.sort();
    let mut t = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for run in &runs {
        let config: RunConfig = toml::from_str(&std::fs::read_to_string(run.join("config.toml"))?)?;
        let metrics = std::fs::read_to_string(run.join("metrics.csv"))?;
        let last = metrics.lines().last().unwrap_or_default();
        let epochs = last.split(',').next().unwrap_or("0").parse::<i64>()?;
        let held_out = last.split(',').nth(3).unwrap_or("nan").parse::<f64>()?;
        let (net, _) = load::<f32>(&run.join("checkpoint.safetensors"))?;
        let src = DataSource::new(config.task, Some(&mnist), config.pool, config.seed)?;
        let (loss, acc) = src.evaluate_digits(&net, EvalSet::Test, usize::MAX, None)?;
        let k = src.test.as_ref().map_or(0, |t| t.len());
        let name = run.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        println!(
            "{name}: epoch {epochs}, held-out {:.2} % (first 2,000), test set {:.2} % of {k} (loss {:.4})",
            100.0 * held_out,
            100.0 * acc,
            loss
        );
        t.0.push(name.to_string());
        t.1.push(
            clap::ValueEnum::to_possible_value(&config.task)
                .map_or(String::new(), |v| v.get_name().to_string()),
        );
        t.2.push(epochs);
        t.3.push(held_out);
        t.4.push(acc);
        t.5.push(loss);
    }
    let mut table = Table::new();
    table.push("run", Column::Str(t.0));
    table.push("task", Column::Str(t.1));
    table.push("epochs", Column::I64(t.2));
    table.push("held_out_accuracy", Column::F64(t.3));
    table.push("test_accuracy", Column::F64(t.4));
    table.push("test_loss", Column::F64(t.5));
    table.write(
        &root.join("figures/organics_seq_mnist_test.csv"),
        TableFormat::Csv,
    )?;
    println!("wrote figures/organics_seq_mnist_test.csv");
    Ok(())
}
