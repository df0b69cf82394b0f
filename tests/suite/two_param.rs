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
    let branch = continue_branch(&at, &[0.0, 0.0], &ContinuationOptions::new(0.0, 0.5).ds(0.01))
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
        assert!((pt.x[0] + pt.q / 2.0).abs() < 1e-10 && pt.x[1].abs() < 1e-10, "{pt:?}");
    }
    let qs: Vec<f64> = c.points.iter().map(|p| p.q).collect();
    assert!(qs.iter().cloned().fold(f64::INFINITY, f64::min) < -0.9);
    let bt: Vec<_> = c.events.iter().filter(|e| e.kind == "bogdanov_takens").collect();
    assert_eq!(bt.len(), 1, "{:?}", c.events);
    assert!(bt[0].p.abs() < 1e-9 && bt[0].q.abs() < 1e-8, "{:?}", bt[0]);
    // No cusp: the quadratic coefficient w·B(v, v) stays away from zero along p = q²/4.
    assert!(c.events.iter().all(|e| e.kind != "cusp"), "{:?}", c.events);
}
