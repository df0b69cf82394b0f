//! Fractional derivatives: closed-form cross-checks, exact power laws with measured orders,
//! FFT against the direct sums, limits, the differint wrap-around case, bad input.

use neurodyn::fracdiff::{
    estimate_order, fracdiff, fracdiff_columns, fracdiff_direct, gl_weights, power_derivative,
    spectral, Operator, Scheme,
};

fn grid(n: usize) -> (Vec<f64>, f64) {
    let h = 1.0 / (n - 1) as f64;
    ((0..n).map(|k| k as f64 * h).collect(), h)
}

const GL: Scheme = Scheme::GrunwaldLetnikov;
const RL: Scheme = Scheme::RiemannLiouville;
const L1: Scheme = Scheme::CaputoL1;

#[test]
fn spec_cross_checks_t_squared() {
    let (t, h) = grid(1001);
    let f: Vec<f64> = t.iter().map(|x| x * x).collect();
    let exact1 = 1.504505556127350;
    assert!((power_derivative(2.0, 0.5, 1.0) - exact1).abs() < 1e-14);
    for d in [
        fracdiff(&f, 0.5, h, GL).unwrap(),
        fracdiff_direct(&f, 0.5, h, GL).unwrap(),
    ] {
        assert_eq!(d.len(), 1001);
        assert!(
            (d[1000] - 1.503941425318).abs() < 1e-12,
            "GL(1) = {}",
            d[1000]
        );
        assert!(
            (d[999] - 1.501685513462).abs() < 1e-12,
            "GL(0.999) = {}",
            d[999]
        );
        assert!(
            (d[500] - 0.5315241813803).abs() < 1e-12,
            "GL(0.5) = {}",
            d[500]
        );
        assert_eq!(d[0], 0.0);
    }
    for s in [L1, RL] {
        let d = fracdiff(&f, 0.5, h, s).unwrap();
        assert!(
            (d[1000] - 1.504490814366).abs() < 1e-12,
            "{s:?}(1) = {}",
            d[1000]
        );
        assert!(
            (d[500] - 0.5319083377229).abs() < 1e-12,
            "{s:?}(0.5) = {}",
            d[500]
        );
        assert_eq!(d[0], 0.0);
    }
    // The wrap-around case that differint gets wrong: at k = 500 differint gives 0.3807955767, at
    // k = 0 −30.16; the exact values are 0.5319… and 0 (h = 1/999 there: N = 1000 on [0, 1]).
    let (t, h) = grid(1000);
    let f: Vec<f64> = t.iter().map(|x| x * x).collect();
    let d = fracdiff(&f, 0.5, h, GL).unwrap();
    // The correct (zero-padded) GL value at k = 500 (the wrap-around of an unpadded FFT, as in differint 1.0.0's GL), within O(h) of the exact one.
    assert!(
        (d[500] - 0.5323224654).abs() < 1e-9,
        "GL at k = 500: {}",
        d[500]
    );
    let exact = power_derivative(2.0, 0.5, t[500]);
    assert!(
        (d[500] - exact).abs() < 1e-3,
        "GL at k = 500: {} vs exact {exact}",
        d[500]
    );
    assert_eq!(d[0], 0.0);
    // Near t = 0 the values are the exact GL sums (no wrap-around terms), within O(h) of the exact
    // derivative.
    let direct = fracdiff_direct(&f, 0.5, h, GL).unwrap();
    for k in 1..20 {
        let e = power_derivative(2.0, 0.5, t[k]);
        assert!(
            (d[k] - direct[k]).abs() < 1e-13,
            "small t, k = {k}: FFT {} vs direct {}",
            d[k],
            direct[k]
        );
        assert!((d[k] - e).abs() < h, "small t, k = {k}: {} vs {e}", d[k]);
    }
}

#[test]
fn spec_cross_checks_constant() {
    let (t, h) = grid(1001);
    let f = vec![1.0; 1001];
    let rl = fracdiff(&f, 0.5, h, RL).unwrap();
    assert!(rl[0].is_nan(), "RL at t = 0 is singular for f(0) ≠ 0");
    for k in 1..1001 {
        let exact = t[k].powf(-0.5) / std::f64::consts::PI.sqrt();
        assert!((rl[k] - exact).abs() < 1e-12 * exact, "RL constant k = {k}");
    }
    assert!((rl[1000] - 0.5641895835477563).abs() < 1e-13);
    assert!((rl[500] - 0.7978845608028654).abs() < 1e-13);
    let gl = fracdiff(&f, 0.5, h, GL).unwrap();
    assert!(
        (gl[1000] - 0.5641190642602984).abs() < 1e-12,
        "GL constant at 1: {}",
        gl[1000]
    );
    let l1 = fracdiff(&f, 0.5, h, L1).unwrap();
    assert!(
        l1.iter().all(|&v| v == 0.0),
        "Caputo derivative of a constant is 0 exactly"
    );
}

