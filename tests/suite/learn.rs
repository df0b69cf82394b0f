//! The shared training driver (`neurodyn::learn`) as every trainer runs it: checkpoints written
//! before it still resume to the very bits the old code reached; a kill at every phase of an
//! epoch boundary resumes exactly; a loss that stops being finite fails the same way (exit 1,
//! nothing written) in every trainer; the run state round-trips; the optimisers and the clip.

use neurodyn::learn::{self, clip_grad_norm, EpochRow, Optimizer, OptimizerKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One trainer, driven through its binary.
struct Trainer {
    name: &'static str,
    /// The binary and its leading arguments (a subcommand).
    bin: &'static str,
    pre: &'static [&'static str],
    /// Arguments of a tiny run with two epochs, and of the same run with one.
    two: &'static [&'static str],
    one: &'static [&'static str],
    /// The arguments that make the loss blow up.
    blow_up: &'static [&'static str],
}

const TRAINERS: [Trainer; 4] = [
    Trainer {
        name: "train",
        bin: env!("CARGO_BIN_EXE_train"),
        pre: &[],
        two: &[
            "--task", "go-nogo", "--cell", "rate", "--hidden", "8", "--epochs", "2", "--steps",
            "2", "--batch", "4", "--eval", "8",
        ],
        one: &[
            "--task", "go-nogo", "--cell", "rate", "--hidden", "8", "--epochs", "1", "--steps",
            "2", "--batch", "4", "--eval", "8",
        ],
        blow_up: &["--lr", "1e300"],
    },
    Trainer {
        name: "train-digits",
        bin: env!("CARGO_BIN_EXE_train"),
        pre: &[],
        two: &[
            "--task",
            "seq-digits",
            "--cell",
            "gamma",
            "--hidden",
            "6",
            "--pool",
            "7",
            "--epochs",
            "2",
            "--steps",
            "2",
            "--batch",
            "4",
            "--eval",
            "8",
            "--val",
            "100",
            "--plateau",
            "1",
        ],
        one: &[
            "--task",
            "seq-digits",
            "--cell",
            "gamma",
            "--hidden",
            "6",
            "--pool",
            "7",
            "--epochs",
            "1",
            "--steps",
            "2",
            "--batch",
            "4",
            "--eval",
            "8",
            "--val",
            "100",
            "--plateau",
            "1",
        ],
        blow_up: &["--lr", "1e300"],
    },
    Trainer {
        name: "cnn",
        bin: env!("CARGO_BIN_EXE_train-cnn"),
        pre: &[],
        two: &[
            "--arch",
            "static-organics",
            "--norm",
            "none",
            "--hidden",
            "8",
            "--train-limit",
            "32",
            "--test-limit",
            "16",
            "--epochs",
            "2",
            "--batch",
            "16",
        ],
        one: &[
            "--arch",
            "static-organics",
            "--norm",
            "none",
            "--hidden",
            "8",
            "--train-limit",
            "32",
            "--test-limit",
            "16",
            "--epochs",
            "1",
            "--batch",
            "16",
        ],
        blow_up: &["--lr", "1e300", "--optimizer", "sgd"],
    },
    Trainer {
        name: "cordsnet",
        bin: env!("CARGO_BIN_EXE_cordsnet"),
        pre: &["train"],
        two: &[
            "--arch",
            "mnist",
            "--linear-epochs",
            "1",
            "--anneal-epochs",
            "0",
            "--relu-epochs",
            "1",
            "--spont",
            "2",
            "--stim",
            "4",
            "--post",
            "2",
            "--ramp",
            "4",
            "--window",
            "2",
            "--batch",
            "8",
            "--train-limit",
            "16",
            "--test-limit",
            "8",
        ],
        one: &[
            "--arch",
            "mnist",
            "--linear-epochs",
            "1",
            "--anneal-epochs",
            "0",
            "--relu-epochs",
            "0",
            "--spont",
            "2",
            "--stim",
            "4",
            "--post",
            "2",
            "--ramp",
            "4",
            "--window",
            "2",
            "--batch",
            "8",
            "--train-limit",
            "16",
            "--test-limit",
            "8",
        ],
        blow_up: &["--lr", "1e300", "--optimizer", "sgd", "--clip", "1e300"],
    },
];

