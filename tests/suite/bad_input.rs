//! The bad-input corpus: every binary, every class of mistake. Each case must exit with the
//! expected code (2 for invalid input, 1 for a run that failed), print no panic, name the field
//! in its message, and leave the working folder exactly as it was (no file added or changed).
//! Size cases run under a 6 GiB address-space limit (`prlimit`, when the machine has it), so a
//! regression to allocate-then-abort fails here instead of swapping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "simulate" => env!("CARGO_BIN_EXE_simulate"),
        "fixed-points" => env!("CARGO_BIN_EXE_fixed-points"),
        "lyapunov" => env!("CARGO_BIN_EXE_lyapunov"),
        "fracdiff" => env!("CARGO_BIN_EXE_fracdiff"),
        "stability-sweep" => env!("CARGO_BIN_EXE_stability-sweep"),
        "train" => env!("CARGO_BIN_EXE_train"),
        "train-cnn" => env!("CARGO_BIN_EXE_train-cnn"),
        "spiking" => env!("CARGO_BIN_EXE_spiking"),
        "continuation" => env!("CARGO_BIN_EXE_continuation"),
        "cordsnet" => env!("CARGO_BIN_EXE_cordsnet"),
        other => panic!("no binary {other}"),
    })
}

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                m.insert(p.clone(), (0, std::time::SystemTime::UNIX_EPOCH));
                stack.push(p);
            } else {
                m.insert(p, (md.len(), md.modified().unwrap()));
            }
        }
    }
    m
}

fn has_prlimit() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Case {
    bin: &'static str,
    args: Vec<String>,
    field: &'static str,
    code: i32,
    limited: bool,
}

fn case(bin: &'static str, args: &str, field: &'static str) -> Case {
    Case {
        bin,
        args: args.split_whitespace().map(String::from).collect(),
        field,
        code: 2,
        limited: false,
    }
}

fn big(bin: &'static str, args: &str, field: &'static str) -> Case {
    Case {
        limited: true,
        ..case(bin, args, field)
    }
}

