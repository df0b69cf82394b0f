//! The stability sweep: the deterministic cross-check vectors of the original sweep code (Rawat, Heeger & Martiniani 2024), find_peaks semantics, determinism,
//! resume and shard/merge identity (the command-line side is in tests/suite/cli_sweep.rs).

use neurodyn::sweep::{
    find_peaks, is_periodic, job_index, run_trial, shard_jobs, Condition, InitialType, InputType,
    MatrixType, SweepConfig,
};

fn cfg(delta: f64, input: f64, input_type: InputType, initial: InitialType) -> SweepConfig {
    let mut c = SweepConfig::from_toml(neurodyn::sweep::DEFAULT_CONFIG, "default").unwrap();
    c.matrix = MatrixType::Deterministic;
    c.delta_min = delta;
    c.delta_max = delta;
    c.delta_num = 1;
    c.delta_scale = neurodyn::sweep::Scale::Linear;
    c.input_min = input;
    c.input_max = input;
    c.input_num = 1;
    c.input_scale = neurodyn::sweep::Scale::Linear;
    c.input_type = input_type;
    c.initial = initial;
    c.trials = 1;
    c
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1e-12)
}

/// (δ, input, type, IC, ρ, code, chunks, ‖y‖, max Re eig J, ‖y* − y0‖/‖y0‖); 0.707107 is the
/// spec table's printed value, not a rounded 1/√2.
#[allow(clippy::type_complexity, clippy::approx_constant)]
const ROWS: [(
    f64,
    f64,
    InputType,
    InitialType,
    f64,
    u8,
    usize,
    f64,
    f64,
    f64,
); 13] = [
    (
        0.0,
        0.01,
        InputType::Delocalized,
        InitialType::FirstOrder,
        1.0,
        2,
        1,
        0.099504,
        -50.2494,
        0.0,
    ),
    (
        0.0,
        0.1,
        InputType::Delocalized,
        InitialType::FirstOrder,
        1.0,
        2,
        1,
        0.707107,
        -70.7107,
        0.0,
    ),
    (
        0.0,
        1.0,
        InputType::Delocalized,
        InitialType::FirstOrder,
        1.0,
        2,
        1,
        0.995037,
        -253.722,
        0.0,
    ),
    (
        0.1,
        0.01,
        InputType::Delocalized,
        InitialType::FirstOrder,
        1.17299,
        2,
        4,
        0.74752,
        -1.8019,
        6.7624,
    ),
    (
        0.1,
        0.1,
        InputType::Delocalized,
        InitialType::FirstOrder,
        1.17299,
        2,
        1,
        0.88794,
        -41.015,
        0.59256,
    ),
    (
        0.3,
        0.1,
        InputType::Delocalized,
        InitialType::FirstOrder,
        1.51896,
        2,
        3,
        0.96557,
        -32.446,
        0.78005,
    ),
    (
        0.3,
        0.1,
        InputType::Delocalized,
        InitialType::Norm,
        1.51896,
        2,
        2,
        0.96557,
        -32.445,
        0.78005,
    ),
    (
        0.3,
        0.1,
        InputType::Localized,
        InitialType::FirstOrder,
        1.51896,
        2,
        3,
        0.95890,
        -8.1877,
        1.19214,
    ),
    (
        0.6,
        0.01,
        InputType::Delocalized,
        InitialType::FirstOrder,
        2.03793,
        3,
        4,
        f64::NAN,
        f64::NAN,
        f64::NAN,
    ),
    (
        0.6,
        0.1,
        InputType::Delocalized,
        InitialType::FirstOrder,
        2.03793,
        2,
        4,
        0.98249,
        -27.961,
        0.82937,
    ),
    (
        0.6,
        1.0,
        InputType::Delocalized,
        InitialType::FirstOrder,
        2.03793,
        2,
        1,
        0.99503,
        -254.550,
        0.004035,
    ),
    (
        1.5,
        0.01,
        InputType::Delocalized,
        InitialType::FirstOrder,
        3.59482,
        1,
        1,
        f64::NAN,
        f64::NAN,
        f64::NAN,
    ),
    (
        1.5,
        1.0,
        InputType::Delocalized,
        InitialType::FirstOrder,
        3.59482,
        2,
        1,
        0.99502,
        -257.232,
        0.008272,
    ),
];

