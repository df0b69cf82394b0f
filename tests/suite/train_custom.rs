//! `train --task custom`: the user's own arrays, the masked mean-square loss (value and gradient),
//! the held-out split, and bad input.

use ndarray::{Array1, Array2, Array3};
use neurodyn::data::{Batch, Targets};
use neurodyn::train::cell::CellKind;
use neurodyn::train::CellSpec;
use neurodyn::train::Task;
use rand::{Rng, SeedableRng};
use std::process::Command;

#[test]
fn masked_loss_is_the_weighted_mean_square_and_its_gradient_checks() {
    let spec = CellSpec {
        hidden: 6,
        dale: false,
        ..CellSpec::default_for(CellKind::Rate, Task::Custom)
    };
    let mut net = spec.build_sized::<f64>(2, 3, false, 4).unwrap();
    net.noise = 0.0;
    let (t, b, k, c) = (7, 5, 2, 3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut r = |lo: f64, hi: f64| rng.random_range(lo..hi);
    let u: Vec<f64> = (0..t * b * k).map(|_| r(-1.0, 1.0)).collect();
    let z: Vec<f64> = (0..t * b * c).map(|_| r(-1.0, 1.0)).collect();
    let m: Vec<f64> = (0..t * b * c)
        .map(|i| if i % 3 == 0 { 0.0 } else { r(0.0, 2.0) })
        .collect();
    let batch = Batch {
        t,
        b,
        n_in: k,
        u,
        targets: Targets::Trajectory(z.clone()),
        noise_seeds: None,
        mask: Some(m.clone()),
    };
    let p = net.pass(&batch, true).unwrap();
    let mut want = 0.0;
    for s in 0..t {
        for j in 0..b {
            for q in 0..c {
                let at = (s * b + j) * c + q;
                want += m[at] * (p.outputs[at] - z[at]).powi(2);
            }
        }
    }
    want /= (t * b) as f64;
    assert!((p.loss - want).abs() < 1e-12 * want, "{} vs {want}", p.loss);
    // Central differences of the masked loss.
    let h = 1e-6;
    let (mut worst, mut scale) = (0.0f64, 0.0f64);
    for i in 0..net.params.len() {
        let p0 = net.params[i];
        net.params[i] = p0 + h;
        let lp = net.pass(&batch, false).unwrap().loss;
        net.params[i] = p0 - h;
        let lm = net.pass(&batch, false).unwrap().loss;
        net.params[i] = p0;
        let fd = (lp - lm) / (2.0 * h);
        worst = worst.max((fd - p.grad[i]).abs());
        scale = scale.max(p.grad[i].abs());
    }
    assert!(worst / scale < 1e-6, "{worst:e} / {scale:e}");
}

/// A delayed-recall task: a pulse of amplitude a ∈ [−1, 1] at step 2, the target a from step 10
/// on; the mask scores only those steps.
fn write_task(dir: &std::path::Path, trials: usize) {
    let t = 20;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut u = Array3::<f32>::zeros((trials, t, 1));
    let mut z = Array3::<f32>::zeros((trials, t, 1));
    let mut m = Array2::<f64>::zeros((trials, t));
    for i in 0..trials {
        let a: f32 = rng.random_range(-1.0..1.0);
        u[(i, 2, 0)] = a;
        for s in 10..t {
            z[(i, s, 0)] = a;
            m[(i, s)] = 1.0;
        }
    }
    ndarray_npy::write_npy(dir.join("u.npy"), &u).unwrap();
    ndarray_npy::write_npy(dir.join("z.npy"), &z).unwrap();
    ndarray_npy::write_npy(dir.join("m.npy"), &m).unwrap();
    let labels = Array1::<i64>::from_iter((0..trials).map(|i| (u[(i, 2, 0)] > 0.0) as i64));
    ndarray_npy::write_npy(dir.join("labels.npy"), &labels).unwrap();
}

fn train() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train"))
}

#[test]
fn custom_task_trains_end_to_end_and_bad_input_is_named() {
    let d = tempfile::tempdir().unwrap();
    write_task(d.path(), 200);
    let p = |n: &str| d.path().join(n);
    let o = train()
        .args(["--task", "custom", "--cell", "gamma", "--hidden", "24"])
        .arg("--inputs")
        .arg(p("u.npy"))
        .arg("--targets")
        .arg(p("z.npy"))
        .arg("--mask")
        .arg(p("m.npy"))
        .args([
            "--epochs", "6", "--steps", "20", "--lr", "0.01", "-q", "--out",
        ])
        .arg(p("run"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut rdr = csv::Reader::from_path(p("run/metrics.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let r2 = |r: &csv::StringRecord| r[3].parse::<f64>().unwrap();
    let (first, last) = (r2(&rows[0]), r2(&rows[rows.len() - 1]));
    // The held-out R² of the recalled amplitude on the masked steps.
    assert!(last > 0.9 && last > first, "R² {first} → {last}");
    // The trained network is a checkpoint like any other: fixed points of its flow.
    let fp = Command::new(env!("CARGO_BIN_EXE_fixed-points"))
        .arg("--checkpoint")
        .arg(p("run/checkpoint.safetensors"))
        .args(["--starts", "8", "-q", "--out"])
        .arg(p("fp.csv"))
        .output()
        .unwrap();
    assert!(
        fp.status.success(),
        "{}",
        String::from_utf8_lossy(&fp.stderr)
    );
    // Labels and the cross-entropy loss on the last step.
    let o = train()
        .args(["--task", "custom", "--cell", "rate", "--hidden", "16"])
        .arg("--inputs")
        .arg(p("u.npy"))
        .arg("--targets")
        .arg(p("labels.npy"))
        .args([
            "--loss",
            "cross-entropy",
            "--epochs",
            "3",
            "--steps",
            "10",
            "-q",
            "--out",
        ])
        .arg(p("ce"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Bad input: exit 2, the field named, nothing written.
    for (args, field) in [
        (vec!["--targets", "z.npy"], "inputs"),
        (vec!["--inputs", "u.npy", "--targets", "m.npy"], "targets"),
        (
            vec![
                "--inputs",
                "u.npy",
                "--targets",
                "z.npy",
                "--holdout",
                "1.5",
            ],
            "holdout",
        ),
        (
            vec![
                "--inputs",
                "u.npy",
                "--targets",
                "labels.npy",
                "--loss",
                "cross-entropy",
                "--mask",
                "m.npy",
            ],
            "mask",
        ),
    ] {
        let o = train()
            .current_dir(d.path())
            .args(["--task", "custom", "-q", "--out", "bad"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(field), "{args:?}: {err}");
        assert!(!d.path().join("bad").exists());
    }
}