fn run(t: &Trainer, args: &[&str], extra: &[&str], out: &Path, failpoint: Option<&str>) -> Output {
    let mut c = Command::new(t.bin);
    c.args(t.pre).args(args).args(extra).arg("--out").arg(out);
    if t.bin != env!("CARGO_BIN_EXE_cordsnet") {
        c.arg("-q");
    }
    match failpoint {
        Some(f) => c.env("NEURODYN_FAILPOINT", f),
        None => c.env_remove("NEURODYN_FAILPOINT"),
    };
    c.output().unwrap()
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// FNV-1a of each tensor's bytes, by name.
fn tensor_hashes(path: &Path) -> Vec<(String, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, u64)> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let h = t.data().iter().fold(0xcbf29ce484222325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100000001b3)
            });
            (name, h)
        })
        .collect();
    v.sort();
    v
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/legacy")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A checkpoint written by each trainer before the shared driver resumes to exactly the network
/// and optimiser state the old code reached in its second epoch (hashes recorded then), keeps
/// the old epoch's row, and is rewritten in the new schema.
#[test]
fn checkpoints_from_before_the_driver_resume_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    for t in &TRAINERS {
        let out = dir.path().join(t.name);
        copy_dir(&fixture(t.name), &out);
        let old_meta =
            neurodyn::tensor::safetensors::read_metadata(&out.join("checkpoint.safetensors"))
                .unwrap();
        assert!(!old_meta.contains_key("run.format"), "{}", t.name);
        ok(&run(t, t.two, &[], &out, None), t.name);
        let want: Vec<(String, u64)> = std::fs::read_to_string(fixture(t.name).join("epoch2.fnv"))
            .unwrap()
            .lines()
            .map(|l| {
                let (n, h) = l.split_once(' ').unwrap();
                // The recurrent trainer's Adam state had its own names.
                let n = match n {
                    "adam_m" => "optimizer.m",
                    "adam_v" => "optimizer.v",
                    n => n,
                };
                (n.to_string(), u64::from_str_radix(h, 16).unwrap())
            })
            .filter(|(n, _)| n != "adam_t")
            .collect();
        let mut want = want;
        want.sort();
        let got = tensor_hashes(&out.join("checkpoint.safetensors"));
        assert_eq!(got, want, "{}: tensors after the resumed epoch", t.name);
        let meta =
            neurodyn::tensor::safetensors::read_metadata(&out.join("checkpoint.safetensors"))
                .unwrap();
        assert_eq!(meta["run.format"], learn::FORMAT);
        assert_eq!(meta["run.epoch"], "2");
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        let old = std::fs::read_to_string(fixture(t.name).join("metrics.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{}: {csv}", t.name);
        // The first epoch's row is the old one, every column but the wall time.
        let cut = |l: &str| -> String {
            let f: Vec<&str> = l.split(',').collect();
            let n = if t.name == "cnn" || t.name == "cordsnet" {
                f.len() - 1
            } else {
                f.len()
            };
            f[..n].join(",")
        };
        let old_lines: Vec<&str> = old.lines().collect();
        assert_eq!(cut(lines[0]), cut(old_lines[0]), "{}", t.name);
        assert_eq!(cut(lines[1]), cut(old_lines[1]), "{}", t.name);
    }
}