#[test]
fn deterministic_vectors_of_the_spec() {
    for (d, z, ty, ic, rho, code, chunks, ynorm, maxre, dist) in ROWS {
        let c = cfg(d, z, ty, ic);
        let r = run_trial(&c, &c.deltas(), &c.inputs(), 0).unwrap();
        let tag = format!("δ = {d}, z = {z}, {ty:?}, {ic:?}: {r:?}");
        assert_eq!(r.condition as u8, code, "{tag}");
        assert_eq!(r.chunks, chunks, "{tag}");
        assert!(close(r.spectral_radius, rho, 1e-5), "{tag}");
        if code == 2 {
            // The spec prints 5–6 significant digits.
            assert!(close(r.y_norm, ynorm, 2e-5), "‖y‖ {tag}");
            assert!(
                (r.max_re_eig - maxre).abs() <= 2e-5 * maxre.abs() + 1e-3,
                "max Re {tag}"
            );
            if dist == 0.0 {
                assert!(r.dist_y0 < 1e-9, "{tag}");
            } else {
                assert!(close(r.dist_y0, dist, 2e-4), "dist {tag}");
            }
        }
        if code == 1 {
            assert!(r.y_norm.is_nan());
        }
    }
}

#[test]
fn the_borderline_slow_row() {
    // δ = 0.3, z = 0.01: 17 chunks in the original; a last-bit difference may move it (the stability sweep of Rawat, Heeger & Martiniani 2024).
    let c = cfg(0.3, 0.01, InputType::Delocalized, InitialType::FirstOrder);
    let r = run_trial(&c, &c.deltas(), &c.inputs(), 0).unwrap();
    assert_eq!(r.condition, Condition::FixedPoint);
    assert!((16..=18).contains(&r.chunks), "{r:?}");
    assert!(
        close(r.y_norm, 0.95621, 1e-4) && close(r.dist_y0, 9.2433, 1e-3),
        "{r:?}"
    );
    assert!(r.max_re_eig < 0.0 && r.max_re_eig > -0.01, "{r:?}");
}

#[test]
fn find_peaks_matches_scipy_semantics() {
    assert_eq!(
        find_peaks(&[0.0, 1.0, 0.0, 2.0, 2.0, 2.0, 1.0, 3.0]),
        vec![1, 4]
    );
    assert_eq!(find_peaks(&[1.0, 2.0, 2.0, 1.0]), vec![1]); // plateau midpoint, rounded down
    assert_eq!(find_peaks(&[0.0, 1.0, 1.0]), Vec::<usize>::new()); // plateau at the end
    assert_eq!(find_peaks(&[3.0, 2.0, 1.0]), Vec::<usize>::new());
    assert_eq!(find_peaks(&[0.0, f64::NAN, 0.0, 1.0, 0.0]), vec![3]);
    let s: Vec<f64> = (0..2000)
        .map(|k| 1.0 + 0.3 * (k as f64 * 0.05).sin())
        .collect();
    assert!(is_periodic(&s));
    let decaying: Vec<f64> = (0..2000)
        .map(|k| 1.0 + 0.3 * (-(k as f64) * 0.002).exp() * (k as f64 * 0.05).sin())
        .collect();
    assert!(!is_periodic(&decaying));
}

#[test]
fn job_layout_and_shards() {
    let mut c = SweepConfig::from_toml(neurodyn::sweep::DEFAULT_CONFIG, "default").unwrap();
    c.delta_num = 3;
    c.input_num = 4;
    c.trials = 5;
    assert_eq!(job_index(&c, 0), (0, 0, 0));
    assert_eq!(job_index(&c, 7), (0, 1, 2));
    assert_eq!(job_index(&c, 59), (2, 3, 4));
    // numpy.array_split(range(10), 3) = [0..4, 4..7, 7..10]
    assert_eq!(
        (
            shard_jobs(10, 0, 3),
            shard_jobs(10, 1, 3),
            shard_jobs(10, 2, 3)
        ),
        (0..4, 4..7, 7..10)
    );
    let covered: usize = (0..7).map(|i| shard_jobs(60, i, 7).len()).sum();
    assert_eq!(covered, 60);
}

