//! Continuation and bifurcations: normal forms with known answers, rate RNNs with closed-form
//! bifurcations, and the branch's consistency with the fixed-point finder.

use neurodyn::continuation::{
    continue_branch, ContinuationOptions, Kind, ParamFn, Parametrised, RateKnob, RateParam, Stop,
};
use neurodyn::model::{Activation, Model, RateRnn};
use neurodyn::prelude::Mat;
use neurodyn::stability::{analyze, TimeKind};

fn only(
    b: &neurodyn::continuation::Branch,
    kind: Kind,
) -> Vec<&neurodyn::continuation::Bifurcation> {
    b.bifurcations.iter().filter(|z| z.kind == kind).collect()
}

#[test]
fn fold_normal_form() {
    // dx/dt = p − x²: from (p, x) = (1, 1) downwards, around the fold at p = 0, back up on x < 0.
    let f = ParamFn::new("p", 1, TimeKind::Continuous, |x, p, o| {
        o[0] = p - x[0] * x[0]
    })
    .with_jacobian(|x, _p, mut j| j[(0, 0)] = -2.0 * x[0]);
    let b = continue_branch(&f, &[1.0], &ContinuationOptions::new(1.0, -1.0)).unwrap();
    assert_eq!(b.stop, Stop::Range);
    let folds = only(&b, Kind::Fold);
    assert_eq!(folds.len(), 1, "{:?}", b.bifurcations);
    assert!(folds[0].p.abs() < 1e-10, "fold at p = {:e}", folds[0].p);
    assert!(folds[0].x[0].abs() < 1e-5);
    // It passed the fold: the last point is on the other (unstable) side, at p = 1.
    let last = b.points.last().unwrap();
    assert!((last.p - 1.0).abs() < 1e-12 && (last.x[0] + 1.0).abs() < 1e-10);
    assert_eq!(last.stability.n_unstable, 1);
    assert_eq!(b.points[0].stability.n_unstable, 0);
    assert!(b.points.iter().all(|pt| pt.residual < 1e-10));
}

fn hopf_normal_form(s: f64) -> ParamFn {
    ParamFn::new("p", 2, TimeKind::Continuous, move |x, p, o| {
        let r2 = x[0] * x[0] + x[1] * x[1];
        o[0] = p * x[0] - x[1] + s * x[0] * r2;
        o[1] = x[0] + p * x[1] + s * x[1] * r2;
    })
    .with_jacobian(move |x, p, mut j| {
        let (a, b) = (x[0], x[1]);
        j[(0, 0)] = p + s * (3.0 * a * a + b * b);
        j[(0, 1)] = -1.0 + 2.0 * s * a * b;
        j[(1, 0)] = 1.0 + 2.0 * s * a * b;
        j[(1, 1)] = p + s * (a * a + 3.0 * b * b);
    })
}

#[test]
fn hopf_normal_form_frequency_and_criticality() {
    for s in [-1.0, 1.0] {
        let b = continue_branch(
            &hopf_normal_form(s),
            &[0.0, 0.0],
            &ContinuationOptions::new(-1.0, 1.0),
        )
        .unwrap();
        let h = only(&b, Kind::Hopf);
        assert_eq!(h.len(), 1, "{:?}", b.bifurcations);
        assert!(h[0].p.abs() < 1e-10, "Hopf at {:e}", h[0].p);
        assert!((h[0].omega.unwrap() - 1.0).abs() < 1e-10);
        // ż = (p + i) z + s z|z|²: Kuznetsov's l1 = 2s (supercritical for s < 0).
        let l1 = h[0].l1.unwrap();
        assert!((l1 - 2.0 * s).abs() < 1e-5, "s = {s}: l1 = {l1}");
        assert!(only(&b, Kind::Fold).is_empty() && only(&b, Kind::BranchPoint).is_empty());
    }
}

