//! The one-call GPU check: every wgpu path against its CPU reference, timed against the CPU on
//! the same problem, as one table — what `gpu-check` runs on a lent GPU machine
//! (`scripts/gpu_check.sh`), and what CI runs at a small size on lavapipe.
//!
//! Rows:
//! * `train/<cell>`: one training step (loss and gradient) of each recurrent cell — rate, gamma,
//!   ORGaNICs, ANRU, LSTM, GRU — on the sequential-digits shape (one input channel, 10 classes):
//!   the GPU's f32 loss and gradient against the f64 CPU reference (relative error), and the
//!   time of one Adam step on the GPU against the f32 CPU step;
//! * `lyapunov/tanh_maps`: the k leading exponents of a gain sweep of tanh maps h ← tanh(g W h)
//!   (g < 1, non-chaotic) on the device against [`crate::lyapunov::lyapunov_map`] in f64;
//! * `sweep/organics`: the ORGaNICs stability sweep's trials (the default configuration's grid)
//!   on the device against [`crate::sweep::simulate_trial`]: the error column is the fraction of
//!   trials whose class differs (f32 trials within reach of the fixed-point threshold may).

use crate::data::{Batch, Targets};
use crate::error::Result;
use crate::io::{Column, Table};
use crate::learn::Optimizer;
use crate::train::cell::CellKind;
use crate::train::gpu::GpuTrainer;
use crate::train::{train_step, CellSpec, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// The problem sizes of a check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Hidden units of every cell.
    pub hidden: usize,
    /// Trials per training batch.
    pub batch: usize,
    /// Sequence length of the training batch.
    pub steps: usize,
    /// Timed repetitions (the median is reported).
    pub reps: usize,
    /// Networks in the Lyapunov gain sweep, their size and exponents.
    pub lyap_nets: usize,
    pub lyap_n: usize,
    pub lyap_k: usize,
    /// Units of the sweep's circuits and trials per (δ, input) cell.
    pub sweep_n: usize,
    pub sweep_trials: usize,
}

impl CheckOptions {
    /// Seconds on lavapipe: what the test suite runs.
    pub fn small() -> Self {
        CheckOptions {
            hidden: 16,
            batch: 8,
            steps: 12,
            reps: 1,
            lyap_nets: 4,
            lyap_n: 24,
            lyap_k: 3,
            sweep_n: 8,
            sweep_trials: 1,
        }
    }

    /// The papers' sizes: the sMNIST ORGaNICs shape (64 units, batch 256, 784 steps — the
    /// PyTorch peer `benches/peers/train_seq.py` runs the same), a 32-network gain sweep of
    /// N = 256 maps, the sweep at N = 100. Minutes on a GPU machine's CPU side.
    pub fn paper() -> Self {
        CheckOptions {
            hidden: 64,
            batch: 256,
            steps: 784,
            reps: 3,
            lyap_nets: 32,
            lyap_n: 256,
            lyap_k: 8,
            sweep_n: 100,
            sweep_trials: 4,
        }
    }
}

/// One row of the check.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub path: String,
    pub problem: String,
    pub cpu_seconds: f64,
    pub gpu_seconds: f64,
    /// The GPU result's distance from the reference (relative error, or the fraction of
    /// differing classes).
    pub error: f64,
    pub tolerance: f64,
}

impl CheckRow {
    pub fn passed(&self) -> bool {
        self.error <= self.tolerance
    }
}

