//! Lyapunov-spectrum benchmarks on the peers' problems (`../shared/peers/lyap.py`, same `.npy`
//! files via `$PEERS_DATA`): the tanh map `h ← tanh(W h)` (N ∈ {100, 500}, g ∈ {0.5, 1.5, 3}, QR
//! every step, Q0 = I) and the RK4 variational flow (g = 1.5, dt = 0.01). Prints the peers' short
//! deterministic check (warm-up 0, T = 50) for comparison, then scaling with N and k (own draws).
//! Run `benches/compare_lyapunov.sh` to get the peers in the same run.

use criterion::{criterion_group, criterion_main, Criterion};
use faer::Mat;
use neurodyn::io::{read_npy_mat, read_npy_vec};
use neurodyn::lyapunov::{lyapunov_flow, lyapunov_map, LyapunovOptions, QrWorkspace};
use neurodyn::model::RnnMap;
use neurodyn::model::{Activation, RateRnn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::PathBuf;
use std::time::Instant;

fn load(n: usize, g: f64) -> Option<(Mat<f64>, Vec<f64>, Vec<f64>)> {
    let dir = PathBuf::from(
        std::env::var("PEERS_DATA").unwrap_or_else(|_| "../shared/peers/data".into()),
    );
    let f = |k: &str| dir.join(format!("rnn_N{n}_g{g:?}_{k}.npy"));
    if !f("W").exists() {
        eprintln!(
            "skipping N = {n}, g = {g}: {} not found (run ../shared/peers/lyap.py first)",
            f("W").display()
        );
        return None;
    }
    Some((
        read_npy_mat(&f("W"), "W", Some((n, n))).ok()?,
        read_npy_vec(&f("x0"), "x0", Some(n)).ok()?,
        read_npy_vec(&f("b"), "b", Some(n)).ok()?,
    ))
}

fn per_step(steps: usize, f: impl Fn(usize)) -> f64 {
    f(2); // warm-up
    let t = Instant::now();
    f(steps);
    t.elapsed().as_secs_f64() / steps as f64
}

fn bench_maps(c: &mut Criterion) {
    let mut grp = c.benchmark_group("lyap_map");
    grp.sample_size(10);
    for n in [100usize, 500] {
        for g in [0.5, 1.5, 3.0] {
            let Some((w, x0, _)) = load(n, g) else {
                continue;
            };
            let map = RnnMap::new(w, Activation::Tanh).unwrap();
            let short = lyapunov_map(
                &map,
                &x0,
                &LyapunovOptions {
                    steps: 50,
                    ..Default::default()
                },
            )
            .unwrap();
            eprintln!(
                "short check N = {n} g = {g}: top5 = {:?}, sum = {:.12}",
                &short.sorted()[..5],
                short.sum()
            );
            let steps = if n == 100 { 200 } else { 10 };
            let opts = LyapunovOptions {
                steps,
                ..Default::default()
            };
            grp.bench_function(format!("full_N{n}_g{g}_{steps}steps"), |b| {
                b.iter(|| lyapunov_map(&map, &x0, &opts).unwrap())
            });
            if n == 100 {
                let auto = LyapunovOptions::new().steps(steps).adaptive(8.0);
                grp.bench_function(format!("full_N{n}_g{g}_{steps}steps_auto"), |b| {
                    b.iter(|| lyapunov_map(&map, &x0, &auto).unwrap())
                });
            }
            if n == 500 {
                // Adaptive re-orthonormalisation against every step, over 100 steps (enough for
                // the interval to settle).
                for (name, o) in [
                    ("every", LyapunovOptions::new().steps(100)),
                    ("auto", LyapunovOptions::new().steps(100).adaptive(8.0)),
                ] {
                    grp.bench_function(format!("full_N{n}_g{g}_100steps_{name}"), |b| {
                        b.iter(|| lyapunov_map(&map, &x0, &o).unwrap())
                    });
                }
                let opts = LyapunovOptions {
                    steps: 200,
                    k: Some(10),
                    ..Default::default()
                };
                grp.bench_function(format!("k10_N{n}_g{g}_200steps"), |b| {
                    b.iter(|| lyapunov_map(&map, &x0, &opts).unwrap())
                });
            }
        }
    }
    grp.finish();
    // The floor of a full-spectrum step at N = 500: the one N × N × N product the tangent map
    // needs (faer, both cores), and what the QR adds.
    let mut grp = c.benchmark_group("lyap_floor");
    grp.sample_size(10);
    // At N = 100 the same two pieces (sequential product: one core is what that loop uses).
    floor_pieces(&mut grp, 100, faer::Par::Seq);
    let n = 500;
    let (a, q, mut ws, f) = floor_pieces(&mut grp, n, faer::Par::rayon(0));
    grp.bench_function("qr_with_q_N500", |b| {
        b.iter(|| {
            let qr = a.qr();
            qr.compute_thin_Q()
        })
    });
    // The other pieces of the Benettin loop's re-orthonormalisation (`QrWorkspace`): forming Q
    // from the factorisation, and multiplying by its reflectors instead (what the full map
    // spectrum does: against forming Q and one product).
    let mut qf = Mat::<f64>::zeros(n, n);
    grp.bench_function("householder_form_q_N500", |b| {
        b.iter(|| ws.form_q(f.as_ref(), qf.as_mut()))
    });
    let mut m = q.clone();
    grp.bench_function("householder_mul_q_N500", |b| {
        b.iter(|| ws.mul_q(f.as_ref(), m.as_mut()))
    });
    // CholeskyQR2 (Yamamoto et al. 2015), the BLAS-3 alternative the issue asked to measure:
    // twice G = YᵀY (lower half), G = L Lᵀ, Y ← Y L⁻ᵀ; on a Gaussian frame (κ ≈ 10³; the
    // patterned `a` above is too ill-conditioned for a Cholesky of its Gram matrix).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let gauss = Mat::<f64>::from_fn(n, n, |_, _| StandardNormal.sample(&mut rng));
    let mut y = gauss.clone();
    let mut g = Mat::<f64>::zeros(n, n);
    let par = faer::Par::rayon(0);
    let mut mem = faer::dyn_stack::MemBuffer::new(
        faer::linalg::cholesky::llt::factor::cholesky_in_place_scratch::<f64>(
            n,
            par,
            Default::default(),
        ),
    );
    grp.bench_function("cholesky_qr2_N500", |b| {
        b.iter(|| {
            y.copy_from(&gauss);
            for _ in 0..2 {
                faer::linalg::matmul::triangular::matmul(
                    g.as_mut(),
                    faer::linalg::matmul::triangular::BlockStructure::TriangularLower,
                    faer::Accum::Replace,
                    y.transpose(),
                    faer::linalg::matmul::triangular::BlockStructure::Rectangular,
                    y.as_ref(),
                    faer::linalg::matmul::triangular::BlockStructure::Rectangular,
                    1.0,
                    par,
                );
                faer::linalg::cholesky::llt::factor::cholesky_in_place(
                    g.as_mut(),
                    Default::default(),
                    par,
                    faer::dyn_stack::MemStack::new(&mut mem),
                    Default::default(),
                )
                .unwrap();
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    g.as_ref(),
                    y.as_mut().transpose_mut(),
                    par,
                );
            }
        })
    });
    grp.finish();
    let mut grp = c.benchmark_group("lyap_flow");
    grp.sample_size(10);
    for n in [100usize, 500] {
        let Some((w, x0, b)) = load(n, 1.5) else {
            continue;
        };
        let rnn = RateRnn::new(w, Activation::Tanh)
            .unwrap()
            .with_bias(b)
            .unwrap();
        let steps = if n == 100 { 50 } else { 4 };
        let opts = LyapunovOptions {
            steps,
            dt: 0.01,
            ..Default::default()
        };
        grp.bench_function(format!("rk4_full_N{n}_{steps}steps"), |bch| {
            bch.iter(|| lyapunov_flow(&rnn, &x0, &opts).unwrap())
        });
        // Adaptive re-orthonormalisation (`--reorth auto`): the frame's conditioning grows by
        // the spectrum's spread × dt per step, so QRs are rare and the four variational products
        // per RK4 step are what is left.
        let steps = if n == 100 { 200 } else { 40 };
        let auto = LyapunovOptions {
            steps,
            dt: 0.01,
            ..Default::default()
        }
        .adaptive(8.0);
        grp.bench_function(format!("rk4_full_N{n}_{steps}steps_auto"), |bch| {
            bch.iter(|| lyapunov_flow(&rnn, &x0, &auto).unwrap())
        });
    }
    grp.finish();
}

