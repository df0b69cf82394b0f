//! One training step (BPTT + Adam) on the CPU: the Dale rate RNN on Go/NoGo (float64, N ∈ {40, 128},
//! batch 16) and each cell on sequential digits (784 steps, one pixel per step, float32, hidden
//! 64 / 128, batch 32) — compare with the PyTorch peers run right before in
//! `benches/compare_train.sh`. Set NEURODYN_BENCH_GPU=1 to add the wgpu trainer (lavapipe on a
//! machine without a GPU), NEURODYN_BENCH_ALL=1 for the gamma and ORGaNICs cells on the CPU.

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::train::gpu::GpuTrainer;
use neurodyn::train::{train_step, Adam, CellSpec, DataSource, Task};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);
    let task = Task::GoNoGo;
    let src = DataSource::new(task, None, 1, 1).unwrap();
    for n in [40usize, 128] {
        let mut spec = CellSpec::default_for("rate".parse().unwrap(), task);
        spec.hidden = n;
        let mut net = spec.build::<f64>(task, 1).unwrap();
        let mut adam = Adam::new(0.01);
        let batch = src.batch::<f64>(0, 16, 1).unwrap();
        g.bench_function(format!("go_nogo_N{n}_batch16"), |b| {
            b.iter(|| train_step(&mut net, &mut adam, &batch, None).unwrap().loss)
        });
    }
    let digits = Task::SeqDigits;
    let src = DataSource::new(digits, None, 1, 1).unwrap();
    let batch = src.batch::<f32>(0, 32, 1).unwrap();
    let cells: &[(&str, usize)] = if std::env::var("NEURODYN_BENCH_ALL").is_ok() {
        &[
            ("rate", 64),
            ("rate", 128),
            ("gamma", 64),
            ("gamma", 128),
            ("organics", 64),
            ("organics", 128),
        ]
    } else {
        &[("rate", 64), ("rate", 128)]
    };
    for &(cell, n) in cells {
        let mut spec = CellSpec::default_for(cell.parse().unwrap(), digits);
        spec.hidden = n;
        let mut net = spec.build::<f32>(digits, 1).unwrap();
        let mut adam = Adam::new(0.001);
        g.bench_function(format!("seq784_{cell}_N{n}_batch32_f32"), |b| {
            b.iter(|| train_step(&mut net, &mut adam, &batch, None).unwrap().loss)
        });
    }
    if std::env::var("NEURODYN_BENCH_GPU").is_ok() {
        for (cell, n) in [
            ("rate", 64usize),
            ("rate", 128),
            ("gamma", 64),
            ("organics", 64),
        ] {
            let mut spec = CellSpec::default_for(cell.parse().unwrap(), digits);
            spec.hidden = n;
            let net = spec.build::<f32>(digits, 1).unwrap();
            let mut gpu = GpuTrainer::new(&net, &Adam::new(0.001)).unwrap();
            eprintln!("wgpu adapter: {}", gpu.adapter);
            g.bench_function(format!("seq784_{cell}_N{n}_batch32_wgpu"), |b| {
                b.iter(|| gpu.train_step(&batch, 0.001).unwrap().0)
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
