//! Regenerates the training figures into `figures/`:
//!
//! * `train_go_nogo_outputs`: the read-out of the Dale rate network (Kim, Li & Sejnowski 2019)
//!   after training on Go/NoGo with the `train` defaults, for fresh noisy Go
//!   and NoGo trials (their Fig. 1 task): Go trials rise to 1 after the cue, NoGo trials stay at 0;
//! * `train_digits_curves`: held-out accuracy against minibatches for the four cells (rate, gamma,
//!   ANRU, ORGaNICs) on 7 × 7 sequential digits from the bundled MNIST slice (float32, N = 24);
//! * `train_lyap_spectra`: the Lyapunov spectra of those trained networks as autonomous maps (input
//!   off) — the RNN+γ and ANRU maps of Geadah et al. (2024), the ORGaNICs Euler RNN through its own
//!   backward pass — the seed-002 way of comparing trained networks' dynamics. (Without input
//!   the briefly trained tanh rate, gamma and ANRU networks are chaotic (λ_max 0.56, 0.060, 0.040
//!   per step); the ORGaNICs one, although its W_r reached a largest singular value of 8.6, is
//!   contracting, λ_max = −0.0033. Before its initialisation followed the seed's (W ~ U(0, 1),
//!   b₀(0) = 1) the same training reached 10.7 and λ_max ≈ +0.01: at these singular values
//!   stability is a matter of the draw, as the paper's sweep finds beyond σ_max ≈ 3.)
//!
//! Run: `cargo run --release --example train_figures` (about 30 s on 2 cores).

use neurodyn::learn::Optimizer;
use neurodyn::lyapunov::{lyapunov_map, LyapunovOptions};
use neurodyn::model::Map;
use neurodyn::plot::LinePlot;
use neurodyn::train::cell::CellMap;
use neurodyn::train::checkpoint::{analysis, Analysis};
use neurodyn::train::{rate_batch, train_step, CellSpec, DataSource, Task};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("figures");
    std::fs::create_dir_all(&out)?;

    // Go/NoGo.
    let task = Task::GoNoGo;
    let src = DataSource::new(task, None, 1, 1)?;
    let mut net = CellSpec::default_for("rate".parse().unwrap(), task).build::<f64>(task, 1)?;
    let mut adam = Optimizer::adam(0.01);
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
    let mut spectra = LinePlot::new(
        "Lyapunov spectra of the trained networks (input off)",
        "index i",
        "λ_i (per step)",
    );
    for (cell, iters, lr) in [
        ("rate", 1200, 0.01),
        ("gamma", 1200, 0.003),
        ("anru", 400, 0.003),
        ("organics", 1200, 0.01),
    ] {
        let mut spec = CellSpec::default_for(cell.parse().unwrap(), task);
        spec.hidden = 24;
        spec.controller = 4;
        spec.pool = 4;
        let mut net = spec.build::<f32>(task, 2)?;
        let mut adam = Optimizer::adam(lr);
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
        // The trained network as an autonomous map, in f64.
        let net64 = net.cast::<f64>();
        let opts = LyapunovOptions {
            warmup: 500,
            steps: 2000,
            ..Default::default()
        };
        let sp = match analysis(&net64)? {
            Analysis::Map(m) => lyapunov_map(&m, &vec![0.1; m.dim()], &opts),
            Analysis::Anru(a) => lyapunov_map(&a, &vec![0.1; a.dim()], &opts),
            Analysis::Cell(c) => lyapunov_map(&c, &c.initial_state(), &opts),
            // The rate cell is a flow: its Euler map (the trained update) through CellMap.
            Analysis::Flow(_) => {
                let c = CellMap::new(net64.clone());
                lyapunov_map(&c, &c.initial_state(), &opts)
            }
        };
        let sp = match sp {
            Ok(sp) => sp,
            Err(e) => {
                // e.g. a softplus network whose autonomous dynamics run away without input
                eprintln!("{cell}: no spectrum ({e})");
                continue;
            }
        };
        if let Some(wr) = net64.layout.get("W_r") {
            let n = wr.shape[0];
            let m = faer::Mat::from_fn(n, n, |i, j| net64.params[wr.offset + i * n + j]);
            let smax = m.singular_values().map(|v| v[0]).unwrap_or(f64::NAN);
            eprintln!("{cell}: largest singular value of W_r {smax:.3}");
        }
        let mut ex: Vec<f64> = sp
            .exponents
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        ex.sort_by(|a, b| b.total_cmp(a));
        eprintln!("{cell}: λ_max = {:.4}, {} exponents", ex[0], ex.len());
        spectra = spectra.series(
            cell,
            ex.iter()
                .enumerate()
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect(),
        );
    }
    plot = plot.series("chance", vec![(0.0, 0.1), (1200.0, 0.1)]);
    let (png, _) = plot.save(&out.join("train_digits_curves"))?;
    eprintln!("wrote {}", png.display());
    let (png, _) = spectra.save(&out.join("train_lyap_spectra"))?;
    eprintln!("wrote {}", png.display());
    Ok(())
}
