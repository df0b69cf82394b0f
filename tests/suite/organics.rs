//! ORGaNICs: Rawat, Heeger & Martiniani (2024) cross-checks, the papers' stability claims, fixed-point finders.

use faer::Mat;
use neurodyn::fixed_points::{
    find_fixed_points, newton, random_starts, FinderOptions, NewtonOptions,
};
use neurodyn::model::organics::{scalar_fixed_points, Organics, Variant};
use neurodyn::model::{check_jacobian, Model};
use neurodyn::stability::analyze;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn scalar(
    variant: Variant,
    w: f64,
    b0: f64,
    sigma: f64,
    z: f64,
    tau_y: f64,
    tau_a: f64,
) -> Organics {
    let m = |v: f64| Mat::from_fn(1, 1, |_, _| v);
    Organics::new(
        variant,
        m(w),
        m(1.0),
        vec![b0],
        vec![0.5],
        vec![sigma],
        vec![tau_y],
        vec![tau_a],
        vec![z],
    )
    .unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn eig_close(got: &[faer::c64], want: &[(f64, f64)], tol: f64) {
    for &(re, im) in want {
        assert!(
            got.iter()
                .any(|l| (l.re - re).abs() <= tol * re.abs().max(1.0)
                    && (l.im - im).abs() <= tol * im.abs().max(1.0)),
            "eigenvalue {re} + {im}i not in {got:?}"
        );
    }
}

#[test]
fn cross_check_scalar_unrectified() {
    let m = scalar(Variant::Unrectified, 0.5, 0.5, 0.1, -1.0, 0.002, 0.002);
    let fps = scalar_fixed_points(0.5, 1.0, 0.5, 0.5, 0.1, -1.0);
    assert_eq!(fps.len(), 1);
    let (y, a) = fps[0];
    assert!(
        rel(y, -0.8979706913928603) < 1e-10 && rel(a, 0.012909979814850953) < 1e-10,
        "({y}, {a})"
    );
    // Newton from far away reaches the same point.
    let r = newton(&m, &[0.3, 0.5], &NewtonOptions::default()).unwrap();
    assert!(
        r.converged && rel(r.x[0], y) < 1e-10 && rel(r.x[1], a) < 1e-10,
        "{r:?}"
    );
    let s = analyze(&m, &r.x).unwrap();
    eig_close(
        &s.eigenvalues,
        &[(-187.61492, 56.65230), (-187.61492, -56.65230)],
        1e-6,
    );
    assert!(s.class.is_stable());
    assert_eq!(s.frequencies().len(), 1);
}

#[test]
fn cross_check_scalar_rectified() {
    let m = scalar(Variant::Rectified, 1.0, 0.5, 0.1, 1.0, 0.01, 0.002);
    let (y, a) = m.fixed_point_identity().unwrap();
    assert!(rel(y[0], 0.9950371902099893) < 1e-10 && rel(a[0], 0.2525) < 1e-10);
    let x = [y[0], a[0]];
    let mut f = [0.0; 2];
    m.rhs(0.0, &x, &mut f);
    assert!(f.iter().all(|v| v.abs() < 1e-9));
    let s = analyze(&m, &x).unwrap();
    eig_close(
        &s.eigenvalues,
        &[(-27.59994, 156.08630), (-27.59994, -156.08630)],
        1e-6,
    );
}

#[test]
fn cross_check_two_units_identity_recurrence() {
    let w = Mat::from_fn(2, 2, |i, j| [[1.0, 0.5], [0.25, 1.0]][i][j]);
    let m = Organics::new(
        Variant::Unrectified,
        Mat::identity(2, 2),
        w,
        vec![0.5; 2],
        vec![0.5; 2],
        vec![0.1; 2],
        vec![0.002; 2],
        vec![0.001; 2],
        vec![1.0, 0.5],
    )
    .unwrap();
    let (y, a) = m.fixed_point_identity().unwrap();
    for (g, w) in a.iter().zip([0.28375, 0.1275]) {
        assert!(rel(*g, w) < 1e-10);
    }
    for (g, w) in y.iter().zip([0.9386465089, 0.700140042]) {
        assert!(rel(*g, w) < 1e-9);
    }
    let x: Vec<f64> = y.iter().chain(&a).copied().collect();
    let s = analyze(&m, &x).unwrap();
    eig_close(
        &s.eigenvalues,
        &[
            (-134.0776, 481.2530),
            (-134.0776, -481.2530),
            (-402.7341, 168.3148),
            (-402.7341, -168.3148),
        ],
        1e-6,
    );
    // The iterative scheme (general W_r) lands on the same point.
    let it = neurodyn::fixed_points::organics_iterative(&m, 20).unwrap();
    for (g, w) in it.iter().zip(&x) {
        assert!(rel(*g, *w) < 1e-10);
    }
}

#[test]
fn jacobians_of_every_variant_pass_the_check() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for v in [
        Variant::Unrectified,
        Variant::Rectified,
        Variant::RectifiedRecurrence,
    ] {
        let n = 6;
        let w_r = Mat::from_fn(n, n, |_, _| rng.random_range(-0.5..0.5));
        let w = Mat::from_fn(n, n, |_, _| rng.random_range(0.0..1.0));
        let vecr = |rng: &mut ChaCha8Rng, lo: f64, hi: f64| {
            (0..n)
                .map(|_| rng.random_range(lo..hi))
                .collect::<Vec<f64>>()
        };
        let (b0, b1, s, ty, ta, z) = (
            vecr(&mut rng, 0.1, 1.0),
            vecr(&mut rng, 0.1, 1.0),
            vecr(&mut rng, 0.05, 0.5),
            vecr(&mut rng, 0.001, 0.01),
            vecr(&mut rng, 0.001, 0.01),
            vecr(&mut rng, -1.0, 1.0),
        );
        let m = Organics::new(v, w_r, w, b0, b1, s, ty, ta, z).unwrap();
        for _ in 0..5 {
            // y away from 0 and a > 0 (the rectifiers' kinks are not differentiable).
            let mut x: Vec<f64> = (0..n)
                .map(|_| rng.random_range(0.1..1.0) * if rng.random::<bool>() { 1.0 } else { -1.0 })
                .collect();
            x.extend((0..n).map(|_| rng.random_range(0.05..1.0)));
            let c = check_jacobian(&m, 0.0, &x);
            assert!(c.passes(1e-6), "{v:?}: {c:?}");
        }
    }
}

