//! `train-cnn` end to end on the bundled MNIST slice: ≥ 90 % test accuracy in three epochs, a
//! killed-and-resumed run equal bit for bit to an uninterrupted one, tables pandas/polars read,
//! and bad input refused with exit 2 and nothing written.

use neurodyn::nn::fit::load;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train-cnn"))
}

fn run(args: &[&str]) -> std::process::Output {
    bin().args(args).arg("-q").output().unwrap()
}

#[test]
fn trains_to_90_percent_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    // a: two epochs, then "restarted" for three; b: three at once.
    assert!(run(&["--epochs", "2", "--out", a]).status.success());
    let o = run(&["--epochs", "3", "--out", a]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run(&["--epochs", "3", "--out", b]).status.success());
    let (ca, na) = load::<f32>(&std::path::Path::new(a).join("checkpoint.safetensors")).unwrap();
    let (cb, nb) = load::<f32>(&std::path::Path::new(b).join("checkpoint.safetensors")).unwrap();
    assert_eq!(ca, cb);
    assert!(na.params == nb.params, "resumed weights differ");
    let df = neurodyn::io::read_parquet(&std::path::Path::new(a).join("metrics.parquet")).unwrap();
    assert_eq!(df.height(), 3);
    let acc = df.column("test_accuracy").unwrap().f64().unwrap();
    let last = acc.get(2).unwrap();
    assert!(last >= 0.90, "test accuracy after 3 epochs: {last}");
    let csv = std::fs::read_to_string(std::path::Path::new(b).join("metrics.csv")).unwrap();
    let first = csv.lines().next().unwrap();
    assert_eq!(
        first,
        "epoch,steps,train_loss,train_accuracy,test_loss,test_accuracy,seconds"
    );
    // Same test accuracies in both runs (the seconds column is wall time).
    let col = |csv: &str| -> Vec<String> {
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(5).unwrap().to_string())
            .collect()
    };
    let csv_a = std::fs::read_to_string(std::path::Path::new(a).join("metrics.csv")).unwrap();
    assert_eq!(col(&csv_a), col(&csv));
    for f in ["learning_curve.png", "learning_curve.svg", "config.toml"] {
        assert!(std::path::Path::new(a).join(f).exists(), "{f}");
    }
    // A different configuration in the same folder is refused.
    let o = run(&["--epochs", "3", "--norm", "batchnorm", "--out", a]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another configuration"));
}

#[test]
fn bad_input_is_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = dir.path().join("never");
    let o = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--batch", "0", "--out", o], "batch"),
        (vec!["--lr=-1", "--out", o], "lr"),
        (vec!["--epochs", "0", "--out", o], "epochs"),
        (vec!["--dropout", "1.5", "--out", o], "dropout"),
        (vec!["--arch", "static-organics", "--out", o], "norm"),
        (vec!["--data-dir", "/nonexistent", "--out", o], "data"),
        (vec!["--max-memory", "1000", "--out", o], "memory"),
        (
            vec![
                "--arch",
                "static-organics",
                "--norm",
                "none",
                "--hidden",
                "100000000",
                "--out",
                o,
            ],
            "hidden",
        ),
        (vec!["--out", file.to_str().unwrap()], "not a folder"),
    ];
    for (args, what) in cases {
        let r = run(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(what),
            "{args:?}: `{err}` does not mention {what}"
        );
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
    let r = run(&["--relu", "maybe", "--out", o]);
    assert_eq!(r.status.code(), Some(2));
}