#[test]
fn bad_input_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
    w(
        "big.toml",
        "model = \"rate-rnn\"\nn = 1000000000\ng = 1.5\n",
    );
    w("mid.toml", "model = \"rate-rnn\"\nn = 100000\ng = 1.5\n");
    w("sig.csv", "t,x\n0,0\n0.1,0.1\n0.2,0.4\n0.3,0.9\n");
    let sweep = std::fs::read_to_string("models/sweep-default.toml").unwrap();
    w("sweep-n.toml", &sweep.replace("n = 100", "n = 1000000000"));
    w(
        "sweep-trials.toml",
        &sweep.replace("trials = 10", "trials = 1000000000"),
    );
    w("a-file", "x");
    std::fs::create_dir(d.join("a-dir")).unwrap();
    let cases = vec![
        // simulate
        big("simulate", "--model big.toml --out o.csv", "n"),
        big("simulate", "--model mid.toml --out o.csv", "n"),
        big("simulate", "--samples 100000000 --out o.csv", "samples"),
        case("simulate", "--samples 1 --out o.csv", "samples"),
        case("simulate", "--t1 1e12 --method rk4 --out o.csv", "t1"),
        case("simulate", "--t1 -1 --out o.csv", "t1"),
        case("simulate", "--out o.txt", "out"),
        case("simulate", "--out a-dir", "out"),
        case("simulate", "--out a-file/o.csv", "out"),
        // fixed-points
        big(
            "fixed-points",
            "--organics 1000000000 --out o.csv",
            "organics",
        ),
        big("fixed-points", "--starts 1000000000 --out o.csv", "starts"),
        case("fixed-points", "--box 3:1 --out o.csv", "box"),
        case("fixed-points", "--spectrum a-dir --out o.csv", "spectrum"),
        case(
            "fixed-points",
            "--spectrum a-file/s.csv --out o.csv",
            "spectrum",
        ),
        case("fixed-points", "--out o.xyz", "out"),
        case("fixed-points", "--organics 0 --out o.csv", "n"),
        // lyapunov
        big(
            "lyapunov",
            "--sweep-g 0.5:4:1000000000 --out o.csv",
            "sweep-g",
        ),
        case("lyapunov", "--history a-dir --out o.csv", "history"),
        case("lyapunov", "--history h.txt --out o.csv", "history"),
        case("lyapunov", "--every 0 --history h.csv --out o.csv", "every"),
        case("lyapunov", "--flow --dt 0 --out o.csv", "dt"),
        case("lyapunov", "--steps 0 --out o.csv", "steps"),
        case("lyapunov", "--reorth 0 --out o.csv", "reorth"),
        case("lyapunov", "--anru 1000000:10 --out o.csv", "anru"),
        // fracdiff
        case(
            "fracdiff",
            "--input missing.csv --alpha 0.5 --out o.csv",
            "input",
        ),
        case(
            "fracdiff",
            "--input sig.csv --estimate --target sig.csv --anchor 100000 --window 0:2 --out o.csv",
            "anchor",
        ),
        case(
            "fracdiff",
            "--input sig.csv --estimate --target sig.csv --window 3:2 --out o.csv",
            "window",
        ),
        big(
            "fracdiff",
            "--input sig.csv --estimate --target sig.csv --alphas 1:-1:1000000000 --out o.csv",
            "alphas",
        ),
        case(
            "fracdiff",
            "--input sig.csv --alpha 0.5 --method nope --out o.csv",
            "method",
        ),
        // stability-sweep
        big("stability-sweep", "--config sweep-n.toml --out sw", "n"),
        big(
            "stability-sweep",
            "--config sweep-trials.toml --out sw",
            "trials",
        ),
        case(
            "stability-sweep",
            "--shard 5/1000000000000 --out sw",
            "shard",
        ),
        case("stability-sweep", "--shard 3/2 --out sw", "shard"),
        case(
            "stability-sweep",
            "--config missing.toml --out sw",
            "config",
        ),
        // train
        big("train", "--hidden 1000000000 --out tr", "hidden"),
        big("train", "--batch 1000000000 --out tr", "batch"),
        case("train", "--epochs 0 --out tr", "epochs"),
        case("train", "--eval 0 --out tr", "eval"),
        case(
            "train",
            "--cell anru --task seq-digits --controller 0 --out tr",
            "controller",
        ),
        case(
            "train",
            "--cell organics --task seq-digits --wr-max-sv -1 --out tr",
            "wr-max-sv",
        ),
        case("train", "--som 500 --out tr", "som"),
        case("train", "--lr -1 --out tr", "lr"),
        case(
            "train",
            "--cell gamma --task seq-digits --fixed-tau --out tr",
            "fixed-tau",
        ),
        case(
            "train",
            "--cell gamma --task seq-digits --kappa-max 0.02,0.005,0.1 --out tr",
            "kappa-max",
        ),
        case(
            "train",
            "--cell organics --task seq-digits --kappa-max 0.02,0,0.1 --out tr",
            "kappa-max",
        ),
        case(
            "train",
            "--cell organics --task seq-digits --kappa-max 0.02,0.1 --out tr",
            "kappa-max",
        ),
        case("train", "--clip -1 --out tr", "clip"),
        case("train", "--out a-file", "out"),
        // train-cnn
        case("train-cnn", "--batch 0 --out cnn", "batch"),
        case("train-cnn", "--max-memory 1000 --out cnn", "batch"),
        case("train-cnn", "--arch static-organics --out cnn", "norm"),
        // spiking
        case(
            "spiking",
            "--checkpoint missing.safetensors --task go-nogo --out spk",
            "checkpoint",
        ),
        // continuation
        case("continuation", "--out a-file", "out"),
        // An output folder below a file: one check for every binary that writes a folder
        // (`io::check_out_dir`), exit 2 naming `out` before any work.
        case("continuation", "--out a-file/sub", "out"),
        case("stability-sweep", "--out a-file/sub", "out"),
        case("train", "--epochs 1 --out a-file/sub", "out"),
        case("train-cnn", "--epochs 1 --out a-file/sub", "out"),
    ];
    assert!(cases.len() >= 40);
    run_corpus(d, &cases);
}

