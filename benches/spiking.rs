//! LIF network benchmarks (Kim, Li & Sejnowski 2019): one trial of 20,000 steps of 0.05 ms.
//!
//! - `peer`: the network of `benches/compare_spiking.sh` (N = 200, a trained Go/NoGo network at
//!   s = 30, one Go trial) from `$NEURODYN_LIF_DATA/lif_*.npy`, the same files Brian2 reads; a
//!   random Dale network of the same size when the variable is unset;
//! - `size`: random Dale networks (20 % connectivity, 20 % inhibitory) of N = 100 … 2,000;
//! - `rate`: N = 200 driven to different mean firing rates (the event-driven input costs
//!   O(N) per spike).

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::faer::Mat;
use neurodyn::io::{read_npy_mat, read_npy_vec};
use neurodyn::spiking::{simulate, InitialVoltage, SimOptions, SpikingNetwork};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::path::Path;

fn random_dale(n: usize, drive: f64, seed: u64) -> SpikingNetwork {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sign: Vec<f64> = (0..n)
        .map(|_| if rng.random::<f64>() < 0.2 { -1.0 } else { 1.0 })
        .collect();
    let scale = 1.5 / (0.2 * n as f64).sqrt() / 30.0;
    let w = Mat::from_fn(n, n, |_, j| {
        if rng.random::<f64>() < 0.2 {
            sign[j] * scale * rng.random::<f64>() * 2.0
        } else {
            0.0
        }
    });
    let w_in = Mat::from_fn(n, 1, |_, _| drive * (0.5 + rng.random::<f64>()));
    let tau_d = (0..n).map(|_| 0.02 + 0.08 * rng.random::<f64>()).collect();
    let w_out = (0..n).map(|_| rng.random::<f64>() * 0.01).collect();
    SpikingNetwork::new(w, w_in, tau_d, w_out).unwrap()
}

fn go_input() -> Vec<Vec<f64>> {
    (0..201)
        .map(|k| vec![if (50..75).contains(&k) { 1.0 } else { 0.0 }])
        .collect()
}

/// The peer problem: the .npy files, or a random stand-in.
fn peer_problem() -> (SpikingNetwork, Vec<Vec<f64>>, Option<Vec<f64>>) {
    let Ok(d) = std::env::var("NEURODYN_LIF_DATA") else {
        return (random_dale(200, 1.0, 1), go_input(), None);
    };
    let d = Path::new(&d);
    let w = read_npy_mat(&d.join("lif_W.npy"), "W", None).unwrap();
    let w_in = read_npy_mat(&d.join("lif_Win.npy"), "W_in", None).unwrap();
    let tau_d = read_npy_vec(&d.join("lif_taud.npy"), "tau_d", None).unwrap();
    let w_out = read_npy_vec(&d.join("lif_wout.npy"), "w_out", None).unwrap();
    let u = read_npy_vec(&d.join("lif_u.npy"), "u", None).unwrap();
    let v0 = read_npy_vec(&d.join("lif_v0.npy"), "v0", None).unwrap();
    let net = SpikingNetwork::new(w, w_in, tau_d, w_out).unwrap();
    (net, u.iter().map(|&x| vec![x]).collect(), Some(v0))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("lif_trial");
    g.sample_size(10);
    let (net, u, v0) = peer_problem();
    let mut opts = SimOptions::default();
    if let Some(v0) = v0 {
        opts.v0 = InitialVoltage::Given(v0);
        let mut quiet = opts.clone();
        quiet.noise = false;
        let q = simulate(&net, &u, &quiet, 0).unwrap();
        let on: Vec<usize> = (1..=3)
            .map(|s| simulate(&net, &u, &opts, s).unwrap().spikes.len())
            .collect();
        println!(
            "neurodyn: N = {}, {} steps; spikes noise off {} (output at the end {:.6}); noise on {:?} (mean {:.1})",
            net.n(),
            q.steps,
            q.spikes.len(),
            q.output.last().unwrap(),
            on,
            on.iter().sum::<usize>() as f64 / 3.0
        );
    }
    g.bench_function("peer_N200", |b| {
        b.iter(|| simulate(black_box(&net), &u, &opts, 7).unwrap())
    });
    let opts = SimOptions::default();
    for n in [100usize, 200, 500, 1000, 2000] {
        let net = random_dale(n, 1.0, 2);
        let tr = simulate(&net, &go_input(), &opts, 1).unwrap();
        eprintln!(
            "size N = {n}: {:.1} Hz per unit",
            tr.spikes.len() as f64 / (n as f64 * tr.duration())
        );
        g.bench_function(format!("size_N{n}"), |b| {
            b.iter(|| simulate(black_box(&net), &go_input(), &opts, 1).unwrap())
        });
    }
    for drive in [0.0f64, 5.0, 20.0] {
        let net = random_dale(200, drive, 3);
        let tr = simulate(&net, &go_input(), &opts, 1).unwrap();
        let hz = tr.spikes.len() as f64 / (200.0 * tr.duration());
        eprintln!("rate drive {drive}: {hz:.1} Hz per unit");
        g.bench_function(format!("rate_drive{drive}"), |b| {
            b.iter(|| simulate(black_box(&net), &go_input(), &opts, 1).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
