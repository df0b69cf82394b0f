//! End-to-end tests of the `simulate` binary: a good run, and bad input that must fail cleanly
//! (clear message naming the field, non-zero exit, no output file and no temporary left behind).

use crate::common::tmpdir;

use ndarray::{Array1, Array2};
use ndarray_npy::WriteNpyExt;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_simulate"))
}

fn save<T: ndarray_npy::WritableElement, D: ndarray::Dimension>(
    p: &Path,
    a: &ndarray::Array<T, D>,
) {
    a.write_npy(std::fs::File::create(p).unwrap()).unwrap();
}

fn only_inputs_left(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".npy") && !n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

#[test]
fn default_run_writes_parquet_csv_and_plot() {
    let d = tmpdir("ok");
    let out = d.join("traj.parquet");
    let o = bin()
        .args([
            "--t1",
            "2",
            "--samples",
            "21",
            "--csv",
            "--plot",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let df = neurodyn::io::read_parquet(&out).unwrap();
    assert_eq!(df.nrows(), 21);
    assert_eq!(df.ncols(), 101); // t + 100 units
    let t = df.f64s("t").unwrap();
    assert_eq!(t[20], 2.0);
    let csv = std::fs::read_to_string(d.join("traj.csv")).unwrap();
    assert_eq!(csv.lines().count(), 22);
    assert!(csv.starts_with("t,x0,x1,"));
    assert!(d.join("traj.png").metadata().unwrap().len() > 1000);
    assert!(std::fs::read_to_string(d.join("traj.svg"))
        .unwrap()
        .contains("<svg"));
}

#[test]
fn npy_weights_from_the_command_line() {
    let d = tmpdir("npy");
    let n = 4;
    let w = Array2::from_shape_fn((n, n), |(i, j)| {
        if i == j {
            0.0
        } else {
            0.3 * ((i + 2 * j) as f64).sin()
        }
    });
    save(&d.join("W.npy"), &w);
    save(
        &d.join("x0.npy"),
        &Array1::from_vec(vec![0.5, -0.5, 1.0, 0.0]),
    );
    save(
        &d.join("b.npy"),
        &Array1::from_vec(vec![0.1, 0.0, 0.0, -0.1]),
    );
    let out = d.join("traj.csv");
    let o = bin()
        .arg("--W")
        .arg(d.join("W.npy"))
        .arg("--x0")
        .arg(d.join("x0.npy"))
        .arg("--b")
        .arg(d.join("b.npy"))
        .args([
            "--method",
            "rk4",
            "--dt",
            "0.01",
            "--t1",
            "1",
            "--samples",
            "3",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], "t,x0,x1,x2,x3");
    assert!(rows[1].starts_with("0.0,0.5,-0.5,1.0,0.0"), "{}", rows[1]);
}

/// Runs the binary expecting failure; returns stderr.
fn fails(args: &[&str], dir: &Path) -> String {
    let out = dir.join("traj.parquet");
    let o = bin()
        .args(args)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected failure for {args:?}");
    assert_ne!(o.status.code(), Some(101), "panicked for {args:?}: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!out.exists(), "output left behind for {args:?}");
    assert!(
        only_inputs_left(dir).is_empty(),
        "files left behind: {:?}",
        only_inputs_left(dir)
    );
    err
}

#[test]
fn bad_input_fails_cleanly_naming_the_field() {
    let d = tmpdir("bad");
    let p = |name: &str| d.join(name).to_string_lossy().into_owned();
    // Missing file.
    let e = fails(&["--W", &p("nope.npy")], &d);
    assert!(e.contains("`W`") && e.contains("nope.npy"), "{e}");
    // Integer dtype.
    save(&d.join("Wint.npy"), &Array2::<i64>::zeros((3, 3)));
    let e = fails(&["--W", &p("Wint.npy")], &d);
    assert!(e.contains("`W`") && e.contains("float64"), "{e}");
    // Wrong shape: 1-D for W, non-square, x0 of the wrong length.
    save(&d.join("W1d.npy"), &Array1::<f64>::zeros(3));
    assert!(fails(&["--W", &p("W1d.npy")], &d).contains("2-D"));
    save(&d.join("Wrect.npy"), &Array2::<f64>::zeros((3, 4)));
    assert!(fails(&["--W", &p("Wrect.npy")], &d).contains("square"));
    save(&d.join("W3.npy"), &Array2::<f64>::zeros((3, 3)));
    save(&d.join("x5.npy"), &Array1::<f64>::zeros(5));
    let e = fails(&["--W", &p("W3.npy"), "--x0", &p("x5.npy")], &d);
    assert!(e.contains("`x0`") && e.contains("length 5"), "{e}");
    // NaN in W.
    let mut wn = Array2::<f64>::zeros((3, 3));
    wn[(1, 2)] = f64::NAN;
    save(&d.join("Wnan.npy"), &wn);
    let e = fails(&["--W", &p("Wnan.npy")], &d);
    assert!(
        e.contains("`W`") && e.contains("(1, 2)") && e.contains("NaN"),
        "{e}"
    );
    // TOML with an unknown field, and with a negative tau.
    std::fs::write(
        d.join("typo.toml"),
        "model = \"rate-rnn\"\nn = 5\ngain = 1.5\n",
    )
    .unwrap();
    let e = fails(&["--model", &p("typo.toml")], &d);
    assert!(e.contains("`gain`") && e.contains("unknown field"), "{e}");
    std::fs::write(
        d.join("neg.toml"),
        "model = \"rate-rnn\"\nn = 5\ntau = -2.0\n",
    )
    .unwrap();
    let e = fails(&["--model", &p("neg.toml")], &d);
    assert!(e.contains("`tau`") && e.contains("positive"), "{e}");
    // Bad options.
    assert!(fails(&["--method", "rk5"], &d).contains("`method`"));
    assert!(fails(&["--method", "rk4", "--dt=-1"], &d).contains("`dt`"));
    assert!(fails(&["--rtol", "0"], &d).contains("`rtol`"));
    let e = fails(&["--out-format-does-not-exist"], &d);
    assert!(e.contains("unexpected argument"), "{e}");
}

#[test]
fn a_diverging_run_leaves_no_output() {
    let d = tmpdir("blowup");
    // x' = −x + 50 x (linear, W = 50 I... via relu growth): explodes exponentially.
    save(
        &d.join("W.npy"),
        &Array2::from_shape_fn((2, 2), |(i, j)| if i == j { 50.0 } else { 0.0 }),
    );
    save(&d.join("x0.npy"), &Array1::from_vec(vec![1.0, 1.0]));
    let p = |name: &str| d.join(name).to_string_lossy().into_owned();
    let e = fails(
        &[
            "--W",
            &p("W.npy"),
            "--x0",
            &p("x0.npy"),
            "--activation",
            "linear",
            "--t1",
            "10",
        ],
        &d,
    );
    assert!(e.contains("blew up"), "{e}");
}

#[test]
fn help_documents_every_flag() {
    let o = bin().arg("--help").output().unwrap();
    let h = String::from_utf8_lossy(&o.stdout);
    for f in [
        "--model",
        "--W",
        "--b",
        "--x0",
        "--method",
        "--rtol",
        "--atol",
        "--dt",
        "--t1",
        "--out",
        "--csv",
        "--plot",
        "--steady-tol",
        "--samples",
    ] {
        assert!(h.contains(f), "--help lacks {f}");
    }
}

#[test]
fn organics_preset_relaxes_to_its_closed_form_fixed_point() {
    let d = tmpdir("organics");
    let out = d.join("two.csv");
    let o = bin()
        .args([
            "--model",
            "models/organics-two-units.toml",
            "--method",
            "bdf",
            "--rtol",
            "1e-9",
            "--atol",
            "1e-11",
            "--samples",
            "3",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let last: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    // t1 = 100 τ_max = 0.2 s; Rawat, Heeger & Martiniani (2024): y* = [0.9386465089, 0.700140042], a* = [0.28375, 0.1275].
    assert_eq!(last[0], 0.2);
    for (g, w) in last[1..]
        .iter()
        .zip([0.9386465089, 0.700140042, 0.28375, 0.1275])
    {
        assert!((g - w).abs() < 1e-6 * w, "{g} vs {w}");
    }
    let e = bin()
        .args([
            "--model",
            "models/organics-two-units.toml",
            "--tau",
            "2",
            "--quiet",
            "--out",
        ])
        .arg(d.join("x.csv"))
        .output()
        .unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("`model`"));
}

/// `simulate --ensemble`: one row group per member in long format (member, t, x…), each member
/// equal to the single run from that start; a wrong shape exits 2 naming `ensemble` with nothing
/// written.
#[test]
fn ensemble_runs_every_start_and_refuses_a_wrong_shape() {
    let d = tmpdir("ens");
    let n = 100; // the embedded default preset
    let starts = Array2::from_shape_fn((3, n), |(r, c)| {
        0.1 * (r + 1) as f64 * ((c as f64) * 0.37).sin()
    });
    save(&d.join("x0s.npy"), &starts);
    let out = d.join("ens.csv");
    let o = bin()
        .args(["--t1", "3", "--samples", "4", "--quiet", "--ensemble"])
        .arg(d.join("x0s.npy"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows[0][..3], ["member", "t", "x0"]);
    assert_eq!(rows.len(), 1 + 3 * 4);
    // Member 2 equals the single run from its start.
    save(&d.join("x2.npy"), &Array1::from(starts.row(2).to_vec()));
    let single = d.join("one.csv");
    let o = bin()
        .args(["--t1", "3", "--samples", "4", "--quiet", "--x0"])
        .arg(d.join("x2.npy"))
        .arg("--out")
        .arg(&single)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let one: Vec<String> = std::fs::read_to_string(&single)
        .unwrap()
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    let member2: Vec<String> = rows[1 + 8..].iter().map(|r| r[1..].join(",")).collect();
    assert_eq!(one, member2);
    save(&d.join("bad.npy"), &Array2::<f64>::zeros((2, 7)));
    let bad = d.join("bad.csv");
    let o = bin()
        .args(["--quiet", "--ensemble"])
        .arg(d.join("bad.npy"))
        .arg("--out")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`ensemble`") && !bad.exists());
}