#[test]
fn pitchfork_is_a_branch_point() {
    let f = ParamFn::new("p", 1, TimeKind::Continuous, |x, p, o| {
        o[0] = p * x[0] - x[0].powi(3)
    });
    let b = continue_branch(&f, &[0.0], &ContinuationOptions::new(-1.0, 1.0)).unwrap();
    let bp = only(&b, Kind::BranchPoint);
    assert_eq!(bp.len(), 1, "{:?}", b.bifurcations);
    assert!(bp[0].p.abs() < 1e-10);
    assert!(only(&b, Kind::Fold).is_empty());
}

#[test]
fn logistic_map_flip_and_transcritical() {
    let logistic = || {
        ParamFn::new("r", 1, TimeKind::Discrete, |x, r, o| {
            o[0] = r * x[0] * (1.0 - x[0])
        })
        .with_jacobian(|x, r, mut j| j[(0, 0)] = r * (1.0 - 2.0 * x[0]))
    };
    // x* = 1 − 1/r: D = 2 − r crosses −1 at r = 3 (period doubling).
    let b = continue_branch(&logistic(), &[0.5], &ContinuationOptions::new(2.0, 3.5)).unwrap();
    let flip = only(&b, Kind::Flip);
    assert_eq!(
        flip.len(),
        1,
        "{:?} {:?} {:?}",
        b.bifurcations,
        b.stop,
        b.points
            .iter()
            .map(|p| (p.p, p.stability.eigenvalues[0].re))
            .collect::<Vec<_>>()
    );
    assert!((flip[0].p - 3.0).abs() < 1e-10 && (flip[0].x[0] - 2.0 / 3.0).abs() < 1e-8);
    // Down to r = 0.5: D crosses +1 at r = 1 where x* meets the trivial branch (transcritical).
    let b = continue_branch(&logistic(), &[0.5], &ContinuationOptions::new(2.0, 0.5)).unwrap();
    let bp = only(&b, Kind::BranchPoint);
    assert_eq!(
        bp.len(),
        1,
        "{:?} {:?}",
        b.bifurcations,
        b.points
            .iter()
            .map(|p| (p.p, p.x[0], p.stability.eigenvalues[0].re))
            .collect::<Vec<_>>()
    );
    assert!((bp[0].p - 1.0).abs() < 1e-10, "{:?}", bp[0]);
}

#[test]
fn rate_rnn_folds_in_the_bias_in_closed_form() {
    // dx/dt = −x + 2 tanh(x) + b: folds at b = ±(√2 − acosh √2).
    let w = Mat::from_fn(1, 1, |_, _| 2.0);
    let rnn = RateRnn::new(w, Activation::Tanh).unwrap();
    let sys = RateParam::new(rnn, RateKnob::Bias, false).unwrap();
    let x0 = [-2.96]; // near the only fixed point at b = −1
    let b = continue_branch(&sys, &x0, &ContinuationOptions::new(-1.0, 1.0)).unwrap();
    let folds = only(&b, Kind::Fold);
    assert_eq!(folds.len(), 2, "{:?}", b.bifurcations);
    let bf = 2f64.sqrt() - 2f64.sqrt().acosh();
    let mut ps: Vec<f64> = folds.iter().map(|z| z.p).collect();
    ps.sort_by(f64::total_cmp);
    assert!(
        (ps[0] + bf).abs() < 1e-10 && (ps[1] - bf).abs() < 1e-10,
        "{ps:?} vs ±{bf}"
    );
    assert_eq!(b.stop, Stop::Range);
    // The middle branch is unstable, the outer ones stable.
    for pt in &b.points {
        let unstable = pt.x[0].abs() < 2f64.sqrt().acosh() - 1e-6;
        let outer = pt.x[0].abs() > 2f64.sqrt().acosh() + 1e-6;
        if unstable {
            assert_eq!(pt.stability.n_unstable, 1, "x = {}", pt.x[0]);
        } else if outer {
            assert_eq!(pt.stability.n_unstable, 0, "x = {}", pt.x[0]);
        }
    }
}