fn order(scheme: Scheme, p: f64, alpha: f64, ns: &[usize]) -> f64 {
    let errs: Vec<f64> = ns
        .iter()
        .map(|&n| {
            let (t, h) = grid(n);
            let f: Vec<f64> = t.iter().map(|x| x.powf(p)).collect();
            let d = fracdiff(&f, alpha, h, scheme).unwrap();
            (d[n - 1] - power_derivative(p, alpha, 1.0)).abs()
        })
        .collect();
    let k = errs.len() as f64;
    let xs: Vec<f64> = ns.iter().map(|&n| (1.0 / (n - 1) as f64).ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / k, ys.iter().sum::<f64>() / k);
    xs.iter()
        .zip(&ys)
        .map(|(x, y)| (x - mx) * (y - my))
        .sum::<f64>()
        / xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>()
}

#[test]
fn measured_orders_match_theory() {
    let ns = [1001, 2001, 4001, 8001];
    for (p, alpha) in [(2.0, 0.5), (3.0, 0.3), (2.0, 0.8), (4.0, 0.5)] {
        let o = order(GL, p, alpha, &ns);
        assert!((o - 1.0).abs() < 0.1, "GL t^{p}, α = {alpha}: order {o}");
        for s in [L1, RL] {
            let o = order(s, p, alpha, &ns);
            assert!(
                (o - (2.0 - alpha)).abs() < 0.1,
                "{s:?} t^{p}, α = {alpha}: order {o} vs {}",
                2.0 - alpha
            );
        }
    }
    // GL for 1 < α < 2 (t³, α = 1.5): still first order.
    let o = order(GL, 3.0, 1.5, &ns);
    assert!((o - 1.0).abs() < 0.1, "GL α = 1.5: order {o}");
}

#[test]
fn fft_matches_direct_sums() {
    for n in [7usize, 100, 1000, 10_000] {
        let (t, h) = grid(n);
        let f: Vec<f64> = t.iter().map(|x| (3.0 * x).sin() + x * x + 0.5).collect();
        for (s, a) in [(GL, 0.5), (GL, 1.3), (RL, 0.4), (L1, 0.7)] {
            let fast = fracdiff(&f, a, h, s).unwrap();
            let slow = fracdiff_direct(&f, a, h, s).unwrap();
            let scale = slow.iter().skip(1).fold(0.0f64, |m, v| m.max(v.abs()));
            for k in 1..n {
                assert!(
                    (fast[k] - slow[k]).abs() <= 1e-12 * scale,
                    "{s:?} α={a} n={n} k={k}: {} vs {}",
                    fast[k],
                    slow[k]
                );
            }
        }
    }
}

/// Long signals take the two-thread split transforms (even/odd halves, N ≥ 50,000): at N =
/// 60,001 (odd, so the halves differ in length) GL and Caputo L1 agree with their direct sums,
/// evaluated at 40 indices in O(k) each, to 1e-12 of the largest value; the prepared operator
/// gives the same bits as the one-shot call.
#[test]
fn split_transforms_match_direct_sums() {
    let n = 60_001;
    let (t, h) = grid(n);
    let f: Vec<f64> = t.iter().map(|x| (3.0 * x).sin() + x * x + 0.5).collect();
    let ks: Vec<usize> = (0..40).map(|i| 1 + i * (n - 2) / 39).collect();
    // GL, α = 0.5: h^{-α} Σ_{j ≤ k} w_j f_{k−j}.
    let w = gl_weights(0.5, n);
    let gl = fracdiff(&f, 0.5, h, GL).unwrap();
    let scale = gl.iter().skip(1).fold(0.0f64, |m, v| m.max(v.abs()));
    for &k in &ks {
        let want = h.powf(-0.5) * (0..=k).rev().map(|j| w[j] * f[k - j]).sum::<f64>();
        assert!(
            (gl[k] - want).abs() <= 1e-12 * scale,
            "GL k={k}: {} vs {want}",
            gl[k]
        );
    }
    let op = Operator::new(0.5, h, n, GL).unwrap().apply(&f).unwrap();
    assert!(op.iter().zip(&gl).all(|(a, b)| a.to_bits() == b.to_bits()));
    // Caputo L1, α = 0.7: h^{-α}/Γ(1.3) Σ_{j<k} b_j (f_{k−j} − f_{k−j−1}), b_j = (j+1)^0.3 − j^0.3.
    let l1 = fracdiff(&f, 0.7, h, L1).unwrap();
    let scale = l1.iter().skip(1).fold(0.0f64, |m, v| m.max(v.abs()));
    let gamma_1_3 = 0.897_470_696_306_277_2;
    for &k in &ks {
        let s: f64 = (0..k)
            .rev()
            .map(|j| {
                let b = ((j + 1) as f64).powf(0.3) - (j as f64).powf(0.3);
                b * (f[k - j] - f[k - j - 1])
            })
            .sum();
        let want = h.powf(-0.7) / gamma_1_3 * s;
        assert!(
            (l1[k] - want).abs() <= 1e-12 * scale,
            "L1 k={k}: {} vs {want}",
            l1[k]
        );
    }
}

