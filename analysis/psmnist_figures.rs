//! The psMNIST comparison of Geadah et al. (2024) at 2-core size, through the protocol of its
//! §A.4 (`train --task psmnist --val … --plateau … --robustness`): RNN+γ (per-neuron learned n,
//! s), ANRU, and PyTorch's LSTM and GRU as baselines, each trained on the permuted 7 × 7 digits
//! (49 steps) of the bundled MNIST slice with 300 training images held out for validation and
//! ReduceLROnPlateau on the validation loss; then tested clean, under the sin transform and under
//! the step drive. Writes into `figures/`:
//!
//! * `psmnist_accuracy.csv`: per cell the validation and test accuracy and the robustness tests;
//! * `psmnist_curves`: validation accuracy per epoch;
//! * `psmnist_gamma_ns`: the RNN+γ's learned per-neuron (n, s) against their initial values
//!   (n = 5 + 2 U(0, 1), s = 0);
//! * `psmnist_lyap_spectra`: the Lyapunov spectra of the four trained networks as autonomous
//!   maps (input off) — the LSTM and GRU through their checkpoints, which are PyTorch state dicts.
//!
//! Run: `cargo run --release --example psmnist_figures` (about 1 minute on 2 cores). With
//! `PSMNIST_DATA=path/to/mnist` (the four IDX files) it trains on the full 60k/10k set with the
//! original 50k/10k split instead (hours on 2 cores; a GPU run is `train --device gpu`).