/// The paper's claim: with W_r = I every fixed point is locally asymptotically stable, for all
/// parameters (here 300 random parameter sets, N = 1..6, both signs of z).
#[test]
fn identity_recurrence_is_always_stable() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for trial in 0..300 {
        let n = 1 + trial % 6;
        let vecr = |rng: &mut ChaCha8Rng, lo: f64, hi: f64| {
            (0..n)
                .map(|_| rng.random_range(lo..hi))
                .collect::<Vec<f64>>()
        };
        let w = Mat::from_fn(n, n, |_, _| rng.random_range(0.0..1.5));
        let (b0, b1, s) = (
            vecr(&mut rng, 0.05, 1.0),
            vecr(&mut rng, 0.05, 1.0),
            vecr(&mut rng, 0.01, 1.0),
        );
        let (ty, ta, z) = (
            vecr(&mut rng, 0.0005, 0.02),
            vecr(&mut rng, 0.0005, 0.02),
            vecr(&mut rng, -2.0, 2.0),
        );
        let m = Organics::new(
            Variant::Unrectified,
            Mat::identity(n, n),
            w,
            b0,
            b1,
            s,
            ty.clone(),
            ta.clone(),
            z,
        )
        .unwrap();
        let (y, a) = m.fixed_point_identity().unwrap();
        let x: Vec<f64> = y.iter().chain(&a).copied().collect();
        let mut f = vec![0.0; 2 * n];
        m.rhs(0.0, &x, &mut f);
        let scale = x.iter().fold(1.0f64, |s, v| s.max(v.abs()))
            / ta.iter().chain(&ty).fold(1.0f64, |s, v| s.min(*v));
        assert!(
            f.iter().all(|v| v.abs() < 1e-11 * scale),
            "trial {trial}: residual {f:?}"
        );
        let st = analyze(&m, &x).unwrap();
        assert!(
            st.max_growth < 0.0 && st.class.is_stable(),
            "trial {trial}: max Re λ = {}",
            st.max_growth
        );
    }
}

