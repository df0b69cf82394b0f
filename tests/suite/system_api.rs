//! The public API tried from outside: a new flow (Lorenz 1963) and a new map (Hénon 1976) defined
//! with nothing but `neurodyn::prelude` (faer comes re-exported from it), then their fixed points,
//! stability and Lyapunov spectra against the literature (Sprott 2003, "Chaos and Time-Series
//! Analysis", Appendix A: Lorenz λ = (0.9056, 0, −14.5723), Hénon λ = (0.41922, −1.62319)).

use neurodyn::prelude::*;

const SIGMA: f64 = 10.0;
const RHO: f64 = 28.0;
const BETA: f64 = 8.0 / 3.0;

/// The Lorenz flow as a user would write it: a struct implementing `Model` with its Jacobian.
struct Lorenz;

impl Model for Lorenz {
    fn dim(&self) -> usize {
        3
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        dx[0] = SIGMA * (x[1] - x[0]);
        dx[1] = x[0] * (RHO - x[2]) - x[1];
        dx[2] = x[0] * x[1] - BETA * x[2];
    }
    fn jacobian(&self, _t: f64, x: &[f64], mut j: MatMut<'_, f64>) {
        let rows = [
            [-SIGMA, SIGMA, 0.0],
            [RHO - x[2], -1.0, -x[0]],
            [x[1], x[0], -BETA],
        ];
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                j[(r, c)] = *v;
            }
        }
    }
    fn name(&self) -> String {
        "Lorenz".into()
    }
}

/// The Hénon map from closures, a = 1.4, b = 0.3.
fn henon() -> MapFn {
    MapFn::new(2, |_t, h| {
        let (x, y) = (h[0], h[1]);
        h[0] = 1.0 - 1.4 * x * x + y;
        h[1] = 0.3 * x;
    })
    .with_jacobian(|_t, h, mut d| {
        d[(0, 0)] = -2.8 * h[0];
        d[(0, 1)] = 1.0;
        d[(1, 0)] = 0.3;
        d[(1, 1)] = 0.0;
    })
    .named("Hénon")
}

#[test]
fn lorenz_jacobian_fixed_points_and_stability() {
    let c = check_jacobian(&Lorenz, 0.0, &[1.0, -2.0, 20.0]);
    assert!(c.passes(1e-8), "{c:?}");
    // The closure version with a finite-difference Jacobian agrees with the analytic one.
    let fd = FlowFn::new(3, |t, x, dx| Lorenz.rhs(t, x, dx));
    let (ja, jf) = (
        jacobian_mat(&Lorenz, 0.0, &[3.0, 4.0, 5.0]),
        jacobian_mat(&fd, 0.0, &[3.0, 4.0, 5.0]),
    );
    for i in 0..3 {
        for k in 0..3 {
            assert!((ja[(i, k)] - jf[(i, k)]).abs() < 1e-8, "({i}, {k})");
        }
    }
    let starts = random_starts(3, 64, -20.0, 30.0, 1);
    let pts = find_fixed_points(&Lorenz, &starts, &FinderOptions::default()).unwrap();
    assert_eq!(pts.len(), 3, "origin and C±");
    let r = (BETA * (RHO - 1.0)).sqrt();
    for p in &pts {
        let s = &p.stability;
        if p.x[2].abs() < 1e-9 {
            // The origin: a saddle with one unstable direction, λ = (−11 ± √1201)/2 and −β.
            assert_eq!(s.n_unstable, 1);
            assert!((s.max_growth - (-11.0 + 1201f64.sqrt()) / 2.0).abs() < 1e-10);
        } else {
            assert!((p.x[0].abs() - r).abs() < 1e-10 && (p.x[2] - (RHO - 1.0)).abs() < 1e-10);
            // Beyond the Hopf point ρ_H ≈ 24.74: an unstable focus pair (Re λ ≈ 0.0940).
            assert_eq!(s.n_unstable, 2);
            assert!((s.max_growth - 0.093_955).abs() < 1e-5, "{}", s.max_growth);
        }
    }
}