use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::learn::Learner;
use neurodyn::lyapunov::{lyapunov_map, LyapunovOptions};
use neurodyn::model::torch_rnn::TorchRnn;
use neurodyn::model::Map;
use neurodyn::plot::LinePlot;
use neurodyn::train::cell::CellKind;
use neurodyn::train::checkpoint::{analysis, load, Analysis};
use neurodyn::train::run::{RecurrentRun, RunConfig, CHECKPOINT};
use neurodyn::train::Task;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    faer::set_global_parallelism(faer::Par::Seq);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("figures");
    std::fs::create_dir_all(&out)?;
    let tmp = tempfile::tempdir()?;
    let full: Option<PathBuf> = std::env::var_os("PSMNIST_DATA").map(PathBuf::from);
    let mut curves = LinePlot::new(
        if full.is_some() {
            "psMNIST (7 × 7, 49 steps), MNIST 50k/10k/10k".to_string()
        } else {
            "psMNIST (7 × 7, 49 steps), bundled slice: 1,700 train / 300 validation".to_string()
        },
        "epoch",
        "validation accuracy",
    );
    let mut spectra = LinePlot::new(
        "Lyapunov spectra of the trained networks (input off)",
        "index i",
        "λ_i (per step)",
    );
    let mut table = Table::new();
    let mut cols: (Vec<String>, Vec<Vec<f64>>) = (vec![], vec![vec![]; 6]);
    for (cell, lr) in [
        (CellKind::Gamma, 0.003),
        (CellKind::Anru, 0.003),
        (CellKind::Lstm, 0.01),
        (CellKind::Gru, 0.01),
    ] {
        let t0 = std::time::Instant::now();
        let mut c = RunConfig::new(Task::PermDigits, cell);
        c.hidden = 32;
        c.controller = 4;
        c.pool = 4;
        c.epochs = 30;
        c.steps = 50;
        c.batch = 32;
        c.lr = lr;
        c.clip = Some(1.0);
        c.plateau = 3;
        c.robustness = true;
        c.eval = 500;
        c.val = 300;
        c.precision = neurodyn::train::run::Precision::F32;
        if let Some(d) = &full {
            c.data_dir = Some(d.clone());
            c.val = 10_000;
            c.eval = 10_000;
            c.steps = 500;
        }
        let dir = tmp.path().join(cell.name());
        let mut run = RecurrentRun::open(c, &dir)?;
        let rows = run.train(&mut |_| {})?;
        let rb = run.robustness()?;
        let last = rows.last().ok_or("no epochs")?;
        println!(
            "{:>6}: validation {:.1} %, test {:.1} % (sin {:.1} %, step {:.1} %), final lr {:.0e}, {:.0} s",
            cell.name(),
            100.0 * last.accuracy,
            100.0 * last.test_accuracy,
            100.0 * rb[1].2,
            100.0 * rb[2].2,
            last.lr,
            t0.elapsed().as_secs_f64()
        );
        cols.0.push(cell.name().to_string());
        for (k, v) in [
            last.accuracy,
            last.test_accuracy,
            rb[0].2,
            rb[1].2,
            rb[2].2,
            last.lr,
        ]
        .into_iter()
        .enumerate()
        {
            cols.1[k].push(v);
        }
        curves = curves.series(
            cell.name(),
            rows.iter().map(|r| (r.epoch as f64, r.accuracy)).collect(),
        );

        // The trained network as an autonomous map, in f64.
        let ck = dir.join(CHECKPOINT);
        let (net, _) = load::<f64>(&ck)?;
        let opts = LyapunovOptions {
            warmup: 500,
            steps: 2000,
            ..Default::default()
        };
        let sp = match cell {
            CellKind::Lstm | CellKind::Gru => {
                let m = TorchRnn::load(&ck)?;
                lyapunov_map(&m, &vec![0.1; m.dim()], &opts)
            }
            _ => match analysis(&net)? {
                Analysis::Map(m) => lyapunov_map(&m, &vec![0.1; m.dim()], &opts),
                Analysis::Anru(a) => lyapunov_map(&a, &vec![0.1; a.dim()], &opts),
                Analysis::Cell(c) => lyapunov_map(&c, &c.initial_state(), &opts),
                Analysis::Flow(_) => continue,
            },
        }?;
        let ex = sp.sorted();
        println!(
            "{:>6}: λ_max = {:+.4} per step, Kaplan–Yorke dimension {:.2}",
            cell.name(),
            ex[0],
            sp.kaplan_yorke()
        );
        spectra = spectra.series(
            cell.name(),
            ex.iter()
                .filter(|v| v.is_finite())
                .enumerate()
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect(),
        );

        if cell == CellKind::Gamma {
            let get = |name: &str| -> Vec<f64> {
                net.layout
                    .get(name)
                    .map(|t| net.params[t.range()].to_vec())
                    .unwrap_or_default()
            };
            let (n, s) = (get("n"), get("s"));
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            println!(
                "gamma: learned n ∈ [{:.2}, {:.2}] (mean {:.2}), s ∈ [{:.3}, {:.3}] (mean {:.3})",
                n.iter().copied().fold(f64::INFINITY, f64::min),
                n.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                mean(&n),
                s.iter().copied().fold(f64::INFINITY, f64::min),
                s.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                mean(&s)
            );
            LinePlot::new(
                "RNN+γ on psMNIST: learned per-neuron (n, s)",
                "n (gain)",
                "s (saturation)",
            )
            .points(
                "initial range (n = 5 + 2U(0, 1), s = 0)",
                vec![(5.0, 0.0), (7.0, 0.0)],
            )
            .points(
                "learned",
                n.iter().copied().zip(s.iter().copied()).collect(),
            )
            .save(&out.join("psmnist_gamma_ns"))?;
        }
    }
    table.push("cell", Column::Str(cols.0));
    for (name, v) in [
        "val_accuracy",
        "test_accuracy",
        "clean",
        "sin",
        "step",
        "final_lr",
    ]
    .iter()
    .zip(cols.1)
    {
        table.push(*name, Column::F64(v));
    }
    table.write(&out.join("psmnist_accuracy.csv"), TableFormat::Csv)?;
    curves.save(&out.join("psmnist_curves"))?;
    spectra.save(&out.join("psmnist_lyap_spectra"))?;
    println!("wrote figures/psmnist_*");
    Ok(())
}
