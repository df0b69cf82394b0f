//! Integrator benchmarks on the peers' problem (`../shared/peers/rnn_ode.py`):
//! dx/dt = −x + W tanh(x) + b, N ∈ {100, 500}, g = 1.5, t ∈ [0, 50], rtol 1e-6, atol 1e-9.
//!
//! The `.npy` files come from `$PEERS_DATA` (default `../shared/peers/data`, written by the peer
//! script) so both sides integrate the identical problem; run `benches/compare_rnn_ode.sh` to get
//! both in one run. Besides the timings, prints for each N: rhs evaluations, steps, the error of
//! x(50) against a tight (rtol 1e-12) reference, and the time of one rhs evaluation (the floor).

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::integrate::{integrate, integrate_ensemble, Method, Options, SaveAt};
use neurodyn::io::{read_npy_mat, read_npy_vec};
use neurodyn::model::{Activation, Model, RateRnn};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

fn load(n: usize) -> Option<(RateRnn, Vec<f64>)> {
    let dir = PathBuf::from(
        std::env::var("PEERS_DATA").unwrap_or_else(|_| "../shared/peers/data".into()),
    );
    let f = |k: &str| dir.join(format!("rnn_N{n}_g1.5_{k}.npy"));
    if !f("W").exists() {
        eprintln!(
            "skipping N = {n}: {} not found (run ../shared/peers/rnn_ode.py first)",
            f("W").display()
        );
        return None;
    }
    let w = read_npy_mat(&f("W"), "W", Some((n, n))).ok()?;
    let b = read_npy_vec(&f("b"), "b", Some(n)).ok()?;
    let x0 = read_npy_vec(&f("x0"), "x0", Some(n)).ok()?;
    Some((
        RateRnn::new(w, Activation::Tanh).ok()?.with_bias(b).ok()?,
        x0,
    ))
}

fn bench_rnn_ode(c: &mut Criterion) {
    let mut g = c.benchmark_group("rnn_ode");
    g.sample_size(10);
    for n in [100usize, 500] {
        let Some((m, x0)) = load(n) else { continue };
        let opts = Options::new().save(SaveAt::Final);
        let reference =
            integrate(&m, &x0, (0.0, 50.0), &Method::dopri5(1e-12, 1e-12), &opts).unwrap();
        for (name, meth) in [
            ("dopri5", Method::dopri5(1e-6, 1e-9)),
            (
                "tsit5",
                Method::Tsit5 {
                    rtol: 1e-6,
                    atol: 1e-9,
                },
            ),
            (
                "tsit45_diffsol",
                Method::Tsit45 {
                    rtol: 1e-6,
                    atol: 1e-9,
                },
            ),
        ] {
            let s = integrate(&m, &x0, (0.0, 50.0), &meth, &opts).unwrap();
            let err = s
                .last()
                .iter()
                .zip(reference.last())
                .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
            eprintln!(
                "N = {n} {name}: nfev = {}, accepted = {}, rejected = {}, max|x50 − ref| = {err:.3e}, x50[..5] = {:?}",
                s.stats.n_rhs,
                s.stats.n_accepted,
                s.stats.n_rejected,
                &s.last()[..5]
            );
            g.bench_function(format!("{name}_N{n}"), |bch| {
                bch.iter(|| {
                    integrate(black_box(&m), black_box(&x0), (0.0, 50.0), &meth, &opts).unwrap()
                })
            });
        }
        // The floor: one right-hand side (one N×N matrix-vector product plus O(N) work).
        let mut dx = vec![0.0; n];
        g.bench_function(format!("rhs_N{n}"), |bch| {
            bch.iter(|| m.rhs(0.0, black_box(&x0), &mut dx))
        });
        let reps = 20_000_000 / (n * n);
        let t = Instant::now();
        for _ in 0..reps {
            m.rhs(0.0, black_box(&x0), &mut dx);
        }
        eprintln!(
            "N = {n}: one rhs = {:.3} µs",
            t.elapsed().as_secs_f64() / reps as f64 * 1e6
        );
    }
    g.finish();
}

