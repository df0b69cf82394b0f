//! Fold curves in two parameters (minimally augmented systems) against closed forms: the cusp
//! normal form and the Bogdanov–Takens normal form, with their codimension-two points located;
//! a rate network's fold curve in (g, input) checked point by point against one-parameter folds.

use neurodyn::continuation::two::{continue_fold, AtQ, Family, FoldCurveOptions};
use neurodyn::continuation::{continue_branch, ContinuationOptions, Kind, ParamFn, Parametrised};
use neurodyn::stability::TimeKind;

/// dx/dt = p + q x − x³: folds on (p, q) = (−2x³, 3x²), a cusp at the origin.
fn cusp_family() -> Family {
    Family::new("q", 1.0, |q| {
        Ok(Box::new(
            ParamFn::new("p", 1, TimeKind::Continuous, move |x, p, o| {
                o[0] = p + q * x[0] - x[0].powi(3)
            })
            .with_jacobian(move |x, _p, mut j| j[(0, 0)] = q - 3.0 * x[0] * x[0]),
        ) as Box<dyn Parametrised>)
    })
    .unwrap()
}

#[test]
fn the_cusp_normal_form_fold_curve_and_its_cusp() {
    let f = cusp_family();
    let x0 = 1.0 / 3f64.sqrt();
    let p0 = -2.0 * x0.powi(3);
    let mut opts = FoldCurveOptions::new((-1.0, 1.0), (-0.5, 1.2));
    opts.q_decreasing = true;
    opts.ds = 0.02;
    let c = continue_fold(&f, &[x0 + 0.01], p0 + 0.003, 1.0, &opts).unwrap();
    assert!(c.points.len() > 20);
    for pt in &c.points {
        let x = pt.x[0];
        assert!((pt.p + 2.0 * x.powi(3)).abs() < 1e-10, "{pt:?}");
        assert!((pt.q - 3.0 * x * x).abs() < 1e-10, "{pt:?}");
    }
    // Both fold branches x > 0 and x < 0, through the cusp.
    assert!(c.points.iter().any(|p| p.x[0] > 0.5) && c.points.iter().any(|p| p.x[0] < -0.5));
    let cusps: Vec<_> = c.events.iter().filter(|e| e.kind == "cusp").collect();
    assert_eq!(cusps.len(), 1, "{:?}", c.events);
    assert!(cusps[0].p.abs() < 1e-9 && cusps[0].q.abs() < 1e-9 && cusps[0].x[0].abs() < 1e-6);
    assert!(c.events.iter().all(|e| e.kind != "bogdanov_takens"));
}

/// dx/dt = y, dy/dt = p + q x + x² − x y: the fold curve p = q²/4 (x = −q/2, y = 0) with a
/// Bogdanov–Takens point at the origin, where the Hopf curve p = 0, q < 0 starts.
#[test]
fn the_bogdanov_takens_normal_form_fold_curve_and_its_bt_point() {
    let f = Family::new("q", 1.0, |q| {
        Ok(Box::new(
            ParamFn::new("p", 2, TimeKind::Continuous, move |x, p, o| {
                o[0] = x[1];
                o[1] = p + q * x[0] + x[0] * x[0] - x[0] * x[1];
            })
            .with_jacobian(move |x, _p, mut j| {
                j[(0, 0)] = 0.0;
                j[(0, 1)] = 1.0;
                j[(1, 0)] = q + 2.0 * x[0] - x[1];
                j[(1, 1)] = -x[0];
            }),
        ) as Box<dyn Parametrised>)
    })
    .unwrap();
    // The fold of the one-parameter branch at q = 1, found by continuation in p.
    let at = AtQ { sys: &f, q: 1.0 };
    let branch = continue_branch(
        &at,
        &[0.0, 0.0],
        &ContinuationOptions::new(0.0, 0.5).ds(0.01),
    )
    .unwrap();
    let fold = branch
        .bifurcations
        .iter()
        .find(|b| b.kind == Kind::Fold)
        .expect("a fold at p = 1/4");
    assert!((fold.p - 0.25).abs() < 1e-8);
    let mut opts = FoldCurveOptions::new((-1.0, 1.0), (-1.0, 1.0));
    opts.q_decreasing = true;
    let c = continue_fold(&f, &fold.x, fold.p, 1.0, &opts).unwrap();
    for pt in &c.points {
        assert!((pt.p - pt.q * pt.q / 4.0).abs() < 1e-10, "{pt:?}");
        assert!(
            (pt.x[0] + pt.q / 2.0).abs() < 1e-10 && pt.x[1].abs() < 1e-10,
            "{pt:?}"
        );
    }
    let qs: Vec<f64> = c.points.iter().map(|p| p.q).collect();
    assert!(qs.iter().cloned().fold(f64::INFINITY, f64::min) < -0.9);
    let bt: Vec<_> = c
        .events
        .iter()
        .filter(|e| e.kind == "bogdanov_takens")
        .collect();
    assert_eq!(bt.len(), 1, "{:?}", c.events);
    assert!(bt[0].p.abs() < 1e-9 && bt[0].q.abs() < 1e-8, "{:?}", bt[0]);
    // No cusp: the quadratic coefficient w·B(v, v) stays away from zero along p = q²/4.
    assert!(c.events.iter().all(|e| e.kind != "cusp"), "{:?}", c.events);
}