/// Interop: float32 `.npy` (what torch users save) is widened exactly; integers are refused
/// naming the dtype; CSV with quoted headers, CRLF and an empty cell (pandas' NaN) is read.
#[test]
fn float32_npy_and_pandas_csv_are_read() {
    use ndarray_npy::WriteNpyExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w32.npy");
    let a = ndarray::Array2::<f32>::from_shape_fn((3, 2), |(i, j)| 0.1 * (i * 2 + j) as f32 + 1e-7);
    a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
    let m = neurodyn::io::read_npy_mat(&p, "W", None).unwrap();
    for i in 0..3 {
        for j in 0..2 {
            assert_eq!(m[(i, j)], a[(i, j)] as f64);
        }
    }
    let v = neurodyn::io::read_npy_vec(&p, "x", None)
        .unwrap_err()
        .to_string();
    assert!(v.contains("1-D"), "{v}");
    let pi = dir.path().join("int.npy");
    ndarray::Array1::<i64>::from_vec(vec![1, 2])
        .write_npy(std::fs::File::create(&pi).unwrap())
        .unwrap();
    let e = neurodyn::io::read_npy_vec(&pi, "x", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("float64 or float32") && e.contains("`x`"), "{e}");

    let c = dir.path().join("s.csv");
    std::fs::write(&c, "\"t\",\"unit, 0\"\r\n0,1.5\r\n0.1,\"2.5\"\r\n").unwrap();
    let s = neurodyn::io::read_signals(&c, "input").unwrap();
    assert_eq!(s.names, vec!["unit, 0".to_string()]);
    assert_eq!(s.data, vec![1.5, 2.5]);
    assert_eq!(s.time, Some(vec![0.0, 0.1]));
    std::fs::write(&c, "t,x\n0,1\n0.1,\n").unwrap();
    let e = neurodyn::io::read_signals(&c, "input")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample 1 is NaN"), "{e}");
}

/// Finished files get the user's umask (not the temp-file default 0600); a temp file a killed
/// writer left for the same target (a minute old or more) is cleaned up by the next write, while
/// a fresh one — another process writing the same target — is left alone.
#[cfg(unix)]
#[test]
fn outputs_are_shareable_and_stale_temp_files_go() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("table.csv");
    let stale = dir.path().join(".neurodyn-table.csv-abcdef.tmp");
    std::fs::write(&stale, "half").unwrap();
    // Left by a killed writer two minutes ago.
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120))
        .unwrap();
    // Another process writing the same target right now: its temp file stays.
    let live = dir.path().join(".neurodyn-table.csv-ghijkl.tmp");
    std::fs::write(&live, "in flight").unwrap();
    let other = dir.path().join(".neurodyn-other.csv-abcdef.tmp");
    std::fs::write(&other, "someone else's").unwrap();
    let mut t = neurodyn::io::Table::new();
    t.push("x", neurodyn::io::Column::F64(vec![1.0]));
    t.write(&target, neurodyn::io::TableFormat::Csv).unwrap();
    assert!(!stale.exists() && other.exists() && live.exists());
    let umask = {
        // What a plain create gets here is what the user's umask allows.
        let probe = dir.path().join("probe");
        std::fs::write(&probe, "").unwrap();
        std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777
    };
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, umask);
}

/// Two identical `train` runs write byte-identical checkpoints (metadata in a fixed key order),
/// and a resumed run whose metrics lag its checkpoint (killed between the two writes) rewrites
/// them from the checkpoint.
#[test]
fn train_checkpoints_are_deterministic_and_the_source_of_truth() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &Path, epochs: &str| {
        let o = Command::new(bin("train"))
            .args([
                "--task", "go-nogo", "--hidden", "12", "--steps", "3", "--eval", "8", "--epochs",
                epochs, "-q", "--out",
            ])
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run(&a, "2");
    run(&b, "2");
    let ck = |d: &Path| std::fs::read(d.join("checkpoint.safetensors")).unwrap();
    assert!(
        ck(&a) == ck(&b),
        "identical runs, different checkpoint bytes"
    );
    // Simulate a kill after the checkpoint of epoch 2 but before its metrics: drop the last row.
    let m = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    let lagging: Vec<&str> = m.lines().take(2).collect();
    std::fs::write(a.join("metrics.csv"), lagging.join("\n") + "\n").unwrap();
    run(&a, "2");
    assert_eq!(std::fs::read_to_string(a.join("metrics.csv")).unwrap(), m);
    assert!(ck(&a) == ck(&b));
    // Resuming for a third epoch equals a run of three.
    let c = dir.path().join("c");
    run(&a, "3");
    run(&c, "3");
    assert!(ck(&a) == ck(&c), "resumed ≠ uninterrupted");
}

/// `--json`: one JSON object on stdout with the status, exit code, files written, and on failure
/// the error and its field; the human messages stay on stderr.
#[test]
fn json_summaries_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.csv");
    let o = Command::new(bin("simulate"))
        .args(["--t1", "2", "--json", "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["outputs"][0], out.display().to_string());
    for (b, args, field) in [
        ("lyapunov", vec!["--steps", "0"], "steps"),
        ("train", vec!["--epochs", "0"], "epochs"),
        ("stability-sweep", vec!["--shard", "3/2"], "shard"),
    ] {
        let o = Command::new(bin(b))
            .args(&args)
            .args(["--json", "-q", "--out"])
            .arg(dir.path().join("x.csv"))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "error", "{b}");
        assert_eq!(v["exit_code"], 2);
        assert_eq!(v["field"], field);
        assert!(String::from_utf8_lossy(&o.stderr).contains("error:"));
    }
}