fn median(f: &mut dyn FnMut() -> Result<()>, reps: usize) -> Result<f64> {
    let mut t = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Runs the check; `progress` is told each row's name before it runs. Returns the adapter's
/// name and the rows.
pub fn run_check(opts: &CheckOptions, progress: &dyn Fn(&str)) -> Result<(String, Vec<CheckRow>)> {
    let (_, _, adapter) = crate::gpu::open_device()?;
    let mut rows = vec![];
    let task = Task::SeqDigits;
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let (t, b) = (opts.steps, opts.batch);
    let trials: Vec<Vec<Vec<f64>>> = (0..b)
        .map(|_| (0..t).map(|_| vec![rng.random_range(0.0..1.0)]).collect())
        .collect();
    let labels: Vec<usize> = (0..b).map(|_| rng.random_range(0..10)).collect();
    let b32 = Batch::<f32>::from_trials(&trials, Targets::Class(labels.clone()))?;
    let b64 = Batch::<f64>::from_trials(&trials, Targets::Class(labels))?;
    for kind in [
        CellKind::Rate,
        CellKind::Gamma,
        CellKind::Organics,
        CellKind::Anru,
        CellKind::Lstm,
        CellKind::Gru,
    ] {
        let name = format!("train/{}", kind.name());
        progress(&name);
        let mut spec = CellSpec::default_for(kind, task);
        spec.hidden = opts.hidden;
        let mut net = spec.build::<f32>(task, 7)?;
        let want = net.cast::<f64>().pass(&b64, true)?;
        let mut gpu = GpuTrainer::new(&net, &Optimizer::adam(0.0))?;
        let (loss, grad) = gpu.loss_and_grad(&b32)?;
        let grad: Vec<f64> = grad.iter().map(|&g| g as f64).collect();
        let error = rel(&grad, &want.grad).max((loss - want.loss).abs() / want.loss.abs());
        let gpu_s = median(&mut || gpu.train_step(&b32, 1e-3).map(|_| ()), opts.reps)?;
        let mut adam = Optimizer::adam(1e-3);
        let cpu_s = median(
            &mut || train_step(&mut net, &mut adam, &b32, None).map(|_| ()),
            opts.reps,
        )?;
        rows.push(CheckRow {
            path: name,
            problem: format!("N = {}, batch {b}, {t} steps, one Adam step", opts.hidden),
            cpu_seconds: cpu_s,
            gpu_seconds: gpu_s,
            error,
            tolerance: 2e-3,
        });
    }

    progress("lyapunov/tanh_maps");
    let n = opts.lyap_n;
    let z = faer::Mat::<f64>::from_fn(n, n, |_, _| {
        let v: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
        v / (n as f64).sqrt()
    });
    let gains: Vec<f64> = (0..opts.lyap_nets)
        .map(|i| 0.3 + 0.6 * i as f64 / opts.lyap_nets.max(2) as f64)
        .collect();
    let nets: Vec<faer::Mat<f64>> = gains.iter().map(|&g| &z * faer::Scale(g)).collect();
    let x0: Vec<f64> = (0..n).map(|i| 0.5 * ((i as f64) * 0.7).sin()).collect();
    let (k, warm, steps) = (opts.lyap_k.min(n), 100, 400);
    let mut got = vec![];
    let gpu_s = median(
        &mut || {
            got = crate::lyapunov::gpu::tanh_map_spectra(&nets, &x0, k, warm, steps)?;
            Ok(())
        },
        opts.reps,
    )?;
    let mut want = vec![];
    let lopts = crate::lyapunov::LyapunovOptions {
        k: Some(k),
        warmup: warm,
        steps,
        ..Default::default()
    };
    let cpu_s = median(
        &mut || {
            want = nets
                .iter()
                .map(|w| {
                    let m = crate::model::RnnMap::new(w.clone(), crate::model::Activation::Tanh)?;
                    Ok(crate::lyapunov::lyapunov_map(&m, &x0, &lopts)?.sorted())
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(())
        },
        opts.reps,
    )?;
    let error = got
        .iter()
        .zip(&want)
        .map(|(g, w)| rel(&g[..k], &w[..k]))
        .fold(0.0, f64::max);
    rows.push(CheckRow {
        path: "lyapunov/tanh_maps".into(),
        problem: format!("{} maps N = {n}, k = {k}, {steps} steps", nets.len()),
        cpu_seconds: cpu_s,
        gpu_seconds: gpu_s,
        error,
        tolerance: 1e-3,
    });

    progress("sweep/organics");
    let mut cfg = crate::sweep::SweepConfig::from_toml(crate::sweep::DEFAULT_CONFIG, "default")?;
    cfg.n = opts.sweep_n;
    cfg.trials = opts.sweep_trials;
    let (deltas, inputs) = (cfg.deltas(), cfg.inputs());
    let setups: Vec<_> = (0..cfg.jobs())
        .map(|j| crate::sweep::setup_trial(&cfg, &deltas, &inputs, j, None))
        .collect::<Result<_>>()?;
    let pairs: Vec<_> = setups.iter().map(|s| (&s.model, s.x0.as_slice())).collect();
    let mut gpu_classes = vec![];
    let gpu_s = median(
        &mut || {
            gpu_classes =
                crate::sweep::gpu::simulate_trials(&pairs, cfg.max_chunks, cfg.criterion)?;
            Ok(())
        },
        1,
    )?;
    let mut cpu_classes = vec![];
    let cpu_s = median(
        &mut || {
            cpu_classes = setups
                .iter()
                .map(|s| crate::sweep::simulate_trial(&s.model, &s.x0, cfg.max_chunks).0)
                .collect();
            Ok(())
        },
        1,
    )?;
    let differ = gpu_classes
        .iter()
        .zip(&cpu_classes)
        .filter(|(g, c)| g.condition != **c)
        .count();
    rows.push(CheckRow {
        path: "sweep/organics".into(),
        problem: format!("{} trials, N = {}", setups.len(), cfg.n),
        cpu_seconds: cpu_s,
        gpu_seconds: gpu_s,
        error: differ as f64 / setups.len().max(1) as f64,
        tolerance: 0.02,
    });
    Ok((adapter, rows))
}

/// The rows as a table: path, problem, cpu_seconds, gpu_seconds, speedup, error, tolerance,
/// passed (1 or 0), device.
pub fn table(adapter: &str, rows: &[CheckRow]) -> Table {
    let mut t = Table::new();
    let col = |f: &dyn Fn(&CheckRow) -> f64| Column::F64(rows.iter().map(f).collect());
    t.push(
        "path",
        Column::Str(rows.iter().map(|r| r.path.clone()).collect()),
    );
    t.push(
        "problem",
        Column::Str(rows.iter().map(|r| r.problem.clone()).collect()),
    );
    t.push("cpu_seconds", col(&|r| r.cpu_seconds));
    t.push("gpu_seconds", col(&|r| r.gpu_seconds));
    t.push("speedup", col(&|r| r.cpu_seconds / r.gpu_seconds));
    t.push("error", col(&|r| r.error));
    t.push("tolerance", col(&|r| r.tolerance));
    t.push(
        "passed",
        Column::I64(rows.iter().map(|r| i64::from(r.passed())).collect()),
    );
    t.push("device", Column::Str(vec![adapter.to_string(); rows.len()]));
    t
}