/// The Bautin normal form ṙ = r(β₁ + β₂ r² − r⁴) in Cartesian form: the Hopf curve β₁ = 0 at
/// the origin with ω = 1 and l1 = 2β₂, and the Bautin point at β₂ = 0.
#[test]
fn the_bautin_normal_form_hopf_curve_and_its_bautin_point() {
    use neurodyn::continuation::two::continue_hopf;
    let f = Family::new("b2", -1.0, |b2| {
        Ok(Box::new(
            ParamFn::new("b1", 2, TimeKind::Continuous, move |x, b1, o| {
                let r2 = x[0] * x[0] + x[1] * x[1];
                let s = b1 + b2 * r2 - r2 * r2;
                o[0] = s * x[0] - x[1];
                o[1] = x[0] + s * x[1];
            })
            .with_jacobian(move |x, b1, mut j| {
                let r2 = x[0] * x[0] + x[1] * x[1];
                let s = b1 + b2 * r2 - r2 * r2;
                let ds = b2 - 2.0 * r2; // ∂s/∂(r²)
                j[(0, 0)] = s + 2.0 * ds * x[0] * x[0];
                j[(0, 1)] = 2.0 * ds * x[0] * x[1] - 1.0;
                j[(1, 0)] = 2.0 * ds * x[0] * x[1] + 1.0;
                j[(1, 1)] = s + 2.0 * ds * x[1] * x[1];
            }),
        ) as Box<dyn Parametrised>)
    })
    .unwrap();
    let opts = FoldCurveOptions::new((-1.0, 1.0), (-1.0, 1.0));
    let c = continue_hopf(&f, &[0.0, 0.0], 0.0, -1.0, 1.0, &opts).unwrap();
    assert_eq!(c.kind, "hopf");
    assert!(c.points.len() > 10);
    for pt in &c.points {
        assert!(
            pt.p.abs() < 1e-10 && pt.x.iter().all(|v| v.abs() < 1e-10),
            "{pt:?}"
        );
        assert!((pt.omega.unwrap() - 1.0).abs() < 1e-10);
        // l1 = 2 β₂ (Kuznetsov's normalisation: ż = (μ + i) z + s z|z|², l1 = 2s).
        assert!((pt.tests[0] - 2.0 * pt.q).abs() < 1e-4, "{pt:?}");
    }
    let qs: Vec<f64> = c.points.iter().map(|p| p.q).collect();
    assert!(qs.iter().cloned().fold(f64::INFINITY, f64::min) <= -1.0 + 1e-9);
    assert!(qs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) >= 1.0 - 0.1);
    assert_eq!(c.events.len(), 1, "{:?}", c.events);
    assert_eq!(c.events[0].kind, "bautin");
    // l1 comes from third derivatives by finite differences of the Jacobian (~1e-5 accurate).
    assert!(
        c.events[0].q.abs() < 1e-4 && c.events[0].p.abs() < 1e-10,
        "{:?}",
        c.events[0]
    );
}

/// The Bogdanov–Takens normal form's Hopf curve p = 0, q < 0 (ω = √−q) ends where ω → 0, at the
/// BT point that the fold curve locates.
#[test]
fn the_bt_normal_form_hopf_curve_ends_at_the_bt_point() {
    use neurodyn::continuation::two::continue_hopf;
    let f = Family::new("q", -1.0, |q| {
        Ok(Box::new(
            ParamFn::new("p", 2, TimeKind::Continuous, move |x, p, o| {
                o[0] = x[1];
                o[1] = p + q * x[0] + x[0] * x[0] - x[0] * x[1];
            })
            .with_jacobian(move |x, _p, mut j| {
                j[(0, 0)] = 0.0;
                j[(0, 1)] = 1.0;
                j[(1, 0)] = q + 2.0 * x[0] - x[1];
                j[(1, 1)] = -x[0];
            }),
        ) as Box<dyn Parametrised>)
    })
    .unwrap();
    let opts = FoldCurveOptions::new((-1.0, 1.0), (-1.0, 1.0));
    let c = continue_hopf(&f, &[0.0, 0.0], 0.0, -1.0, 1.0, &opts).unwrap();
    for pt in &c.points {
        assert!(
            pt.p.abs() < 1e-10 && pt.x.iter().all(|v| v.abs() < 1e-10),
            "{pt:?}"
        );
        assert!((pt.omega.unwrap() - (-pt.q).sqrt()).abs() < 1e-8, "{pt:?}");
    }
    let top = c
        .points
        .iter()
        .map(|p| p.q)
        .fold(f64::NEG_INFINITY, f64::max);
    // It ends where the pair ±iω degenerates (ω = √−q ≈ 0.03 here), next to the BT point.
    assert!(
        top > -3e-3 && top < 0.0,
        "the curve stops short of q = 0: {top}"
    );
    assert!(
        c.stop.contains("ω → 0") || c.stop.contains("corrector"),
        "{}",
        c.stop
    );
}
