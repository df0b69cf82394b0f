//! End-to-end tests of `train`: the accuracy of a run, resume = uninterrupted run, the checkpoint
//! loads into `fixed-points` and `lyapunov`, bad input fails cleanly.

mod common;
use common::tmpdir;

use std::path::Path;
use std::process::Command;

fn bin(name: &str) -> Command {
    Command::new(match name {
        "train" => env!("CARGO_BIN_EXE_train"),
        "fixed-points" => env!("CARGO_BIN_EXE_fixed-points"),
        _ => env!("CARGO_BIN_EXE_lyapunov"),
    })
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn train(out: &Path, epochs: usize) {
    ok(bin("train")
        .args([
            "--task",
            "go-nogo",
            "--cell",
            "rate",
            "--device",
            "cpu",
            "--epochs",
            &epochs.to_string(),
            "--quiet",
            "--out",
        ])
        .arg(out));
}

#[test]
fn train_resume_and_analyse() {
    let d = tmpdir("run");
    let (full, resumed) = (d.join("full"), d.join("resumed"));
    train(&full, 12);
    train(&resumed, 6);
    train(&resumed, 12); // continues from epoch 6
    let metrics = std::fs::read_to_string(full.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics,
        std::fs::read_to_string(resumed.join("metrics.csv")).unwrap()
    );
    // Same weights and optimiser state bit for bit (the files' metadata order may differ).
    let (a, b) = (
        neurodyn::train::load_checkpoint(&full.join("checkpoint.safetensors")).unwrap(),
        neurodyn::train::load_checkpoint(&resumed.join("checkpoint.safetensors")).unwrap(),
    );
    assert!(
        a.0 == b.0 && a.1.m == b.1.m && a.1.v == b.1.v && a.1.t == b.1.t,
        "resumed run diverged"
    );
    let last: Vec<f64> = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(last[0], 12.0);
    assert!(
        last[3] >= 0.95,
        "Go/NoGo accuracy after 12 epochs: {}",
        last[3]
    );
    assert!(
        full.join("learning_curve.png").exists()
            && full.join("metrics.parquet").exists()
            && full.join("config.toml").exists()
    );
    // The checkpoint goes straight into the analysis binaries.
    let ck = full.join("checkpoint.safetensors");
    ok(bin("fixed-points")
        .arg("--checkpoint")
        .arg(&ck)
        .args(["--quiet", "--out"])
        .arg(d.join("fp.csv")));
    let fp = std::fs::read_to_string(d.join("fp.csv")).unwrap();
    assert!(fp.lines().skip(1).any(|l| l.contains("stable")), "{fp}");
    ok(bin("lyapunov")
        .arg("--checkpoint")
        .arg(&ck)
        .args([
            "--flow", "--dt", "0.5", "--k", "3", "--steps", "200", "--quiet", "--out",
        ])
        .arg(d.join("ly.csv")));
    assert_eq!(
        std::fs::read_to_string(d.join("ly.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
}

#[test]
fn bad_input_fails_cleanly() {
    let d = tmpdir("bad");
    let fails = |c: &mut Command, want: &str| {
        let o = c.output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success() && o.status.code() != Some(101), "{e}");
        assert!(e.contains(want), "expected `{want}` in {e}");
    };
    fails(
        bin("train")
            .args(["--task", "xor-ish", "--quiet", "--out"])
            .arg(d.join("a")),
        "`task`",
    );
    fails(
        bin("train")
            .args(["--cell", "lstm", "--quiet", "--out"])
            .arg(d.join("a")),
        "`cell`",
    );
    fails(
        bin("train")
            .args(["--hidden", "0", "--quiet", "--out"])
            .arg(d.join("a")),
        "`hidden`",
    );
    std::fs::write(d.join("garbage.safetensors"), b"not a checkpoint at all").unwrap();
    fails(
        bin("fixed-points")
            .arg("--checkpoint")
            .arg(d.join("garbage.safetensors"))
            .args(["--quiet", "--out"])
            .arg(d.join("x.csv")),
        "`checkpoint`",
    );
    assert!(!d.join("x.csv").exists());
    // A checkpoint with a wrongly shaped tensor.
    use safetensors::tensor::{Dtype, TensorView};
    let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (dale, w_raw) = (bytes(&[1.0; 4]), bytes(&[0.1; 9]));
    let t = vec![
        (
            "dale".to_string(),
            TensorView::new(Dtype::F64, vec![4], &dale).unwrap(),
        ),
        (
            "W_raw".to_string(),
            TensorView::new(Dtype::F64, vec![3, 3], &w_raw).unwrap(),
        ),
    ];
    std::fs::write(
        d.join("bad.safetensors"),
        safetensors::serialize(t, &None).unwrap(),
    )
    .unwrap();
    fails(
        bin("lyapunov")
            .arg("--checkpoint")
            .arg(d.join("bad.safetensors"))
            .args(["--flow", "--quiet", "--out"])
            .arg(d.join("y.csv")),
        "`W_raw` has shape [3, 3], expected [4, 4]",
    );
}
