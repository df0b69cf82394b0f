//! End-to-end tests of `stability-sweep`: the same table from one run, from a killed-and-resumed
//! run, from shards merged, and with one or two threads; bad configurations fail cleanly.

use crate::common::tmpdir;

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stability-sweep"))
}

const SMALL: &str = r#"
n = 20
variant = "unrectified"
matrix = "goe_symmetric"
mu = 0.0
delta_min = 0.05
delta_max = 1.5
delta_num = 3
delta_scale = "log"
input_min = 0.01
input_max = 1.0
input_num = 2
input_scale = "log"
input_type = "delocalized"
trials = 4
sigma = 0.1
b0 = 1.0
b1 = 1.0
tau_y = 0.002
tau_a = 0.002
initial = "first_order"
max_chunks = 6
seed = 5
"#;

fn config(d: &Path) -> PathBuf {
    let p = d.join("small.toml");
    std::fs::write(&p, SMALL).unwrap();
    p
}

fn run_ok(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn results(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results.csv")).unwrap()
}

#[test]
fn one_run_resume_shards_and_threads_give_the_same_table() {
    let d = tmpdir("same");
    let cfg = config(&d);
    let one = d.join("one");
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&one)
            .arg("--quiet")
            .env("RAYON_NUM_THREADS", "2"),
    );
    let reference = results(&one);
    assert_eq!(reference.lines().count(), 1 + 3 * 2 * 4);
    assert!(
        one.join("results.parquet").exists()
            && one.join("summary.csv").exists()
            && one.join("phase_diagram.png").exists()
    );
    assert!(std::fs::read_to_string(one.join("config.toml"))
        .unwrap()
        .contains("seed = 5"));
    let df = neurodyn::io::read_parquet(&one.join("results.parquet")).unwrap();
    assert_eq!(df.nrows(), 24);

    // One thread.
    let single = d.join("single");
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&single)
            .arg("--quiet")
            .env("RAYON_NUM_THREADS", "1"),
    );
    assert_eq!(results(&single), reference);

    // Shards into one folder, then merge.
    let sh = d.join("shards");
    for i in 0..3 {
        run_ok(
            bin()
                .arg("--config")
                .arg(&cfg)
                .arg("--out")
                .arg(&sh)
                .arg("--shard")
                .arg(format!("{i}/3"))
                .arg("--quiet"),
        );
    }
    run_ok(bin().arg("merge").arg("--out").arg(&sh).arg("--quiet"));
    assert_eq!(results(&sh), reference);

    // Killed: simulate a kill by keeping only part of a journal, with a cut last line; rerun.
    let killed = d.join("killed");
    std::fs::create_dir_all(&killed).unwrap();
    std::fs::copy(one.join("config.toml"), killed.join("config.toml")).unwrap();
    let journal = std::fs::read_to_string(one.join("rows.0of1.csv")).unwrap();
    let lines: Vec<&str> = journal.lines().collect();
    let mut partial = lines[..10].join("\n");
    partial.push('\n');
    partial.push_str(&lines[10][..lines[10].len() / 2]); // a line cut mid-write
    std::fs::write(killed.join("rows.0of1.csv"), partial).unwrap();
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&killed)
            .arg("--quiet"),
    );
    assert_eq!(results(&killed), reference);
}

#[test]
fn a_real_kill_and_resume() {
    let d = tmpdir("kill");
    let cfg = config(&d);
    let out = d.join("run");
    let mut child = bin()
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .spawn()
        .unwrap();
    // Wait until some rows are journaled, then kill -9.
    let journal = out.join("rows.0of1.csv");
    for _ in 0..400 {
        if std::fs::read_to_string(&journal)
            .map(|t| t.lines().count() > 3)
            .unwrap_or(false)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .arg("--quiet"),
    );
    let reference = d.join("ref");
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&reference)
            .arg("--quiet"),
    );
    assert_eq!(results(&out), results(&reference));
}

