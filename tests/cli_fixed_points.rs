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