#[test]
fn rate_rnn_hopf_in_the_gain() {
    // W = g [[1, −1], [1, 1]], tanh: J(0) = −I + g[[1, −1], [1, 1]], λ = g − 1 ± i g.
    let w = Mat::from_fn(2, 2, |i, j| [[1.0, -1.0], [1.0, 1.0]][i][j]);
    let rnn = RateRnn::new(w, Activation::Tanh).unwrap();
    let sys = RateParam::new(rnn, RateKnob::Gain { g0: 1.0 }, false).unwrap();
    let b = continue_branch(&sys, &[0.0, 0.0], &ContinuationOptions::new(0.5, 1.5)).unwrap();
    let h = only(&b, Kind::Hopf);
    assert_eq!(h.len(), 1, "{:?}", b.bifurcations);
    assert!((h[0].p - 1.0).abs() < 1e-10 && (h[0].omega.unwrap() - 1.0).abs() < 1e-10);
    assert!(
        h[0].l1.unwrap() < 0.0,
        "tanh saturates: supercritical, l1 = {:?}",
        h[0].l1
    );
}

#[test]
fn branch_agrees_with_the_fixed_point_analysis() {
    // A random N = 12 tanh network in its gain: every point is a fixed point (‖f‖ < 1e-10) and its
    // stability is what `stability::analyze` finds for the network rebuilt at that gain.
    let n = 12;
    let w = Mat::from_fn(n, n, |i, j| {
        (((i * 31 + j * 17) % 23) as f64 / 11.0 - 1.0) / (n as f64).sqrt()
    });
    let b0: Vec<f64> = (0..n).map(|i| 0.1 * ((i as f64) * 1.3).sin()).collect();
    let base = RateRnn::new(w.clone(), Activation::Tanh)
        .unwrap()
        .with_bias(b0.clone())
        .unwrap();
    let sys = RateParam::new(base, RateKnob::Gain { g0: 1.0 }, false).unwrap();
    let mut x0: Vec<f64> = vec![0.0; n];
    // A start on the branch at g = 0.2 (contracting: iterate x = 0.2 W tanh x + b).
    for _ in 0..200 {
        let mut y = b0.clone();
        for i in 0..n {
            for j in 0..n {
                y[i] += 0.2 * w[(i, j)] * x0[j].tanh();
            }
        }
        x0 = y;
    }
    let br = continue_branch(
        &sys,
        &x0,
        &ContinuationOptions::new(0.2, 3.0).max_points(400),
    )
    .unwrap();
    assert!(br.points.len() >= 20);
    let step = br.points.len() / 20;
    for pt in br.points.iter().step_by(step.max(1)).take(20) {
        let m = RateRnn::new(
            Mat::from_fn(n, n, |i, j| pt.p * w[(i, j)]),
            Activation::Tanh,
        )
        .unwrap()
        .with_bias(b0.clone())
        .unwrap();
        let mut f = vec![0.0; n];
        m.rhs(0.0, &pt.x, &mut f);
        assert!(f.iter().all(|v| v.abs() < 1e-10), "‖f‖ at g = {}", pt.p);
        let s = analyze(&m, &pt.x).unwrap();
        assert_eq!(s.n_unstable, pt.stability.n_unstable, "g = {}", pt.p);
        assert_eq!(s.class, pt.stability.class, "g = {}", pt.p);
    }
    // ∂f/∂g analytic = central difference.
    let mut a = vec![0.0; n];
    let mut fd = vec![0.0; n];
    let mid = &br.points[br.points.len() / 2];
    sys.dp(&mid.x, mid.p, &mut a);
    let (mut fp, mut fm) = (vec![0.0; n], vec![0.0; n]);
    sys.eval(&mid.x, mid.p + 1e-6, &mut fp);
    sys.eval(&mid.x, mid.p - 1e-6, &mut fm);
    for i in 0..n {
        fd[i] = (fp[i] - fm[i]) / 2e-6;
        assert!((a[i] - fd[i]).abs() < 1e-7, "∂f/∂g[{i}]");
    }
}