#[test]
fn limits_alpha_one_and_zero() {
    let (t, h) = grid(200);
    let f: Vec<f64> = t.iter().map(|x| (2.0 * x).cos() + x).collect();
    // α = 1 (GL's open upper range includes it): the backward difference.
    let w = gl_weights(1.0, 5);
    assert_eq!(w, vec![1.0, -1.0, 0.0, 0.0, 0.0]);
    let d = fracdiff(&f, 1.0, h, GL).unwrap();
    for k in 1..200 {
        assert!((d[k] - (f[k] - f[k - 1]) / h).abs() < 1e-9, "k = {k}");
    }
    // α → 0: the identity.
    for s in [GL, RL, L1] {
        let d = fracdiff(&f, 1e-9, h, s).unwrap();
        for k in 1..200 {
            let want = if s == L1 { f[k] - f[0] } else { f[k] };
            assert!(
                (d[k] - want).abs() < 1e-7,
                "{s:?} k = {k}: {} vs {want}",
                d[k]
            );
        }
    }
}

#[test]
fn columns_in_parallel_equal_one_by_one() {
    let (t, h) = grid(300);
    let n = 5;
    let t = &t;
    let data: Vec<f64> = (0..300)
        .flat_map(|k| (0..n).map(move |i| (t[k] * (i + 1) as f64).sin()))
        .collect();
    let d = fracdiff_columns(&data, 300, n, 0.6, h, L1).unwrap();
    for i in 0..n {
        let col: Vec<f64> = (0..300).map(|k| data[k * n + i]).collect();
        let one = fracdiff(&col, 0.6, h, L1).unwrap();
        for k in 0..300 {
            assert_eq!(d[k * n + i].to_bits(), one[k].to_bits());
        }
    }
}

#[test]
fn spectral_operator_cross_checks() {
    let w = 2.0 * std::f64::consts::PI * 5.0 / 150.0;
    let x: Vec<f64> = (0..150).map(|t| (w * t as f64).sin()).collect();
    let (re, im) = spectral(&x, 0.5, 1.0).unwrap();
    assert!((re[0] - 0.3236043187592832).abs() < 1e-14);
    assert!((re[10] - 0.1184474014402548).abs() < 1e-14);
    let mut err = 0.0f64;
    for t in 0..150 {
        err =
            err.max((re[t] - w.sqrt() * (w * t as f64 + std::f64::consts::FRAC_PI_4).sin()).abs());
        assert!(im[t].abs() < 1e-14);
    }
    assert!(err < 1e-14, "max error {err}");
    let (c, _) = spectral(&[2.5; 64], 0.7, 0.1).unwrap();
    assert!(c.iter().all(|v| v.abs() < 1e-15));
}