#[test]
fn scalar_regimes_have_the_stated_fixed_points() {
    // (w, b0 σ) → (#stable, #unstable) for b1 = 0.5, z = 0.1, W = 1.
    let cases = [
        (0.5, 0.05, 1, 0),
        (1.0, 0.05, 1, 0),
        (2.0, 0.05, 1, 2),
        (3.0, 0.1, 1, 2),
        (2.0, 0.8, 1, 0),
        (1.5, 0.5, 1, 0),
    ];
    for (w, c, n_st, n_un) in cases {
        let (b0, sigma) = (1.0, c);
        let fps = scalar_fixed_points(w, 1.0, b0, 0.5, sigma, 0.1);
        let m = scalar(Variant::Unrectified, w, b0, sigma, 0.1, 0.002, 0.002);
        let (mut st, mut un) = (0, 0);
        for &(y, a) in &fps {
            let mut f = [0.0; 2];
            m.rhs(0.0, &[y, a], &mut f);
            assert!(
                f.iter().all(|v| v.abs() < 1e-8),
                "w = {w}: not a fixed point {f:?}"
            );
            if analyze(&m, &[y, a]).unwrap().class.is_stable() {
                st += 1
            } else {
                un += 1
            }
        }
        assert_eq!((st, un), (n_st, n_un), "w = {w}, b0σ = {c}: {fps:?}");
    }
}

#[test]
fn general_finder_recovers_every_fixed_point_of_the_bistable_case() {
    let (w, c) = (2.0, 0.05);
    let want = scalar_fixed_points(w, 1.0, 1.0, 0.5, c, 0.1);
    assert_eq!(want.len(), 3);
    let m = scalar(Variant::Unrectified, w, 1.0, c, 0.1, 0.002, 0.002);
    let mut starts = random_starts(2, 200, -1.5, 1.5, 3);
    for s in starts.iter_mut() {
        s[1] = s[1].abs() * 0.5; // a ∈ [0, 0.75]
    }
    let found = find_fixed_points(&m, &starts, &FinderOptions::default()).unwrap();
    assert_eq!(
        found.len(),
        3,
        "{:?}",
        found.iter().map(|p| &p.x).collect::<Vec<_>>()
    );
    for (y, a) in want {
        assert!(
            found
                .iter()
                .any(|p| rel(p.x[0], y) < 1e-9 && rel(p.x[1], a) < 1e-9),
            "missing ({y}, {a})"
        );
    }
    assert_eq!(
        found
            .iter()
            .filter(|p| p.stability.class.is_stable())
            .count(),
        1
    );
}

#[test]
fn finder_recovers_the_closed_form_point_at_n100() {
    let n = 100;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let z: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..0.3)).collect();
    let m = Organics::new(
        Variant::Unrectified,
        Mat::identity(n, n),
        Mat::from_fn(n, n, |_, _| 1.0 / n as f64),
        vec![0.5; n],
        vec![0.5; n],
        vec![0.1; n],
        vec![0.002; n],
        vec![0.001; n],
        z,
    )
    .unwrap();
    let (y, a) = m.fixed_point_identity().unwrap();
    let exact: Vec<f64> = y.iter().chain(&a).copied().collect();
    let start: Vec<f64> = exact.iter().map(|v| v * 1.3 + 0.01).collect();
    let found = find_fixed_points(&m, &[start], &FinderOptions::default()).unwrap();
    assert_eq!(found.len(), 1);
    for (g, w) in found[0].x.iter().zip(&exact) {
        assert!((g - w).abs() <= 1e-10 * w.abs().max(1e-3));
    }
    assert!(found[0].stability.class.is_stable());
}

