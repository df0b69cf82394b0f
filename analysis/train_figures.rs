//! Regenerates the training figures into `figures/`:
//!
//! * `train_go_nogo_outputs`: the read-out of the Dale rate network (Kim, Li & Sejnowski 2019,
//!   spiking.md §B.2–B.3) after training on Go/NoGo with the `train` defaults, for fresh noisy Go
//!   and NoGo trials (their Fig. 1 task): Go trials rise to 1 after the cue, NoGo trials stay at 0;
//! * `train_digits_curves`: held-out accuracy against minibatches for the four cells (rate, gamma,
//!   ANRU, ORGaNICs) on 7 × 7 sequential digits from the bundled MNIST slice (float32, N = 24).
//!
//! Run: `cargo run --release --example train_figures` (about 30 s on 2 cores).

use neurodyn::plot::LinePlot;
use neurodyn::train::{rate_batch, train_step, Adam, CellSpec, DataSource, Task};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("figures");
    std::fs::create_dir_all(&out)?;

    // Go/NoGo.
    let task = Task::GoNoGo;
    let src = DataSource::new(task, None, 1, 1)?;
    let mut net = CellSpec::default_for("rate", task).build::<f64>(task, 1)?;
    let mut adam = Adam::new(0.01);
    for it in 0..800 {
        train_step(&mut net, &mut adam, &src.batch::<f64>(it, 16, 5)?, None)?;
    }
    let (_, acc) = src.evaluate(&net, 200, 99)?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let trials = (0..12)
        .map(|_| task.trial(&mut rng))
        .collect::<Result<Vec<_>, _>>()?;
    let mut batch = rate_batch::<f64>(&trials)?;
    batch.noise_seeds = Some((0..12).collect());
    let pass = net.pass(&batch, false)?;
    let (t, b) = (batch.t, batch.b);
    let mut plot = LinePlot::new(
        format!(
            "Go/NoGo: trained Dale rate RNN, N = 40 ({:.0} % correct)",
            100.0 * acc
        ),
        "time (ms)",
        "output o(t)",
    );
    let (mut go, mut nogo) = (0, 0);
    for (k, tr) in trials.iter().enumerate() {
        let is_go = tr.2 > 0.5;
        if (is_go && go == 3) || (!is_go && nogo == 3) {
            continue;
        }
        let n = if is_go { &mut go } else { &mut nogo };
        *n += 1;
        let pts = (0..t)
            .map(|s| (5.0 * (s + 1) as f64, pass.outputs[s * b + k]))
            .collect();
        plot = plot.series(
            format!("{} trial {}", if is_go { "Go" } else { "NoGo" }, *n),
            pts,
        );
    }
    plot = plot.series(
        "Go cue (u = 1)",
        vec![(250.0, -0.2), (250.0, 1.2), (375.0, 1.2), (375.0, -0.2)],
    );
    let (png, _) = plot.save(&out.join("train_go_nogo_outputs"))?;
    eprintln!("wrote {} (accuracy {:.1} %)", png.display(), 100.0 * acc);

    // Digits learning curves.
    let task = Task::SeqDigits;
    let src = DataSource::new(task, None, 4, 1)?;
    let mut plot = LinePlot::new(
        "7 × 7 sequential digits (49 steps), bundled MNIST slice, N = 24",
        "minibatches of 32",
        "accuracy on 500 held-out images",
    );
    for (cell, iters, lr) in [
        ("rate", 1200, 0.01),
        ("gamma", 1200, 0.003),
        ("anru", 400, 0.003),
        ("organics", 1200, 0.01),
    ] {
        let mut spec = CellSpec::default_for(cell, task);
        spec.hidden = 24;
        spec.controller = 4;
        spec.pool = 4;
        let mut net = spec.build::<f32>(task, 2)?;
        let mut adam = Adam::new(lr);
        let mut curve = vec![(0.0, src.evaluate(&net, 500, 0)?.1)];
        for it in 0..iters {
            train_step(
                &mut net,
                &mut adam,
                &src.batch::<f32>(it, 32, 5)?,
                Some(1.0),
            )?;
            if (it + 1) % 100 == 0 {
                curve.push(((it + 1) as f64, src.evaluate(&net, 500, 0)?.1));
            }
        }
        eprintln!("{cell}: {:.1} %", 100.0 * curve[curve.len() - 1].1);
        plot = plot.series(cell, curve);
    }
    plot = plot.series("chance", vec![(0.0, 0.1), (1200.0, 0.1)]);
    let (png, _) = plot.save(&out.join("train_digits_curves"))?;
    eprintln!("wrote {}", png.display());
    Ok(())
}