#[test]
fn tracked_spectra_match_full_spectra() {
    // A random N = 120 tanh network with a bias, continued in its gain through the loss of
    // stability: the tracked eigenvalues (`nearest:8`, shift-invert Arnoldi) give the same
    // points, unstable counts and bifurcations as full spectra everywhere, and a largest real
    // part that is exact where the full spectrum was computed and never above the true one
    // (equal to it on this network).
    use neurodyn::continuation::Spectrum;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let n = 120;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut z = || -> f64 { StandardNormal.sample(&mut rng) };
    let w = Mat::from_fn(n, n, |_, _| z() / (n as f64).sqrt());
    let b0: Vec<f64> = (0..n).map(|_| 0.05 * z()).collect();
    let base = RateRnn::new(w, Activation::Tanh)
        .unwrap()
        .with_bias(b0.clone())
        .unwrap();
    let sys = RateParam::new(base, RateKnob::Gain { g0: 1.0 }, false).unwrap();
    let opts = ContinuationOptions::new(0.5, 3.0).ds(0.02).max_points(400);
    // b0 is corrected onto the branch at g = 0.5.
    let full = continue_branch(&sys, &b0, &opts.clone().spectrum(Spectrum::Full)).unwrap();
    let spec: Spectrum = "nearest:8".parse().unwrap();
    let near = continue_branch(&sys, &b0, &opts.clone().spectrum(spec)).unwrap();
    // The default (`auto`) tracks 8 eigenvalues above 64 states: the same rows, bit for bit.
    assert_eq!(opts.spectrum, Spectrum::Auto);
    let auto = continue_branch(&sys, &b0, &opts).unwrap();
    for (a, b) in auto.points.iter().zip(&near.points) {
        assert_eq!(a.stability.eigenvalues, b.stability.eigenvalues);
    }
    assert_eq!(full.points.len(), near.points.len());
    assert!(
        full.points.iter().any(|p| p.stability.n_unstable > 0),
        "crosses instability"
    );
    let mut tracked = 0;
    for (a, b) in full.points.iter().zip(&near.points) {
        assert_eq!(a.p, b.p);
        assert_eq!(
            a.stability.n_unstable, b.stability.n_unstable,
            "g = {}",
            a.p
        );
        assert_eq!(
            a.stability.class.is_stable(),
            b.stability.class.is_stable(),
            "g = {}",
            a.p
        );
        let (ga, gb) = (a.stability.max_growth, b.stability.max_growth);
        if b.stability.eigenvalues.len() == n {
            assert!((ga - gb).abs() < 1e-12 * (1.0 + ga.abs()), "g = {}", a.p);
        } else {
            tracked += 1;
            // The 8 nearest the shift, and any converged one farther right.
            assert!(
                (8..n).contains(&b.stability.eigenvalues.len()),
                "g = {}",
                a.p
            );
            // Exact: Ritz values right of the 8 nearest are kept until they converge.
            assert!(
                gb <= ga + 1e-10 && ga - gb < 1e-9,
                "g = {}: {gb} vs {ga}",
                a.p
            );
        }
    }
    assert!(
        tracked > full.points.len() / 2,
        "tracked at {tracked} points"
    );
    assert_eq!(full.bifurcations.len(), near.bifurcations.len());
    for (a, b) in full.bifurcations.iter().zip(&near.bifurcations) {
        assert_eq!(a.kind, b.kind);
        assert!((a.p - b.p).abs() < 1e-9, "{} vs {}", a.p, b.p);
    }
    assert!("nearest:0".parse::<Spectrum>().is_err() && "most".parse::<Spectrum>().is_err());
    assert_eq!("auto".parse::<Spectrum>().unwrap(), Spectrum::Auto);
}

