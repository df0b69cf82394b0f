//! The stability sweep: the deterministic cross-check vectors of the original sweep code (Rawat, Heeger & Martiniani 2024), find_peaks semantics, determinism,
//! resume and shard/merge identity (the command-line side is in tests/cli_sweep.rs).

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

/// The NeurIPS 2024 claim (Rawat, Heeger & Martiniani 2024): W_r with largest singular value ≤ 1 (‖z‖ ≤ 1) always
/// reaches a linearly stable fixed point; at singular value 3 stability breaks down.
#[test]
fn neurips_claim_singular_value_one_stable_three_breaks() {
    let mut c =
        SweepConfig::from_toml(include_str!("../models/sweep-neurips.toml"), "neurips").unwrap();
    c.delta_min = 1.0;
    c.delta_max = 3.0;
    c.delta_num = 2;
    c.input_num = 2;
    c.input_min = 0.3;
    c.trials = 8;
    let dir = std::env::temp_dir().join(format!("neurodyn-neurips-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    neurodyn::sweep::run_jobs(&c, &dir, (0, 1), &|_, _| {}).unwrap();
    let rows = neurodyn::sweep::finish(&c, &dir).unwrap();
    let cells = neurodyn::sweep::summarize(&c, &rows);
    for cell in &cells {
        if cell.delta == 1.0 {
            assert_eq!(cell.pct_linearly_stable, 100.0, "{cell:?}");
        } else {
            assert!(
                cell.pct_fixed_point < 100.0 || cell.pct_linearly_stable < 100.0,
                "δ = 3 should break down somewhere: {cell:?}"
            );
        }
    }
    let broken: f64 = cells
        .iter()
        .filter(|c| c.delta == 3.0)
        .map(|c| 100.0 - c.pct_linearly_stable)
        .sum();
    assert!(broken >= 25.0, "{cells:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
