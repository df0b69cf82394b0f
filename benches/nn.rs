//! The feed-forward layers: one training step (forward, backward, Adam) and one forward pass of
//! small-alexnet with divisive normalization, batch 64, 28 × 28 inputs, f32 — the problem of
//! `benches/peers/cnn_torch.py bench` (PyTorch CPU). Also prints the per-layer split.
//!
//! cargo bench --bench nn

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::learn::{Optimizer, OptimizerKind};
use neurodyn::nn::{Arch, ArchSpec, Norm, Shape};
use rand::{Rng, SeedableRng};

fn bench(c: &mut Criterion) {
    let input = Shape::new(1, 28, 28);
    let b = 64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let x: Vec<f32> = (0..b * input.len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let labels: Vec<u8> = (0..b).map(|i| (i % 10) as u8).collect();
    let mut net = ArchSpec::new(Arch::SmallAlexnet, Norm::Divnorm, true)
        .build::<f32>(input)
        .unwrap();
    net.init(0);
    let prof = net.profile(&x, b, 10);
    let total: f64 = prof.iter().map(|p| p.1 + p.2).sum();
    eprintln!("layer            forward ms  backward ms  share");
    for (name, f, bw) in &prof {
        eprintln!(
            "{name:<16} {:>10.3} {:>12.3} {:>6.1} %",
            1e3 * f,
            1e3 * bw,
            100.0 * (f + bw) / total
        );
    }
    eprintln!(
        "total {:.2} ms; forward multiply-adds per sample {:.2} M",
        1e3 * total,
        net.flops() as f64 / 1e6
    );
    let mut opt = Optimizer::new(OptimizerKind::Adam, 1e-3).unwrap();
    let mask = net.train_mask();
    let mut g = c.benchmark_group("cnn");
    g.sample_size(20);
    g.bench_function("small_alexnet_divnorm_train_step_b64", |bch| {
        bch.iter(|| {
            net.loss_grad(&x, &labels, 1).unwrap();
            opt.step(&mut net.params, &net.grad, &mask);
        })
    });
    g.bench_function("small_alexnet_divnorm_forward_b64", |bch| {
        bch.iter(|| net.forward(&x, b, false, 0)[0])
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
