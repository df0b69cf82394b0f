//! End-to-end tests of the `lyapunov` binary.

use crate::common::{tmpdir, LYAP_SPEC};

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lyapunov"))
}

#[test]
fn the_spec_cross_check_through_the_binary() {
    let d = tmpdir("spec");
    let out = d.join("spectrum.csv");
    let hist = d.join("hist.csv");
    let o = bin()
        .args([
            "--map",
            "tanh",
            "--W",
            "tests/fixtures/lyap_tanh_N10_g1.5_W.npy",
            "--x0",
            "tests/fixtures/lyap_tanh_N10_g1.5_h0.npy",
        ])
        .args([
            "--warmup",
            "100",
            "--steps",
            "1000",
            "--bits",
            "--plot",
            "--quiet",
            "--history",
        ])
        .arg(&hist)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "index,exponent,exponent_bits,unit,participation");
    assert_eq!(rows.len(), 11);
    for (i, r) in rows[1..].iter().enumerate() {
        let f: Vec<&str> = r.split(',').collect();
        let l: f64 = f[1].parse().unwrap();
        assert!(
            (l - LYAP_SPEC[i]).abs() < 1e-9 * LYAP_SPEC[i].abs().max(1e-3) + 1e-12,
            "row {i}: {l} vs {}",
            LYAP_SPEC[i]
        );
        let bits: f64 = f[2].parse().unwrap();
        assert!((bits - l / std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(f[3], "per step");
    }
    // 1000 QRs, a running estimate every 10.
    assert_eq!(std::fs::read_to_string(&hist).unwrap().lines().count(), 101);
    assert!(d.join("spectrum.png").exists() && d.join("spectrum_convergence.svg").exists());
}

#[test]
fn gain_sweep_runs_in_parallel_and_is_deterministic() {
    let d = tmpdir("sweep");
    let run = |threads: &str, out: &Path| {
        let o = bin()
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "--map",
                "tanh",
                "--sweep-g",
                "0.5,1.5,3",
                "--steps",
                "300",
                "--k",
                "20",
                "--quiet",
                "--out",
            ])
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let a = run("1", &d.join("a.csv"));
    let b = run("2", &d.join("b.csv"));
    assert_eq!(a, b, "results depend on the thread count");
    let rows: Vec<Vec<f64>> = a
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[0][1] < 0.0, "g = 0.5 must contract: {:?}", rows[0]);
    assert!(rows[2][1] > 0.0, "g = 3 must be chaotic: {:?}", rows[2]);
    // Shards (SLURM array tasks): blocks of the gains whose tables, concatenated in shard order,
    // are the one-process table.
    let mut joined = String::new();
    for i in 0..2 {
        let out = d.join(format!("shard{i}.csv"));
        let o = bin()
            .args([
                "--map",
                "tanh",
                "--sweep-g",
                "0.5,1.5,3",
                "--steps",
                "300",
                "--k",
                "20",
                "--quiet",
                "--shard",
            ])
            .arg(format!("{i}/2"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().count(), 1 + [2, 1][i]);
        joined += if i == 0 {
            &text
        } else {
            text.split_once('\n').unwrap().1
        };
    }
    assert_eq!(joined, a);
    let o = bin()
        .args([
            "--map",
            "tanh",
            "--sweep-g",
            "0.5,1.5,3",
            "--shard",
            "3/4",
            "--quiet",
            "--out",
        ])
        .arg(d.join("bad.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`shard`"));
}