#[test]
fn lorenz_spectrum_and_sum_identity() {
    // Warm up onto the attractor, then 500 time units of RK4 at dt = 0.01.
    let run = |dt: f64, time: f64| {
        let opts = LyapunovOptions::new()
            .dt(dt)
            .warmup_time(20.0)
            .time(time)
            .frame(InitialFrame::Random(3));
        lyapunov_flow(&Lorenz, &[1.0, 1.0, 1.0], &opts).unwrap()
    };
    let s = run(0.01, 500.0);
    let l = &s.exponents;
    assert!(l[0] >= l[1] && l[1] >= l[2], "sorted, largest first: {l:?}");
    assert!((l[0] - 0.9056).abs() < 0.03, "{l:?}");
    assert!(l[1].abs() < 0.01, "{l:?}");
    assert!((l[2] + 14.5723).abs() < 0.03, "{l:?}");
    // Σλ = ⟨tr J⟩ = −(σ + 1 + β) exactly for the flow; the RK4 propagator's determinant differs by
    // O(dt⁴) per unit time, which halving dt must cut ~16-fold.
    let exact = -(SIGMA + 1.0 + BETA);
    assert!((s.sum_reference.unwrap() - exact).abs() < 1e-10 * exact.abs());
    let e1 = (s.sum() - exact).abs();
    let e2 = (run(0.005, 100.0).sum() - exact).abs();
    let e1_short = (run(0.01, 100.0).sum() - exact).abs();
    assert!(e1 < 1e-3, "Σλ error {e1:e} at dt = 0.01");
    let order = (e1_short / e2).log2();
    eprintln!(
        "Lorenz λ = {l:?}; Σλ error {e1:.2e} (dt 0.01, T 500), order {order:.2} ({e1_short:.2e} → {e2:.2e})"
    );
    assert!(
        (order - 4.0).abs() < 0.5,
        "observed order {order} ({e1_short:e} → {e2:e})"
    );
}

#[test]
fn henon_fixed_points_stability_and_spectrum() {
    let map = henon();
    let c = check_map_jacobian(&map, 0, &[0.3, -0.2]);
    assert!(c.passes(1e-8), "{c:?}");
    let pts = find_map_fixed_points(
        &map,
        0,
        &random_starts(2, 32, -2.0, 2.0, 0),
        &FinderOptions::default(),
    )
    .unwrap();
    assert_eq!(pts.len(), 2);
    // x* = (−(1 − b) ± √((1 − b)² + 4a)) / 2a, y* = b x*; both saddles of the map.
    let disc = (0.7f64 * 0.7 + 4.0 * 1.4).sqrt();
    let roots = [(-0.7 - disc) / 2.8, (-0.7 + disc) / 2.8];
    for (p, x) in pts.iter().zip(roots) {
        assert!((p.x[0] - x).abs() < 1e-12 && (p.x[1] - 0.3 * x).abs() < 1e-12);
        assert_eq!(p.stability.n_unstable, 1);
        let s = analyze_map(&map, 0, &p.x).unwrap();
        assert_eq!(s.n_unstable, 1);
    }
    let s = lyapunov_map(
        &map,
        &[0.1, 0.1],
        &LyapunovOptions::new().warmup(1000).steps(1_000_000),
    )
    .unwrap();
    assert!((s.exponents[0] - 0.41922).abs() < 2e-3, "{:?}", s.exponents);
    assert!((s.exponents[1] + 1.62319).abs() < 2e-3, "{:?}", s.exponents);
    eprintln!(
        "Hénon λ = {:?}, Σλ − ln b = {:.1e}",
        s.exponents,
        s.sum() - 0.3f64.ln()
    );
    // det D = −b at every step: Σλ = ln b to round-off.
    assert!(
        (s.sum() - 0.3f64.ln()).abs() < 1e-12,
        "{}",
        s.sum() - 0.3f64.ln()
    );
    // The same map through the System front door gives the same bits.
    let sys = System::Map(Box::new(henon()));
    let s2 = lyapunov_system(
        &sys,
        &[0.1, 0.1],
        &LyapunovOptions::new().warmup(1000).steps(1_000_000),
    )
    .unwrap();
    assert_eq!(s.exponents, s2.exponents);
}

#[test]
fn flow_divergence_is_a_runtime_failure_blaming_dt() {
    // dx/dt = x² blows up in finite time from x = 1 (at t = 1): the error says to try a smaller dt
    // or that the flow diverges, and it is a run failure (exit 1), not invalid input.
    let f = FlowFn::new(1, |_t, x, dx| dx[0] = x[0] * x[0]);
    let e = lyapunov_flow(&f, &[1.0], &LyapunovOptions::new().dt(0.5).steps(100)).unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    assert!(e.to_string().contains("dt = 0.5"), "{e}");
}
