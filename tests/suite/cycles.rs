//! Periodic orbits: limit cycles by shooting with their Floquet multipliers, period-k points of
//! maps — against closed forms (the Stuart–Landau oscillator, the logistic map's 2-cycle),
//! finite differences (the monodromy matrix) and the NeurIPS δ = 2 ORGaNICs trial's limit cycle.

use neurodyn::cycles::{estimate_period, find_cycle, monodromy, periodic_point, CycleOptions};
use neurodyn::model::{FlowFn, MapFn};

/// The Stuart–Landau (Hopf normal form) oscillator ż = (μ + iω) z − |z|² z: a cycle of radius
/// √μ, period 2π/ω, nontrivial Floquet multiplier e^{−2μT}.
fn stuart_landau(mu: f64, omega: f64) -> FlowFn {
    FlowFn::new(2, move |_t, x, dx| {
        let r2 = x[0] * x[0] + x[1] * x[1];
        dx[0] = mu * x[0] - omega * x[1] - r2 * x[0];
        dx[1] = omega * x[0] + mu * x[1] - r2 * x[1];
    })
    .with_jacobian(move |_t, x, mut j| {
        let r2 = x[0] * x[0] + x[1] * x[1];
        j[(0, 0)] = mu - r2 - 2.0 * x[0] * x[0];
        j[(0, 1)] = -omega - 2.0 * x[0] * x[1];
        j[(1, 0)] = omega - 2.0 * x[0] * x[1];
        j[(1, 1)] = mu - r2 - 2.0 * x[1] * x[1];
    })
}