#[test]
fn bad_input_fails_cleanly() {
    let d = tmpdir("bad");
    let out = d.join("s.csv");
    let fails = |args: &[&str]| {
        let o = bin()
            .args(args)
            .arg("--quiet")
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
    let e = fails(&["--map", "tanh", "--W", "nope.npy"]);
    assert!(e.contains("`W`") && e.contains("nope.npy"), "{e}");
    let e = fails(&[
        "--map",
        "tanh",
        "--W",
        "tests/fixtures/lyap_tanh_N10_g1.5_W.npy",
        "--x0",
        "tests/fixtures/lyap_tanh_N10_g1.5_h0.npy",
        "--k",
        "11",
    ]);
    assert!(e.contains("`k`"), "{e}");
    let e = fails(&["--map", "tanh", "--steps", "0"]);
    assert!(e.contains("`steps`"), "{e}");
    let e = fails(&["--map", "tanh", "--sweep-g", "1:2"]);
    assert!(e.contains("`sweep-g`"), "{e}");
    let e = fails(&["--map", "gamma:-2"]);
    assert!(e.contains("gamma"), "{e}");
    let e = fails(&["--flow", "--dt=-0.1"]);
    assert!(e.contains("`dt`"), "{e}");
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        0,
        "temporary files left behind"
    );
}

#[test]
fn anru_spectrum_runs_and_partial_is_the_head() {
    let d = tmpdir("anru");
    let run = |k: &str, out: &Path| {
        let o = bin()
            .args([
                "--anru", "10:4", "--drive", "0.8", "--k", k, "--warmup", "100", "--steps", "300",
                "--quiet", "--out",
            ])
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().parse::<f64>().unwrap())
            .collect::<Vec<f64>>()
    };
    let full = run("50", &d.join("full.csv"));
    let head = run("4", &d.join("head.csv"));
    assert_eq!(full.len(), 50);
    for i in 0..4 {
        assert!(
            (full[i] - head[i]).abs() < 1e-10,
            "{i}: {} vs {}",
            full[i],
            head[i]
        );
    }
    // Units driven far below threshold have γ' = 0 exactly: those directions are annihilated
    // (exponent −∞); nothing may be NaN.
    assert!(full.iter().all(|l| !l.is_nan() && *l < 0.05), "{full:?}");
    assert!(head.iter().all(|l| l.is_finite()));
    let e = String::from_utf8_lossy(
        &bin()
            .args(["--anru", "10", "--quiet", "--out"])
            .arg(d.join("x.csv"))
            .output()
            .unwrap()
            .stderr,
    )
    .into_owned();
    assert!(e.contains("`anru`"), "{e}");
}

