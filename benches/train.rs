//! One training step (BPTT + Adam) on the CPU: the Dale rate RNN on Go/NoGo (float64, N ∈ {40, 128},
//! batch 16) and each cell on sequential digits (784 steps, one pixel per step, float32, hidden
//! 64 / 128, batch 32) — compare with the PyTorch peers run right before in
//! `benches/compare_train.sh`. Set NEURODYN_BENCH_GPU=1 to add the wgpu trainer (lavapipe on a
//! machine without a GPU), NEURODYN_BENCH_ALL=1 for the gamma and ORGaNICs cells on the CPU.

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::learn::Optimizer;
use neurodyn::train::gpu::GpuTrainer;
use neurodyn::train::{train_step, CellSpec, DataSource, Task};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);
    let task = Task::GoNoGo;
    let src = DataSource::new(task, None, 1, 1).unwrap();
    for n in [40usize, 128] {
        let mut spec = CellSpec::default_for("rate".parse().unwrap(), task);
        spec.hidden = n;
        let mut net = spec.build::<f64>(task, 1).unwrap();
        let mut adam = Optimizer::adam(0.01);
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
            ("lstm", 64),
            ("gru", 64),
        ]
    } else {
        &[("rate", 64), ("rate", 128)]
    };
    // The floor of a seq784 rate step (N = 64, 128; batch 32): the forward product W·R and the
    // backward's two (Wᵀ·E and E·Rᵀ) per time step, as one f32 matrix product each.
    for n in [64usize, 128] {
        use faer::{Accum, Mat, Par};
        let w = Mat::<f32>::from_fn(n, n, |i, j| ((i * 7 + j) % 13) as f32 * 0.01);
        let r = Mat::<f32>::from_fn(n, 32, |i, j| ((i + 3 * j) % 11) as f32 * 0.1);
        let mut out = Mat::<f32>::zeros(n, 32);
        let mut dw = Mat::<f32>::zeros(n, n);
        g.bench_function(
            format!("floor_seq784_three_products_N{n}_batch32_f32"),
            |b| {
                b.iter(|| {
                    for _ in 0..784 {
                        faer::linalg::matmul::matmul(
                            out.as_mut(),
                            Accum::Replace,
                            w.as_ref(),
                            r.as_ref(),
                            1.0,
                            Par::Seq,
                        );
                        faer::linalg::matmul::matmul(
                            out.as_mut(),
                            Accum::Replace,
                            w.transpose(),
                            r.as_ref(),
                            1.0,
                            Par::Seq,
                        );
                        faer::linalg::matmul::matmul(
                            dw.as_mut(),
                            Accum::Add,
                            r.as_ref(),
                            r.transpose(),
                            1.0,
                            Par::Seq,
                        );
                    }
                })
            },
        );
    }
    for &(cell, n) in cells {
        let mut spec = CellSpec::default_for(cell.parse().unwrap(), digits);
        spec.hidden = n;
        let mut net = spec.build::<f32>(digits, 1).unwrap();
        let mut adam = Optimizer::adam(0.001);
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
            let mut gpu = GpuTrainer::new(&net, &Optimizer::adam(0.001)).unwrap();
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