#[test]
fn the_stuart_landau_cycle_its_period_radius_and_multipliers() {
    let (mu, omega) = (0.5, 2.0);
    let m = stuart_landau(mu, omega);
    let t_exact = 2.0 * std::f64::consts::PI / omega;
    // From off the cycle, with a rough period.
    let c = find_cycle(&m, &[1.0, 0.3], 3.0, &CycleOptions::default()).unwrap();
    assert!((c.period - t_exact).abs() < 1e-9, "{c:?}");
    let r = (c.x0[0].powi(2) + c.x0[1].powi(2)).sqrt();
    assert!((r - mu.sqrt()).abs() < 1e-9, "{r}");
    assert!((c.max[0] - mu.sqrt()).abs() < 1e-5 && (c.min[1] + mu.sqrt()).abs() < 1e-5);
    assert!(c.trivial_error() < 1e-9, "{:?}", c.multipliers);
    let nt = c.nontrivial();
    assert_eq!(nt.len(), 1);
    assert!((nt[0].re - (-2.0 * mu * t_exact).exp()).abs() < 1e-9 && nt[0].im.abs() < 1e-12);
    assert!(c.is_stable() && c.residual < 1e-10);
    // The matrix-free path (GMRES on the bordered system, Arnoldi on M v) agrees.
    let free = CycleOptions {
        dense_limit: 0,
        leading: 2,
        ..Default::default()
    };
    let f = find_cycle(&m, &[1.0, 0.3], 3.0, &free).unwrap();
    assert!((f.period - t_exact).abs() < 1e-9, "{f:?}");
    assert!(
        (f.nontrivial()[0].re - nt[0].re).abs() < 1e-8,
        "{:?}",
        f.multipliers
    );
    // μ < 0: no cycle, the search fails as a run (exit 1), not as bad input.
    let e = find_cycle(
        &stuart_landau(-0.5, omega),
        &[1.0, 0.0],
        3.0,
        &CycleOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    // Bad input names its field.
    let e = find_cycle(&m, &[1.0], 3.0, &CycleOptions::default()).unwrap_err();
    assert!(e.to_string().contains("x0"), "{e}");
    let e = find_cycle(&m, &[1.0, 0.0], -1.0, &CycleOptions::default()).unwrap_err();
    assert!(e.to_string().contains("period"), "{e}");
    // The period from a trajectory's returns to its section.
    let t = estimate_period(&m, &c.x0, 10.0, 1e-3).unwrap().unwrap();
    assert!((t - t_exact).abs() < 1e-6, "{t}");
}

/// M = ∂φ_T/∂x₀ against central differences of the end point, on a nonlinear 3-D flow.
#[test]
fn the_monodromy_matrix_is_the_derivative_of_the_flow_map() {
    let lorenz = FlowFn::new(3, |_t, x, dx| {
        dx[0] = 10.0 * (x[1] - x[0]);
        dx[1] = x[0] * (28.0 - x[2]) - x[1];
        dx[2] = x[0] * x[1] - 8.0 / 3.0 * x[2];
    })
    .with_jacobian(|_t, x, mut j| {
        j.fill(0.0);
        j[(0, 0)] = -10.0;
        j[(0, 1)] = 10.0;
        j[(1, 0)] = 28.0 - x[2];
        j[(1, 1)] = -1.0;
        j[(1, 2)] = -x[0];
        j[(2, 0)] = x[1];
        j[(2, 1)] = x[0];
        j[(2, 2)] = -8.0 / 3.0;
    });
    let x0 = [1.0, 2.0, 20.0];
    let (end, m) = monodromy(&lorenz, &x0, 0.3, 600).unwrap();
    assert!(end.iter().all(|v| v.is_finite()));
    let eps = 1e-6;
    for j in 0..3 {
        let (mut xp, mut xm) = (x0, x0);
        xp[j] += eps;
        xm[j] -= eps;
        let (ep, _) = monodromy(&lorenz, &xp, 0.3, 600).unwrap();
        let (em, _) = monodromy(&lorenz, &xm, 0.3, 600).unwrap();
        for i in 0..3 {
            let fd = (ep[i] - em[i]) / (2.0 * eps);
            assert!(
                (fd - m[(i, j)]).abs() < 1e-6 * (1.0 + fd.abs()),
                "M[{i},{j}] = {} vs {fd}",
                m[(i, j)]
            );
        }
    }
    // Liouville: det M = exp(∫ tr J dt) = exp(−(10 + 1 + 8/3) T).
    let det = m.determinant();
    assert!(
        (det - (-(10.0 + 1.0 + 8.0 / 3.0) * 0.3f64).exp()).abs() < 1e-8,
        "{det}"
    );
}

/// The logistic map x ← r x (1 − x) at r = 3.2: the 2-cycle x± = (r + 1 ± √((r − 3)(r + 1))) / 2r
/// with multiplier −r² + 2r + 4 = 0.16.
#[test]
fn the_logistic_two_cycle() {
    let r = 3.2;
    let map = MapFn::new(1, move |_t, h| h[0] = r * h[0] * (1.0 - h[0]))
        .with_jacobian(move |_t, h, mut j| j[(0, 0)] = r * (1.0 - 2.0 * h[0]));
    let p = periodic_point(&map, &[0.5], 2, &CycleOptions::default()).unwrap();
    let s = ((r - 3.0) * (r + 1.0)).sqrt();
    let (hi, lo) = ((r + 1.0 + s) / (2.0 * r), (r + 1.0 - s) / (2.0 * r));
    assert!(
        (p.x[0] - hi).abs() < 1e-12 || (p.x[0] - lo).abs() < 1e-12,
        "{p:?}"
    );
    assert!((p.multipliers[0].re - (-r * r + 2.0 * r + 4.0)).abs() < 1e-12 && p.is_stable());
    // Period 1: the fixed point 1 − 1/r, multiplier 2 − r (unstable).
    let f = periodic_point(&map, &[0.6], 1, &CycleOptions::default()).unwrap();
    assert!((f.x[0] - (1.0 - 1.0 / r)).abs() < 1e-12 && !f.is_stable());
    assert!(periodic_point(&map, &[0.5], 0, &CycleOptions::default()).is_err());
}

/// The NeurIPS δ = 2 trial that the sweep cannot classify (‖z‖ = 0.316, trial 6 of
/// `models/sweep-neurips.toml`): from the end of its simulation, shooting finds the limit cycle
/// the sweep's diagnosis describes only by its maxima (period 48.2 ms, Euler steps), as an orbit of
/// the ODE with its Floquet multipliers — the trivial one at 1 and every other inside the unit
/// circle: the cycle attracts, which is why the trial settles on it.
#[test]
fn the_neurips_delta_two_trial_settles_on_a_stable_limit_cycle() {
    use neurodyn::sweep::{setup_trial, simulate_trial, SweepConfig};
    let c =
        SweepConfig::from_toml(include_str!("../../models/sweep-neurips.toml"), "neurips").unwrap();
    let setup = setup_trial(&c, &c.deltas(), &c.inputs(), 46, None).unwrap();
    assert_eq!((setup.i_delta, setup.j_input, setup.k_trial), (1, 1, 6));
    let (_, _, x) = simulate_trial(&setup.model, &setup.x0, c.max_chunks);
    let guess = estimate_period(&setup.model, &x, 0.3, 2e-5)
        .unwrap()
        .unwrap();
    let opts = CycleOptions {
        steps: 400,
        ..Default::default()
    };
    let cyc = find_cycle(&setup.model, &x, guess, &opts).unwrap();
    // The ODE's period (48.131 ms) beside the Euler trial's 48.17 ms.
    assert!((cyc.period - 0.048131).abs() < 2e-5, "{}", cyc.period);
    assert!((guess - cyc.period).abs() < 1e-4);
    assert!(cyc.residual < 1e-9 && cyc.trivial_error() < 1e-8, "{cyc:?}");
    // The leading nontrivial multiplier ≈ 0.151: the cycle attracts.
    let nt = cyc.nontrivial();
    assert!(
        (nt[0].re - 0.1509).abs() < 2e-3 && nt[0].im == 0.0,
        "{nt:?}"
    );
    assert!(cyc.is_stable());
}

use neurodyn::continuation::cycles::{
    continue_cycles, hopf_cycle, CycleContinuationOptions, CycleEventKind, CyclePoint,
};
use neurodyn::continuation::ParamFn;
use neurodyn::stability::TimeKind;

/// ż = (μ + iω) z + a |z|² z − b |z|⁴ z as a flow in (x, y) with parameter μ.
fn hopf_family(omega: f64, a: f64, b: f64) -> ParamFn {
    ParamFn::new("mu", 2, TimeKind::Continuous, move |x, mu, dx| {
        let r2 = x[0] * x[0] + x[1] * x[1];
        let g = mu + a * r2 - b * r2 * r2;
        dx[0] = g * x[0] - omega * x[1];
        dx[1] = omega * x[0] + g * x[1];
    })
    .with_jacobian(move |x, mu, mut j| {
        let r2 = x[0] * x[0] + x[1] * x[1];
        let g = mu + a * r2 - b * r2 * r2;
        let dg = a - 2.0 * b * r2; // ∂g/∂(r²)
        j[(0, 0)] = g + 2.0 * dg * x[0] * x[0];
        j[(0, 1)] = -omega + 2.0 * dg * x[0] * x[1];
        j[(1, 0)] = omega + 2.0 * dg * x[0] * x[1];
        j[(1, 1)] = g + 2.0 * dg * x[1] * x[1];
    })
}

/// From the supercritical Hopf point of the Stuart–Landau family (μ = 0, ω = 2, l1 < 0) onto its
/// cycle branch and along it: radius √μ, period π and multiplier e^{−2μπ} at every point.
#[test]
fn cycles_are_continued_from_a_hopf_point_along_their_branch() {
    let sys = hopf_family(2.0, -1.0, 0.0);
    let (p, c) = hopf_cycle(
        &sys,
        &[0.0, 0.0],
        0.0,
        2.0,
        Some(-1.0),
        0.01,
        &CycleOptions::default(),
    )
    .unwrap();
    assert!(
        (p - 0.01).abs() < 1e-12,
        "the cycle lives where the equilibrium is unstable: {p}"
    );
    assert!((c.amplitude()[0] - 2.0 * 0.1).abs() < 1e-6, "{c:?}");
    let opts = CycleContinuationOptions {
        to: 1.0,
        ds: 0.05,
        ds_max: 0.2,
        ..Default::default()
    };
    let br = continue_cycles(&sys, &c, p, &opts).unwrap();
    assert!(
        br.points.len() >= 6 && br.events.is_empty(),
        "{} points, {:?}",
        br.points.len(),
        br.events
    );
    assert!(br.points.last().unwrap().p > 1.0, "{}", br.stop);
    for q in &br.points {
        let t = std::f64::consts::PI;
        assert!(
            (q.cycle.period - t).abs() < 1e-8,
            "{} at μ = {}",
            q.cycle.period,
            q.p
        );
        assert!(
            (q.cycle.amplitude()[0] - 2.0 * q.p.sqrt()).abs() < 1e-5,
            "μ = {}",
            q.p
        );
        let nt = q.cycle.nontrivial()[0];
        assert!((nt.re - (-2.0 * q.p * t).exp()).abs() < 1e-7 && q.cycle.is_stable());
    }
    let t = br.table();
    assert_eq!(t.column("period").unwrap().len(), br.points.len());
}

/// The subcritical Hopf family with a quintic term, ż = (μ + iω) z + 2|z|² z − |z|⁴ z: cycles at
/// r² = 1 ± √(1 + μ), which meet in a fold at μ = −1 (r = 1). Followed from the stable outer cycle
/// at μ = −0.5 towards smaller μ, the branch turns at the fold and comes back as the unstable inner
/// cycle.
#[test]
fn a_cycle_fold_is_passed_and_located() {
    let sys = hopf_family(1.0, 2.0, 1.0);
    let r_out = (1.0 + 0.5f64.sqrt()).sqrt();
    let start = find_cycle(
        &neurodyn::continuation::cycles::flow_at(&sys, -0.5),
        &[r_out * 1.01, 0.0],
        6.3,
        &CycleOptions::default(),
    )
    .unwrap();
    assert!((start.x0[0].hypot(start.x0[1]) - r_out).abs() < 1e-9 && start.is_stable());
    let opts = CycleContinuationOptions {
        to: -1.5,
        ds: 0.02,
        ds_max: 0.05,
        max_points: 400,
        ..Default::default()
    };
    let br = continue_cycles(&sys, &start, -0.5, &opts).unwrap();
    let folds: Vec<_> = br
        .events
        .iter()
        .filter(|e| e.kind == CycleEventKind::Fold)
        .collect();
    assert_eq!(folds.len(), 1, "{:?} ({})", br.events, br.stop);
    assert!((folds[0].p + 1.0).abs() < 5e-3, "{:?}", folds[0]);
    let pmin = br.points.iter().map(|q| q.p).fold(f64::INFINITY, f64::min);
    assert!((pmin + 1.0).abs() < 5e-3 && pmin >= -1.0 - 1e-9, "{pmin}");
    // Past the fold: the inner cycles, unstable, radius² = 1 − √(1 + μ).
    let back = &br.points[folds[0].index..];
    assert!(back.len() >= 3);
    for q in back.iter().filter(|q| q.p > -0.99) {
        let r2 = 1.0 - (1.0 + q.p).sqrt();
        assert!(
            (q.cycle.x0[0].hypot(q.cycle.x0[1]).powi(2) - r2).abs() < 1e-6,
            "μ = {}",
            q.p
        );
        assert!(!q.cycle.is_stable() && (q.cycle.period - std::f64::consts::TAU).abs() < 1e-8);
    }
}

/// The 2-D ORGaNICs circuit (`models/organics-2d-bistable.toml`) in w = W_r: past its
/// supercritical Hopf point (w_H = 1.349041688631, ω = 264.475 /s, l1 = −0.415, located by the
/// equilibrium continuation) the cycle is born with the normal form's amplitude, growing as
/// √|w − w_H| (Kuznetsov 2004, §3.4): followed away from w_H, the amplitude at four times the
/// distance is twice as large, the period tends to 2π/ω at w_H, and the cycle attracts.
#[test]
fn the_organics_hopf_cycle_grows_as_the_square_root_of_the_distance() {
    use neurodyn::source::{Source, View};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/organics-2d-bistable.toml");
    let src = Source::Preset {
        path: Some(path),
        overrides: Default::default(),
        input: None,
    };
    let r = src
        .parametrised(View::Natural, "W_r", None, 0, 3.0)
        .unwrap();
    let sys = r.system.as_ref();
    // The equilibrium branch from w = 3 down to 0.5 (as `continuation` runs it): its Hopf point.
    let eq = neurodyn::continuation::continue_branch(
        sys,
        &r.start_point(3.0, 16, 0).unwrap(),
        &neurodyn::continuation::ContinuationOptions::new(3.0, 0.5),
    )
    .unwrap();
    let h = eq
        .bifurcations
        .iter()
        .find(|z| z.kind == neurodyn::continuation::Kind::Hopf)
        .unwrap();
    let (w_h, omega, l1, x_h) = (h.p, h.omega.unwrap(), h.l1.unwrap(), h.x.clone());
    assert!((w_h - 1.349041688631).abs() < 1e-9 && (omega - 264.47525107).abs() < 1e-6 && l1 < 0.0);
    let (p, c) = hopf_cycle(
        sys,
        &x_h,
        w_h,
        omega,
        Some(l1),
        1e-4,
        &CycleOptions::default(),
    )
    .unwrap();
    assert!((p - w_h).abs() < 1.1e-4 && c.is_stable(), "{p} {c:?}");
    assert!(
        (c.period - 2.0 * std::f64::consts::PI / omega).abs() < 1e-3 * c.period,
        "{}",
        c.period
    );
    let dir = p - w_h;
    let opts = CycleContinuationOptions {
        to: w_h + 20.0 * dir,
        ds: 1e-4,
        ds_max: 2e-4,
        ..Default::default()
    };
    let br = continue_cycles(sys, &c, p, &opts).unwrap();
    let amp = |w: f64| {
        // The amplitude at the point nearest w (linear between neighbours).
        let k = br
            .points
            .windows(2)
            .position(|q| (q[0].p - w) * (q[1].p - w) <= 0.0)
            .unwrap();
        let (a, b) = (&br.points[k], &br.points[k + 1]);
        let s = (w - a.p) / (b.p - a.p);
        let f = |q: &CyclePoint| q.cycle.amplitude().into_iter().fold(0.0, f64::max);
        f(a) + s * (f(b) - f(a))
    };
    let ratio = amp(w_h + 16.0 * dir) / amp(w_h + 4.0 * dir);
    assert!((ratio - 2.0).abs() < 0.1, "amplitude ratio {ratio}");
    assert!(
        br.points.iter().all(|q| q.cycle.is_stable()) && br.events.is_empty(),
        "{:?}",
        br.events
    );
}

/// The Rössler flow (a = b = 0.2) in c: its period-1 cycle at c = 2.5 doubles its period near
/// c ≈ 2.83 (the first period doubling of its cascade): a real Floquet multiplier passes −1.
#[test]
fn the_rossler_cycle_doubles_its_period() {
    let sys = rossler();
    let flow = neurodyn::continuation::cycles::flow_at(&sys, 2.5);
    let c0 = rossler_cycle(&flow);
    assert!(c0.is_stable() && (c0.period - 5.9).abs() < 0.3, "{c0:?}");
    let opts = CycleContinuationOptions {
        to: 3.2,
        ds: 0.02,
        ds_max: 0.05,
        ..Default::default()
    };
    let br = continue_cycles(&sys, &c0, 2.5, &opts).unwrap();
    let pd: Vec<_> = br
        .events
        .iter()
        .filter(|e| e.kind == CycleEventKind::PeriodDoubling)
        .collect();
    assert_eq!(pd.len(), 1, "{:?}", br.events);
    assert!((pd[0].p - 2.832).abs() < 0.01, "{:?}", pd[0]);
    // Before it the cycle attracts; after it a multiplier is below −1.
    let k = pd[0].index;
    assert!(br.points[k - 1].cycle.is_stable() && !br.points[k].cycle.is_stable());
    assert!(br.points[k]
        .cycle
        .nontrivial()
        .iter()
        .any(|m| m.im == 0.0 && m.re < -1.0));
}

/// Cycle continuation of a rate network of N = 100 units (beyond the old dense limit of 64): a
/// rotation block [[1.25, −0.5], [0.5, 1.25]] on units 0 and 1 plus weak random coupling, so the
/// trivial equilibrium loses stability at a Hopf point near g = 0.8. From that Hopf point onto
/// the cycle branch: at every point the trivial Floquet multiplier is 1 to 1e-8, and the first
/// cycle's period is 2π/ω of the Hopf point to 1 %.
#[test]
fn cycles_of_a_hundred_unit_rate_network() {
    use faer::Mat;
    use neurodyn::continuation::cycles::cycles_from_hopf;
    use neurodyn::continuation::{continue_branch, ContinuationOptions, Kind, RateKnob, RateParam};
    use neurodyn::model::{Activation, RateRnn};
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let n = 100;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut w = Mat::from_fn(n, n, |_, _| {
        let z: f64 = StandardNormal.sample(&mut rng);
        0.3 * z / (n as f64).sqrt()
    });
    w[(0, 0)] = 1.25;
    w[(0, 1)] = -0.5;
    w[(1, 0)] = 0.5;
    w[(1, 1)] = 1.25;
    let base = RateRnn::new(w, Activation::Tanh).unwrap();
    let sys = RateParam::new(base, RateKnob::Gain { g0: 1.0 }, false).unwrap();
    let branch = continue_branch(&sys, &vec![0.0; n], &ContinuationOptions::new(0.5, 1.2)).unwrap();
    let hopf = branch
        .bifurcations
        .iter()
        .find(|b| b.kind == Kind::Hopf)
        .expect("a Hopf point");
    assert!((0.6..1.0).contains(&hopf.p), "Hopf at g = {}", hopf.p);
    let omega = hopf.omega.unwrap();
    let opts = CycleContinuationOptions {
        max_points: 5,
        ..Default::default()
    };
    let cycles = cycles_from_hopf(&sys, &branch, (0.5, 1.2), &opts)
        .unwrap()
        .expect("a cycle branch");
    assert!(cycles.points.len() >= 4, "{}", cycles.stop);
    let t0 = 2.0 * std::f64::consts::PI / omega;
    let first = &cycles.points[0].cycle;
    assert!(
        (first.period - t0).abs() < 1e-2 * t0,
        "period {} against 2π/ω = {t0}",
        first.period
    );
    for q in &cycles.points {
        let mu = q.cycle.multipliers[q.cycle.trivial];
        assert!(
            (mu - faer::c64::new(1.0, 0.0)).norm() < 1e-8,
            "trivial multiplier {mu:?} at g = {}",
            q.p
        );
        assert_eq!(q.cycle.multipliers.len(), n);
    }
}

/// Branch switching at the Rössler cycle's first period doubling (a = b = 0.2, c ≈ 2.832): the
/// doubled cycle starts with twice the period, and followed in c it doubles again near the
/// literature's second flip, c ≈ 3.837 (the cascade 2.832, 3.837, 4.12, … towards chaos).
#[test]
fn the_rossler_doubled_cycle_doubles_again() {
    use neurodyn::continuation::cycles::switch_period_doubling;
    let sys = rossler();
    let flow = neurodyn::continuation::cycles::flow_at(&sys, 2.5);
    let c0 = rossler_cycle(&flow);
    let opts = CycleContinuationOptions {
        to: 3.0,
        ds: 0.02,
        ds_max: 0.05,
        ..Default::default()
    };
    let br = continue_cycles(&sys, &c0, 2.5, &opts).unwrap();
    let pd = br
        .events
        .iter()
        .find(|e| e.kind == CycleEventKind::PeriodDoubling)
        .expect("the first flip");
    let k = pd.index;
    let t1 = br.points[k].cycle.period;
    let opts2 = CycleContinuationOptions {
        to: 4.0,
        ..opts.clone()
    };
    let doubled = switch_period_doubling(&sys, &br, pd, &opts2).unwrap();
    let first = &doubled.points[0];
    assert!(
        (first.cycle.period - 2.0 * t1).abs() < 0.05 * t1,
        "doubled period {} against 2 × {t1}",
        first.cycle.period
    );
    assert!(first.cycle.is_stable(), "{:?}", first.cycle.nontrivial());
    let pd2: Vec<_> = doubled
        .events
        .iter()
        .filter(|e| e.kind == CycleEventKind::PeriodDoubling)
        .collect();
    assert!(!pd2.is_empty(), "{:?} ({})", doubled.events, doubled.stop);
    assert!(
        (pd2[0].p - 3.837).abs() < 0.01,
        "second flip at c = {}",
        pd2[0].p
    );
    let fold = neurodyn::continuation::cycles::CycleEvent {
        kind: CycleEventKind::Fold,
        ..pd.clone()
    };
    assert!(switch_period_doubling(&sys, &br, &fold, &opts2).is_err());
}

/// Multiple shooting on a strongly unstable cycle: the subcritical Stuart–Landau family
/// ż = (μ + i) z + |z|² z at μ = −3 has the repelling cycle r = √3 of period 2π with nontrivial
/// multiplier e^{−2μ·2π} = e^{12π} ≈ 2.6e16, far beyond what one shot resolves. Twenty segments
/// from points at r = 1.5 converge to r = √3, T = 2π and that multiplier (to 1e-6, relative).
#[test]
fn multiple_shooting_finds_a_strongly_repelling_cycle() {
    use neurodyn::cycles::find_cycle_multiple;
    let sys = hopf_family(1.0, 1.0, 0.0);
    let flow = neurodyn::continuation::cycles::flow_at(&sys, -3.0);
    let m = 20;
    // Starts well inside the cycle: the first full Newton step overshoots into finite-time
    // escape (r' ≈ r³), so the damping is exercised.
    let (r0, t0) = (1.5, 6.0);
    let starts: Vec<Vec<f64>> = (0..m)
        .map(|i| {
            let th = 2.0 * std::f64::consts::PI * i as f64 / m as f64;
            vec![r0 * th.cos(), r0 * th.sin()]
        })
        .collect();
    let c = find_cycle_multiple(&flow, &starts, t0, &CycleOptions::default()).unwrap();
    let tau = 2.0 * std::f64::consts::PI;
    assert!((c.period - tau).abs() < 1e-6, "period {}", c.period);
    let r = (c.x0[0] * c.x0[0] + c.x0[1] * c.x0[1]).sqrt();
    assert!((r - 3f64.sqrt()).abs() < 1e-6, "radius {r}");
    assert!(
        (c.amplitude()[0] - 2.0 * 3f64.sqrt()).abs() < 1e-3,
        "{:?}",
        c.amplitude()
    );
    let big = c.multipliers[0];
    let want = (12.0 * std::f64::consts::PI).exp();
    assert!(
        (big.re - want).abs() < 1e-6 * want && big.im.abs() < 1e-6 * want,
        "{big:?} against e^(12π) = {want:e}"
    );
    assert!(!c.is_stable());
    assert!(find_cycle_multiple(&flow, &starts[..1], t0, &CycleOptions::default()).is_err());
    // One shot from the same start fails, and from nearer the cycle its period collapses to 0
    // (a trivial solution of φ_T(x) = x), which is refused.
    for r0 in [1.5, 1.7] {
        let one = find_cycle(&flow, &[r0, 0.0], 6.2, &CycleOptions::default());
        assert!(one.is_err(), "r0 = {r0}: {one:?}");
    }
}

/// The Rössler system ẋ = −y − z, ẏ = x + a y, ż = b + z (x − c), a = b = 0.2, parameter c.
fn rossler() -> ParamFn {
    let (a, b) = (0.2, 0.2);
    ParamFn::new("c", 3, TimeKind::Continuous, move |x, c, dx| {
        dx[0] = -x[1] - x[2];
        dx[1] = x[0] + a * x[1];
        dx[2] = b + x[2] * (x[0] - c);
    })
    .with_jacobian(move |x, c, mut j| {
        j.fill(0.0);
        j[(0, 1)] = -1.0;
        j[(0, 2)] = -1.0;
        j[(1, 0)] = 1.0;
        j[(1, 1)] = a;
        j[(2, 0)] = x[2];
        j[(2, 2)] = x[0] - c;
    })
}

/// The Rössler cycle of `flow`: onto the attractor, a period guess from the section returns,
/// then single shooting.
fn rossler_cycle(flow: &impl neurodyn::model::Model) -> neurodyn::cycles::Cycle {
    let x = neurodyn::integrate::integrate(
        flow,
        &[1.0, 1.0, 0.0],
        (0.0, 200.0),
        &neurodyn::integrate::Method::dopri5(1e-10, 1e-12),
        &neurodyn::integrate::Options::new(),
    )
    .unwrap()
    .last()
    .to_vec();
    let t = estimate_period(flow, &x, 20.0, 1e-3).unwrap().unwrap();
    find_cycle(flow, &x, t, &CycleOptions::default()).unwrap()
}