/// A trajectory that diverges is a run failure (exit 1) that blames the step, not invalid input
/// (exit 2), and leaves no output; the same source through every view the resolver offers works.
#[test]
fn divergence_is_a_run_failure_and_every_view_resolves() {
    let d = tmpdir("diverge");
    let o = bin()
        .args(["--flow", "--dt", "10", "--steps", "200", "--quiet", "--out"])
        .arg(d.join("x.csv"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("dt = 10"), "{e}");
    assert!(!d.join("x.csv").exists());
    // ORGaNICs through the resolver: the flow and its Euler map agree on λ_max to O(dt).
    let run = |view: &[&str], out: &str| {
        let o = bin()
            .args([
                "--organics",
                "4",
                "--k",
                "2",
                "--warmup",
                "2000",
                "--steps",
                "4000",
            ])
            .args(view)
            .args(["--quiet", "--out"])
            .arg(d.join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(d.join(out))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let flow = run(&["--flow", "--dt", "0.0001"], "flow.csv");
    let euler = run(&["--euler", "--dt", "0.0001"], "euler.csv");
    assert!(flow < 0.0, "the default circuit is stable: λ_max = {flow}");
    assert!(
        (flow - euler).abs() < 0.02 * flow.abs(),
        "flow {flow} vs Euler map {euler}"
    );
    // --map is the rate RNN's view: asking it of an ORGaNICs circuit names the problem.
    let o = bin()
        .args(["--organics", "4", "--map", "tanh", "--quiet", "--out"])
        .arg(d.join("m.csv"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
}

/// `--device gpu` with `--sweep-g`: the same table as the CPU's to 1e-5 relative (f32 on the
/// device) on a non-chaotic range; without --sweep-g or --checkpoints it exits 2 naming
/// `device`. NEURODYN_SKIP_GPU=1 skips the GPU run on a machine without Vulkan.
#[test]
fn gpu_gain_sweep_matches_the_cpu() {
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    let d = tmpdir("gpu");
    let run = |device: &str, out: &Path| {
        bin()
            .args([
                "--map",
                "tanh",
                "--W",
                "tests/fixtures/lyap_tanh_N10_g1.5_W.npy",
            ])
            .args([
                "--sweep-g",
                "0.3:0.9:3",
                "--g0",
                "1.5",
                "--k",
                "4",
                "--steps",
                "300",
            ])
            .args(["--device", device, "--quiet", "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let (cpu, gpu) = (d.join("cpu.csv"), d.join("gpu.csv"));
    for (dev, out) in [("cpu", &cpu), ("gpu", &gpu)] {
        let o = run(dev, out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let read = |p: &Path| -> Vec<Vec<f64>> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (c, g) = (read(&cpu), read(&gpu));
    assert_eq!(c.len(), 3);
    for (rc, rg) in c.iter().zip(&g) {
        for (a, b) in rc.iter().zip(rg) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{rc:?} vs {rg:?}");
        }
    }
    let o = bin()
        .args([
            "--map",
            "tanh",
            "--W",
            "tests/fixtures/lyap_tanh_N10_g1.5_W.npy",
        ])
        .args(["--device", "gpu", "--quiet", "--out"])
        .arg(d.join("x.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`device`"));
}

/// `--checkpoints a,b,c`: one row per trained network, on the CPU (f64) and on the GPU (f32, all
/// at once) — gamma-cell checkpoints, per-unit (n, s), bias — the same table to 1e-4; an LSTM
/// checkpoint (not one recurrent layer) on the GPU exits 2 naming `device`.
#[test]
fn checkpoint_lists_on_both_devices() {
    use neurodyn::learn::Optimizer;
    use neurodyn::train::cell::{AnyCell, GammaCell, LstmCell};
    use neurodyn::train::net::SeqNet;
    use rand::SeedableRng;
    let d = tmpdir("ckpts");
    let mut paths = vec![];
    for seed in 0..3u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let cell = AnyCell::Gamma(GammaCell::new(16, 2, true).unwrap());
        let mut net = SeqNet::<f64, AnyCell>::new(cell.clone(), 3).unwrap();
        cell.init(&mut net.params, &mut rng);
        net.init_readout(&mut rng, 2.0);
        // A contracting recurrence (non-chaotic, so f32 and f64 agree to 1e-4).
        let v = net.layout.get("V").unwrap().range();
        for p in &mut net.params[v] {
            *p *= 0.3;
        }
        let path = d.join(format!("g{seed}.safetensors"));
        neurodyn::train::checkpoint::save(&net, &Optimizer::adam(0.01), &path).unwrap();
        paths.push(path.display().to_string());
    }
    let list = paths.join(",");
    let run = |device: &str, list: &str, out: &Path| {
        bin()
            .args(["--checkpoints", list, "--k", "3", "--steps", "300"])
            .args(["--device", device, "--quiet", "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let (cpu, gpu) = (d.join("cpu.csv"), d.join("gpu.csv"));
    let o = run("cpu", &list, &cpu);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = |p: &Path| -> Vec<(String, Vec<f64>)> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let (name, rest) = l.split_once(',').unwrap();
                (
                    name.to_string(),
                    rest.split(',').map(|v| v.parse().unwrap()).collect(),
                )
            })
            .collect()
    };
    let c = rows(&cpu);
    assert_eq!(c.len(), 3);
    assert!(c[1].0.ends_with("g1.safetensors"));
    assert!(c.iter().all(|(_, v)| v[0] < 0.0), "{c:?}");
    if std::env::var("NEURODYN_SKIP_GPU").is_ok_and(|v| v == "1") {
        return;
    }
    let o = run("gpu", &list, &gpu);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for ((nc, vc), (ng, vg)) in c.iter().zip(&rows(&gpu)) {
        assert_eq!(nc, ng);
        for (a, b) in vc.iter().zip(vg) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{vc:?} vs {vg:?}");
        }
    }
    // An LSTM checkpoint is the map of its own update, not one layer h ← φ(W h + b).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let cell = AnyCell::Lstm(LstmCell::new(8, 1).unwrap());
    let mut net = SeqNet::<f64, AnyCell>::new(cell.clone(), 2).unwrap();
    cell.init(&mut net.params, &mut rng);
    let rate = d.join("lstm.safetensors");
    neurodyn::train::checkpoint::save(&net, &Optimizer::adam(0.01), &rate).unwrap();
    let o = run("gpu", &rate.display().to_string(), &d.join("r.csv"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`device`"));
    assert!(!d.join("r.csv").exists());
}

/// `--clv`: the covariant vectors' growth rates beside the QR exponents, the expanding/contracting
/// angle at every QR of the window, and the vectors as window × N × k .npy with unit columns.
#[test]
fn covariant_vectors_from_the_command_line() {
    let d = tmpdir("clv");
    let (angles, vectors, out) = (d.join("angles.csv"), d.join("v.npy"), d.join("s.csv"));
    // A chaotic tanh map (N = 24, g = 3, seeded Gaussian W).
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let w4: Vec<f64> = (0..24 * 24)
        .map(|_| {
            3.0 * <rand_distr::StandardNormal as Distribution<f64>>::sample(
                &rand_distr::StandardNormal,
                &mut rng,
            ) / 24f64.sqrt()
        })
        .collect();
    let wpath = d.join("W.npy");
    neurodyn::io::write_npy_mat(&wpath, 24, 24, &w4).unwrap();
    let o = bin()
        .args(["--map", "tanh", "--W"])
        .arg(&wpath)
        .args([
            "--warmup",
            "200",
            "--transient",
            "300",
            "--steps",
            "1000",
            "--quiet",
        ])
        .arg("--clv")
        .arg(&angles)
        .arg("--clv-vectors")
        .arg(&vectors)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = std::fs::read_to_string(&out).unwrap();
    let header: Vec<&str> = t.lines().next().unwrap().split(',').collect();
    let (e, c) = (
        header.iter().position(|h| *h == "exponent").unwrap(),
        header.iter().position(|h| *h == "clv_exponent").unwrap(),
    );
    let rows: Vec<Vec<&str>> = t.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 24);
    let mut positive = 0;
    for r in &rows {
        let (qr, clv): (f64, f64) = (r[e].parse().unwrap(), r[c].parse().unwrap());
        assert!((qr - clv).abs() < 0.02, "QR {qr} vs CLV {clv}");
        positive += usize::from(clv > 0.0);
    }
    assert!(positive > 0 && positive < 24, "{t}");
    let a = std::fs::read_to_string(&angles).unwrap();
    assert_eq!(a.lines().count(), 1 + 1000);
    for l in a.lines().skip(1) {
        let angle: f64 = l.split(',').nth(1).unwrap().parse().unwrap();
        assert!(
            angle > 0.0 && angle <= std::f64::consts::FRAC_PI_2 + 1e-12,
            "{angle}"
        );
    }
    let v = neurodyn::io::open_npy(&vectors, "v").unwrap();
    let arr: ndarray::Array3<f64> = ndarray_npy::ReadNpyExt::read_npy(v).unwrap();
    assert_eq!(arr.shape(), &[1000, 24, 24]);
    for j in 0..24 {
        let norm: f64 = (0..24).map(|i| arr[[17, i, j]].powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-12);
    }
    // --clv-vectors without --clv, or not .npy, is refused naming the flag.
    let o = bin()
        .args([
            "--map",
            "tanh",
            "--clv",
            "a.csv",
            "--clv-vectors",
            "v.txt",
            "--quiet",
            "--out",
        ])
        .arg(d.join("x.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("clv-vectors"));
}