#[test]
fn bad_parameters_are_named() {
    let m = |v: f64| Mat::from_fn(2, 2, |_, _| v);
    let e = |r: neurodyn::Result<Organics>| match r {
        Err(neurodyn::Error::Invalid { field, .. }) => field,
        other => panic!("expected an error, got {other:?}"),
    };
    let ok = || {
        (
            vec![0.5; 2],
            vec![0.5; 2],
            vec![0.1; 2],
            vec![0.002; 2],
            vec![0.002; 2],
            vec![1.0; 2],
        )
    };
    let (b0, b1, s, ty, ta, z) = ok();
    assert_eq!(
        e(Organics::new(
            Variant::Unrectified,
            m(0.5),
            m(-1.0),
            b0,
            b1,
            s,
            ty,
            ta,
            z
        )),
        "W"
    );
    let (b0, b1, s, ty, _, z) = ok();
    assert_eq!(
        e(Organics::new(
            Variant::Unrectified,
            m(0.5),
            m(1.0),
            b0,
            b1,
            s,
            ty,
            vec![0.002, -1.0],
            z
        )),
        "tau_a"
    );
    let (b0, b1, s, ty, ta, _) = ok();
    assert_eq!(
        e(Organics::new(
            Variant::Unrectified,
            m(0.5),
            m(1.0),
            b0,
            b1,
            s,
            ty,
            ta,
            vec![1.0; 3]
        )),
        "z"
    );
    let (b0, b1, s, ty, ta, z) = ok();
    assert_eq!(
        e(Organics::new(
            Variant::Unrectified,
            Mat::from_fn(2, 2, |i, _| if i == 0 { f64::NAN } else { 0.0 }),
            m(1.0),
            b0,
            b1,
            s,
            ty,
            ta,
            z
        )),
        "W_r"
    );
}

/// The iterative scheme with W_r ≠ I (Rawat, Heeger & Martiniani 2024): on a 6-unit circuit with
/// a non-normal W_r = 0.6 I + G (‖G‖ small, random) the scheme's point solves the ODE to 1e-12,
/// is the one multi-start Newton finds, and is where a long integration ends.
#[test]
fn iterative_scheme_with_general_recurrence() {
    use neurodyn::fixed_points::{
        find_fixed_points, organics_candidates, random_starts, FinderOptions, OrganicsMethod,
    };
    use neurodyn::integrate::{integrate, Method, Options};
    use neurodyn::model::Model;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 6;
    let w_r = Mat::from_fn(n, n, |i, j| {
        (if i == j { 0.6 } else { 0.0 }) + rng.random_range(-0.08..0.08)
    });
    let w = Mat::from_fn(n, n, |_, _| rng.random_range(0.0..0.4));
    let z: Vec<f64> = (0..n).map(|_| rng.random_range(0.2..1.0)).collect();
    let m = Organics::new(
        Variant::Unrectified,
        w_r,
        w,
        vec![0.5; n],
        vec![0.5; n],
        vec![0.1; n],
        vec![0.002; n],
        vec![0.002; n],
        z,
    )
    .unwrap();
    // The closed form refuses W_r ≠ I, naming it.
    let e = organics_candidates(&m, OrganicsMethod::ClosedForm)
        .unwrap_err()
        .to_string();
    assert!(e.contains("W_r"), "{e}");
    let x = organics_candidates(&m, OrganicsMethod::Iterative)
        .unwrap()
        .remove(0);
    let mut f = vec![0.0; 2 * n];
    m.rhs(0.0, &x, &mut f);
    let res = f.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(res < 1e-9, "‖f‖∞ = {res:e}");
    // The scheme alone (no Newton polish) converges to the same point.
    let raw = m.fixed_point_iteration(200).unwrap();
    for (a, b) in raw.iter().zip(&x) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    // Multi-start Newton finds the same (single, stable) point.
    let mut starts = random_starts(2 * n, 24, 0.0, 1.0, 3);
    starts.push(m.default_start());
    let pts = find_fixed_points(&m, &starts, &FinderOptions::default()).unwrap();
    assert!(pts
        .iter()
        .any(|p| p.x.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-8)));
    // And a long integration from the default start ends there.
    let sol = integrate(
        &m,
        &m.default_start(),
        (0.0, 2.0),
        &Method::rk4(1e-5),
        &Options::new(),
    )
    .unwrap();
    let end = sol.state(sol.len() - 1);
    for (a, b) in end.iter().zip(&x) {
        assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    }
}