/// A staged run's outputs appear together at commit, or not at all: discarded, they leave
/// neither the files nor temporary files behind.
#[test]
fn staged_outputs_appear_together_or_not_at_all() {
    use neurodyn::io::{
        commit_outputs, discard_outputs, stage_outputs, Column, Table, TableFormat,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut t = Table::new();
    t.push("x", Column::F64(vec![1.0, 2.0]));
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.parquet"));
    stage_outputs();
    t.write(&a, TableFormat::Csv).unwrap();
    t.write(&b, TableFormat::Parquet).unwrap();
    assert!(
        !a.exists() && !b.exists(),
        "staged files appeared before the commit"
    );
    discard_outputs();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a discarded run left files"
    );
    stage_outputs();
    t.write(&a, TableFormat::Csv).unwrap();
    t.write(&b, TableFormat::Parquet).unwrap();
    commit_outputs().unwrap();
    assert!(a.exists() && b.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    // Unstaged again: writes land at once.
    let c = dir.path().join("c.csv");
    t.write(&c, TableFormat::Csv).unwrap();
    assert!(c.exists());
}

/// A `.npy` file whose header says `descr`/`shape` over `data` (possibly far fewer bytes).
fn npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (h.len() + 11) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend(data);
    std::fs::write(path, b).unwrap();
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Hardening II: the mechanisms, each with cases of its own. Lying `.npy` headers are refused
/// before allocating; every output path is checked before the work (a folder where a file goes
/// leaves nothing behind); conflicting or ignored options are refused; sizes whose outputs cannot
/// fit are refused up front; the message names the flag the user gave; hyphen values are values.
#[test]
fn hardening_ii_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let bistable = models.join("organics-2d-bistable.toml");
    let bistable = bistable.display();
    npy(&d.join("lie.npy"), "<f8", "(1000000, 1000000)", &[0; 200]);
    npy(&d.join("lie32.npy"), "<f4", "(4000000000,)", &[0; 64]);
    npy(&d.join("lie1.npy"), "<f8", "(1000000000000,)", &[0; 200]);
    npy(&d.join("w00.npy"), "<f8", "(0, 0)", &[]);
    npy(&d.join("x0.npy"), "<f8", "(100,)", &f64s(&[0.1; 100]));
    npy(&d.join("ens.npy"), "<f8", "(2, 100)", &f64s(&[0.1; 200]));
    npy(&d.join("img784.npy"), "<f8", "(784,)", &f64s(&[0.1; 784]));
    let mut nan = vec![0.1; 784];
    nan[5] = f64::NAN;
    npy(&d.join("imgnan.npy"), "<f8", "(28, 28)", &f64s(&nan));
    npy(&d.join("k.npy"), "<f8", "(2, 2, 3, 3)", &f64s(&[0.1; 36]));
    std::fs::write(d.join("a-file"), "x").unwrap();
    // Folders where a later output file goes.
    for p in [
        "o.png",
        "c/bifurcations.csv",
        "sw/summary.csv",
        "tr/metrics.csv",
        "cnn/learning_curve.svg",
    ] {
        std::fs::create_dir_all(d.join(p)).unwrap();
    }
    let cases = vec![
        // A header that promises more than the file holds.
        case("simulate", "--W lie.npy --out o.csv", "W"),
        case("simulate", "--b lie32.npy --out o.csv", "b"),
        case("lyapunov", "--W lie.npy --out o.csv", "W"),
        case(
            "fracdiff",
            "--input lie1.npy --alpha 0.5 --out o.csv",
            "input",
        ),
        big(
            "fixed-points",
            "--trajectory 100000000000 --out o.csv",
            "trajectory",
        ),
        // Every output path checked before the work.
        case("simulate", "--plot --out o.csv", "out"),
        case(
            "continuation",
            &format!("--model {bistable} --param W_r --from 3 --to 0.5 --out c"),
            "out",
        ),
        case("stability-sweep", "--out sw", "out"),
        case("train", "--epochs 1 --steps 2 --out tr", "out"),
        case("train-cnn", "--epochs 1 --out cnn", "out"),
        Case {
            code: 1,
            ..case("train", "--epochs 1 --steps 2 --lr 1e300 --out tr2", "lr")
        },
        // Conflicting or ignored options.
        case(
            "simulate",
            "--ensemble ens.npy --x0 x0.npy --out o.csv",
            "x0",
        ),
        case("lyapunov", "--blocks 0 --out o.csv", "blocks"),
        case("train-cnn", "--hidden 1000000000 --out cnn2", "hidden"),
        case(
            "train-cnn",
            "--arch small-vgg --dropout 0.2 --out cnn2",
            "dropout",
        ),
        case(
            "continuation",
            &format!("--model {bistable} --param W_r --from 3 --to 0.5 --starts 0 --out c2"),
            "starts",
        ),
        case(
            "cordsnet",
            "spectrum --kernel k.npy --size 5 5 --m 100000 --out r.csv",
            "m",
        ),
        case(
            "cordsnet",
            "spectrum --kernel k.npy --size 5 5 --m 10 --k 0 --out r.csv",
            "k",
        ),
        case(
            "cordsnet",
            "spectrum --kernel k.npy --size 5 5 --m 10 --k 11 --out r.csv",
            "k",
        ),
        case(
            "cordsnet",
            "simulate --image img784.npy --out s.csv",
            "image",
        ),
        case(
            "cordsnet",
            "simulate --image imgnan.npy --out s.csv",
            "image",
        ),
        case("cordsnet", "simulate --gain nan --out s.csv", "gain"),
        case("cordsnet", "train --ramp 1000 --out ct", "ramp"),
        case("cordsnet", "train --window 100 --out ct", "window"),
        // Sizes whose outputs cannot fit, refused up front.
        big(
            "lyapunov",
            "--steps 1000000000000000 --history h.csv --out o.csv",
            "history",
        ),
        big(
            "lyapunov",
            "--steps 1000000000000000 --local l.csv --out o.csv",
            "local",
        ),
        big(
            "cordsnet",
            "simulate --spont 1000000000000 --out s.csv",
            "spont",
        ),
        // The flag the user gave is the field named; hyphen values are values.
        case("simulate", "--W w00.npy --out o.csv", "W"),
        case("fixed-points", "--anru 0:0 --out o.csv", "anru"),
        case(
            "cordsnet",
            "simulate --weights a-file --out s.csv",
            "weights",
        ),
        case("stability-sweep", "--shard -1/2 --out sw2", "shard"),
        case(
            "cordsnet",
            "spectrum --kernel k.npy --size -1 5 --out r.csv",
            "size",
        ),
        case("cordsnet", "simulate --mnist -1 --out s.csv", "mnist"),
        case(
            "continuation",
            &format!("--model {bistable} --param W_r --from nan --to 0.5 --out c3"),
            "from",
        ),
    ];
    run_corpus(d, &cases);
}