/// Killed at each phase of an epoch boundary, every trainer resumes to the same checkpoint and
/// metrics (but for wall-clock columns) as a run that was never killed; a fresh run killed
/// before its first checkpoint leaves nothing behind.
#[test]
fn every_trainer_killed_at_every_phase_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for t in &TRAINERS[..] {
        let clean = dir.path().join(format!("{}-clean", t.name));
        ok(&run(t, t.two, &[], &clean, None), t.name);
        let first = dir.path().join(format!("{}-first", t.name));
        let o = run(t, t.two, &[], &first, Some("before-checkpoint:1"));
        assert_eq!(o.status.code(), Some(137), "{}", t.name);
        assert!(
            !first.exists(),
            "{}: a run killed in its first epoch left files",
            t.name
        );
        for phase in ["before-checkpoint", "after-checkpoint", "after-metrics"] {
            let out = dir.path().join(format!("{}-{phase}", t.name));
            let o = run(t, t.two, &[], &out, Some(&format!("{phase}:2")));
            assert_eq!(o.status.code(), Some(137), "{} {phase}", t.name);
            ok(&run(t, t.two, &[], &out, None), t.name);
            assert_eq!(
                tensor_hashes(&out.join("checkpoint.safetensors")),
                tensor_hashes(&clean.join("checkpoint.safetensors")),
                "{} {phase}: the checkpoint's tensors",
                t.name
            );
            let rows = |p: &Path| -> Vec<String> {
                let table = neurodyn::io::read_parquet(&p.join("metrics.parquet")).unwrap();
                let mut v = vec![];
                for (name, c) in &table.columns {
                    if name != "seconds" {
                        v.push(format!("{name}: {c:?}"));
                    }
                }
                v
            };
            assert_eq!(rows(&out), rows(&clean), "{} {phase}: metrics", t.name);
        }
        // The shorter run, then the longer one in the same folder: a resume, the same bits.
        let grown = dir.path().join(format!("{}-grown", t.name));
        ok(&run(t, t.one, &[], &grown, None), t.name);
        ok(&run(t, t.two, &[], &grown, None), t.name);
        assert_eq!(
            tensor_hashes(&grown.join("checkpoint.safetensors")),
            tensor_hashes(&clean.join("checkpoint.safetensors")),
            "{}: grown run",
            t.name
        );
    }
}