/// Ensembles (issue 18, item 2): the 64 starts of `benches/peers/ensemble_diffrax.py`
/// (`ens_N*_x0s.npy`, 0.5·N(0, 1)) over [0, 20], Tsit5 at rtol 1e-6 / atol 1e-9, final state
/// saved, against the first start alone — the "64 in under 8× one" ratio and the diffrax
/// comparison's neurodyn side.
fn bench_ensemble(c: &mut Criterion) {
    let mut g = c.benchmark_group("ensemble");
    g.sample_size(10);
    for n in [100usize, 500] {
        let Some((m, _)) = load(n) else { continue };
        let dir = PathBuf::from(
            std::env::var("PEERS_DATA").unwrap_or_else(|_| "../shared/peers/data".into()),
        );
        let Ok(x0s) = read_npy_mat(&dir.join(format!("ens_N{n}_x0s.npy")), "x0s", None) else {
            eprintln!("skipping the N = {n} ensemble: run benches/peers/ensemble_diffrax.py first");
            continue;
        };
        let starts: Vec<Vec<f64>> = (0..x0s.nrows())
            .map(|i| (0..n).map(|j| x0s[(i, j)]).collect())
            .collect();
        let meth = Method::Tsit5 {
            rtol: 1e-6,
            atol: 1e-9,
        };
        let opts = Options::new().save(SaveAt::Final);
        g.bench_function(format!("tsit5_N{n}_one"), |bch| {
            bch.iter(|| integrate(black_box(&m), &starts[0], (0.0, 20.0), &meth, &opts).unwrap())
        });
        g.bench_function(format!("tsit5_N{n}_{}", starts.len()), |bch| {
            bch.iter(|| {
                integrate_ensemble(black_box(&m), &starts, (0.0, 20.0), &meth, &opts).unwrap()
            })
        });
        // The floor of each: its right-hand-side evaluations at the cost of one evaluation. The
        // ensemble runs two batches of 32 members, one per thread: its floor is one batched
        // evaluation of 32 members on one thread per 32 member evaluations on each thread.
        let one = integrate(&m, &starts[0], (0.0, 20.0), &meth, &opts).unwrap();
        let ens = integrate_ensemble(&m, &starts, (0.0, 20.0), &meth, &opts).unwrap();
        let member_evals: usize = ens.iter().map(|s| s.as_ref().unwrap().stats.n_rhs).sum();
        let mut dx = vec![0.0; n];
        let t_one = time_per_call(|| m.rhs(0.0, &starts[0], &mut dx));
        let half = starts.len() / 2;
        let flat: Vec<f64> = starts[..half].iter().flatten().copied().collect();
        let (t, mut d) = (vec![0.0; half], vec![0.0; half * n]);
        let t_half = time_per_call(|| m.rhs_batch(&t, &flat, &mut d));
        let floor_one = one.stats.n_rhs as f64 * t_one;
        let floor_all = member_evals as f64 / (2 * half) as f64 * t_half;
        eprintln!(
            "ensemble floor N = {n}: one member {} evaluations × {:.2} µs = {:.3} ms; {} members \
             {member_evals} evaluations, a batched evaluation of {half} members on one thread \
             {:.1} µs ({:.2} µs per member) → {:.3} ms on two threads = {:.1}× the single \
             member's floor",
            one.stats.n_rhs,
            t_one * 1e6,
            floor_one * 1e3,
            starts.len(),
            t_half * 1e6,
            t_half * 1e6 / half as f64,
            floor_all * 1e3,
            floor_all / floor_one
        );
    }
    g.finish();
}

/// Seconds per call of `f`: the best of five rounds of enough calls to take ≈ 20 ms.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    let reps = ((0.02 / t.elapsed().as_secs_f64().max(1e-9)) as usize).clamp(1, 1_000_000);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Work–precision (issue 35, row P1): N = 500, t ∈ [0, 10], rtol 1e-3 … 1e-10 (atol 1e-3 rtol),
/// Tsit5, Dopri5 and DOP853, error against the peer's DOP853 1e-13 reference (`wp_N500_ref.npy`, written
/// by `benches/peers/work_precision.py`). Prints per rtol the error and evaluations; the times
/// are the criterion rows `work_precision/{tsit5,dopri5}_rtol1e-k`.
fn bench_work_precision(c: &mut Criterion) {
    let Some((m, x0)) = load(500) else { return };
    let dir = PathBuf::from(
        std::env::var("PEERS_DATA").unwrap_or_else(|_| "../shared/peers/data".into()),
    );
    let Ok(reference) = read_npy_vec(&dir.join("wp_N500_ref.npy"), "ref", Some(500)) else {
        eprintln!("skipping work_precision: run benches/peers/work_precision.py first");
        return;
    };
    let mut g = c.benchmark_group("work_precision");
    g.sample_size(10);
    let opts = Options::new().save(SaveAt::Final);
    for k in 3..=10 {
        let rtol = 10f64.powi(-k);
        for (name, meth) in [
            (
                "tsit5",
                Method::Tsit5 {
                    rtol,
                    atol: 1e-3 * rtol,
                },
            ),
            ("dopri5", Method::dopri5(rtol, 1e-3 * rtol)),
            (
                "dop853",
                Method::Dop853 {
                    rtol,
                    atol: 1e-3 * rtol,
                },
            ),
        ] {
            let s = integrate(&m, &x0, (0.0, 10.0), &meth, &opts).unwrap();
            let err = s
                .last()
                .iter()
                .zip(&reference)
                .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
            eprintln!(
                "work_precision {name} rtol 1e-{k}: nfev = {}, error = {err:.3e}",
                s.stats.n_rhs
            );
            g.bench_function(format!("{name}_rtol1e-{k}"), |bch| {
                bch.iter(|| {
                    integrate(black_box(&m), black_box(&x0), (0.0, 10.0), &meth, &opts).unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_rnn_ode, bench_ensemble, bench_work_precision);
criterion_main!(benches);