#[test]
fn order_estimate_recovers_a_known_order() {
    // Targets built from signals with a known spectral order: s = Re D^{0.3} r − anchor.
    let sig: Vec<Vec<f64>> = (1..4)
        .map(|k| {
            (0..150)
                .map(|t| {
                    if (50..100).contains(&t) {
                        k as f64 * (1.0 - (-(t as f64 - 50.0) / 8.0).exp())
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let targets: Vec<Vec<f64>> = sig
        .iter()
        .map(|s| {
            let (y, _) = spectral(s, 0.3, 1.0).unwrap();
            y.iter().map(|v| v - y[25]).collect()
        })
        .collect();
    let alphas: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    let est = estimate_order(&sig, &targets, &alphas, 1.0, 25, 40..110).unwrap();
    assert!((est.alpha - 0.3).abs() < 1e-12, "estimated {}", est.alpha);
    assert!(est.errors[30] < 1e-25);
}

#[test]
fn bad_input_is_rejected() {
    let field = |r: neurodyn::Result<Vec<f64>>| match r {
        Err(neurodyn::Error::Invalid { field, .. }) => field,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(field(fracdiff(&[1.0, 2.0], 1.5, 0.1, L1)), "alpha");
    assert_eq!(field(fracdiff(&[1.0, 2.0], 0.0, 0.1, GL)), "alpha");
    assert_eq!(field(fracdiff(&[1.0, 2.0], 2.0, 0.1, GL)), "alpha");
    assert_eq!(field(fracdiff(&[1.0, f64::NAN], 0.5, 0.1, GL)), "input");
    assert_eq!(field(fracdiff(&[], 0.5, 0.1, GL)), "input");
    assert_eq!(field(fracdiff(&[1.0], 0.5, 0.0, GL)), "dt");
    assert!("spectral".parse::<Scheme>().is_err());
}

/// The spectral `frac_int` (fracdiff.md §C.4): the inverse of `frac_diff` on zero-mean periodic
/// signals, and exact on on-grid sines: I^α sin(ωt) = ω^{−α} sin(ωt − απ/2).
#[test]
fn spectral_integral_inverts_the_spectral_derivative() {
    use neurodyn::fracdiff::{spectral, spectral_integral};
    let n = 150;
    let w = 2.0 * std::f64::consts::PI * 5.0 / n as f64;
    let x: Vec<f64> = (0..n)
        .map(|t| 0.7 + (w * t as f64).sin() + 0.3 * (3.0 * w * t as f64).cos())
        .collect();
    let mean = x.iter().sum::<f64>() / n as f64;
    for alpha in [0.3, 0.5, 1.0, 1.7] {
        let (i, _) = spectral_integral(&x, alpha, 1.0).unwrap();
        let (back, im) = spectral(&i, alpha, 1.0).unwrap();
        for k in 0..n {
            assert!(
                (back[k] - (x[k] - mean)).abs() < 1e-12,
                "α = {alpha}, t = {k}"
            );
            assert!(im[k].abs() < 1e-12);
        }
        let s: Vec<f64> = (0..n).map(|t| (w * t as f64).sin()).collect();
        let (y, _) = spectral_integral(&s, alpha, 1.0).unwrap();
        for (t, v) in y.iter().enumerate() {
            let exact = w.powf(-alpha) * (w * t as f64 - alpha * std::f64::consts::FRAC_PI_2).sin();
            assert!((v - exact).abs() < 1e-12 * w.powf(-alpha), "{v} vs {exact}");
        }
    }
}

/// The seed's ANRU order pipeline (fracdiff.md §C.4 steps 1–4, 7) on a seeded network: the
/// mean-response order is the argmin of its own error curve and equals `estimate_order` run on
/// the returned responses; every ξ sees the same trials, so the responses agree bit for bit until
/// the step turns on at t = 51 and part there; the
/// isolated network responds differently; the same seed gives the same bits.
#[test]
fn anru_order_pipeline() {
    use neurodyn::fracdiff::{anru_orders, estimate_order, AnruOrderOptions};
    use neurodyn::model::Anru;
    let net = Anru::seed_init(16, 4, 3).unwrap();
    let u: Vec<f64> = (0..16).map(|i| 0.5 + 0.05 * i as f64).collect();
    let opts = AnruOrderOptions {
        trials: 4,
        mean_alphas: (0..101).map(|k| k as f64 / 100.0).collect(),
        ..AnruOrderOptions::default()
    };
    let r = anru_orders(&net, &u, &opts).unwrap();
    assert_eq!(r.neuron_alpha.len(), 16);
    assert_eq!(r.responses.len(), 8);
    assert!(r.neuron_alpha.iter().all(|a| (-1.0..=1.0).contains(a)));
    let best = r.mean.errors.iter().cloned().fold(f64::INFINITY, f64::min);
    let k = r
        .mean
        .alphas
        .iter()
        .position(|a| *a == r.mean.alpha)
        .unwrap();
    assert_eq!(r.mean.errors[k], best);
    let again = estimate_order(
        &r.responses[1..].to_vec(),
        &r.targets[1..].to_vec(),
        &opts.mean_alphas,
        1.0,
        25,
        40..110,
    )
    .unwrap();
    assert_eq!(again.alpha, r.mean.alpha);
    // Targets: 0.8 + ξ on |t − 75| < 25 (t = 51..99), 0.8 elsewhere.
    assert_eq!(r.targets[7][51], 30.8);
    assert_eq!(r.targets[7][99], 30.8);
    assert_eq!(r.targets[7][100], 0.8);
    let (flat, step) = (&r.responses[0], &r.responses[7]);
    assert!(
        flat[..51] == step[..51],
        "the trials differ before the step"
    );
    assert!(
        (step[51] - flat[51]).abs() > 1e-3,
        "ξ = 30 must move the response at t = 51"
    );
    let iso = anru_orders(
        &net,
        &u,
        &AnruOrderOptions {
            isolated: true,
            ..opts.clone()
        },
    )
    .unwrap();
    assert!(iso.responses[7] != r.responses[7]);
    let twice = anru_orders(&net, &u, &opts).unwrap();
    assert!(twice.responses == r.responses && twice.neuron_alpha == r.neuron_alpha);
}