#[test]
fn bad_configurations_fail_cleanly() {
    let d = tmpdir("bad");
    let fails = |text: &str, want: &str| {
        let p = d.join("bad.toml");
        std::fs::write(&p, text).unwrap();
        let out = d.join("out");
        let o = bin()
            .arg("--config")
            .arg(&p)
            .arg("--out")
            .arg(&out)
            .arg("--quiet")
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success() && o.status.code() != Some(101), "{e}");
        assert!(e.contains(want), "expected `{want}` in: {e}");
        assert!(!out.join("results.csv").exists());
    };
    fails(
        &SMALL.replace("trials = 4", "trials = 4\nwobble = 2"),
        "`wobble`",
    );
    fails(
        &SMALL.replace("delta_min = 0.05", "delta_min = 0.0"),
        "`delta_min`",
    );
    fails(&SMALL.replace("tau_a = 0.002", "tau_a = -1.0"), "`tau_a`");
    fails(&SMALL.replace("n = 20", "n = \"twenty\""), "`n`");
    fails(&SMALL.replace("sigma = 0.1", "sigma = nan"), "`sigma`");
    fails(
        &SMALL.replace("initial = \"first_order\"", "initial = \"custom\""),
        "`initial_file`",
    );
    fails(
        &SMALL.replace(
            "initial = \"first_order\"",
            "initial = \"custom\"\ninitial_file = \"missing.npy\"",
        ),
        "`initial_file`",
    );
    assert!(
        !d.join("out").exists(),
        "nothing written for a bad initial state"
    );
    let o = bin()
        .args(["--store", "eigvals,bogus", "--quiet", "--out"])
        .arg(d.join("o3"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`store`") && !d.join("o3").exists());
    let o = bin()
        .args(["--shard", "3/3", "--quiet", "--out"])
        .arg(d.join("o2"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("`shard`"));
    // A folder holding another configuration's results is refused.
    let cfg = config(&d);
    let out = d.join("pinned");
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .arg("--quiet"),
    );
    let o = bin()
        .arg("--config")
        .arg(&cfg)
        .arg("--seed")
        .arg("9")
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("different configuration")
    );
}

/// `condition,chunks` of every row of results.csv.
fn classes(dir: &Path) -> Vec<String> {
    let text = results(dir);
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (c, k) = (col("condition"), col("chunks"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{}", f[c], f[k])
        })
        .collect()
}

#[test]
fn device_gpu_gives_the_cpu_classes_resumes_and_is_pinned() {
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    let d = tmpdir("gpu");
    let cfg = config(&d);
    let (cpu, gpu) = (d.join("cpu"), d.join("gpu"));
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&cpu)
            .arg("--quiet"),
    );
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .args(["--device", "gpu", "--quiet", "--out"])
            .arg(&gpu),
    );
    assert_eq!(classes(&gpu), classes(&cpu));
    assert!(std::fs::read_to_string(gpu.join("config.toml"))
        .unwrap()
        .contains("device = \"gpu\""));
    // Resumed after a kill (a cut journal): the same bits as the uninterrupted GPU run.
    let resumed = d.join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    std::fs::copy(gpu.join("config.toml"), resumed.join("config.toml")).unwrap();
    let journal = std::fs::read_to_string(gpu.join("rows.0of1.csv")).unwrap();
    let lines: Vec<&str> = journal.lines().collect();
    std::fs::write(resumed.join("rows.0of1.csv"), lines[..7].join("\n")).unwrap();
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .args(["--device", "gpu", "--quiet", "--out"])
            .arg(&resumed),
    );
    assert_eq!(results(&resumed), results(&gpu));
    // One folder never mixes devices.
    let o = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["--device", "gpu", "--quiet", "--out"])
        .arg(&cpu)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different configuration"));
}

/// `scripts/sweep.sbatch`, the SLURM array script, run for every task id as SLURM would (its
/// environment variables), then merged: the one-process table, byte for byte.
#[test]
fn the_sbatch_array_script_runs_every_task_and_merges_to_the_one_process_table() {
    let d = tmpdir("sbatch");
    let cfg = config(&d);
    let one = d.join("one");
    run_ok(
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&one)
            .arg("--quiet"),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sweep.sbatch");
    let out = d.join("array");
    for id in 0..4 {
        run_ok(
            Command::new("bash")
                .arg(&script)
                .env("SLURM_ARRAY_TASK_ID", id.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "4")
                .env("SLURM_CPUS_PER_TASK", "1")
                .env("SWEEP_CONFIG", &cfg)
                .env("SWEEP_OUT", &out)
                .env("SWEEP_BIN", env!("CARGO_BIN_EXE_stability-sweep")),
        );
        assert!(out.join(format!("rows.{id}of4.csv")).exists());
    }
    run_ok(bin().arg("merge").arg("--out").arg(&out).arg("--quiet"));
    assert_eq!(results(&out), results(&one));
    // Without an array task id the script says what is missing and fails.
    let o = Command::new("bash")
        .arg(&script)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("SLURM_ARRAY_TASK_ID"));
}