#[test]
fn branch_switching_follows_the_other_branch_of_a_pitchfork_and_a_transcritical() {
    use neurodyn::continuation::switch::switch_branch;
    // Pitchfork dx/dt = p x − x³ along x = 0: the other branch is x² = p, both halves (x > 0 and
    // x < 0) towards p = 1, stable.
    let f = ParamFn::new("p", 1, TimeKind::Continuous, |x, p, o| {
        o[0] = p * x[0] - x[0].powi(3)
    });
    let opts = ContinuationOptions::new(-1.0, 1.0).ds(0.05);
    let b = continue_branch(&f, &[0.0], &opts).unwrap();
    let bp = only(&b, Kind::BranchPoint)[0].clone();
    let halves = switch_branch(&f, &b, &bp, &opts).unwrap();
    assert_eq!(halves.len(), 2);
    let mut signs = vec![];
    for h in &halves {
        assert!(matches!(h.stop, Stop::Range), "{:?}", h.stop);
        let last = h.points.last().unwrap();
        assert!((last.p - 1.0).abs() < 1e-12, "ends at p = 1: {}", last.p);
        for pt in &h.points {
            assert!(
                (pt.x[0] * pt.x[0] - pt.p).abs() < 1e-10,
                "x² = p at p = {}",
                pt.p
            );
            assert_eq!(pt.stability.n_unstable, 0);
        }
        signs.push(last.x[0].signum());
    }
    signs.sort_by(f64::total_cmp);
    assert_eq!(signs, [-1.0, 1.0]);
    // Transcritical dx/dt = p x − x² along x = 0: the other branch is x = p, through the point
    // (one half to p = −1, unstable; one to p = 1, stable). A branch without a branch point is
    // refused with the field named.
    let f = ParamFn::new("p", 1, TimeKind::Continuous, |x, p, o| {
        o[0] = p * x[0] - x[0] * x[0]
    });
    let b = continue_branch(&f, &[0.0], &opts).unwrap();
    let bp = only(&b, Kind::BranchPoint)[0].clone();
    assert!(bp.p.abs() < 1e-10);
    let halves = switch_branch(&f, &b, &bp, &opts).unwrap();
    assert_eq!(halves.len(), 2);
    for h in &halves {
        let last = h.points.last().unwrap();
        assert!((last.p.abs() - 1.0).abs() < 1e-12);
        for pt in &h.points {
            assert!((pt.x[0] - pt.p).abs() < 1e-10, "x = p at p = {}", pt.p);
            assert_eq!(
                pt.stability.n_unstable,
                usize::from(pt.p < 0.0),
                "p = {}",
                pt.p
            );
        }
    }
    let mut fold = bp.clone();
    fold.kind = Kind::Fold;
    let e = switch_branch(&f, &b, &fold, &opts).unwrap_err().to_string();
    assert!(e.contains("bifurcation"), "{e}");
}

#[test]
fn branch_switching_in_a_two_dimensional_symmetric_network() {
    // dx/dt = −x + p W tanh x with W = [[0, 1], [1, 0]]: x = 0 loses stability at p = 1 through a
    // pitchfork onto x₁ = x₂ = s with s = p tanh s (the eigenvector (1, 1) of W).
    use neurodyn::continuation::switch::switch_branch;
    let f = ParamFn::new("p", 2, TimeKind::Continuous, |x, p, o| {
        o[0] = -x[0] + p * x[1].tanh();
        o[1] = -x[1] + p * x[0].tanh();
    });
    let opts = ContinuationOptions::new(0.5, 2.0).ds(0.05);
    let b = continue_branch(&f, &[0.0, 0.0], &opts).unwrap();
    let bps = only(&b, Kind::BranchPoint);
    assert_eq!(bps.len(), 1, "{:?}", b.bifurcations);
    assert!((bps[0].p - 1.0).abs() < 1e-9);
    let halves = switch_branch(&f, &b, bps[0], &opts).unwrap();
    assert_eq!(halves.len(), 2);
    for h in &halves {
        let last = h.points.last().unwrap();
        assert!((last.p - 2.0).abs() < 1e-12);
        for pt in &h.points {
            let s = pt.x[0];
            assert!((pt.x[1] - s).abs() < 1e-10 && (s - pt.p * s.tanh()).abs() < 1e-10);
        }
        // At p = 2: s = 2 tanh s, s = ±1.91500804815454 (fixed-point iteration)
        assert!(
            (last.x[0].abs() - 1.915_008_048_154_54).abs() < 1e-9,
            "{}",
            last.x[0]
        );
        assert_eq!(last.stability.n_unstable, 0);
    }
}
