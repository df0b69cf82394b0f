//! End-to-end tests of the `continuation` binary: the closed-form folds of a 1-D rate network
//! given as `.npy` weights, an ORGaNICs preset through the resolver, and bad input.

use crate::common::tmpdir;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_continuation"))
}

fn rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// `continuation` on the one-unit network ẋ = −x + w tanh x (+ the swept knob) from x0, its
/// `--W` and `--x0` written into `d`.
fn one_unit(d: &std::path::Path, w: f64, x0: f64) -> std::process::Command {
    neurodyn::io::write_npy_mat(&d.join("W.npy"), 1, 1, &[w]).unwrap();
    neurodyn::io::write_npy_vec(&d.join("x0.npy"), &[x0]).unwrap();
    let mut c = bin();
    c.arg("--W")
        .arg(d.join("W.npy"))
        .arg("--x0")
        .arg(d.join("x0.npy"));
    c
}

#[test]
fn folds_of_a_one_unit_network_from_npy_weights() {
    let d = tmpdir("fold");
    let o = one_unit(&d, 2.0, -2.96)
        .args([
            "--activation",
            "tanh",
            "--param",
            "bias",
            "--from",
            "-1",
            "--to",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(d.join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let z = rows(&d.join("out/bifurcations.csv"));
    assert_eq!(z[0], ["kind", "param", "x0", "omega", "l1"]);
    let bf = 2f64.sqrt() - 2f64.sqrt().acosh();
    let mut ps: Vec<f64> = z[1..]
        .iter()
        .filter(|r| r[0] == "fold")
        .map(|r| r[1].parse().unwrap())
        .collect();
    ps.sort_by(f64::total_cmp);
    assert_eq!(ps.len(), 2, "{z:?}");
    assert!(
        (ps[0] + bf).abs() < 1e-10 && (ps[1] - bf).abs() < 1e-10,
        "{ps:?}"
    );
    let b = rows(&d.join("out/branch.csv"));
    assert_eq!(
        b[0],
        [
            "param",
            "x0",
            "stable",
            "n_unstable",
            "max_re_eig",
            "residual"
        ]
    );
    assert!(b[1..].iter().all(|r| r[5].parse::<f64>().unwrap() < 1e-10));
    for f in ["branch.parquet", "diagram.png", "diagram.svg"] {
        assert!(d.join("out").join(f).exists(), "{f}");
    }
}

#[test]
fn organics_preset_and_bad_input() {
    let d = tmpdir("org");
    let o = bin()
        .args([
            "--model",
            "models/organics-2d-bistable.toml",
            "--param",
            "W_r",
            "--from",
            "3",
            "--to",
            "0.5",
            "--quiet",
            "--out",
        ])
        .arg(d.join("o"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let z = rows(&d.join("o/bifurcations.csv"));
    let kinds: Vec<&str> = z[1..].iter().map(|r| r[0].as_str()).collect();
    assert!(
        kinds.contains(&"fold") && kinds.contains(&"hopf"),
        "{kinds:?}"
    );
    let hopf = z[1..].iter().find(|r| r[0] == "hopf").unwrap();
    // Time in seconds (τ = 2 ms): ω of a few hundred rad/s.
    let omega: f64 = hopf[4].parse().unwrap();
    assert!(omega > 10.0 && omega < 1e4, "{hopf:?}");
    for (args, want) in [
        (
            vec!["--param", "nope", "--from", "0", "--to", "1"],
            "`param`",
        ),
        (vec!["--param", "g", "--from", "1", "--to", "1"], "`to`"),
        (
            vec![
                "--organics",
                "4",
                "--param",
                "W_r",
                "--from",
                "1",
                "--to",
                "2",
                "--map",
            ],
            "`map`",
        ),
        (
            vec!["--param", "g", "--from", "1", "--to", "2", "--unit", "1000"],
            "`unit`",
        ),
    ] {
        let out = d.join("bad");
        let o = bin()
            .args(&args)
            .args(["--quiet", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!out.exists(), "{args:?} left output");
    }
}

/// `--cycles`: the limit cycle born at the ORGaNICs circuit's supercritical Hopf point (w_H =
/// 1.349) is followed across the interval: stable, its period 2π/ω at the Hopf point, and its
/// branch ends where the period grows without bound (w ≈ 1.7066).
#[test]
fn cycles_from_the_hopf_point_of_the_organics_circuit() {
    let d = tmpdir("cycles");
    let model =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/organics-2d-bistable.toml");
    let o = bin()
        .arg("--model")
        .arg(&model)
        .args([
            "--param", "W_r", "--from", "3", "--to", "0.5", "--cycles", "--quiet", "--out",
        ])
        .arg(d.join("c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = rows(&d.join("c/cycles.csv"));
    assert_eq!(
        t[0][..5],
        [
            "param",
            "period",
            "amplitude",
            "stable",
            "max_abs_multiplier"
        ]
    );
    let first: Vec<f64> = t[1][..5].iter().map(|v| v.parse().unwrap()).collect();
    assert!(
        (first[0] - 1.3515).abs() < 1e-3 && first[3] == 1.0,
        "{first:?}"
    );
    assert!((first[1] - 2.0 * std::f64::consts::PI / 264.475).abs() < 5e-3 * first[1]);
    assert!(
        t[1..].iter().all(|r| r[3] == "1"),
        "every cycle of the branch attracts"
    );
    let ev = rows(&d.join("c/cycle_events.csv"));
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[1][0], "infinite_period");
    assert!(
        (ev[1][1].parse::<f64>().unwrap() - 1.70657).abs() < 1e-4,
        "{ev:?}"
    );
    assert!(d.join("c/cycles.parquet").exists());
}

/// `--param2`: the fold and Hopf curves of the bistable ORGaNICs circuit in (W_r, b0) from its
/// fold and Hopf point at b0 = 1: every fold point has det J = 0, every Hopf point tr J = 0 and
/// det J = ω²; one Bogdanov–Takens point where J is nilpotent (det J = tr J = 0), which the Hopf
/// curve runs into (ω → 0).
#[test]
fn fold_curve_of_the_organics_circuit_in_two_parameters() {
    use neurodyn::continuation::two::Parametrised2;
    let d = tmpdir("two");
    let preset = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/organics-2d-bistable.toml"
    );
    let o = bin()
        .args([
            "--model", preset, "--param", "W_r", "--from", "3", "--to", "0.5",
        ])
        .args([
            "--param2", "b0", "--from2", "1", "--to2", "0", "--quiet", "--out",
        ])
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = |f: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let curve = rows("curves.csv");
    assert!(curve.len() > 20);
    for f in [
        "curves.parquet",
        "two_parameter.png",
        "two_parameter.svg",
        "branch.csv",
    ] {
        assert!(d.join(f).exists(), "{f}");
    }
    let source = neurodyn::source::Source::Preset {
        path: Some(preset.into()),
        overrides: Default::default(),
        input: None,
    };
    let (family, _) = source
        .parametrised2(
            neurodyn::source::View::Natural,
            "W_r",
            "b0",
            None,
            0,
            3.0,
            1.0,
        )
        .unwrap();
    let jac = |p: f64, q: f64, x: &[f64]| {
        let mut j = faer::Mat::<f64>::zeros(2, 2);
        family.jacobian(x, p, q, j.as_mut());
        let det = j[(0, 0)] * j[(1, 1)] - j[(0, 1)] * j[(1, 0)];
        let scale = (0..2)
            .flat_map(|r| (0..2).map(move |c| (r, c)))
            .fold(0.0f64, |m, (r, c)| m.max(j[(r, c)].abs()));
        (det / (scale * scale), (j[(0, 0)] + j[(1, 1)]) / scale)
    };
    let num = |s: &str| s.parse::<f64>().unwrap();
    // curve, kind, W_r, b0, omega, test_cusp, test_bogdanov_takens, test_bautin, x0, x1
    let (mut folds, mut hopfs, mut min_omega) = (0, 0, f64::INFINITY);
    for r in &curve {
        let (p, q, x) = (num(&r[2]), num(&r[3]), [num(&r[8]), num(&r[9])]);
        let mut j = faer::Mat::<f64>::zeros(2, 2);
        family.jacobian(&x, p, q, j.as_mut());
        let det = j[(0, 0)] * j[(1, 1)] - j[(0, 1)] * j[(1, 0)];
        if r[1] == "fold" {
            folds += 1;
            let (rel, _) = jac(p, q, &x);
            assert!(rel.abs() < 1e-8, "not a fold: {r:?} det {rel:e}");
        } else {
            hopfs += 1;
            let w = num(&r[4]);
            min_omega = min_omega.min(w);
            let (_, trace) = jac(p, q, &x);
            assert!(
                trace.abs() < 1e-8 && (det - w * w).abs() < 1e-8 * w * w,
                "not Hopf: {r:?}"
            );
            assert!(
                num(&r[7]) < 0.0,
                "l1 stays negative (no Bautin point): {r:?}"
            );
        }
    }
    assert!(
        folds > 20 && hopfs > 10,
        "{folds} fold and {hopfs} Hopf points"
    );
    // From ω = 264.5 at b0 = 1 down to a few units near the BT point.
    assert!(min_omega < 10.0, "{min_omega}");
    let ev = rows("codim2.csv");
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0][1], "bogdanov_takens");
    let (det, trace) = jac(
        num(&ev[0][2]),
        num(&ev[0][3]),
        &[num(&ev[0][4]), num(&ev[0][5])],
    );
    assert!(
        det.abs() < 1e-8 && trace.abs() < 1e-6,
        "det {det:e}, trace {trace:e}"
    );
    // Without --from2/--to2 the second parameter is refused, naming what is missing.
    let o = bin()
        .args([
            "--model", preset, "--param", "W_r", "--from", "3", "--to", "0.5", "--param2", "b0",
            "--quiet", "--out",
        ])
        .arg(d.join("bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// `--path A,B`: the straight path between two epochs' checkpoints of one run. The branch starts
/// at a fixed point of A's flow and ends (p = 1) at a fixed point of B's; checkpoints of other
/// architectures are refused, naming `path`.
#[test]
fn continuation_along_the_path_between_two_checkpoints() {
    use neurodyn::model::Model;
    let d = tmpdir("path");
    let train = |epochs: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_train"))
            .args([
                "--task", "go-nogo", "--hidden", "20", "--steps", "5", "--epochs", epochs, "-q",
                "--out",
            ])
            .arg(d.join("run"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    train("1");
    std::fs::copy(
        d.join("run/checkpoint.safetensors"),
        d.join("a.safetensors"),
    )
    .unwrap();
    train("4");
    let (a, b) = (
        d.join("a.safetensors"),
        d.join("run/checkpoint.safetensors"),
    );
    let out = d.join("cont");
    let o = bin()
        .arg("--path")
        .arg(format!("{},{}", a.display(), b.display()))
        .args(["--from", "0", "--to", "1", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Vec<f64>> = std::fs::read_to_string(out.join("branch.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(21).map(|v| v.parse().unwrap()).collect())
        .collect();
    let flow = |p: &std::path::Path| match neurodyn::train::checkpoint::analysis(
        &neurodyn::train::checkpoint::load::<f64>(p).unwrap().0,
    )
    .unwrap()
    {
        neurodyn::train::cell::Analysis::Flow(m) => m,
        _ => panic!("a rate network"),
    };
    let residual = |m: &neurodyn::model::RateRnn, x: &[f64]| {
        let mut dx = vec![0.0; 20];
        m.rhs(0.0, x, &mut dx);
        dx.iter().fold(0.0f64, |s, v| s.max(v.abs()))
    };
    let (first, last) = (&rows[0], rows.last().unwrap());
    assert_eq!(first[0], 0.0);
    assert!(residual(&flow(&a), &first[1..]) < 1e-9);
    assert!(
        (last[0] - 1.0).abs() < 1e-9,
        "the branch ends at p = {}",
        last[0]
    );
    assert!(residual(&flow(&b), &last[1..]) < 1e-8);
    // Another architecture: refused, naming the flag.
    let other = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/spiking/xor-rate-n100.safetensors"
    );
    let o = bin()
        .arg("--path")
        .arg(format!("{},{other}", a.display()))
        .args(["--from", "0", "--to", "1", "--quiet", "--out"])
        .arg(d.join("bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`path`"));
}

#[test]
fn switch_follows_both_halves_of_a_pitchfork_of_a_symmetric_pair() {
    // dx/dt = −x + g W tanh x, W = [[0, 1], [1, 0]]: the pitchfork at g = 1 onto x₀ = x₁ = s,
    // s = g tanh s; `--switch` writes both halves (s > 0, s < 0), stable, to g = 2.
    let d = tmpdir("switch");
    neurodyn::io::write_npy_mat(&d.join("W.npy"), 2, 2, &[0.0, 1.0, 1.0, 0.0]).unwrap();
    neurodyn::io::write_npy_vec(&d.join("x0.npy"), &[0.0, 0.0]).unwrap();
    let o = bin()
        .args(["--W"])
        .arg(d.join("W.npy"))
        .args(["--x0"])
        .arg(d.join("x0.npy"))
        .args([
            "--activation",
            "tanh",
            "--param",
            "g",
            "--from",
            "0.5",
            "--to",
            "2",
        ])
        .args(["--switch", "--spectrum", "nearest:1", "--quiet", "--out"])
        .arg(d.join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = rows(&d.join("out/switched.csv"));
    assert_eq!(
        t[0][..7],
        [
            "branch_point",
            "half",
            "param",
            "x0",
            "x1",
            "stable",
            "n_unstable"
        ]
    );
    let mut halves = [0usize; 2];
    let mut ends = vec![];
    for r in &t[1..] {
        let v: Vec<f64> = r.iter().map(|c| c.parse().unwrap()).collect();
        let (g, s) = (v[2], v[3]);
        assert!(
            (v[4] - s).abs() < 1e-10 && (s - g * s.tanh()).abs() < 1e-10,
            "{r:?}"
        );
        assert_eq!((v[5], v[6]), (1.0, 0.0), "stable: {r:?}");
        halves[v[1] as usize] += 1;
        if (g - 2.0).abs() < 1e-12 {
            ends.push(s);
        }
    }
    assert!(halves[0] > 10 && halves[1] > 10, "{halves:?}");
    ends.sort_by(f64::total_cmp);
    assert_eq!(ends.len(), 2);
    assert!(
        (ends[0] + 1.915_008_048_154_54).abs() < 1e-9
            && (ends[1] - 1.915_008_048_154_54).abs() < 1e-9
    );
    // --spectrum is checked: a bad value exits 2 naming it.
    let bad = bin()
        .args(["--W"])
        .arg(d.join("W.npy"))
        .args([
            "--activation",
            "tanh",
            "--param",
            "g",
            "--from",
            "0.5",
            "--to",
            "2",
        ])
        .args(["--spectrum", "nearest:0", "--out"])
        .arg(d.join("bad"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("spectrum"));
}

#[test]
fn fold_curves_of_a_rate_unit_in_input_and_gain_meet_at_the_closed_form_cusp() {
    // dx/dt = −x + g tanh x + u: folds where g sech² x = 1, at u = x − g tanh x; the two fold
    // curves meet at the cusp (u, g) = (0, 1).
    let d = tmpdir("rate_two");
    let o = one_unit(&d, 1.0, -2.99)
        .args([
            "--activation",
            "tanh",
            "--param",
            "input",
            "--from",
            "-1",
            "--to",
            "1",
        ])
        .args([
            "--param2", "g", "--from2", "2", "--to2", "0.5", "--quiet", "--out",
        ])
        .arg(d.join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = rows(&d.join("out/curves.csv"));
    assert_eq!(c[0][..5], ["curve", "kind", "input", "g", "omega"]);
    let x_col = c[0].iter().position(|h| h == "x0").unwrap();
    let mut n = 0;
    for r in &c[1..] {
        let (u, g, x): (f64, f64, f64) = (
            r[2].parse().unwrap(),
            r[3].parse().unwrap(),
            r[x_col].parse().unwrap(),
        );
        assert!(
            (g / x.cosh().powi(2) - 1.0).abs() < 1e-9,
            "g sech² x = 1: {r:?}"
        );
        assert!(
            (u - (x - g * x.tanh())).abs() < 1e-10,
            "u = x − g tanh x: {r:?}"
        );
        n += 1;
    }
    assert!(n > 20);
    let z = rows(&d.join("out/codim2.csv"));
    assert!(z.len() >= 2);
    for r in &z[1..] {
        assert_eq!(r[1], "cusp");
        let (u, g): (f64, f64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        assert!(
            u.abs() < 1e-9 && (g - 1.0).abs() < 1e-9,
            "cusp at ({u}, {g})"
        );
    }
}
