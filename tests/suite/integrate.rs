//! Integrator tests: exact solutions, measured orders, the stiff reference, stop conditions.

use faer::Mat;
use neurodyn::integrate::{integrate, Method, Options, SaveAt, Status};
use neurodyn::model::Model;
use neurodyn::testing::{expm, Blowup, Linear, Logistic, Robertson, Spiral};
use neurodyn::IntegrateError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn randn(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A random stable 10×10 matrix: 0.8 Z/√n − 1.5 I (spectral radius of Z/√n ≈ 1).
fn stable_matrix(n: usize, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = 0.8 / (n as f64).sqrt();
    let z: Vec<f64> = (0..n * n).map(|_| randn(&mut rng)).collect();
    Mat::from_fn(n, n, |i, j| {
        s * z[i * n + j] - if i == j { 1.5 } else { 0.0 }
    })
}

fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn expm_is_verified() {
    // e^A e^{−A} = I for a random matrix.
    let a = stable_matrix(10, 7);
    let neg = Mat::from_fn(10, 10, |i, j| -a[(i, j)]);
    let p = &expm(&a) * &expm(&neg);
    for i in 0..10 {
        for j in 0..10 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((p[(i, j)] - want).abs() < 1e-13, "({i},{j}): {}", p[(i, j)]);
        }
    }
    // A rotation generator with a large angle (exercises scaling and squaring).
    let th = 7.3;
    let r = expm(&Mat::from_fn(2, 2, |i, j| match (i, j) {
        (0, 1) => -th,
        (1, 0) => th,
        _ => 0.0,
    }));
    assert!((r[(0, 0)] - th.cos()).abs() < 1e-13 && (r[(1, 0)] - th.sin()).abs() < 1e-13);
    // Diagonal.
    let d = expm(&Mat::from_fn(3, 3, |i, j| {
        if i == j {
            -(i as f64) * 2.5
        } else {
            0.0
        }
    }));
    for i in 0..3 {
        assert!((d[(i, i)] - (-(i as f64) * 2.5).exp()).abs() < 1e-15);
    }
}

#[test]
fn linear_system_matches_expm_for_every_method() {
    let n = 10;
    let a = stable_matrix(n, 42);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x0: Vec<f64> = (0..n).map(|_| randn(&mut rng)).collect();
    let e = expm(&a);
    let exact: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| e[(i, j)] * x0[j]).sum())
        .collect();
    let sys = Linear { a };
    let opts = Options::new().save(SaveAt::Final);
    // (method, tolerance each promises at t = 1)
    let cases = [
        (Method::rk4(0.01), 1e-8),   // C h⁴ with h = 1e-2
        (Method::euler(1e-4), 1e-3), // C h
        (Method::dopri5(1e-10, 1e-12), 1e-9),
        (
            Method::Tsit5 {
                rtol: 1e-10,
                atol: 1e-12,
            },
            1e-9,
        ),
        (
            Method::Tsit45 {
                rtol: 1e-10,
                atol: 1e-12,
            },
            1e-8,
        ),
        (Method::bdf(1e-8, 1e-10), 1e-6),
        (
            Method::Esdirk34 {
                rtol: 1e-8,
                atol: 1e-10,
            },
            1e-6,
        ),
        (
            Method::TrBdf2 {
                rtol: 1e-8,
                atol: 1e-10,
            },
            1e-5,
        ),
    ];
    for (m, tol) in cases {
        let sol = integrate(&sys, &x0, (0.0, 1.0), &m, &opts).unwrap();
        assert_eq!(sol.t, vec![1.0]);
        let err = max_rel_err(sol.last(), &exact);
        assert!(err < tol, "{m:?}: error {err:e} ≥ {tol:e}");
        // And not absurdly better than promised for the low-order fixed-step method (checks the
        // test would catch a wrong comparison).
        if let Method::Euler { .. } = m {
            assert!(err > 1e-7, "Euler error {err:e} is implausibly small");
        }
    }
}

