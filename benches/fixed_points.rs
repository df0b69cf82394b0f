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
        // Newton's floor: per iteration one Jacobian and one LU solve (iterations printed above).
        g.bench_function("floor_jacobian_lu_N200_seq", |bch| {
            bch.iter(|| {
                use faer::linalg::solvers::Solve;
                let j = jacobian_mat(&m, 0.0, &r.x);
                let rhs = faer::Mat::<f64>::from_fn(200, 1, |i, _| r.x[i]);
                j.partial_piv_lu().solve(&rhs)
            })
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

    sweep_floor(c);

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

/// The sweep trial against its floor (N = 100): one W_r·y product (the floor of an Euler step),
/// the uniform-pool right-hand side (the product plus one pass), the fixed-point spectrum by the
/// full 2N eigenproblem and by the invariant (N + 1)-dimensional one, ρ(W) by the general and the
/// symmetric solver. With SWEEP_720=1 also the 720-trial grid (12 δ log 0.01–10 × 3 inputs log
/// 0.01–1 × 20 trials) with its floor: Euler steps × (one product) / threads.
fn sweep_floor(c: &mut Criterion) {
    use neurodyn::model::Model;
    use neurodyn::sweep::{jacobian_spectrum, setup_trial, spectral_radius};
    faer::set_global_parallelism(faer::Par::Seq);
    let mut cfg = SweepConfig::from_toml(DEFAULT_CONFIG, "default").unwrap();
    cfg.delta_min = 0.3;
    cfg.delta_max = 0.3;
    cfg.delta_num = 1;
    cfg.input_num = 1;
    cfg.input_min = 0.1;
    cfg.trials = 1;
    let s = setup_trial(&cfg, &cfg.deltas(), &cfg.inputs(), 0, None).unwrap();
    let u = s.model.uniform_pool().unwrap();
    let x = s.x0.clone();
    let mut g = c.benchmark_group("sweep_floor");
    g.sample_size(30);
    let mut r = vec![0.0; 100];
    let gemv = |r: &mut [f64]| {
        r.fill(0.0);
        neurodyn::model::kernels::gemv_add(s.model.w_r.as_ref(), &x[..100], r)
    };
    g.bench_function("gemv_N100", |b| b.iter(|| gemv(&mut r)));
    let packed = neurodyn::model::kernels::PackedSymmetric::new(s.model.w_r.as_ref()).unwrap();
    g.bench_function("symv_packed_N100", |b| {
        b.iter(|| {
            r.fill(0.0);
            packed.mul_add(&x[..100], &mut r)
        })
    });
    let mut f = vec![0.0; 200];
    g.bench_function("rhs_uniform_pool_N100", |b| {
        b.iter(|| u.rhs(0.0, &x, &mut f))
    });
    g.bench_function("rhs_general_N100", |b| {
        b.iter(|| s.model.rhs(0.0, &x, &mut f))
    });
    let j = neurodyn::model::jacobian_mat(&s.model, 0.0, &x);
    g.bench_function("eig_full_2N200", |b| b.iter(|| j.eigenvalues().unwrap()));
    g.bench_function("eig_invariant_N101", |b| {
        b.iter(|| jacobian_spectrum(&s.model, &x))
    });
    let w = s.model.w_r.as_ref();
    g.bench_function("rho_general_N100", |b| b.iter(|| w.eigenvalues().unwrap()));
    g.bench_function("rho_symmetric_N100", |b| b.iter(|| spectral_radius(w)));
    g.finish();
    faer::set_global_parallelism(faer::Par::rayon(0));
    if std::env::var("SWEEP_720").is_ok() {
        let mut cfg = SweepConfig::from_toml(DEFAULT_CONFIG, "default").unwrap();
        cfg.delta_min = 0.01;
        cfg.delta_max = 10.0;
        cfg.delta_num = 12;
        cfg.input_num = 3;
        cfg.trials = 20;
        let t_gemv = {
            let t = Instant::now();
            for _ in 0..20_000 {
                gemv(&mut r);
            }
            t.elapsed().as_secs_f64() / 20_000.0
        };
        let out = std::env::temp_dir().join(format!("neurodyn-sweep720-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let t = Instant::now();
        faer::set_global_parallelism(faer::Par::Seq);
        run_jobs(&cfg, &out, (0, 1), &|_, _| {}).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let rows = neurodyn::sweep::read_journals(&out).unwrap();
        let chunks: usize = rows.iter().map(|r| r.chunks).sum();
        let threads = rayon::current_num_threads() as f64;
        let floor = chunks as f64 * 1999.0 * t_gemv / threads;
        eprintln!(
            "sweep 720: {} trials in {secs:.2} s on {threads} threads; {chunks} chunks; floor {floor:.2} s ({:.2} µs per product); {:.2}× the floor",
            rows.len(),
            t_gemv * 1e6,
            secs / floor
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