/// A branch (`train --from RUN_DIR`) continues another folder's finished epochs: with the same
/// configuration it reaches the very bits of the run resumed in place; under a new schedule and
/// weight decay it keeps the recorded rows and follows the new rate from the next epoch; a
/// branch of another network, of a folder that holds no run, or asking for no more epochs is
/// refused naming the field, and the source folder is never written.
#[test]
fn a_branch_continues_the_recorded_epochs_under_a_new_optimisation() {
    let t = &TRAINERS[0];
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean");
    ok(&run(t, t.two, &[], &clean, None), "clean");
    let src = dir.path().join("src");
    ok(&run(t, t.one, &[], &src, None), "source");
    let before = tensor_hashes(&src.join("checkpoint.safetensors"));
    let from = src.to_str().unwrap();

    let same = dir.path().join("same");
    ok(&run(t, t.two, &["--from", from], &same, None), "same");
    assert_eq!(
        tensor_hashes(&same.join("checkpoint.safetensors")),
        tensor_hashes(&clean.join("checkpoint.safetensors")),
        "a branch under the same configuration is the run resumed"
    );

    let new = dir.path().join("new");
    let extra = [
        "--from",
        from,
        "--schedule",
        "step:1:0.5",
        "--weight-decay",
        "1e-3",
    ];
    ok(&run(t, t.two, &extra, &new, None), "new schedule");
    let table = |p: &Path| neurodyn::io::read_parquet(&p.join("metrics.parquet")).unwrap();
    let col = |p: &Path, name: &str| -> Vec<f64> {
        match &table(p).columns.iter().find(|(n, _)| n == name).unwrap().1 {
            neurodyn::io::Column::F64(v) => v.clone(),
            c => panic!("{name}: {c:?}"),
        }
    };
    assert_eq!(col(&new, "lr"), vec![0.01, 0.005]);
    assert_eq!(col(&new, "loss")[0], col(&src, "loss")[0]);
    assert_eq!(col(&new, "eval_loss")[0], col(&clean, "eval_loss")[0]);
    assert_ne!(col(&new, "loss")[1], col(&clean, "loss")[1]);
    let cfg = std::fs::read_to_string(new.join("config.toml")).unwrap();
    assert!(
        cfg.contains("weight_decay = 0.001") && cfg.contains("from = "),
        "{cfg}"
    );
    // Rerun: the branch resumes in its own folder (done: nothing changes).
    let h = tensor_hashes(&new.join("checkpoint.safetensors"));
    ok(&run(t, t.two, &extra, &new, None), "rerun");
    assert_eq!(tensor_hashes(&new.join("checkpoint.safetensors")), h);

    for (case, args, field) in [
        (
            "another network",
            vec!["--from", from, "--seed", "2"],
            "from",
        ),
        (
            "no run there",
            vec!["--from", dir.path().to_str().unwrap()],
            "from",
        ),
    ] {
        let out = dir.path().join(case.replace(' ', "-"));
        let o = run(t, t.two, &args, &out, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{case}: {err}");
        assert!(err.contains(field), "{case}: {err}");
        // The refusal names the setting that blocks the branch, and only that one.
        if case == "another network" {
            assert!(err.contains("; it differs in seed (stored "), "{err}");
            assert!(!err.contains("epochs ("), "{err}");
        }
        assert!(!out.exists(), "{case}");
    }
    let out = dir.path().join("no-more");
    let o = run(t, t.one, &["--from", from], &out, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("epochs"), "{err}");
    assert_eq!(tensor_hashes(&src.join("checkpoint.safetensors")), before);
}

/// A loss that stops being finite fails every trainer the same way: exit 1, a message naming the
/// epoch and minibatch, and no output folder left behind.
#[test]
fn a_non_finite_loss_fails_every_trainer_alike() {
    let dir = tempfile::tempdir().unwrap();
    for t in &TRAINERS[..] {
        let out = dir.path().join(format!("{}-inf", t.name));
        let o = run(t, t.one, t.blow_up, &out, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", t.name);
        assert!(
            err.contains("the loss became") && err.contains("epoch 1, minibatch"),
            "{}: {err}",
            t.name
        );
        assert!(!out.exists(), "{}: left {:?}", t.name, out);
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Row {
    epoch: usize,
    loss: f64,
    acc: f64,
}

impl EpochRow for Row {
    fn table(_: &[Self]) -> neurodyn::io::Table {
        neurodyn::io::Table::new()
    }
    fn eval_loss(&self) -> f64 {
        self.loss
    }
    fn summary(&self) -> String {
        format!("epoch {}", self.epoch)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DummyConfig;

impl learn::Config for DummyConfig {
    fn epochs(&self) -> usize {
        0
    }
    fn schedule(&self) -> (f64, learn::Schedule) {
        (1.0, learn::Schedule::Constant)
    }
    fn continues(&self, _: &Self) -> bool {
        true
    }
}

struct Dummy;

impl learn::Learner for Dummy {
    type Row = Row;
    type Config = DummyConfig;
    const KIND: &'static str = "dummy";
    fn out(&self) -> &Path {
        Path::new(".")
    }
    fn rows(&self) -> &[Row] {
        &[]
    }
    fn rows_mut(&mut self) -> &mut Vec<Row> {
        unreachable!()
    }
    fn config(&self) -> &DummyConfig {
        &DummyConfig
    }
    fn steps(&self, _: usize) -> usize {
        0
    }
    fn step(&mut self, _: usize, _: usize, _: f64) -> neurodyn::Result<learn::StepLoss> {
        unreachable!()
    }
    fn end_epoch(
        &mut self,
        _: usize,
        _: f64,
        _: &learn::EpochTotals,
        _: f64,
    ) -> neurodyn::Result<Row> {
        unreachable!()
    }
    fn save(&self, _: &Path, _: Vec<(String, String)>) -> neurodyn::Result<()> {
        Ok(())
    }
    fn curve(&self) -> Option<neurodyn::plot::LinePlot> {
        None
    }
}

/// The run state round-trips every number exactly (NaN, −0, subnormals, 1/3) and refuses a
/// mismatched kind, an epoch count that disagrees and an unknown format, naming `checkpoint`.
#[test]
fn the_run_state_round_trips_exactly_and_refuses_what_does_not_fit() {
    let rows = vec![
        Row {
            epoch: 1,
            loss: 1.0 / 3.0,
            acc: f64::NAN,
        },
        Row {
            epoch: 2,
            loss: -0.0,
            acc: 5e-324,
        },
    ];
    let meta: std::collections::HashMap<String, String> =
        learn::run_state("dummy", "a = 1\n", &rows)
            .unwrap()
            .into_iter()
            .collect();
    let p = Path::new("x.safetensors");
    let (config, back) = learn::read_run_state::<Dummy>(&meta, p).unwrap();
    assert_eq!(config, "a = 1\n");
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].loss.to_bits(), (1.0f64 / 3.0).to_bits());
    assert!(back[0].acc.is_nan());
    assert_eq!(back[1].loss.to_bits(), (-0.0f64).to_bits());
    assert_eq!(back[1].acc.to_bits(), 5e-324f64.to_bits());
    for (k, v, says) in [
        ("run.kind", "cnn", "trainer"),
        ("run.epoch", "3", "disagrees"),
        ("run.format", "neurodyn-run-9", "not known"),
    ] {
        let mut m = meta.clone();
        m.insert(k.into(), v.into());
        let e = learn::read_run_state::<Dummy>(&m, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("checkpoint") && e.contains(says), "{k}: {e}");
    }
}

/// Adam and AdamW against the update written out by hand (PyTorch's rules), SGD with momentum,
/// frozen entries untouched, the clip over trained entries only, and the state through a
/// checkpoint's tensors (also under the recurrent trainer's old names).
#[test]
fn optimisers_follow_the_update_rules_and_keep_their_state() {
    let (lr, wd) = (0.1, 0.01);
    let p0 = [1.0f64, -2.0, 0.5];
    let g = [0.3f64, -0.1, 7.0];
    let train = [true, true, false];
    for kind in [
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
        OptimizerKind::Sgd,
    ] {
        let mut o = Optimizer::new(kind, lr).unwrap();
        o.weight_decay = wd;
        let mut p = p0;
        o.step(&mut p, &g, &train);
        o.step(&mut p, &g, &train);
        // By hand, two steps.
        let mut q = p0;
        let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
        for t in 1..=2 {
            for k in 0..2 {
                match kind {
                    OptimizerKind::Sgd => {
                        let gk = g[k] + wd * q[k];
                        m[k] = if t == 1 { gk } else { 0.9 * m[k] + gk };
                        q[k] -= lr * m[k];
                    }
                    _ => {
                        let decoupled = kind == OptimizerKind::AdamW;
                        let gk = if decoupled { g[k] } else { g[k] + wd * q[k] };
                        if decoupled {
                            q[k] *= 1.0 - lr * wd;
                        }
                        m[k] = 0.9 * m[k] + 0.1 * gk;
                        v[k] = 0.999 * v[k] + 0.001 * gk * gk;
                        let mh = m[k] / (1.0 - 0.9f64.powi(t));
                        let vh = v[k] / (1.0 - 0.999f64.powi(t));
                        q[k] -= lr * mh / (vh.sqrt() + 1e-8);
                    }
                }
            }
        }
        for k in 0..3 {
            assert!(
                (p[k] - q[k]).abs() < 1e-15,
                "{kind:?} {k}: {} vs {}",
                p[k],
                q[k]
            );
        }
        assert_eq!(p[2], 0.5, "{kind:?}: a frozen entry moved");
        // The state through a checkpoint's tensors.
        let (tensors, meta) = o.state();
        let named: Vec<(String, Vec<usize>, Vec<f64>)> = tensors
            .iter()
            .map(|(n, s, b, _)| {
                (
                    n.clone(),
                    s.clone(),
                    b.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            })
            .collect();
        let mut back = Optimizer::new(kind, lr).unwrap();
        back.restore(&named, &meta.into_iter().collect(), 3, Path::new("c"))
            .unwrap();
        assert_eq!(
            (back.m.clone(), back.v.clone(), back.t),
            (o.m.clone(), o.v.clone(), o.t)
        );
        // The recurrent trainer's old names.
        let old: Vec<(String, Vec<usize>, Vec<f64>)> = vec![
            ("adam_m".into(), vec![3], o.m.clone()),
            ("adam_v".into(), vec![3], o.v.clone()),
            ("adam_t".into(), vec![1], vec![2.0]),
        ];
        let mut back = Optimizer::adam(lr);
        back.restore(&old, &Default::default(), 3, Path::new("c"))
            .unwrap();
        assert_eq!((back.m.clone(), back.t), (o.m.clone(), 2));
        let e = back
            .restore(&old[..2], &Default::default(), 3, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("checkpoint") && e.contains("partial"), "{e}");
    }
    // The clip: the norm of the trained entries only (3, 4 → 5), frozen ones neither counted
    // nor scaled.
    let mut g = [3.0f32, 4.0, 100.0];
    let n = clip_grad_norm(&mut g, &[true, true, false], 1.0);
    assert_eq!(n, 5.0);
    assert_eq!(g, [0.6, 0.8, 100.0]);
    let mut g = [0.3f64, 0.4];
    clip_grad_norm(&mut g, &[true, true], 1.0);
    assert_eq!(g, [0.3, 0.4], "a gradient under the clip changed");
}