/// A long run is never silent: when stderr is a file, the progress bar writes a plain line
/// (elapsed, percentage, the estimate of what is left) every NEURODYN_LOG_EVERY seconds.
#[test]
fn long_runs_report_progress_when_stderr_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("lyapunov"))
        .args(["--steps", "12000", "--out"])
        .arg(dir.path().join("l.csv"))
        .env("NEURODYN_LOG_EVERY", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("steps") && l.contains('%') && l.contains("left"))
        .unwrap_or_else(|| panic!("no progress line in `{err}`"));
    assert!(line.starts_with("[00:00:0"), "{line}");
}

/// Runs every case in `d` (with `-q`; size cases under a 6 GiB address-space limit when `prlimit`
/// exists): its exit code, no panic or abort, the field named, the folder unchanged.
fn run_corpus(d: &Path, cases: &[Case]) {
    let limit = has_prlimit();
    for c in cases {
        let before = snapshot(d);
        let mut cmd = if c.limited && limit {
            let mut k = Command::new("prlimit");
            k.arg("--as=6442450944").arg(bin(c.bin));
            k
        } else {
            Command::new(bin(c.bin))
        };
        let out = cmd.args(&c.args).arg("-q").current_dir(d).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let what = format!("{} {}", c.bin, c.args.join(" "));
        assert_eq!(out.status.code(), Some(c.code), "{what}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("memory allocation"),
            "{what}: {err}"
        );
        assert!(
            err.contains(c.field),
            "{what}: `{err}` does not name `{}`",
            c.field
        );
        assert_eq!(snapshot(d), before, "{what} changed the folder");
    }
}
