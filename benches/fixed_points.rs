//! Fixed points, eigenvalues and sweep trials.
//!
//! * The peers' problem (`../shared/peers/fixedpoint.py`): rate RNN N = 200, g = 0.8, Newton from
//!   x0 with the analytic Jacobian; eigenvalues of J at the root (N = 200) and of a random N = 1000
//!   matrix (numpy's `eigvals` is timed on the same matrices by `benches/compare_fixed_points.sh`).
//! * Sweep throughput: the §8 configuration's shape (12 δ log 0.01–10 × 3 inputs log 0.01–1, here
//!   with 4 trials per cell = 144 trials, both cores), for N = 50, 100, 200, 400; printed as
//!   seconds per trial.

use criterion::{criterion_group, criterion_main, Criterion};
use faer::Mat;
use neurodyn::fixed_points::{newton, NewtonOptions};
use neurodyn::io::{read_npy_mat, read_npy_vec};
use neurodyn::model::{jacobian_mat, Activation, RateRnn};
use neurodyn::sweep::{run_jobs, SweepConfig, DEFAULT_CONFIG};
use std::path::PathBuf;
use std::time::Instant;

fn bench(c: &mut Criterion) {
    let dir = PathBuf::from(
        std::env::var("PEERS_DATA").unwrap_or_else(|_| "../shared/peers/data".into()),
    );
    let f = |k: &str| dir.join(format!("rnn_N200_g0.8_{k}.npy"));
    let mut g = c.benchmark_group("fixed_points");
    g.sample_size(20);
    if f("W").exists() {
        let w = read_npy_mat(&f("W"), "W", Some((200, 200))).unwrap();
        let x0 = read_npy_vec(&f("x0"), "x0", Some(200)).unwrap();
        let b = read_npy_vec(&f("b"), "b", Some(200)).unwrap();
        let m = RateRnn::new(w, Activation::Tanh)
            .unwrap()
            .with_bias(b)
            .unwrap();
        let r = newton(&m, &x0, &NewtonOptions::default()).unwrap();
        eprintln!(
            "N = 200 root: converged = {}, ‖f‖∞ = {:.2e}, iterations = {}, x*[..3] = {:?}",
            r.converged,
            r.residual,
            r.iterations,
            &r.x[..3]
        );
        g.bench_function("newton_N200", |bch| {
            bch.iter(|| newton(&m, &x0, &NewtonOptions::default()).unwrap())
        });
        let j = jacobian_mat(&m, 0.0, &r.x);
        g.bench_function("eigenvalues_N200", |bch| {
            bch.iter(|| j.eigenvalues().unwrap())
        });
        faer::set_global_parallelism(faer::Par::Seq);
        g.bench_function("eigenvalues_N200_seq", |bch| {
            bch.iter(|| j.eigenvalues().unwrap())
        });
        g.bench_function("newton_N200_seq", |bch| {
            bch.iter(|| newton(&m, &x0, &NewtonOptions::default()).unwrap())
        });
        faer::set_global_parallelism(faer::Par::rayon(0));
    } else {
        eprintln!(
            "skipping the peer problem: {} not found (run ../shared/peers/fixedpoint.py)",
            f("W").display()
        );
    }
    let big = dir.join("eig_N1000.npy");
    if big.exists() {
        let a = read_npy_mat(&big, "A", Some((1000, 1000))).unwrap();
        g.bench_function("eigenvalues_N1000", |bch| {
            bch.iter(|| a.eigenvalues().unwrap())
        });
    } else {
        let a = Mat::<f64>::from_fn(1000, 1000, |i, j| {
            (((i * 7919 + j * 104729) % 1009) as f64 / 1009.0) - 0.5
        });
        g.bench_function("eigenvalues_N1000_own", |bch| {
            bch.iter(|| a.eigenvalues().unwrap())
        });
    }
    g.finish();

    if std::env::var("SWEEP_SCALING").is_err() {
        eprintln!("(set SWEEP_SCALING=1 for sweep throughput versus N)");
        return;
    }
    for n in [50usize, 100, 200, 400] {
        let mut cfg = SweepConfig::from_toml(DEFAULT_CONFIG, "default").unwrap();
        cfg.n = n;
        cfg.delta_min = 0.01;
        cfg.delta_max = 10.0;
        cfg.delta_num = 12;
        cfg.input_num = 3;
        cfg.trials = 4;
        let out =
            std::env::temp_dir().join(format!("neurodyn-sweep-bench-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let t = Instant::now();
        run_jobs(&cfg, &out, (0, 1), &|_, _| {}).unwrap();
        let s = t.elapsed().as_secs_f64();
        let rows = neurodyn::sweep::read_journals(&out).unwrap();
        let chunks: usize = rows.iter().map(|r| r.chunks).sum();
        eprintln!("sweep N = {n}: {} trials in {s:.2} s = {:.4} s/trial wall ({:.1} trials/s), {chunks} chunks simulated", rows.len(), s / rows.len() as f64, rows.len() as f64 / s);
        let _ = std::fs::remove_dir_all(&out);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
