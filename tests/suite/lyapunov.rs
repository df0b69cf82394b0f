//! Lyapunov spectra: spec cross-check, exact linear cases, identities, claims.

use crate::common::LYAP_SPEC;

use faer::linalg::solvers::DenseSolveCore;
use faer::Mat;
use neurodyn::io::{read_npy_mat, read_npy_vec};
use neurodyn::lyapunov::{
    kaplan_yorke, lyapunov_flow, lyapunov_map, InitialFrame, LyapunovOptions,
};
use neurodyn::model::{Activation, EulerMap, Map, RateRnn, RnnMap};
use neurodyn::testing::{on_threads, Linear};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

fn randn(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn fixture() -> (Mat<f64>, Vec<f64>) {
    let w = read_npy_mat(
        Path::new("tests/fixtures/lyap_tanh_N10_g1.5_W.npy"),
        "W",
        Some((10, 10)),
    )
    .unwrap();
    let h0 = read_npy_vec(
        Path::new("tests/fixtures/lyap_tanh_N10_g1.5_h0.npy"),
        "x0",
        Some(10),
    )
    .unwrap();
    (w, h0)
}

/// Engelken, Wolf & Abbott (2023): the deterministic tanh-map spectrum (N = 10, g = 1.5).
#[test]
fn tanh_map_matches_the_spec_cross_check() {
    let (w, h0) = fixture();
    // Checksums of the fixture (W = 1.5 Z/√10).
    let z00 = w[(0, 0)] * 10f64.sqrt() / 1.5;
    assert!((z00 - 0.1257302210933933).abs() < 1e-15);
    assert!((h0.iter().sum::<f64>() - (-2.1094371773133807)).abs() < 1e-14);
    let map = RnnMap::new(w, Activation::Tanh).unwrap();
    // State after the 100-step warm-up.
    let mut h = h0.clone();
    for t in 0..100 {
        map.step(t, &mut h);
    }
    for (got, want) in h
        .iter()
        .zip([-0.6567551293939247, 0.8505150850519242, 0.5172017250860618])
    {
        assert!((got - want).abs() < 1e-13, "{got} vs {want}");
    }
    let opts = LyapunovOptions {
        warmup: 100,
        steps: 1000,
        ..Default::default()
    };
    let s = lyapunov_map(&map, &h0, &opts).unwrap();
    let got = s.sorted();
    for i in 0..10 {
        // The spec prints 10 significant digits.
        assert!(
            (got[i] - LYAP_SPEC[i]).abs() < 1e-9 * LYAP_SPEC[i].abs().max(1e-3) + 1e-12,
            "λ_{i} = {} vs {}",
            got[i],
            LYAP_SPEC[i]
        );
    }
    assert!((s.sum() - (-9.153957007720)).abs() < 1e-10);
    // Σλ = ⟨ln|det J_t|⟩ exactly (k = N), to round-off.
    assert!((s.sum() - s.sum_reference.unwrap()).abs() < 1e-12);
    assert_eq!(s.entropy(), 0.0);
    assert_eq!(s.kaplan_yorke(), 0.0);
}

/// A random real-diagonalisable matrix S D S⁻¹.
fn similar(d: &[f64], seed: u64) -> Mat<f64> {
    let n = d.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = Mat::<f64>::from_fn(n, n, |i, j| {
        randn(&mut rng) + if i == j { 3.0 } else { 0.0 }
    });
    let sinv = s.partial_piv_lu().inverse();
    let dm = Mat::<f64>::from_fn(n, n, |i, j| if i == j { d[i] } else { 0.0 });
    &s * &dm * &sinv
}

#[test]
fn linear_map_exponents_are_log_moduli_of_eigenvalues() {
    let eig = [3.0, -2.0, 1.5, 0.8, -0.5, 0.3];
    let a = similar(&eig, 1);
    let map = RnnMap::new(a, Activation::Linear).unwrap();
    // h0 = 0 stays at 0 (the tangent dynamics of a linear map do not depend on the state).
    let opts = LyapunovOptions {
        transient: 400,
        steps: 200,
        frame: InitialFrame::Random(7),
        ..Default::default()
    };
    let s = lyapunov_map(&map, &[0.0; 6], &opts).unwrap();
    let mut want: Vec<f64> = eig.iter().map(|e: &f64| e.abs().ln()).collect();
    want.sort_by(|a, b| b.total_cmp(a));
    for (g, w) in s.exponents.iter().zip(&want) {
        assert!((g - w).abs() < 1e-10, "{g} vs {w}");
    }
    // And the sum identity ⟨ln|det A|⟩ = Σ ln|eig|.
    assert!((s.sum_reference.unwrap() - want.iter().sum::<f64>()).abs() < 1e-10);
}

#[test]
fn linear_flow_exponents_are_real_parts_of_eigenvalues() {
    let eig = [1.0, -0.5, -1.0, -2.5];
    let sys = Linear {
        a: similar(&eig, 2),
    };
    let opts = LyapunovOptions {
        dt: 0.01,
        transient: 6000,
        steps: 1000,
        ..Default::default()
    };
    // Start at 0: the state stays there, the tangent frame does the work.
    let s = lyapunov_flow(&sys, &[0.0; 4], &opts).unwrap();
    for (g, w) in s.exponents.iter().zip(&eig) {
        assert!((g - w).abs() < 1e-8, "{g} vs {w}");
    }
    // tr A = Σ eig.
    assert!((s.sum_reference.unwrap() - eig.iter().sum::<f64>()).abs() < 1e-12);
}

fn tanh_map(n: usize, g: f64, seed: u64) -> (RnnMap, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = g / (n as f64).sqrt();
    let w = Mat::<f64>::from_fn(n, n, |_, _| s * randn(&mut rng));
    let h0: Vec<f64> = (0..n).map(|_| randn(&mut rng)).collect();
    (RnnMap::new(w, Activation::Tanh).unwrap(), h0)
}

#[test]
fn contracting_and_chaotic_networks() {
    let opts = LyapunovOptions {
        warmup: 200,
        steps: 1000,
        ..Default::default()
    };
    let (m, h0) = tanh_map(50, 0.5, 3);
    let s = lyapunov_map(&m, &h0, &opts).unwrap();
    assert!(s.max() < 0.0, "g = 0.5: λ_max = {}", s.max());
    // The orbit collapses to h = 0, so λ_i → ln|eig_i(W)|: the sum is ln|det W|.
    let ldw: f64 = {
        let lu = m.w().partial_piv_lu();
        (0..50).map(|i| lu.U()[(i, i)].abs().ln()).sum()
    };
    assert!(
        (s.sum() - ldw).abs() < 1e-6,
        "{} vs ln|det W| = {ldw}",
        s.sum()
    );
    let (m, h0) = tanh_map(50, 3.0, 4);
    let s = lyapunov_map(&m, &h0, &opts).unwrap();
    assert!(s.max() > 0.05, "g = 3: λ_max = {}", s.max());
    assert!(s.entropy() > 0.0 && s.kaplan_yorke() > 1.0 && s.kaplan_yorke() < 50.0);
    let (sum, refv) = (s.sum(), s.sum_reference.unwrap());
    assert!(
        (sum - refv).abs() < 1e-10 * refv.abs(),
        "Σλ = {sum} vs ⟨ln|det D|⟩ = {refv}"
    );
}

#[test]
fn partial_spectrum_is_the_head_of_the_full_one() {
    let (m, h0) = tanh_map(30, 2.0, 5);
    let full = lyapunov_map(
        &m,
        &h0,
        &LyapunovOptions {
            warmup: 50,
            steps: 300,
            ..Default::default()
        },
    )
    .unwrap();
    let part = lyapunov_map(
        &m,
        &h0,
        &LyapunovOptions {
            warmup: 50,
            steps: 300,
            k: Some(5),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(part.exponents.len(), 5);
    for i in 0..5 {
        assert!(
            (part.exponents[i] - full.exponents[i]).abs() < 1e-10,
            "{i}: {} vs {}",
            part.exponents[i],
            full.exponents[i]
        );
    }
    assert!(part.sum_reference.is_none()); // ln|det| is a statement about all N directions
}

#[test]
fn flow_sum_identity_and_discretised_map() {
    let n = 20;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let s = 1.8 / (n as f64).sqrt();
    let w = Mat::<f64>::from_fn(n, n, |i, j| if i == j { 0.0 } else { s * randn(&mut rng) });
    let rnn = RateRnn::new(w, Activation::Tanh).unwrap();
    let x0: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
    let opts = LyapunovOptions {
        dt: 0.05,
        warmup: 1000,
        steps: 4000,
        history_every: 100,
        ..Default::default()
    };
    let sp = lyapunov_flow(&rnn, &x0, &opts).unwrap();
    // No autapses: tr J ≡ −N, so Σλ = −N exactly up to the integration error (Engelken, Wolf & Abbott 2023).
    assert!((sp.sum_reference.unwrap() + n as f64).abs() < 1e-12);
    // RK4's propagator has det = e^{−N h} + O(h⁵) per step, so the identity holds to O(h⁴): check
    // the size and the order.
    let e1 = (sp.sum() + n as f64).abs();
    assert!(e1 < 1e-5, "Σλ = {}", sp.sum());
    let half = LyapunovOptions {
        dt: 0.025,
        warmup: 2000,
        steps: 8000,
        ..Default::default()
    };
    let e2 = (lyapunov_flow(&rnn, &x0, &half).unwrap().sum() + n as f64).abs();
    let order = (e1 / e2).log2();
    assert!(
        (order - 4.0).abs() < 0.3,
        "order of the flow identity error: {order} ({e1:e} → {e2:e})"
    );
    assert_eq!(sp.history.len(), 40);
    assert!((sp.history.last().unwrap().0 - 200.0).abs() < 1e-9);
    // The Euler map of the same flow with a small step has nearly the same spectrum.
    let em = EulerMap {
        model: &rnn,
        dt: 0.005,
    };
    let me = lyapunov_map(
        &em,
        &x0,
        &LyapunovOptions {
            dt: 0.005,
            warmup: 10000,
            steps: 20000,
            k: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        (me.exponents[0] - sp.exponents[0]).abs() < 0.05,
        "{} vs {}",
        me.exponents[0],
        sp.exponents[0]
    );
}

#[test]
fn gamma_map_jacobian_and_tangent_agree_with_finite_differences() {
    let n = 8;
    let (m0, h0) = tanh_map(n, 1.2, 9);
    let ns: Vec<f64> = (0..n).map(|i| 2.0 + i as f64 * 0.5).collect();
    let ss: Vec<f64> = (0..n).map(|i| i as f64 / 7.0).collect();
    let u = Mat::<f64>::from_fn(n, 2, |i, j| ((i + j) as f64).cos());
    let xs = Mat::<f64>::from_fn(2, 5, |i, t| (i * 5 + t) as f64 * 0.1);
    let m = RnnMap::new(m0.w().clone(), Activation::Tanh)
        .unwrap()
        .with_bias(vec![0.1; n])
        .unwrap()
        .with_gamma_per_neuron(ns, ss)
        .unwrap()
        .with_input(u.as_ref(), xs.as_ref())
        .unwrap();
    let t = 3;
    let mut jac = Mat::<f64>::zeros(n, n);
    m.jacobian(t, &h0, jac.as_mut());
    for j in 0..n {
        let eps = 1e-6;
        let (mut hp, mut hm) = (h0.clone(), h0.clone());
        hp[j] += eps;
        hm[j] -= eps;
        m.step(t, &mut hp);
        m.step(t, &mut hm);
        for i in 0..n {
            let fd = (hp[i] - hm[i]) / (2.0 * eps);
            assert!(
                (fd - jac[(i, j)]).abs() < 1e-8,
                "({i},{j}): {fd} vs {}",
                jac[(i, j)]
            );
        }
    }
    let q = Mat::<f64>::from_fn(n, 3, |i, j| ((i * 3 + j) as f64).sin());
    let mut out = Mat::<f64>::zeros(n, 3);
    let mut h = h0.clone();
    m.step_tangent(t, &mut h, q.as_ref(), out.as_mut());
    let want = &jac * &q;
    for j in 0..3 {
        for i in 0..n {
            assert!((out[(i, j)] - want[(i, j)]).abs() < 1e-13);
        }
    }
    let mut h2 = h0.clone();
    m.step(t, &mut h2);
    assert_eq!(h, h2);
    // The step with its dense Jacobian (what the full spectrum multiplies by its reflectors):
    // the same Jacobian, state and ln|det D| as `jacobian`, `step` and `step_tangent`.
    let (mut h3, mut jac3) = (h0.clone(), Mat::<f64>::zeros(n, n));
    let logdet = m.step_jacobian(t, &mut h3, jac3.as_mut());
    assert_eq!(h3, h2);
    assert!(jac3 == jac, "step_jacobian's D differs from jacobian's");
    let mut h4 = h0.clone();
    let want = m.step_tangent(t, &mut h4, q.as_ref(), out.as_mut());
    assert_eq!(logdet, want);
    assert!(logdet.is_some());
}

#[test]
fn kaplan_yorke_dimension() {
    assert!((kaplan_yorke(&[1.0, -0.5, -2.0]) - 2.25).abs() < 1e-15);
    assert_eq!(kaplan_yorke(&[-0.1, -1.0]), 0.0);
    assert!((kaplan_yorke(&[0.5, -1.0]) - 1.5).abs() < 1e-15);
    assert!(kaplan_yorke(&[0.5, 0.2]).is_nan());
}

#[test]
fn bad_options_are_errors() {
    let (m, h0) = tanh_map(5, 1.0, 1);
    let e = |o: LyapunovOptions, h: &[f64]| match lyapunov_map(&m, h, &o) {
        Err(neurodyn::Error::Invalid { field, .. }) => field,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(
        e(
            LyapunovOptions {
                k: Some(6),
                ..Default::default()
            },
            &h0
        ),
        "k"
    );
    assert_eq!(
        e(
            LyapunovOptions {
                k: Some(0),
                ..Default::default()
            },
            &h0
        ),
        "k"
    );
    assert_eq!(
        e(
            LyapunovOptions {
                steps: 0,
                ..Default::default()
            },
            &h0
        ),
        "steps"
    );
    assert_eq!(
        e(
            LyapunovOptions {
                reorth: 0,
                ..Default::default()
            },
            &h0
        ),
        "reorth"
    );
    assert_eq!(e(LyapunovOptions::default(), &h0[..4]), "x0");
    assert_eq!(
        e(LyapunovOptions::default(), &[f64::NAN, 0.0, 0.0, 0.0, 0.0]),
        "x0"
    );
}

/// Diagnostics of lyapunov.md §B.2: the two-trajectory λ₁ against Benettin's QR λ₁ on a chaotic
/// map, block averages and local exponents that average back to the spectrum, confidence
/// intervals that hold it, and the participation ratio of the Lyapunov vectors (exactly 1 for a
/// map whose Jacobian is diagonal).
#[test]
fn lyapunov_diagnostics() {
    use neurodyn::lyapunov::{lyapunov_two_trajectories, student_t_quantile};
    use neurodyn::model::System;
    let n = 60;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let g = 3.0;
    let w = Mat::from_fn(n, n, |_, _| {
        let z: f64 = StandardNormal.sample(&mut rng);
        g * z / (n as f64).sqrt()
    });
    let map = RnnMap::new(w, Activation::Tanh).unwrap();
    let h0: Vec<f64> = (0..n).map(|i| 0.1 * ((i as f64) * 0.7).sin()).collect();
    let opts = LyapunovOptions::new()
        .warmup(500)
        .steps(40_000)
        .k(5)
        .blocks(20)
        .record_local(true);
    let s = lyapunov_map(&map, &h0, &opts).unwrap();
    assert!(s.max() > 0.1, "chaotic at g = 3: {}", s.max());
    let sys = System::Map(Box::new(map));
    let brute = lyapunov_two_trajectories(&sys, &h0, 1.0, 500, 40_000, 1e-8, 1).unwrap();
    assert!(
        (brute - s.max()).abs() < 1e-3,
        "two trajectories {brute} vs QR {}",
        s.max()
    );
    // 40,000 QRs in 20 equal blocks: the block means average to the exponents exactly, and so
    // do the local exponents; each 95 % interval holds its exponent.
    assert_eq!(s.block_exponents.len(), 20);
    assert_eq!(s.local.len(), 40_000);
    let ci = s.confidence(0.95).unwrap();
    for i in 0..5 {
        let mb = s.block_exponents.iter().map(|b| b[i]).sum::<f64>() / 20.0;
        let ml = s.local.iter().map(|(_, v)| v[i]).sum::<f64>() / 40_000.0;
        assert!((mb - s.exponents[i]).abs() < 1e-12);
        assert!((ml - s.exponents[i]).abs() < 1e-12);
        assert!(ci[i].0 < s.exponents[i] && s.exponents[i] < ci[i].1);
        assert!(ci[i].1 - ci[i].0 < 0.02, "{:?}", ci[i]);
        assert!(s.participation[i] >= 1.0 && s.participation[i] <= n as f64);
    }
    // Student's t: t_{0.975}(19) = 2.093024, t_{0.975}(4) = 2.776445.
    assert!((student_t_quantile(0.975, 19.0) - 2.093024).abs() < 1e-3);
    assert!((student_t_quantile(0.975, 4.0) - 2.776445).abs() < 5e-3);
    // A diagonal Jacobian keeps the identity frame's vectors on single units: P = 1.
    let d = Mat::from_fn(8, 8, |i, j| if i == j { 0.3 + 0.1 * i as f64 } else { 0.0 });
    let diag = RnnMap::new(d, Activation::Tanh).unwrap();
    let sd = lyapunov_map(&diag, &[0.5; 8], &LyapunovOptions::new().steps(200)).unwrap();
    assert!(
        sd.participation.iter().all(|p| (p - 1.0).abs() < 1e-12),
        "{:?}",
        sd.participation
    );
}

/// Adaptive re-orthonormalisation (the frame's predicted conditioning kept below 10^8): the
/// exponents equal QR-every-step to 1e-8 on a chaotic (g = 3) and a stable (g = 0.5) map and on
/// a flow, with far fewer factorisations on the stable map.
#[test]
fn adaptive_reorthonormalisation_equals_every_step() {
    let every = LyapunovOptions {
        warmup: 200,
        transient: 100,
        steps: 4000,
        ..Default::default()
    };
    for (g, seed) in [(3.0, 11u64), (0.5, 12)] {
        let (map, h0) = tanh_map(40, g, seed);
        let a = lyapunov_map(&map, &h0, &every).unwrap();
        let b = lyapunov_map(&map, &h0, &every.clone().adaptive(8.0)).unwrap();
        assert_eq!(a.factorizations, 4100);
        for (x, y) in a.exponents.iter().zip(&b.exponents) {
            assert!((x - y).abs() < 1e-8, "g = {g}: {x} vs {y}");
        }
        if g < 1.0 {
            assert!(
                b.factorizations < 4100 / 4,
                "stable map: {} QRs",
                b.factorizations
            );
        }
        // The time covered is the same.
        assert!((a.time - b.time).abs() < 1e-12);
    }
    let n = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let s = 1.8 / (n as f64).sqrt();
    let w = Mat::<f64>::from_fn(n, n, |_, _| s * randn(&mut rng));
    let rnn = RateRnn::new(w, Activation::Tanh).unwrap();
    let x0: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
    let flow = LyapunovOptions {
        dt: 0.05,
        warmup: 500,
        steps: 3000,
        ..Default::default()
    };
    let a = lyapunov_flow(&rnn, &x0, &flow).unwrap();
    let b = lyapunov_flow(&rnn, &x0, &flow.clone().adaptive(8.0)).unwrap();
    for (x, y) in a.exponents.iter().zip(&b.exponents) {
        assert!((x - y).abs() < 1e-8, "flow: {x} vs {y}");
    }
    assert!(
        b.factorizations < a.factorizations / 4,
        "{}",
        b.factorizations
    );
    // Blocks need a fixed interval; digits outside 1..12 are refused.
    assert!(lyapunov_map(
        &tanh_map(5, 1.0, 1).0,
        &[0.1; 5],
        &every.clone().adaptive(8.0).blocks(4)
    )
    .is_err());
    assert!(lyapunov_map(
        &tanh_map(5, 1.0, 1).0,
        &[0.1; 5],
        &every.clone().adaptive(20.0)
    )
    .is_err());
}

/// Spectra of many tanh maps on the GPU (f32, CGS2, one workgroup per network; lavapipe in CI)
/// against the f64 CPU spectra: non-chaotic networks (g < 1) agree to 1e-4 relative, for N below
/// and above one workgroup (64 units). NEURODYN_SKIP_GPU=1 skips it on a machine without Vulkan.
#[test]
fn gpu_map_spectra_match_the_cpu() {
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    use neurodyn::lyapunov::gpu::tanh_map_spectra;
    use neurodyn::lyapunov::{lyapunov_map, LyapunovOptions};
    use neurodyn::model::{Activation, RnnMap};
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    for (n, k) in [(40usize, 5usize), (90, 3)] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(n as u64);
        let nets: Vec<faer::Mat<f64>> = [0.4, 0.7, 0.9]
            .iter()
            .map(|g| {
                let s = g / (n as f64).sqrt();
                faer::Mat::from_fn(n, n, |_, _| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    s * z
                })
            })
            .collect();
        let x0: Vec<f64> = (0..n).map(|i| 0.5 * ((i as f64) * 0.7).sin()).collect();
        let gpu = tanh_map_spectra(&nets, &x0, k, 50, 300).unwrap();
        for (w, got) in nets.iter().zip(&gpu) {
            let map = RnnMap::new(w.clone(), Activation::Tanh).unwrap();
            let opts = LyapunovOptions {
                k: Some(k),
                warmup: 50,
                steps: 300,
                ..Default::default()
            };
            let want = lyapunov_map(&map, &x0, &opts).unwrap().exponents;
            for (g, c) in got.iter().zip(&want) {
                assert!(
                    *c < 0.0 && (g - c).abs() <= 1e-4 * c.abs(),
                    "N = {n}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

#[test]
fn gpu_map_spectra_report_the_software_loop_cap() {
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    // The full spectrum of an N = 256 map: one step's tangent update is ≈ 2.6·10⁵ loop iterations
    // per thread, past llvmpipe's 65,535 — an error naming the cap there, never exponents of a
    // partial update; a real GPU computes it.
    let (_, _, adapter) = neurodyn::gpu::open_device().unwrap();
    let n = 256;
    let w = faer::Mat::<f64>::from_fn(n, n, |i, j| {
        0.5 * (((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5)
    });
    let got = neurodyn::lyapunov::gpu::tanh_map_spectra(&[w], &vec![0.1; n], n, 0, 1);
    if adapter.contains("llvmpipe") {
        let e = got.unwrap_err().to_string();
        assert!(e.contains("65,535"), "{e}");
    } else {
        assert_eq!(got.unwrap()[0].len(), n);
    }
}

/// The GPU spectra of general layers h ← φ(W h + b) — a bias, per-unit gamma units (a trained
/// gamma cell), sigmoid, softplus, relu — against the f64 CPU spectra of the same `RnnMap`s, each
/// network from its own start (non-chaotic, so 1e-4 relative).
#[test]
fn gpu_layer_spectra_match_the_cpu() {
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    use neurodyn::lyapunov::gpu::system_spectra;
    use neurodyn::lyapunov::{lyapunov_map, LyapunovOptions};
    use neurodyn::model::{Activation, RnnMap, System};
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, StandardNormal};
    let n = 30;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut draw = |g: f64| {
        let s = g / (n as f64).sqrt();
        faer::Mat::from_fn(n, n, |_, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            s * z
        })
    };
    let cases: Vec<(&str, Vec<RnnMap>)> = vec![
        (
            "tanh + bias",
            (0..3)
                .map(|k| {
                    RnnMap::new(draw(0.5 + 0.2 * k as f64), Activation::Tanh)
                        .unwrap()
                        .with_bias((0..n).map(|i| 0.1 * ((i + k) as f64).cos()).collect())
                        .unwrap()
                })
                .collect(),
        ),
        (
            "gamma per unit",
            (0..3)
                .map(|k| {
                    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(k);
                    let ns = (0..n).map(|_| r.random_range(2.0..6.0)).collect();
                    let ss = (0..n).map(|_| r.random_range(0.0..0.5)).collect();
                    RnnMap::new(draw(1.5), Activation::Tanh)
                        .unwrap()
                        .with_bias(vec![-0.2; n])
                        .unwrap()
                        .with_gamma_per_neuron(ns, ss)
                        .unwrap()
                })
                .collect(),
        ),
        (
            "sigmoid",
            (0..2)
                .map(|_| RnnMap::new(draw(2.0), Activation::Sigmoid).unwrap())
                .collect(),
        ),
        (
            "softplus",
            (0..2)
                .map(|_| {
                    RnnMap::new(draw(0.6), Activation::Softplus)
                        .unwrap()
                        .with_bias(vec![-1.0; n])
                        .unwrap()
                })
                .collect(),
        ),
        (
            "relu",
            (0..2)
                .map(|_| {
                    RnnMap::new(draw(0.7), Activation::Relu)
                        .unwrap()
                        .with_bias(vec![0.3; n])
                        .unwrap()
                })
                .collect(),
        ),
    ];
    let k = 4;
    let opts = LyapunovOptions {
        k: Some(k),
        warmup: 50,
        steps: 300,
        ..Default::default()
    };
    for (name, maps) in cases {
        let systems: Vec<System> = maps
            .iter()
            .map(|m| System::Map(Box::new(m.clone())))
            .collect();
        let starts: Vec<Vec<f64>> = (0..maps.len())
            .map(|j| {
                (0..n)
                    .map(|i| 0.4 * ((i * (j + 2)) as f64 * 0.3).sin())
                    .collect()
            })
            .collect();
        let pairs: Vec<_> = systems
            .iter()
            .zip(&starts)
            .map(|(s, x)| (s, x.as_slice()))
            .collect();
        let gpu = system_spectra(&pairs, k, 50, 300).unwrap();
        for ((m, x0), got) in maps.iter().zip(&starts).zip(&gpu) {
            let want = lyapunov_map(m, x0, &opts).unwrap().exponents;
            for (g, c) in got.iter().zip(&want) {
                assert!(
                    *c < 0.0 && (g - c).abs() <= 1e-4 * c.abs(),
                    "{name}: {got:?} vs {want:?}"
                );
            }
        }
    }
    // A flow is not a layer: an error naming `device`.
    let flow = System::Flow(Box::new(
        neurodyn::RateRnn::new(draw(0.5), Activation::Tanh).unwrap(),
    ));
    let e = system_spectra(&[(&flow, &vec![0.0; n][..])], 2, 1, 1).unwrap_err();
    assert!(e.to_string().contains("device"), "{e}");
}

/// Large frames take the blocked QR and threaded products: the spectrum's bits must not depend on
/// the thread count (full spectrum at N = 400, and a partial one whose product is threaded).
#[test]
fn large_spectra_do_not_depend_on_the_thread_count() {
    let (map, h0) = tanh_map(400, 1.5, 21);
    for k in [400, 24] {
        let opts = LyapunovOptions::new().k(k).steps(6).warmup(2);
        let run = |threads| on_threads(threads, || lyapunov_map(&map, &h0, &opts).unwrap());
        let (a, b) = (run(1), run(2));
        assert_eq!(a.exponents, b.exponents, "k = {k}");
        assert_eq!(a.final_state, b.final_state);
        if k == 400 {
            let (sum, refv) = (a.sum(), a.sum_reference.unwrap());
            assert!(
                (sum - refv).abs() < 1e-9 * refv.abs(),
                "Σλ = {sum} vs {refv}"
            );
        }
    }
}

/// The full spectrum of a map from N = 64 on keeps Q as Householder reflectors and multiplies
/// the next Jacobian by them (no Q formed); the partial spectrum forms Q. The head of the full
/// spectrum must be the partial spectrum (the same QR columns, products rounded differently),
/// the frame it returns orthonormal, and the sum identity hold.
#[test]
fn full_map_spectra_through_reflectors_match_the_formed_frame() {
    let (map, h0) = tanh_map(120, 2.0, 5);
    let full = lyapunov_map(&map, &h0, &LyapunovOptions::new().steps(200)).unwrap();
    let head = lyapunov_map(&map, &h0, &LyapunovOptions::new().k(119).steps(200)).unwrap();
    for i in 0..119 {
        let e = (full.exponents[i] - head.exponents[i]).abs();
        assert!(
            e < 1e-10,
            "λ_{i}: {} vs {} ({e:e})",
            full.exponents[i],
            head.exponents[i]
        );
    }
    assert!(
        full.exponents[0] > 0.0,
        "g = 2 should be chaotic: {}",
        full.exponents[0]
    );
    let (sum, refv) = (full.sum(), full.sum_reference.unwrap());
    assert!(
        (sum - refv).abs() < 1e-10 * refv.abs(),
        "Σλ = {sum} vs {refv}"
    );
    // The final frame (formed from the reflectors at the end) has the partial frame's columns.
    for i in 0..119 {
        let (a, b) = (full.participation[i], head.participation[i]);
        assert!((a - b).abs() < 1e-8 * b, "participation {i}: {a} vs {b}");
    }
    // Every other step through the reflectors (reorth 2: the explicit product in between).
    let two = lyapunov_map(&map, &h0, &LyapunovOptions::new().steps(200).reorth(2)).unwrap();
    for i in 0..120 {
        let e = (full.exponents[i] - two.exponents[i]).abs();
        assert!(e < 1e-9, "reorth 2, λ_{i} off by {e:e}");
    }
    // A map without its own `step_jacobian` (the default: `jacobian`, then `step`): the Euler
    // map of a rate RNN.
    let (w, x0) = tanh_map(70, 1.5, 8);
    let rnn = RateRnn::new(w.w().clone(), Activation::Tanh).unwrap();
    let em = EulerMap {
        model: &rnn,
        dt: 0.1,
    };
    let o = LyapunovOptions::new().steps(100).dt(0.1);
    let full = lyapunov_map(&em, &x0, &o).unwrap();
    let head = lyapunov_map(&em, &x0, &o.clone().k(69)).unwrap();
    // (Column for column; after 100 steps the sorted order of the last columns is not settled,
    // so each of the head's exponents is looked up in the full spectrum.)
    for (i, h) in head.exponents.iter().enumerate() {
        let e = full
            .exponents
            .iter()
            .map(|f| (f - h).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(e < 1e-10, "Euler map λ_{i} off by {e:e}");
    }
    assert!(full.sum_reference.is_none());
}