fn fitted_order(dts: &[f64], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = dts.iter().map(|d| d.ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let k = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / k, ys.iter().sum::<f64>() / k);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

#[test]
fn measured_convergence_orders_of_euler_and_rk4() {
    let sys = Spiral { omega: 2.0 };
    let x0 = [1.0, 0.5];
    let t1 = 2.0;
    let exact = sys.exact(x0, t1);
    let opts = Options::new().save(SaveAt::Final);
    let order = |mk: fn(f64) -> Method, dts: &[f64]| {
        let errs: Vec<f64> = dts
            .iter()
            .map(|&dt| {
                let s = integrate(&sys, &x0, (0.0, t1), &mk(dt), &opts).unwrap();
                max_rel_err(s.last(), &exact)
            })
            .collect();
        fitted_order(dts, &errs)
    };
    let p_euler = order(Method::euler, &[0.01, 0.005, 0.0025, 0.00125, 0.000625]);
    let p_rk4 = order(Method::rk4, &[0.1, 0.05, 0.025, 0.0125, 0.00625]);
    assert!((p_euler - 1.0).abs() < 0.2, "Euler order {p_euler}");
    assert!((p_rk4 - 4.0).abs() < 0.2, "RK4 order {p_rk4}");
}

#[test]
fn dopri5_error_scales_with_tolerance_and_dense_output_is_accurate() {
    let sys = Logistic { r: 3.0 };
    let x0 = [0.01];
    let times: Vec<f64> = (0..=40)
        .map(|k| 0.1 * k as f64 + 0.0123)
        .filter(|&t| t <= 4.0)
        .collect();
    for mk in [Method::dopri5 as fn(f64, f64) -> Method, |r, a| {
        Method::Tsit5 { rtol: r, atol: a }
    }] {
        let mut prev_steps = 0;
        for &tol in &[1e-4, 1e-7, 1e-10] {
            let m = mk(tol, tol * 1e-2);
            let dense = integrate(
                &sys,
                &x0,
                (0.0, 4.0),
                &m,
                &Options::new().save(SaveAt::Times(times.clone())),
            )
            .unwrap();
            let fin = integrate(
                &sys,
                &x0,
                (0.0, 4.0),
                &m,
                &Options::new().save(SaveAt::Final),
            )
            .unwrap();
            // Output times do not force steps.
            assert_eq!(dense.stats.n_accepted, fin.stats.n_accepted);
            assert!(dense.stats.n_accepted > prev_steps);
            prev_steps = dense.stats.n_accepted;
            let mut worst = 0.0f64;
            for (k, &t) in dense.t.iter().enumerate() {
                worst = worst.max((dense.state(k)[0] - sys.exact(x0[0], t)).abs());
            }
            assert!(worst < 50.0 * tol, "{m:?}: dense-output error {worst:e}");
        }
    }
}

#[test]
fn robertson_with_bdf_matches_hairer_wanner_in_few_steps() {
    let y0 = [1.0, 0.0, 0.0];
    let opts = Options::new().save(SaveAt::Final);
    let bdf = integrate(
        &Robertson,
        &y0,
        (0.0, 40.0),
        &Method::bdf(1e-8, 1e-12),
        &opts,
    )
    .unwrap();
    let y = bdf.last();
    for i in 0..3 {
        let rel = (y[i] - Robertson::Y40[i]).abs() / Robertson::Y40[i];
        assert!(
            rel < 2e-6,
            "component {i}: {} vs {} (rel {rel:e})",
            y[i],
            Robertson::Y40[i]
        );
    }
    // Mass conservation y1 + y2 + y3 = 1.
    assert!((y.iter().sum::<f64>() - 1.0).abs() < 1e-10);
    for m in [
        Method::Esdirk34 {
            rtol: 1e-7,
            atol: 1e-12,
        },
        Method::TrBdf2 {
            rtol: 1e-7,
            atol: 1e-12,
        },
    ] {
        let s = integrate(&Robertson, &y0, (0.0, 40.0), &m, &opts).unwrap();
        for i in 0..3 {
            let rel = (s.last()[i] - Robertson::Y40[i]).abs() / Robertson::Y40[i];
            assert!(rel < 1e-4, "{m:?} component {i}: rel {rel:e}");
        }
    }
    // An explicit method needs orders of magnitude more steps (stability-limited).
    let ex = integrate(
        &Robertson,
        &y0,
        (0.0, 40.0),
        &Method::dopri5(1e-6, 1e-12),
        &opts,
    )
    .unwrap();
    assert!(
        bdf.stats.n_accepted * 50 < ex.stats.n_accepted,
        "BDF {} steps vs Dormand–Prince {}",
        bdf.stats.n_accepted,
        ex.stats.n_accepted
    );
    assert!(bdf.stats.n_lu > 0 && bdf.stats.n_jvp > 0);
}

#[test]
fn work_counters_are_exact_for_fixed_steps() {
    let sys = Spiral { omega: 1.0 };
    let s = integrate(
        &sys,
        &[1.0, 0.0],
        (0.0, 1.0),
        &Method::rk4(0.1),
        &Options::new(),
    )
    .unwrap();
    assert_eq!(s.stats.n_accepted, 10);
    assert_eq!(s.stats.n_rhs, 1 + 4 * 10);
    assert_eq!(s.t.len(), 11);
    assert!((s.t[10] - 1.0).abs() == 0.0);
    let e = integrate(
        &sys,
        &[1.0, 0.0],
        (0.0, 1.05),
        &Method::euler(0.1),
        &Options::new(),
    )
    .unwrap();
    assert_eq!(e.stats.n_accepted, 11); // last step shortened to 0.05
    assert_eq!(e.stats.n_rhs, 12);
    assert_eq!(*e.t.last().unwrap(), 1.05);
}

#[test]
fn hermite_dense_output_of_fixed_steps() {
    let sys = Spiral { omega: 2.0 };
    let x0 = [1.0, 0.5];
    let ts = vec![0.0, 0.013, 0.5, 0.777, 1.0];
    let s = integrate(
        &sys,
        &x0,
        (0.0, 1.0),
        &Method::rk4(0.01),
        &Options::new().save(SaveAt::Times(ts.clone())),
    )
    .unwrap();
    assert_eq!(s.t, ts);
    for (k, &t) in ts.iter().enumerate() {
        let ex = sys.exact(x0, t);
        assert!(max_rel_err(s.state(k), &ex) < 1e-7, "t = {t}");
    }
}

#[test]
fn steady_state_stop_for_every_method() {
    // A contracting system: x' = A x with A stable; steady state at 0.
    let sys = Linear {
        a: stable_matrix(6, 3),
    };
    let x0 = [1.0, -1.0, 0.5, 0.2, -0.3, 0.9];
    for m in [
        Method::rk4(0.01),
        Method::euler(0.01),
        Method::dopri5(1e-8, 1e-10),
        Method::Tsit5 {
            rtol: 1e-8,
            atol: 1e-10,
        },
        Method::Dop853 {
            rtol: 1e-8,
            atol: 1e-10,
        },
        Method::bdf(1e-8, 1e-10),
        Method::Esdirk34 {
            rtol: 1e-8,
            atol: 1e-10,
        },
    ] {
        let s = integrate(
            &sys,
            &x0,
            (0.0, 1000.0),
            &m,
            &Options::new().steady_state(1e-6).save(SaveAt::Final),
        )
        .unwrap();
        match s.status {
            Status::SteadyState { t, residual } => {
                assert!(
                    t < 100.0 && residual < 1e-6,
                    "{m:?}: t = {t}, residual = {residual}"
                );
                let mut f = vec![0.0; 6];
                sys.rhs(t, s.last(), &mut f);
                assert!(f.iter().all(|v| v.abs() < 1e-6));
            }
            other => panic!("{m:?}: expected a steady state, got {other:?}"),
        }
    }
}

#[test]
fn blowup_is_an_error_not_a_hang_or_nans() {
    for m in [
        Method::dopri5(1e-6, 1e-9),
        Method::rk4(0.01),
        Method::euler(0.001),
        Method::bdf(1e-6, 1e-9),
    ] {
        let r = integrate(
            &Blowup,
            &[1.0],
            (0.0, 2.0),
            &m,
            &Options::new().max_steps(1_000_000),
        );
        match r {
            Err(IntegrateError::Blowup { t, .. }) | Err(IntegrateError::NonFinite { t }) => {
                assert!(t > 0.9 && t <= 2.0, "{m:?}: t = {t}");
            }
            Err(IntegrateError::StepSizeTooSmall { t, .. })
            | Err(IntegrateError::Solver { t, .. }) => {
                assert!(t > 0.9 && t < 1.1, "{m:?}: t = {t}");
            }
            other => panic!("{m:?}: expected a blow-up error, got {other:?}"),
        }
    }
}

#[test]
fn invalid_options_name_the_field() {
    let sys = Spiral { omega: 1.0 };
    let o = Options::new();
    let field = |r: Result<_, IntegrateError>| match r {
        Err(IntegrateError::InvalidOption { field, .. }) => field,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    assert_eq!(
        field(integrate(
            &sys,
            &[1.0, 0.0],
            (0.0, 1.0),
            &Method::rk4(0.0),
            &o
        )),
        "dt"
    );
    assert_eq!(
        field(integrate(
            &sys,
            &[1.0, 0.0],
            (0.0, 1.0),
            &Method::dopri5(0.0, 1e-9),
            &o
        )),
        "rtol"
    );
    assert_eq!(
        field(integrate(
            &sys,
            &[1.0, 0.0],
            (0.0, 1.0),
            &Method::dopri5(1e-6, -1.0),
            &o
        )),
        "atol"
    );
    assert_eq!(
        field(integrate(&sys, &[1.0], (0.0, 1.0), &Method::rk4(0.1), &o)),
        "x0"
    );
    assert_eq!(
        field(integrate(
            &sys,
            &[f64::NAN, 0.0],
            (0.0, 1.0),
            &Method::rk4(0.1),
            &o
        )),
        "x0"
    );
    assert_eq!(
        field(integrate(
            &sys,
            &[1.0, 0.0],
            (1.0, 0.0),
            &Method::rk4(0.1),
            &o
        )),
        "t1"
    );
    let bad_save = Options::new().save(SaveAt::Times(vec![0.5, 2.0]));
    assert_eq!(
        field(integrate(
            &sys,
            &[1.0, 0.0],
            (0.0, 1.0),
            &Method::rk4(0.1),
            &bad_save
        )),
        "save"
    );
    assert!(Method::from_name("rk5", 0.1, 1e-6, 1e-9).is_err());
}

/// Ensembles: every member of `integrate_ensemble` equals its single `integrate` run bit for bit —
/// the saved samples, the step counts and the status — for a chaotic rate network (whose batched
/// right-hand side is one matrix product; members take different numbers of steps), with both
/// adaptive explicit methods, for N across a column block (300 > 256), and for a model on the
/// default per-column `rhs_batch`; bad starts are named.
#[test]
fn ensemble_members_equal_single_runs_bit_for_bit() {
    use neurodyn::integrate::integrate_ensemble;
    use neurodyn::model::{Activation, RateRnn};
    for (n, count) in [(40usize, 9usize), (300, 3)] {
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
        let g = 1.8 / (n as f64).sqrt();
        let w = Mat::from_fn(n, n, |_, _| g * randn(&mut rng));
        let m = RateRnn::new(w, Activation::Tanh).unwrap();
        let x0s: Vec<Vec<f64>> = (0..count)
            .map(|k| {
                (0..n)
                    .map(|_| (0.2 + 0.3 * k as f64) * randn(&mut rng))
                    .collect()
            })
            .collect();
        for method in [
            Method::Tsit5 {
                rtol: 1e-7,
                atol: 1e-9,
            },
            Method::dopri5(1e-6, 1e-8),
        ] {
            let opts = Options::new().save(SaveAt::Uniform(11));
            let ens = integrate_ensemble(&m, &x0s, (0.0, 15.0), &method, &opts).unwrap();
            let mut steps = vec![];
            for (x0, e) in x0s.iter().zip(&ens) {
                let e = e.as_ref().unwrap();
                let s = integrate(&m, x0, (0.0, 15.0), &method, &opts).unwrap();
                assert!(e.t == s.t && e.x == s.x && e.stats == s.stats && e.status == s.status);
                steps.push(s.stats.n_accepted + s.stats.n_rejected);
            }
            assert!(
                steps.iter().any(|&s| s != steps[0]),
                "members should differ: {steps:?}"
            );
        }
    }
    // A model on the default rhs_batch (one rhs per column), with a steady-state stop.
    let lin = Linear {
        a: stable_matrix(10, 3),
    };
    let x0s: Vec<Vec<f64>> = (0..4).map(|k| vec![1.0 + k as f64; 10]).collect();
    let opts = Options::new().save(SaveAt::Steps).steady_state(1e-6);
    let method = Method::Tsit5 {
        rtol: 1e-8,
        atol: 1e-10,
    };
    let ens = integrate_ensemble(&lin, &x0s, (0.0, 100.0), &method, &opts).unwrap();
    for (x0, e) in x0s.iter().zip(&ens) {
        let s = integrate(&lin, x0, (0.0, 100.0), &method, &opts).unwrap();
        let e = e.as_ref().unwrap();
        assert!(e.x == s.x && matches!(e.status, Status::SteadyState { .. }));
    }
    let bad = vec![vec![0.0; 10], vec![f64::NAN; 10]];
    match integrate_ensemble(&lin, &bad, (0.0, 1.0), &method, &opts) {
        Err(IntegrateError::InvalidOption { field, problem }) => {
            assert!(field == "x0" && problem.contains("state 1"), "{problem}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn dop853_is_eighth_order_with_seventh_order_dense_output() {
    // The spiral's closed form: the global error of DOP853 falls with the tolerance, and
    // against the number of steps like h⁸ (fitted slope of log error vs log steps ≈ −8 over a
    // range where round-off is far): it beats Dopri5 by orders of magnitude per evaluation at
    // tight tolerances.
    let sys = Spiral { omega: 2.0 };
    let x0 = [1.0, 0.5];
    let t1 = 4.0;
    let ex = sys.exact(x0, t1);
    let (mut steps, mut errs) = (vec![], vec![]);
    for k in [4, 5, 6, 7] {
        let tol = 10f64.powi(-k);
        let s = integrate(
            &sys,
            &x0,
            (0.0, t1),
            &Method::Dop853 {
                rtol: tol,
                atol: tol,
            },
            &Options::new().save(SaveAt::Final),
        )
        .unwrap();
        let err = max_rel_err(s.last(), &ex);
        assert!(err < 50.0 * tol, "tol {tol:e}: error {err:e}");
        steps.push(s.stats.n_accepted as f64);
        errs.push(err);
        assert_eq!(
            s.stats.n_rhs,
            2 + 11 * (s.stats.n_accepted + s.stats.n_rejected) + s.stats.n_accepted
        );
    }
    // error ∝ steps^(−p): p from the end points.
    let p = -(errs[3] / errs[0]).ln() / (steps[3] / steps[0]).ln();
    assert!(
        p > 6.5 && p < 10.0,
        "order {p:.2} from steps {steps:?}, errors {errs:?}"
    );
    // At 1e-10 it needs far fewer evaluations than Dopri5 for a smaller error.
    let run = |m: Method| {
        integrate(
            &sys,
            &x0,
            (0.0, t1),
            &m,
            &Options::new().save(SaveAt::Final),
        )
        .unwrap()
    };
    let (a, b) = (
        run(Method::Dop853 {
            rtol: 1e-10,
            atol: 1e-10,
        }),
        run(Method::dopri5(1e-10, 1e-10)),
    );
    assert!(
        a.stats.n_rhs * 2 < b.stats.n_rhs,
        "{} vs {}",
        a.stats.n_rhs,
        b.stats.n_rhs
    );
    assert!(max_rel_err(a.last(), &ex) < 1e-8);
    // Dense output at requested times, 7th order: as accurate as the steps themselves.
    let ts = vec![0.0, 0.013, 0.5, 0.777, 2.5, 4.0];
    let s = integrate(
        &sys,
        &x0,
        (0.0, t1),
        &Method::Dop853 {
            rtol: 1e-10,
            atol: 1e-12,
        },
        &Options::new().save(SaveAt::Times(ts.clone())),
    )
    .unwrap();
    assert_eq!(s.t, ts);
    for (k, &t) in ts.iter().enumerate() {
        assert!(max_rel_err(s.state(k), &sys.exact(x0, t)) < 1e-9, "t = {t}");
    }
    // By name, and its tolerances checked like the others'.
    assert!(matches!(
        Method::from_name("dop853", 0.1, 1e-6, 1e-9).unwrap(),
        Method::Dop853 { .. }
    ));
    let bad = integrate(
        &sys,
        &x0,
        (0.0, 1.0),
        &Method::Dop853 {
            rtol: 2.0,
            atol: 1e-9,
        },
        &Options::new(),
    );
    assert!(bad.unwrap_err().to_string().contains("rtol"));
}
