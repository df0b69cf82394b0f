//! End-to-end tests of `train`: the accuracy of a run, resume = uninterrupted run, the checkpoint
//! loads into `fixed-points` and `lyapunov`, bad input fails cleanly.

use crate::common::tmpdir;

use std::path::Path;
use std::process::Command;

fn bin(name: &str) -> Command {
    Command::new(match name {
        "train" => env!("CARGO_BIN_EXE_train"),
        "fixed-points" => env!("CARGO_BIN_EXE_fixed-points"),
        "simulate" => env!("CARGO_BIN_EXE_simulate"),
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
    // The resume point is the checkpoint's own run state, not the metrics files: with them gone
    // the run still continues from epoch 6 and rewrites all 12 rows.
    let meta =
        neurodyn::tensor::safetensors::read_metadata(&resumed.join("checkpoint.safetensors"))
            .unwrap();
    assert_eq!(meta.get("run.epoch").map(String::as_str), Some("6"));
    std::fs::remove_file(resumed.join("metrics.csv")).unwrap();
    std::fs::remove_file(resumed.join("metrics.parquet")).unwrap();
    train(&resumed, 12); // continues from epoch 6
    let metrics = std::fs::read_to_string(full.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics,
        std::fs::read_to_string(resumed.join("metrics.csv")).unwrap()
    );
    // Same weights and optimiser state bit for bit (the files' metadata order may differ).
    let load = |p: &Path| neurodyn::train::checkpoint::load::<f64>(p).unwrap();
    let (a, b) = (
        load(&full.join("checkpoint.safetensors")),
        load(&resumed.join("checkpoint.safetensors")),
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
    // The run's configuration is valid TOML.
    let cfg: toml::Value =
        toml::from_str(&std::fs::read_to_string(full.join("config.toml")).unwrap()).unwrap();
    assert_eq!(cfg["task"].as_str(), Some("go-nogo"));
    assert_eq!(cfg["hidden"].as_integer(), Some(40));
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
    ok(bin("simulate")
        .arg("--checkpoint")
        .arg(&ck)
        .args(["--t1", "50", "--quiet", "--out"])
        .arg(d.join("traj.csv")));
    assert!(
        std::fs::read_to_string(d.join("traj.csv"))
            .unwrap()
            .lines()
            .count()
            > 10
    );
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
        "'--task <TASK>'",
    );
    fails(
        bin("train")
            .args(["--cell", "transformer", "--quiet", "--out"])
            .arg(d.join("a")),
        "'--cell <CELL>'",
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
    let (dale, w_raw, w_in, w_out) = (
        bytes(&[1.0; 4]),
        bytes(&[0.1; 9]),
        bytes(&[0.1; 4]),
        bytes(&[0.1; 4]),
    );
    let t = vec![
        (
            "dale".to_string(),
            TensorView::new(Dtype::F64, vec![4], &dale).unwrap(),
        ),
        (
            "W_raw".to_string(),
            TensorView::new(Dtype::F64, vec![3, 3], &w_raw).unwrap(),
        ),
        (
            "W_in".to_string(),
            TensorView::new(Dtype::F64, vec![4, 1], &w_in).unwrap(),
        ),
        (
            "W_out".to_string(),
            TensorView::new(Dtype::F64, vec![1, 4], &w_out).unwrap(),
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

#[test]
fn digits_any_cell_and_gpu() {
    let d = tmpdir("digits");
    // Sequential digits on the bundled slice (7 × 7 pooled, 49 steps): the tanh rate cell.
    ok(bin("train")
        .args([
            "--task",
            "seq-digits",
            "--cell",
            "rate",
            "--hidden",
            "24",
            "--pool",
            "4",
            "--epochs",
            "3",
            "--steps",
            "100",
            "--batch",
            "32",
            "--eval",
            "300",
            "--quiet",
            "--out",
        ])
        .arg(d.join("r")));
    let m = std::fs::read_to_string(d.join("r/metrics.csv")).unwrap();
    let acc: f64 = m
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        acc > 0.3,
        "rate cell on 7×7 digits after 300 minibatches: {acc}"
    );
    // A gamma cell in float32, briefly.
    ok(bin("train")
        .args([
            "--task",
            "perm-digits",
            "--cell",
            "gamma",
            "--hidden",
            "12",
            "--pool",
            "4",
            "--precision",
            "f32",
            "--epochs",
            "1",
            "--steps",
            "5",
            "--eval",
            "50",
            "--quiet",
            "--out",
        ])
        .arg(d.join("g")));
    // Its checkpoint is the gamma map for the analyses.
    ok(bin("lyapunov")
        .arg("--checkpoint")
        .arg(d.join("g/checkpoint.safetensors"))
        .args(["--k", "4", "--steps", "200", "--quiet", "--out"])
        .arg(d.join("g.csv")));
    assert_eq!(
        std::fs::read_to_string(d.join("g.csv"))
            .unwrap()
            .lines()
            .count(),
        5
    );
    // The GPU trainer (lavapipe in CI) on Go/NoGo; its float32 checkpoint loads like any other.
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    ok(bin("train")
        .args([
            "--device", "gpu", "--epochs", "2", "--steps", "10", "--eval", "50", "--quiet", "--out",
        ])
        .arg(d.join("gpu")));
    let (net, adam) =
        neurodyn::train::checkpoint::load::<f32>(&d.join("gpu/checkpoint.safetensors")).unwrap();
    assert_eq!((adam.t, net.outputs), (20, 1));
    ok(bin("fixed-points")
        .arg("--checkpoint")
        .arg(d.join("gpu/checkpoint.safetensors"))
        .args(["--quiet", "--out"])
        .arg(d.join("fp.csv")));
    // The same digits run on the GPU and on the CPU in f32: the loss curves and accuracies agree.
    let digits = |dir: &str, device: &str| {
        ok(bin("train")
            .args([
                "--task",
                "seq-digits",
                "--cell",
                "rate",
                "--hidden",
                "16",
                "--pool",
                "4",
                "--epochs",
                "2",
                "--steps",
                "20",
                "--batch",
                "16",
                "--eval",
                "100",
                "--precision",
                "f32",
                "--device",
                device,
                "--quiet",
                "--out",
            ])
            .arg(d.join(dir)));
        let m = std::fs::read_to_string(d.join(dir).join("metrics.csv")).unwrap();
        m.lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let (g, c) = (digits("dg", "gpu"), digits("dc", "cpu"));
    for (rg, rc) in g.iter().zip(&c) {
        assert!(
            (rg[2] - rc[2]).abs() < 1e-4 * rc[2],
            "loss {} vs {}",
            rg[2],
            rc[2]
        );
        assert!(
            (rg[3] - rc[3]).abs() <= 0.02,
            "accuracy {} vs {}",
            rg[3],
            rc[3]
        );
    }
    // A GPU run resumed after its first epoch continues exactly as the uninterrupted run.
    let gpu_run = |dir: &str, epochs: &str| {
        ok(bin("train")
            .args([
                "--device", "gpu", "--epochs", epochs, "--steps", "5", "--eval", "30", "--quiet",
                "--out",
            ])
            .arg(d.join(dir)));
    };
    gpu_run("g2", "2");
    gpu_run("g11", "1");
    gpu_run("g11", "2");
    assert_eq!(
        std::fs::read_to_string(d.join("g2/metrics.csv")).unwrap(),
        std::fs::read_to_string(d.join("g11/metrics.csv")).unwrap()
    );
    // The ORGaNICs Euler RNN, trained on the GPU, analysed as a map through its own backward pass.
    ok(bin("train")
        .args([
            "--task",
            "seq-digits",
            "--cell",
            "organics",
            "--device",
            "gpu",
            "--hidden",
            "6",
            "--pool",
            "4",
            "--epochs",
            "1",
            "--steps",
            "3",
            "--batch",
            "8",
            "--eval",
            "20",
            "--quiet",
            "--out",
        ])
        .arg(d.join("org")));
    let ck = d.join("org/checkpoint.safetensors");
    ok(bin("lyapunov")
        .arg("--checkpoint")
        .arg(&ck)
        .args(["--k", "3", "--steps", "100", "--quiet", "--out"])
        .arg(d.join("org-ly.csv")));
    assert_eq!(
        std::fs::read_to_string(d.join("org-ly.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    ok(bin("fixed-points")
        .arg("--checkpoint")
        .arg(&ck)
        .args(["--starts", "20", "--quiet", "--out"])
        .arg(d.join("org-fp.csv")));
}

#[test]
fn bad_device_cell_and_precision() {
    let d = tmpdir("bad2");
    for (args, want) in [
        (vec!["--device", "gpu", "--precision", "f64"], "`precision`"),
        // Parsed into enums by clap: the message names the flag and lists the accepted values.
        (vec!["--device", "tpu"], "'--device <DEVICE>'"),
        (vec!["--precision", "f16"], "'--precision <PRECISION>'"),
        (vec!["--task", "seq-digits", "--pool", "5"], "`pool`"),
        (vec!["--clip=-1"], "`clip`"),
        (
            vec![
                "--task",
                "seq-digits",
                "--cell",
                "organics",
                "--device",
                "gpu",
                "--wr-max-sv",
                "1",
            ],
            "`wr-max-sv`",
        ),
        (
            vec![
                "--task",
                "seq-digits",
                "--cell",
                "organics",
                "--wr-max-sv=-1",
            ],
            "`wr-max-sv`",
        ),
    ] {
        let o = bin("train")
            .args(&args)
            .args(["--quiet", "--out"])
            .arg(d.join("x"))
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!d.join("x/checkpoint.safetensors").exists());
    }
}