#[test]
fn config_validation_names_fields() {
    let bad = |edit: &str, field: &str| {
        let text = format!(
            "{}\n",
            neurodyn::sweep::DEFAULT_CONFIG
                .lines()
                .filter(|l| !l.starts_with(edit.split(' ').next().unwrap()))
                .collect::<Vec<_>>()
                .join("\n")
        ) + edit;
        match SweepConfig::from_toml(&text, "t") {
            Err(neurodyn::Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{edit}"),
            other => panic!("{edit}: expected an error, got {other:?}"),
        }
    };
    bad("delta_min = 0.0", "delta_min");
    bad("trials = 0", "trials");
    bad("tau_y = -0.002", "tau_y");
    bad("n = 0", "n");
    bad("input_type = \"spiral\"", "input_type");
    match SweepConfig::from_toml(
        &format!("{}\nwobble = 1\n", neurodyn::sweep::DEFAULT_CONFIG),
        "t",
    ) {
        Err(neurodyn::Error::Invalid { field, .. }) => assert_eq!(field, "wobble"),
        other => panic!("{other:?}"),
    }
}

/// The NeurIPS 2024 claim (Rawat, Heeger & Martiniani 2024) on the preset itself
/// (`models/sweep-neurips.toml`: N = 100, δ ∈ {1, 2, 3}, ‖z‖ ∈ {0.1, 0.316, 1}, 10 trials): every
/// circuit at δ = 1 reaches a linearly stable fixed point; at δ = 2 all but one do, and that one
/// (‖z‖ = 0.316, trial 6) is a real instability — its fixed point has a complex pair with
/// Re λ ≈ +16 /s and the trajectory settles on a limit cycle (period 48.2 ms) with two maxima of
/// ‖y‖ per period, which the original periodic test cannot accept; Newton's method from the
/// analytic start, the iterative scheme and 16 states along the cycle finds only that unstable
/// point. At δ = 3 at most half reach a fixed point.
#[test]
fn neurips_claim_on_the_preset_and_the_delta_two_limit_cycle() {
    let c =
        SweepConfig::from_toml(include_str!("../../models/sweep-neurips.toml"), "neurips").unwrap();
    let dir = std::env::temp_dir().join(format!("neurodyn-neurips-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    neurodyn::sweep::run_jobs(&c, &dir, (0, 1), &|_, _| {}).unwrap();
    let rows = neurodyn::sweep::finish(&c, &dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let at = |d: f64| rows.iter().filter(move |r| r.delta == d);
    assert!(at(1.0).all(|r| r.condition == Condition::FixedPoint && r.max_re_eig < 0.0));
    let odd: Vec<_> = at(2.0)
        .filter(|r| r.condition != Condition::FixedPoint)
        .collect();
    assert_eq!(odd.len(), 1, "{odd:?}");
    assert_eq!(
        (odd[0].j_input, odd[0].k_trial, odd[0].condition),
        (1, 6, Condition::Undetermined)
    );
    assert!(at(2.0)
        .filter(|r| r.condition == Condition::FixedPoint)
        .all(|r| r.max_re_eig < 0.0));
    let fixed3 = at(3.0)
        .filter(|r| r.condition == Condition::FixedPoint)
        .count();
    assert!(fixed3 <= 15, "{fixed3} of 30 at δ = 3");

    let (d, z) = (c.deltas(), c.inputs());
    let setup = neurodyn::sweep::setup_trial(&c, &d, &z, odd[0].job, None).unwrap();
    let (cond, chunks, x) = neurodyn::sweep::simulate_trial(&setup.model, &setup.x0, c.max_chunks);
    assert_eq!((cond, chunks), (Condition::Undetermined, 20));
    let dg = neurodyn::sweep::diagnose(&setup, &x, 2).unwrap();
    assert_eq!(dg.verdict, neurodyn::sweep::Verdict::LimitCycle);
    let cycle = dg.cycle.unwrap();
    assert_eq!(cycle.maxima_per_period, 2, "{cycle:?}");
    assert!(
        (cycle.period - 0.04817).abs() < 2e-4 && cycle.mismatch < 1e-4,
        "{cycle:?}"
    );
    let (xs, res, eig) = dg.fixed_point.unwrap();
    assert!(res < 1e-10);
    assert!(
        (eig[0].re - 16.04).abs() < 0.05 && (eig[0].im.abs() - 134.6).abs() < 0.2,
        "{:?}",
        &eig[..3]
    );
    assert!(eig[2].re < 0.0);
    // Newton from states along the cycle, the analytic start and the ORGaNICs iterative scheme.
    let mut starts = vec![setup.x0.clone()];
    starts.extend(
        neurodyn::fixed_points::organics_candidates(
            &setup.model,
            neurodyn::fixed_points::OrganicsMethod::Iterative,
        )
        .unwrap_or_default(),
    );
    {
        let (h, _) = neurodyn::sweep::chunk_grid(&setup.model);
        let mut xx = dg.final_state.clone();
        let mut e = neurodyn::integrate::Euler::new(200);
        for k in 0..960 {
            neurodyn::integrate::FixedStepper::step(&mut e, &setup.model, 0.0, &mut xx, h);
            if k % 60 == 0 {
                starts.push(xx.clone());
            }
        }
    }
    let pts = neurodyn::fixed_points::find_fixed_points(&setup.model, &starts, &Default::default())
        .unwrap();
    // Every start that converges reaches the one unstable point: no stable fixed point competes.
    assert_eq!(pts.len(), 1);
    assert!(pts[0].count >= 10 && (pts[0].stability.max_growth - eig[0].re).abs() < 1e-6);
    assert!(pts[0].x.iter().zip(&xs).all(|(a, b)| (a - b).abs() < 1e-9));
    // The original periodic test on the same cycle fails (its ‖y‖ has two maxima per period).
    let (h, points) = neurodyn::sweep::chunk_grid(&setup.model);
    let mut xx = dg.final_state.clone();
    let mut e = neurodyn::integrate::Euler::new(200);
    let s: Vec<f64> = (0..points)
        .map(|_| {
            neurodyn::integrate::FixedStepper::step(&mut e, &setup.model, 0.0, &mut xx, h);
            xx[..100].iter().map(|v| v * v).sum::<f64>().sqrt()
        })
        .collect();
    assert!(!is_periodic(&s));
    assert_eq!(neurodyn::sweep::find_cycle(&s, h, 1), None);
    assert_eq!(
        neurodyn::sweep::find_cycle(&s, h, 4).map(|c| c.maxima_per_period),
        Some(2)
    );
}

/// Δ_c(z) (Morone, Rawat, Heeger & Martiniani 2025, §7 of the sweep): the spec's μ = 0 examples,
/// both input types equal at μ = 0, and the general-μ formulas at hand-evaluated points.
#[test]
fn critical_delta_formulas() {
    use neurodyn::sweep::{critical_delta, critical_delta_mu};
    assert!((critical_delta(0.1, 0.01) - 0.158).abs() < 5e-4);
    assert!((critical_delta(0.1, 0.1) - 0.233).abs() < 5e-4);
    for z in [0.01, 0.1, 0.5, 0.9] {
        let a = critical_delta_mu(InputType::Delocalized, 100, 0.0, 0.1, z);
        let b = critical_delta_mu(InputType::Localized, 100, 0.0, 0.1, z);
        assert!((a - critical_delta(0.1, z)).abs() < 1e-12 && (a - b).abs() < 1e-12);
    }
    let de = critical_delta_mu(InputType::Delocalized, 100, 1.0, 0.1, 0.1);
    let lo = critical_delta_mu(InputType::Localized, 100, 1.0, 0.1, 0.1);
    assert!((de - 0.9400499151125291).abs() < 1e-12 && (lo - 1.6471566962990765).abs() < 1e-12);
    assert!(
        (critical_delta_mu(InputType::Delocalized, 100, -0.5, 0.1, 0.3) - 0.5833281571449758).abs()
            < 1e-12
    );
    // Localized with μ = −0.5 at z = 0.3: no stable range (the formula is negative).
    assert!(critical_delta_mu(InputType::Localized, 100, -0.5, 0.1, 0.3).is_nan());
    // G ≤ 0 beyond √(σ² + z²) = 1.
    assert!(critical_delta(0.1, 0.999).is_nan());
}

fn small(dir_name: &str) -> (SweepConfig, std::path::PathBuf) {
    let mut c = SweepConfig::from_toml(neurodyn::sweep::DEFAULT_CONFIG, "default").unwrap();
    c.n = 12;
    c.delta_min = 0.05;
    c.delta_max = 2.0;
    c.delta_num = 3;
    c.input_num = 2;
    c.trials = 3;
    c.max_chunks = 4;
    let dir = std::env::temp_dir().join(format!("neurodyn-{dir_name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (c, dir)
}

/// The stored per-trial arrays (§6): shapes, eig(J) equal to the Jacobian's at the stored final
/// state, the analytic start's closed form, NaN eigenvalues off fixed points; a record cut by a
/// kill and lost rows are recomputed to the same bits; a custom initial state per trial equal to
/// the first-order start reproduces the first-order sweep.
#[test]
fn stored_arrays_resume_and_custom_initial_states() {
    use ndarray::{ArrayD, Axis};
    use neurodyn::model::jacobian_mat;
    use neurodyn::sweep::{finish, run_jobs, setup_trial, Store};
    let (mut c, dir) = small("store");
    c.store = vec![Store::Eigvals, Store::Start, Store::Final];
    run_jobs(&c, &dir, (0, 1), &|_, _| {}).unwrap();
    let rows = finish(&c, &dir).unwrap();
    let load = |name: &str| -> ArrayD<f64> {
        ndarray_npy::read_npy(dir.join(format!("{name}.npy"))).unwrap()
    };
    let eig: ArrayD<faer::c64> = ndarray_npy::read_npy(dir.join("eigvals.npy")).unwrap();
    assert_eq!(eig.shape(), &[3, 2, 3, 24]);
    let (y0, a0, y1, a1, yf, af) = (
        load("y0"),
        load("a0"),
        load("y1"),
        load("a1"),
        load("y_final"),
        load("a_final"),
    );
    assert_eq!(yf.shape(), &[3, 2, 3, 12]);
    let (d, z) = (c.deltas(), c.inputs());
    let mut fixed = 0;
    for r in &rows {
        let at = |a: &ArrayD<f64>| -> Vec<f64> {
            a.index_axis(Axis(0), r.i_delta)
                .index_axis(Axis(0), r.j_input)
                .index_axis(Axis(0), r.k_trial)
                .iter()
                .copied()
                .collect()
        };
        let s = setup_trial(&c, &d, &z, r.job, None).unwrap();
        assert!(at(&y0) == s.y0 && at(&a0) == s.a0 && at(&y1) == s.y1 && at(&a1) == s.a1);
        // Delocalized, b0 = b1 = 1: a0 = σ² + ‖z‖², y0 = z/√a0.
        let a0_closed = 0.01 + r.input * r.input;
        assert!(
            (s.a0[0] - a0_closed).abs() < 1e-14
                && (s.y0[0] - r.input / 12f64.sqrt() / a0_closed.sqrt()).abs() < 1e-14
        );
        let e: Vec<faer::c64> = eig
            .index_axis(Axis(0), r.i_delta)
            .index_axis(Axis(0), r.j_input)
            .index_axis(Axis(0), r.k_trial)
            .iter()
            .copied()
            .collect();
        let yn = at(&yf).iter().map(|v| v * v).sum::<f64>().sqrt();
        if r.condition == Condition::FixedPoint {
            fixed += 1;
            assert_eq!(yn.to_bits(), r.y_norm.to_bits());
            let x: Vec<f64> = at(&yf).into_iter().chain(at(&af)).collect();
            let mut want = jacobian_mat(&s.model, 0.0, &x).eigenvalues().unwrap();
            let mut got = e.clone();
            for v in [&mut want, &mut got] {
                v.sort_by(|a, b| a.re.total_cmp(&b.re).then(a.im.total_cmp(&b.im)));
            }
            assert!(got
                .iter()
                .zip(&want)
                .all(|(g, w)| (g - w).norm() < 1e-9 * (1.0 + w.norm())));
            let m = got.iter().map(|l| l.re).fold(f64::NEG_INFINITY, f64::max);
            assert!((m - r.max_re_eig).abs() <= 1e-9 * m.abs());
        } else {
            assert!(e.iter().all(|l| l.re.is_nan() && l.im.is_nan()));
        }
    }
    assert!(
        fixed > 0 && fixed < rows.len(),
        "{fixed} fixed points of {}",
        rows.len()
    );
    let before = std::fs::read(dir.join("eigvals.npy")).unwrap();
    // A kill: the last record cut mid-way, the last three results rows gone.
    let bin = dir.join("arrays.0of1.bin");
    let mut b = std::fs::read(&bin).unwrap();
    b.truncate(b.len() - 100);
    std::fs::write(&bin, &b).unwrap();
    let csv = dir.join("rows.0of1.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&csv, lines[..lines.len() - 3].join("\n") + "\n").unwrap();
    run_jobs(&c, &dir, (0, 1), &|_, _| {}).unwrap();
    finish(&c, &dir).unwrap();
    assert!(std::fs::read(dir.join("eigvals.npy")).unwrap() == before);

    // initial = "custom", one state per trial: the first-order starts give the first-order sweep.
    let x0: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let s = setup_trial(&c, &d, &z, r.job, None).unwrap();
            s.x0
        })
        .collect();
    let x0_path = dir.join("x0.npy");
    neurodyn::io::write_npy_mat(&x0_path, rows.len(), 24, &x0).unwrap();
    let mut cc = c.clone();
    cc.store.clear();
    cc.initial = InitialType::Custom;
    cc.initial_file = Some(x0_path.clone());
    let dir2 = dir.join("custom");
    run_jobs(&cc, &dir2, (0, 1), &|_, _| {}).unwrap();
    let rows2 = finish(&cc, &dir2).unwrap();
    assert!(rows2
        .iter()
        .zip(&rows)
        .all(|(a, b)| a.condition == b.condition && a.y_norm.to_bits() == b.y_norm.to_bits()));
    // Bad custom states name initial_file.
    for (shape, data) in [(vec![5usize], vec![0.0; 5]), (vec![2, 24], vec![0.0; 48])] {
        let p = dir.join("bad.npy");
        ndarray_npy::write_npy(&p, &ndarray::ArrayD::from_shape_vec(shape, data).unwrap()).unwrap();
        cc.initial_file = Some(p);
        match cc.initial_states() {
            Err(neurodyn::Error::Invalid { field, .. }) => assert_eq!(field, "initial_file"),
            other => panic!("{other:?}"),
        }
    }
    cc.initial_file = None;
    match cc.validate() {
        Err(neurodyn::Error::Invalid { field, .. }) => assert_eq!(field, "initial_file"),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The legacy non-adaptive test (§10) on the spec's deterministic vectors: δ = 0 is stable, the
/// diverging δ = 1.5 row is "not stable" (NaN in the last row), and at δ = 0.6, ‖z‖ = 0.01 (a
/// limit cycle under the adaptive criteria) the last step moves by more than 1e-5.
#[test]
fn legacy_criterion() {
    for (delta, input, want) in [
        (0.0, 0.1, Condition::FixedPoint),
        (1.5, 0.01, Condition::Undetermined),
        (0.6, 0.01, Condition::Undetermined),
    ] {
        let mut c = cfg(
            delta,
            input,
            InputType::Delocalized,
            InitialType::FirstOrder,
        );
        c.criterion = neurodyn::sweep::Criterion::Legacy;
        let r = run_trial(&c, &c.deltas(), &c.inputs(), 0).unwrap();
        assert_eq!(
            (r.condition, r.chunks),
            (want, 1),
            "δ = {delta}, z = {input}"
        );
    }
}

/// The sweep's fast paths are the same system: the uniform-pool right-hand side equals the
/// circuit's (1e-13), the (N + 1)-dimensional spectrum equals the full 2N eigen-decomposition
/// (1e-9) for every variant at random states (a < 0 included), a non-uniform pool falls back, and
/// the symmetric spectral radius equals the general one.
#[test]
fn fast_paths_equal_the_general_ones() {
    use neurodyn::model::organics::{Organics, Variant};
    use neurodyn::model::{jacobian_mat, Model};
    use neurodyn::sweep::{jacobian_spectrum, spectral_radius};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let n = 9;
    let sorted = |mut v: Vec<faer::c64>| {
        v.sort_by(|a, b| a.re.total_cmp(&b.re).then(a.im.total_cmp(&b.im)));
        v
    };
    for variant in [
        Variant::Unrectified,
        Variant::Rectified,
        Variant::RectifiedRecurrence,
    ] {
        // (uniform pool, symmetric W_r): the symmetric case takes the packed product.
        for (uniform, symmetric) in [(true, false), (true, true), (false, false)] {
            let mut w_r = faer::Mat::from_fn(n, n, |_, _| rng.random_range(-0.6..0.6));
            if symmetric {
                w_r = faer::Mat::from_fn(n, n, |i, j| w_r[(i.max(j), i.min(j))]);
            }
            let w = faer::Mat::from_fn(n, n, |_, _| {
                if uniform {
                    0.7
                } else {
                    rng.random_range(0.1..1.0)
                }
            });
            let m = Organics::new(
                variant,
                w_r,
                w,
                vec![0.8; n],
                vec![0.9; n],
                vec![0.1; n],
                vec![0.002; n],
                vec![0.003; n],
                (0..n).map(|_| rng.random_range(-0.5..0.5)).collect(),
            )
            .unwrap();
            assert_eq!(m.uniform_pool().is_some(), uniform);
            for _ in 0..3 {
                let x: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-0.4..1.0)).collect();
                if let Some(u) = m.uniform_pool() {
                    let (mut a, mut b) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
                    m.rhs(0.0, &x, &mut a);
                    u.rhs(0.0, &x, &mut b);
                    assert!(
                        a.iter()
                            .zip(&b)
                            .all(|(p, q)| (p - q).abs() <= 1e-13 * (1.0 + p.abs())),
                        "{variant:?}"
                    );
                }
                let want = sorted(jacobian_mat(&m, 0.0, &x).eigenvalues().unwrap());
                let got = sorted(jacobian_spectrum(&m, &x));
                assert_eq!(got.len(), 2 * n);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).norm() < 1e-9 * (1.0 + w.norm()),
                        "{variant:?} {uniform}: {g} vs {w}"
                    );
                }
            }
        }
    }
    let g = faer::Mat::from_fn(30, 30, |_, _| rng.random_range(-1.0..1.0));
    let sym = faer::Mat::from_fn(30, 30, |i, j| 0.5 * (g[(i, j)] + g[(j, i)]));
    let general = sym
        .eigenvalues()
        .unwrap()
        .iter()
        .map(|l| l.norm())
        .fold(0.0, f64::max);
    assert!((spectral_radius(sym.as_ref()) - general).abs() < 1e-12 * general);
    let ng = g
        .eigenvalues()
        .unwrap()
        .iter()
        .map(|l| l.norm())
        .fold(0.0, f64::max);
    assert_eq!(spectral_radius(g.as_ref()), ng);
}

#[test]
fn spectral_radius_of_symmetric_matrices_by_bisection() {
    // Against the full symmetric eigensolver and the general one, on random symmetric matrices
    // (dense spectra), a diagonal one, a rank-one one (a degenerate cluster at 0), 1 × 1 and 2 × 2.
    use neurodyn::sweep::spectral_radius;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let full = |w: &faer::Mat<f64>| {
        w.self_adjoint_eigenvalues(faer::Side::Lower)
            .unwrap()
            .iter()
            .map(|l| l.abs())
            .fold(0.0, f64::max)
    };
    let mut cases: Vec<faer::Mat<f64>> = vec![];
    for n in [1usize, 2, 3, 17, 100] {
        let m = faer::Mat::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        cases.push(faer::Mat::from_fn(n, n, |i, j| m[(i.max(j), i.min(j))]));
    }
    cases.push(faer::Mat::from_fn(6, 6, |i, j| {
        if i == j {
            -(i as f64) - 0.5
        } else {
            0.0
        }
    }));
    cases.push(faer::Mat::from_fn(8, 8, |i, j| {
        ((i + 1) * (j + 1)) as f64 * 0.1
    }));
    for w in &cases {
        let (got, want) = (spectral_radius(w.as_ref()), full(w));
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want.max(1e-300) * w.nrows() as f64,
            "{got} vs {want}"
        );
    }
    // Not symmetric: the general solver (a rotation by 90°: |λ| = 1).
    let r = faer::Mat::from_fn(2, 2, |i, j| [[0.0, -1.0], [1.0, 0.0]][i][j]);
    assert!((spectral_radius(r.as_ref()) - 1.0).abs() < 1e-14);
}
