//! One training step (minibatch of Go/NoGo trials, BPTT + Adam) of the Dale rate RNN on the CPU in
//! float64, for N ∈ {40, 128} and batch 16 — compare with `benches/peers/train_rate.py` (PyTorch CPU,
//! same cell and sizes) run right after: `benches/compare_train.sh`.

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::train::{train_task_step, Adam, RateNet, Task};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);
    for n in [40usize, 128] {
        let mut net = RateNet::init(n, 1, (4.0, 20.0), 1).unwrap();
        let mut adam = Adam::new(0.01);
        let mut it = 0;
        g.bench_function(format!("go_nogo_N{n}_batch16"), |b| {
            b.iter(|| {
                it += 1;
                train_task_step(&mut net, Task::GoNoGo, &mut adam, it, 16, 1)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
