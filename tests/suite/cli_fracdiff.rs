//! End-to-end tests of the `fracdiff` binary.

use crate::common::tmpdir;

use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fracdiff"))
}

fn save<D: ndarray::Dimension>(p: &Path, a: &ndarray::Array<f64, D>) {
    a.write_npy(std::fs::File::create(p).unwrap()).unwrap();
}

#[test]
fn the_issue_command_on_t_squared() {
    let d = tmpdir("t2");
    let f = Array1::from_iter((0..1001).map(|k| (k as f64 / 1000.0).powi(2)));
    save(&d.join("f.npy"), &f);
    let o = bin()
        .args([
            "--alpha", "0.5", "--dt", "0.001", "--method", "gl", "--input",
        ])
        .arg(d.join("f.npy"))
        .arg("--out")
        .arg(d.join("d.npy"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = Array1::<f64>::read_npy(std::fs::File::open(d.join("d.npy")).unwrap()).unwrap();
    assert_eq!(out.len(), 1001);
    assert!((out[1000] - 1.503941425318).abs() < 1e-12);
    // Caputo L1 on a 2-D input keeps the shape.
    let m = Array2::from_shape_fn((1001, 2), |(k, j)| {
        (k as f64 / 1000.0).powi(2) * (j + 1) as f64
    });
    save(&d.join("m.npy"), &m);
    let o = bin()
        .args([
            "--alpha", "0.5", "--dt", "0.001", "--method", "l1", "--quiet", "--input",
        ])
        .arg(d.join("m.npy"))
        .arg("--out")
        .arg(d.join("dm.npy"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let dm = Array2::<f64>::read_npy(std::fs::File::open(d.join("dm.npy")).unwrap()).unwrap();
    assert_eq!(dm.dim(), (1001, 2));
    assert!((dm[(1000, 0)] - 1.504490814366).abs() < 1e-12);
    assert!((dm[(1000, 1)] - 2.0 * 1.504490814366).abs() < 1e-11);
}

#[test]
fn a_simulate_trajectory_in_and_estimates_out() {
    let d = tmpdir("sim");
    let traj = d.join("traj.parquet");
    let o = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args([
            "--model",
            "models/rate-rnn-stable.toml",
            "--t1",
            "15",
            "--samples",
            "151",
            "--quiet",
            "--out",
        ])
        .arg(&traj)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // dt comes from the `t` column (0.1).
    let o = bin()
        .args(["--alpha", "0.3", "--method", "rl", "--quiet", "--input"])
        .arg(&traj)
        .arg("--out")
        .arg(d.join("d.parquet"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let df = neurodyn::io::read_parquet(&d.join("d.parquet")).unwrap();
    assert_eq!((df.nrows(), df.ncols()), (151, 51));
    // Order estimate of every unit against a target; the target here is the spectral D^0.4 of unit 0,
    // so unit 0's estimate must be 0.4.
    let sig = neurodyn::io::read_signals(&traj, "input").unwrap();
    let (y, _) = neurodyn::fracdiff::spectral(&sig.column(0), 0.4, 0.1).unwrap();
    let target = Array1::from_iter(y.iter().map(|v| v - y[25]));
    save(&d.join("target.npy"), &target);
    let o = bin()
        .args(["--estimate", "--alphas", "0:1:101", "--quiet", "--input"])
        .arg(&traj)
        .arg("--target")
        .arg(d.join("target.npy"))
        .arg("--out")
        .arg(d.join("orders.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(d.join("orders.csv")).unwrap();
    let first: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[0], "x0");
    assert!(
        (first[1].parse::<f64>().unwrap() - 0.4).abs() < 1e-12,
        "{text}"
    );
    assert_eq!(text.lines().count(), 51);
}

#[test]
fn bad_input_fails_cleanly() {
    let d = tmpdir("bad");
    save(
        &d.join("f.npy"),
        &Array1::from_iter((0..10).map(|k| k as f64)),
    );
    let mut nan = Array1::from_iter((0..10).map(|k| k as f64));
    nan[3] = f64::NAN;
    save(&d.join("nan.npy"), &nan);
    save(&d.join("empty.npy"), &Array1::<f64>::zeros(0));
    let out = d.join("d.npy");
    let fails = |args: &[&str], input: &str| {
        let o = bin()
            .args(args)
            .arg("--quiet")
            .arg("--input")
            .arg(d.join(input))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !o.status.success() && o.status.code() != Some(101),
            "{args:?}: {e}"
        );
        assert!(!out.exists());
        e
    };
    assert!(fails(
        &["--alpha", "1.5", "--dt", "0.1", "--method", "l1"],
        "f.npy"
    )
    .contains("`alpha`"));
    assert!(fails(&["--alpha", "2.5", "--dt", "0.1"], "f.npy").contains("`alpha`"));
    assert!(fails(&["--alpha", "0.5", "--dt", "0.1"], "nan.npy").contains("NaN"));
    assert!(
        fails(&["--alpha", "0.5", "--dt", "0.1"], "empty.npy").contains("no samples")
            || fails(&["--alpha", "0.5", "--dt", "0.1"], "empty.npy").contains("empty")
    );
    assert!(fails(&["--alpha", "0.5"], "f.npy").contains("`dt`"));
    assert!(fails(
        &["--alpha", "0.5", "--dt", "0.1", "--method", "gl2"],
        "f.npy"
    )
    .contains("`method`"));
    assert!(fails(&["--alpha", "0.5", "--dt", "0.1"], "missing.npy").contains("missing.npy"));
    let names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".npy")), "{names:?}");
}
