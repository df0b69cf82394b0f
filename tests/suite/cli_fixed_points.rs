//! End-to-end tests of the `fixed-points` binary.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fixed-points"))
}

#[test]
fn contracting_network_has_one_stable_point_and_bad_input_fails() {
    let d = std::env::temp_dir().join(format!("neurodyn-fp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let out = d.join("fp.csv");
    let o = bin()
        .args([
            "--model",
            "models/rate-rnn-stable.toml",
            "--starts",
            "16",
            "--trajectory",
            "5",
            "--plot",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    let f: Vec<&str> = rows[1].split(',').collect();
    assert!(f[3].parse::<f64>().unwrap() < 1e-12); // residual
    assert_eq!(f[5], "stable focus");
    assert_eq!(f[8], "21"); // all 21 starts converge to it
    let spec = std::fs::read_to_string(d.join("fp_spectrum.csv")).unwrap();
    assert_eq!(spec.lines().count(), 51); // 50 eigenvalues
    assert!(d.join("fp.png").exists());
    // ORGaNICs with W_r = I: one stable point.
    let o = bin()
        .args(["--organics", "3", "--quiet", "--out"])
        .arg(d.join("o.csv"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(d.join("o.csv"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    // Bad input.
    let bad = d.join("bad.csv");
    let e = bin()
        .args(["--box", "2:1", "--quiet", "--out"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("`box`"));
    let e = bin()
        .args(["--W", "nope.npy", "--quiet", "--out"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("`W`"));
    assert!(!bad.exists());
}

#[test]
fn organics_presets_reproduce_the_paper_cases() {
    let d = std::env::temp_dir().join(format!("neurodyn-fp-org-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let run = |preset: &str| -> Vec<Vec<String>> {
        let out = d.join(format!("{preset}.csv"));
        let o = bin()
            .args([
                "--model",
                &format!("models/{preset}.toml"),
                "--box",
                "-1.5:1.5",
                "--quiet",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let growth = |r: &Vec<String>| r[7].parse::<f64>().unwrap();
    let single = run("organics-2d-single");
    assert_eq!(single.len(), 1);
    assert!((growth(&single[0]) + 187.61492).abs() < 1e-4);
    let bistable = run("organics-2d-bistable");
    assert_eq!(bistable.len(), 3);
    assert_eq!(
        bistable
            .iter()
            .filter(|r| r[5].starts_with("stable"))
            .count(),
        1
    );
    let rect = run("organics-2d-rectified");
    assert!((growth(&rect[0]) + 27.59994).abs() < 1e-4);
    let two = run("organics-two-units");
    assert!((growth(&two[0]) + 134.0776).abs() < 1e-3);
    // A typo in an ORGaNICs preset names the key.
    std::fs::write(
        d.join("typo.toml"),
        "model = \"organics\"\nn = 2\nsigmma = 0.1\n",
    )
    .unwrap();
    let o = bin()
        .arg("--model")
        .arg(d.join("typo.toml"))
        .args(["--quiet", "--out"])
        .arg(d.join("x.csv"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("`sigmma`"), "{e}");
}

/// The scalar ORGaNICs circuit with w = 2 (three fixed points): the table's coordinates and
/// `--points-npy` match the closed form (the quartic in √a) to 1e-10; the Jacobians and
/// eigenvectors satisfy J v = λ v with the spectrum table's λ.
#[test]
fn organics_w2_points_jacobians_and_eigenvectors() {
    use ndarray_npy::ReadNpyExt;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("fp.csv");
    let (pts, jac, vec) = (
        d.path().join("x.npy"),
        d.path().join("j.npy"),
        d.path().join("v.npy"),
    );
    let o = bin()
        .args([
            "--model",
            "models/organics-2d-bistable.toml",
            "--box",
            "-1.5:1.5",
            "--quiet",
            "--plot",
            "--out",
        ])
        .arg(&out)
        .arg("--points-npy")
        .arg(&pts)
        .arg("--jacobians-npy")
        .arg(&jac)
        .arg("--eigenvectors")
        .arg(&vec)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exact = neurodyn::model::organics::scalar_fixed_points(2.0, 1.0, 1.0, 0.5, 0.05, 0.1);
    assert_eq!(exact.len(), 3);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (cx, ca) = (
        header.iter().position(|h| *h == "x0").unwrap(),
        header.iter().position(|h| *h == "x1").unwrap(),
    );
    let rows: Vec<(f64, f64)> = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[cx].parse().unwrap(), c[ca].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 3);
    for (y, a) in &exact {
        assert!(
            rows.iter()
                .any(|(ry, ra)| (ry - y).abs() < 1e-10 && (ra - a).abs() < 1e-10),
            "({y}, {a}) not in {rows:?}"
        );
    }
    let x = ndarray::Array2::<f64>::read_npy(std::fs::File::open(&pts).unwrap()).unwrap();
    assert_eq!(x.dim(), (3, 2));
    for (k, (ry, ra)) in rows.iter().enumerate() {
        assert_eq!((x[(k, 0)], x[(k, 1)]), (*ry, *ra));
    }
    let j = ndarray::Array3::<f64>::read_npy(std::fs::File::open(&jac).unwrap()).unwrap();
    let v = ndarray::Array4::<f64>::read_npy(std::fs::File::open(&vec).unwrap()).unwrap();
    assert_eq!(j.dim(), (3, 2, 2));
    assert_eq!(v.dim(), (3, 2, 2, 2));
    // The spectrum table's eigenvalues, in order, per point.
    let spec = std::fs::read_to_string(d.path().join("fp_spectrum.csv")).unwrap();
    for (row, line) in spec.lines().skip(1).enumerate() {
        let c: Vec<f64> = line.split(',').map(|s| s.parse().unwrap()).collect();
        let (k, lre, lim) = (c[0] as usize, c[1], c[2]);
        let col = row % 2;
        // J v = λ v for the complex eigenvector column `col` of point k.
        for i in 0..2 {
            let (mut re, mut im) = (0.0, 0.0);
            for m in 0..2 {
                re += j[(k, i, m)] * v[(k, m, col, 0)];
                im += j[(k, i, m)] * v[(k, m, col, 1)];
            }
            let (vr, vi) = (v[(k, i, col, 0)], v[(k, i, col, 1)]);
            let scale = 1.0 + lre.abs() + lim.abs();
            assert!(
                (re - (lre * vr - lim * vi)).abs() < 1e-8 * scale,
                "point {k} λ {lre}+{lim}i"
            );
            assert!((im - (lre * vi + lim * vr)).abs() < 1e-8 * scale);
        }
    }
    assert!(d.path().join("fp_pca.png").exists() && d.path().join("fp_pca.svg").exists());
}

/// A trained rate network held at a constant input: the fixed point moves with the input, and
/// the table records the input level.
#[test]
fn fixed_points_under_a_constant_input() {
    let d = tempfile::tempdir().unwrap();
    let ck = d.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "--task", "go-nogo", "--hidden", "12", "--steps", "5", "--epochs", "1", "-q", "--out",
        ])
        .arg(&ck)
        .output()
        .unwrap();
    assert!(o.status.success());
    let run = |c: &str| -> Vec<f64> {
        let out = d.path().join(format!("fp{c}.csv"));
        let o = bin()
            .arg("--checkpoint")
            .arg(ck.join("checkpoint.safetensors"))
            .args(["--input-scalar", c, "--quiet", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        let mut l = text.lines();
        let h: Vec<&str> = l.next().unwrap().split(',').collect();
        let row: Vec<&str> = l.next().unwrap().split(',').collect();
        let ci = h.iter().position(|x| *x == "input").unwrap();
        assert_eq!(row[ci].parse::<f64>().unwrap(), c.parse::<f64>().unwrap());
        let x0 = h.iter().position(|x| *x == "x0").unwrap();
        row[x0..x0 + 12]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    };
    let (a, b) = (run("0"), run("1"));
    let moved: f64 = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).sum();
    assert!(moved > 1e-3, "the input did not move the fixed point");
}

/// The ORGaNICs methods side by side (issue: which method finds what): on the bistable one-unit
/// circuit (W_r ≠ I) the quartic finds all three points, Newton from many starts too, the
/// iterative scheme only the saddle, and the closed form does not apply.
#[test]
fn organics_methods_report_which_finds_what() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("fp.csv");
    let o = bin()
        .args([
            "--model",
            "models/organics-2d-bistable.toml",
            "--method",
            "all",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("closed-form: does not apply"), "{err}");
    let mut rdr = csv::Reader::from_path(&out).unwrap();
    let h = rdr.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let mut saddles = 0;
    for r in &rows {
        let by = &r[col("found_by")];
        assert!(by.contains("newton") && by.contains("quartic"), "{by}");
        assert!(r[col("residual")].parse::<f64>().unwrap() < 1e-10);
        if r[col("class")].starts_with("saddle") {
            saddles += 1;
            assert!(by.contains("iterative"), "{by}");
        } else {
            assert!(!by.contains("iterative"), "{by}");
        }
    }
    assert_eq!(saddles, 1);
    // One method asked for explicitly that does not apply: exit 2 naming why.
    let o = bin()
        .args([
            "--model",
            "models/organics-2d-bistable.toml",
            "--method",
            "closed-form",
            "--out",
        ])
        .arg(d.path().join("cf.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("W_r"));
    assert!(!d.path().join("cf.csv").exists());
    // A rate network has no ORGaNICs methods.
    let o = bin()
        .args(["--method", "quartic", "--out"])
        .arg(d.path().join("r.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("method"));
}
