//! The one-call GPU check (`gpu-check`, `scripts/gpu_check.sh`) end to end at its small size on
//! whatever Vulkan device is present (lavapipe in CI): every row within its tolerance, the table
//! written with every path, and bad sizes rejected before any work.

use std::process::Command;

#[test]
fn gpu_check_runs_every_path_and_writes_its_table() {
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    let dir = crate::common::tmpdir("gpu_check");
    let out = dir.join("check.csv");
    let r = Command::new(env!("CARGO_BIN_EXE_gpu-check"))
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        head,
        [
            "path",
            "problem",
            "cpu_seconds",
            "gpu_seconds",
            "speedup",
            "error",
            "tolerance",
            "passed",
            "device"
        ]
    );
    let rows: Vec<&str> = lines.collect();
    for path in [
        "train/rate",
        "train/gamma",
        "train/organics",
        "train/anru",
        "train/lstm",
        "train/gru",
        "lyapunov/tanh_maps",
        "sweep/organics",
    ] {
        let row = rows
            .iter()
            .find(|l| l.starts_with(path))
            .unwrap_or_else(|| panic!("{path}"));
        // path,"problem",cpu,gpu,speedup,error,tolerance,passed,"device": the numbers lie
        // between the two quoted fields.
        let tail: Vec<&str> = row.split('"').nth(2).unwrap().split(',').collect();
        let (err, tol, passed) = (
            tail[4].parse::<f64>().unwrap(),
            tail[5].parse::<f64>().unwrap(),
            tail[6],
        );
        assert!(err <= tol && passed == "1", "{path}: {row}");
        let t: Vec<f64> = tail[1..3].iter().map(|v| v.parse().unwrap()).collect();
        assert!(t.iter().all(|v| *v > 0.0), "{path}: timings {t:?}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_gpu-check"))
        .args(["--hidden", "0", "--out"])
        .arg(dir.join("bad.csv"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hidden"));
    assert!(!dir.join("bad.csv").exists());
}