fn scaling(_c: &mut Criterion) {
    if std::env::var("LYAP_SCALING").is_err() {
        eprintln!("(set LYAP_SCALING=1 for the N and k scaling table)");
        return;
    }
    eprintln!("scaling (tanh map, g = 1.5, seconds per step):");
    eprintln!("{:>6} {:>6} {:>12}", "N", "k", "s/step");
    for n in [100usize, 200, 500, 1000, 2000] {
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
        let s = 1.5 / (n as f64).sqrt();
        let w = Mat::<f64>::from_fn(n, n, |_, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            s * z
        });
        let x0: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let map = RnnMap::new(w, Activation::Tanh).unwrap();
        for k in [1usize, 10, 50, n] {
            if k > n {
                continue;
            }
            let steps = ((2e9 / (n as f64 * n as f64 * k as f64 * 4.0)) as usize).clamp(3, 2000);
            let t = per_step(steps, |st| {
                lyapunov_map(
                    &map,
                    &x0,
                    &LyapunovOptions {
                        steps: st,
                        k: Some(k),
                        ..Default::default()
                    },
                )
                .unwrap();
            });
            eprintln!("{n:>6} {k:>6} {t:>12.3e}");
        }
    }
}

criterion_group!(benches, bench_maps, scaling);
criterion_main!(benches);

/// The floor's two pieces at size n: `gemm_N{n}` (one N × N × N product) and
/// `householder_factor_N{n}` (the blocked Householder QR of `QrWorkspace`); returns the test
/// matrices, the workspace and the factorised matrix for further pieces.
fn floor_pieces(
    grp: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
    par: faer::Par,
) -> (Mat<f64>, Mat<f64>, QrWorkspace, Mat<f64>) {
    let a = Mat::<f64>::from_fn(n, n, |i, j| ((i * 31 + j * 17) % 101) as f64 / 101.0 - 0.5);
    let q = Mat::<f64>::from_fn(n, n, |i, j| ((i * 7 + j * 13) % 97) as f64 / 97.0 - 0.5);
    let mut out = Mat::<f64>::zeros(n, n);
    grp.bench_function(format!("gemm_N{n}"), |b| {
        b.iter(|| {
            faer::linalg::matmul::matmul(
                out.as_mut(),
                faer::Accum::Replace,
                a.as_ref(),
                q.as_ref(),
                1.0,
                par,
            )
        })
    });
    let mut ws = QrWorkspace::new(n, n);
    let (mut f, mut d) = (a.clone(), vec![0.0; n]);
    grp.bench_function(format!("householder_factor_N{n}"), |b| {
        b.iter(|| {
            f.copy_from(&a);
            ws.factor_in_place(f.as_mut(), &mut d)
        })
    });
    (a, q, ws, f)
}
