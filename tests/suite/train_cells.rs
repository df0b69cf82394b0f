//! Every trainable cell's hand-derived backward pass against central finite differences (f64,
//! relative error < 1e-6), for both losses, with batches smaller and larger than a parallel chunk;
//! f32 against f64; determinism; the digits data.

use neurodyn::data::{permutation, seed_permutation, Digits};
use neurodyn::data::{Batch, Targets};
use neurodyn::learn::Learner;
use neurodyn::train::cell::AnyCell;
use neurodyn::train::cell::{
    AnruCell, Cell, GammaCell, GruCell, LstmCell, OrganicsCell, RateCell, RatePhi,
};
use neurodyn::train::net::SeqNet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cells() -> Vec<(&'static str, AnyCell)> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut org = OrganicsCell::new(4, 2, true).unwrap();
    // Faster rates than the seed's (0.01, 0.01, 0.1) so every path carries weight in 6 steps.
    org.kappa_max = (0.4, 0.3, 0.5);
    vec![
        (
            "rate-tanh",
            AnyCell::Rate(
                RateCell::new(5, 2, RatePhi::Tanh, None, (2.0, 8.0), true, false).unwrap(),
            ),
        ),
        (
            "rate-dale-sigmoid",
            AnyCell::Rate(
                RateCell::new(
                    6,
                    2,
                    RatePhi::Sigmoid,
                    Some(RateCell::draw_dale(6, &mut rng)),
                    (2.0, 8.0),
                    true,
                    true,
                )
                .unwrap(),
            ),
        ),
        (
            // The SST motif: units 1 and 3 are SST (the first two inhibitory units).
            "rate-dale-sst",
            AnyCell::Rate(
                RateCell::new(
                    7,
                    2,
                    RatePhi::Sigmoid,
                    Some(vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0]),
                    (2.0, 8.0),
                    true,
                    true,
                )
                .unwrap()
                .with_som(2)
                .unwrap(),
            ),
        ),
        (
            "rate-relu",
            AnyCell::Rate(
                RateCell::new(5, 2, RatePhi::Relu, None, (1.5, 4.0), false, false).unwrap(),
            ),
        ),
        ("gamma", AnyCell::Gamma(GammaCell::new(5, 2, true).unwrap())),
        ("anru", AnyCell::Anru(AnruCell::new(4, 3, 2).unwrap())),
        ("organics", AnyCell::Organics(org)),
        ("lstm", AnyCell::Lstm(LstmCell::new(4, 2).unwrap())),
        ("gru", AnyCell::Gru(GruCell::new(5, 2).unwrap())),
    ]
}

fn net(cell: AnyCell, outputs: usize, seed: u64) -> SeqNet<f64, AnyCell> {
    let mut net = SeqNet::<f64, AnyCell>::new(cell.clone(), outputs).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    cell.init(&mut net.params, &mut rng);
    net.init_readout(&mut rng, 3.0);
    // Move entries off the kinks where a one-sided derivative is defined by convention.
    if let Some(t) = net.layout.get("log_W").cloned() {
        let n = t.shape[0];
        for i in 0..n {
            net.params[t.offset + i * n + i] = -0.05;
        }
    }
    if let AnyCell::Gamma(_) = &cell {
        // s ≠ 0 so the logistic part of γ matters.
        let t = net.layout.get("s").unwrap().clone();
        for v in &mut net.params[t.range()] {
            *v = rng.random_range(0.1..0.6);
        }
    }
    net
}

fn batch(t: usize, b: usize, n_in: usize, outputs: usize, class: bool, seed: u64) -> Batch<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let trials: Vec<Vec<Vec<f64>>> = (0..b)
        .map(|_| {
            (0..t)
                .map(|_| (0..n_in).map(|_| rng.random_range(-1.0..1.5)).collect())
                .collect()
        })
        .collect();
    let targets = if class {
        Targets::Class((0..b).map(|_| rng.random_range(0..outputs)).collect())
    } else {
        Targets::Trajectory(
            (0..t * b * outputs)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect(),
        )
    };
    Batch::from_trials(&trials, targets).unwrap()
}

fn rel_err(net: &SeqNet<f64, AnyCell>, g: &[f64], fd: &[f64]) -> f64 {
    // Entries sitting exactly on a relu kink (Dale W_raw = 0) have the conventional derivative 0.
    // The fixed initial states of ORGaNICs are buffers: no gradient is propagated into them.
    let init = |k: usize| {
        ["y0", "a0", "b00", "b10"]
            .iter()
            .any(|n| net.layout.get(n).is_some_and(|t| t.range().contains(&k)))
    };
    let skip: Vec<bool> = (0..g.len())
        .map(|k| {
            (matches!(&net.cell, AnyCell::Rate(c) if c.dale.is_some())
                && net.layout.get("W_raw").unwrap().range().contains(&k)
                && net.params[k] == 0.0)
                || init(k)
        })
        .collect();
    let (mut num, mut den) = (0.0, 0.0);
    for k in 0..g.len() {
        if skip[k] {
            assert_eq!(g[k], 0.0);
            continue;
        }
        if std::env::var("SHOW").is_ok() && (g[k] - fd[k]).abs() > 1e-6 * fd[k].abs().max(1e-3) {
            let t = net
                .layout
                .tensors
                .iter()
                .find(|t| t.range().contains(&k))
                .unwrap();
            eprintln!("{} [{}]: {} vs fd {}", t.name, k - t.offset, g[k], fd[k]);
        }
        num += (g[k] - fd[k]).powi(2);
        den += fd[k].powi(2);
    }
    (num / den).sqrt()
}

#[test]
fn every_cell_gradient_matches_finite_differences() {
    for (name, cell) in cells() {
        let n_in = Cell::<f64>::n_in(&cell);
        for (class, b) in [(true, 3), (false, 3), (true, 19)] {
            let outputs = if class { 3 } else { 2 };
            let mut net = net(cell.clone(), outputs, 11);
            let mut bt = batch(6, b, n_in, outputs, class, 3);
            if matches!(cell, AnyCell::Rate(_)) {
                // Recurrent noise does not change the gradient formula; check it is carried.
                net.noise = 0.1;
                bt.noise_seeds = Some((0..b as u64).collect());
            }
            let pass = net.pass(&bt, true).unwrap();
            let fd = net.fd_grad(&bt, 1e-6).unwrap();
            // Buffers (fixed tensors) get a gradient too, but the optimiser skips them.
            let err = rel_err(&net, &pass.grad, &fd);
            assert!(
                err < 1e-6,
                "{name} class={class} B={b}: relative gradient error {err:.3e}"
            );
            assert!(pass.grad.iter().any(|v| *v != 0.0));
        }
    }
}

#[test]
fn a_wrong_backward_is_caught() {
    // Perturbing one analytic gradient entry by 1 % of the norm fails the same check: the test can fail.
    let (_, cell) = cells().remove(3);
    let net = net(cell, 3, 2);
    let bt = batch(5, 4, 2, 3, true, 9);
    let mut g = net.pass(&bt, true).unwrap().grad;
    let fd = net.fd_grad(&bt, 1e-6).unwrap();
    let norm = fd.iter().map(|v| v * v).sum::<f64>().sqrt();
    g[7] += 0.01 * norm;
    assert!(rel_err(&net, &g, &fd) > 5e-3);
}

#[test]
fn f32_agrees_with_f64() {
    for (name, cell) in cells() {
        let n_in = Cell::<f64>::n_in(&cell);
        let n64 = net(cell.clone(), 3, 4);
        let n32: SeqNet<f32, AnyCell> = n64.cast();
        let b64 = batch(8, 5, n_in, 3, true, 1);
        let b32 = Batch::<f32> {
            t: b64.t,
            b: b64.b,
            n_in: b64.n_in,
            u: b64.u.iter().map(|&v| v as f32).collect(),
            targets: b64.targets.clone(),
            noise_seeds: None,
            mask: None,
        };
        let p64 = n64.pass(&b64, true).unwrap();
        let p32 = n32.pass(&b32, true).unwrap();
        assert!(
            (p64.loss - p32.loss).abs() < 1e-5 * p64.loss.abs().max(1.0),
            "{name}"
        );
        let num: f64 = p64
            .grad
            .iter()
            .zip(&p32.grad)
            .map(|(a, b)| (a - *b as f64).powi(2))
            .sum();
        let den: f64 = p64.grad.iter().map(|a| a * a).sum();
        assert!((num / den).sqrt() < 1e-4, "{name}: {}", (num / den).sqrt());
    }
}

#[test]
fn same_bits_whatever_the_thread_count() {
    let (_, cell) = cells().remove(0);
    let mut net = net(cell, 2, 3);
    net.noise = 0.1;
    let mut bt = batch(7, 40, 2, 2, false, 5);
    bt.noise_seeds = Some((100..140).collect());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| net.pass(&bt, true).unwrap());
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(|| net.pass(&bt, true).unwrap());
    assert_eq!(one, two);
}

#[test]
fn bundled_digits_and_permutations() {
    let tr = Digits::bundled(true).unwrap();
    let te = Digits::bundled(false).unwrap();
    assert_eq!((tr.len(), te.len(), tr.rows, tr.cols), (2000, 500, 28, 28));
    // The first MNIST training labels are 5 0 4 1 9 2 1 3 1 4.
    assert_eq!(&tr.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    let p = tr.pooled(4).unwrap();
    assert_eq!((p.rows, p.cols), (7, 7));
    // Pooling keeps the mean intensity (up to rounding).
    let m0: f64 = tr.images[..784].iter().map(|&v| v as f64).sum::<f64>() / 784.0;
    let m1: f64 = p.images[..49].iter().map(|&v| v as f64).sum::<f64>() / 49.0;
    assert!((m0 - m1).abs() < 0.5, "{m0} {m1}");
    let pi = seed_permutation().unwrap();
    assert_eq!(&pi[..8], &[745, 491, 157, 422, 329, 168, 133, 44]);
    let mut s = pi.clone();
    s.sort();
    assert_eq!(s, (0..784).collect::<Vec<_>>());
    let q = permutation(49, 3);
    assert_ne!(q, (0..49).collect::<Vec<_>>());
    let b = p.batch::<f64>(&[0, 1], Some(&q)).unwrap();
    assert_eq!((b.t, b.b, b.n_in), (49, 2, 1));
    assert_eq!(b.u[2 * 5 + 1], p.images[49 + q[5]] as f64 / 255.0);
    assert!(p.batch::<f64>(&[0], Some(&q[..48])).is_err());
}

/// The psMNIST protocol's pieces (Geadah et al. 2024): numpy's RandomState(400) reproduced —
/// its first permutation is the shipped π, its second the 50k/10k split (values from numpy);
/// torch's ReduceLROnPlateau; the robustness perturbations.
#[test]
fn psmnist_protocol_pieces() {
    use neurodyn::data::{validation_split, NumpyRandomState, Perturbation};
    use neurodyn::learn::Schedule;
    let mut rs = NumpyRandomState::new(400);
    assert_eq!(rs.permutation(784), seed_permutation().unwrap());
    let r = rs.permutation(60_000);
    assert_eq!(&r[..6], &[9076, 28647, 23674, 17838, 51316, 14085]);
    assert_eq!(&r[50_000..50_004], &[40850, 5585, 2368, 34033]);
    assert_eq!(r.iter().sum::<usize>(), 1_799_970_000);
    let (train, val) = validation_split(60_000, 10_000, 0);
    assert_eq!((train.len(), val.len()), (50_000, 10_000));
    assert!(train[..6] == r[..6] && val[..4] == r[50_000..50_004]);
    // Another size: a seeded split, disjoint and complete.
    let (a, b) = validation_split(2000, 300, 1);
    let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
    all.sort();
    assert!(b.len() == 300 && all == (0..2000).collect::<Vec<_>>());

    // ReduceLROnPlateau (factor 0.1, threshold 1e-4 rel): patience 2 — the third epoch without
    // improvement cuts the rate, the count restarts, an improvement smaller than 1e-4 relative is
    // none.
    let l = [1.0, 0.9, 0.9, 0.9, 0.9, 0.89999, 0.9, 0.9];
    let plateau = Schedule::Plateau {
        patience: 2,
        factor: 0.1,
    };
    let lrs: Vec<f64> = (0..=l.len())
        .map(|k| plateau.lr(0.01, k, &l[..k]))
        .collect();
    let want = [0.01, 0.01, 0.01, 0.01, 0.01, 1e-3, 1e-3, 1e-3, 1e-4];
    assert!(
        lrs.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15),
        "{lrs:?}"
    );
    assert_eq!(Schedule::Constant.lr(0.01, 8, &l), 0.01);

    // Perturbations on the 784-step clock, also for pooled (49-step) sequences.
    let tr = Digits::bundled(true).unwrap().pooled(4).unwrap();
    let clean = tr.batch::<f64>(&[0, 1], None).unwrap();
    let mut sin = clean.clone();
    Perturbation::Sin {
        amplitude: 0.5,
        frequency: 1.0,
        phase: 0.0,
    }
    .apply(&mut sin);
    let mut step = clean.clone();
    Perturbation::Step.apply(&mut step);
    for t in 0..49 {
        let clock = t as f64 * 16.0;
        let m = 1.0 + 0.5 * (2.0 * std::f64::consts::PI * clock / 784.0).sin();
        for b in 0..2 {
            let k = t * 2 + b;
            assert!((sin.u[k] - clean.u[k] * m).abs() < 1e-15);
            let xi = if clock > 200.0 && clock < 400.0 {
                1.0
            } else {
                0.0
            };
            assert_eq!(step.u[k], clean.u[k] + xi);
        }
    }
    assert!(
        clean.u.iter().any(|&v| v == 0.0)
            && sin
                .u
                .iter()
                .zip(&clean.u)
                .all(|(s, c)| (*c == 0.0) == (*s == 0.0))
    );
}

/// `train` with the protocol's flags on the bundled slice: a GRU learns pooled psMNIST, the
/// metrics carry the learning rate and the test accuracy beside the validation one,
/// robustness.csv has the three conditions, and bad combinations name their field.
#[test]
fn psmnist_protocol_run() {
    use neurodyn::train::cell::CellKind;
    use neurodyn::train::run::{RecurrentRun, RunConfig};
    use neurodyn::train::Task;
    let dir = tempfile::tempdir().unwrap();
    let mut c = RunConfig::new(Task::PermDigits, CellKind::Gru);
    c.hidden = 32;
    c.pool = 4;
    c.epochs = 6;
    c.steps = 50;
    c.batch = 32;
    c.val = 300;
    c.plateau = 1;
    c.robustness = true;
    let mut run = RecurrentRun::open(c.clone(), dir.path()).unwrap();
    let rows = run.train(&mut |_| {}).unwrap();
    let last = rows.last().unwrap();
    assert!(last.accuracy > 0.3 && last.test_accuracy > 0.3, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.lr == 0.01 || r.lr == 1e-3 || r.lr == 1e-4));
    let m = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert!(m.lines().next().unwrap().ends_with(",lr,test_accuracy"));
    let rb = std::fs::read_to_string(dir.path().join("robustness.csv")).unwrap();
    let names: Vec<&str> = rb
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(names, ["clean", "sin", "step"]);
    let mut bad = RunConfig::new(Task::GoNoGo, CellKind::Gru);
    bad.val = 10;
    match RecurrentRun::open(bad, &dir.path().join("x")) {
        Err(neurodyn::Error::Invalid { field, .. }) => assert_eq!(field, "val"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let mut bad = c;
    bad.val = 5000;
    match RecurrentRun::open(bad, &dir.path().join("y")) {
        Err(neurodyn::Error::Invalid { field, .. }) => assert_eq!(field, "val"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn corrupt_idx_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x");
    std::fs::write(&f, [0u8, 0, 8, 1, 0, 0, 0, 5, 1, 2]).unwrap();
    let e = neurodyn::data::read_idx(&f).unwrap_err().to_string();
    assert!(e.contains("data bytes"), "{e}");
    std::fs::write(&f, b"hello world").unwrap();
    assert!(neurodyn::data::read_idx(&f).is_err());
}

#[test]
fn kim_et_al_root_sum_loss_and_random_start_gradients_match_finite_differences() {
    // The paper protocol: L = √(Σ_t (o_t − z_t)²) per trial, x(0) ~ N(0, 1)/100 from the trial's
    // noise stream; the backward pass through both against central differences.
    let (_, cell) = cells()
        .into_iter()
        .find(|(_, c)| matches!(c, AnyCell::Rate(_)))
        .unwrap();
    let n_in = Cell::<f64>::n_in(&cell);
    let mut net = net(cell, 2, 5);
    net.noise = 0.1;
    net.x0_noise = 0.01;
    net.traj_loss = neurodyn::train::net::TrajLoss::RootSum;
    let mut bt = batch(7, 4, n_in, 2, false, 2);
    bt.noise_seeds = Some(vec![3, 4, 5, 6]);
    let pass = net.pass(&bt, true).unwrap();
    let fd = net.fd_grad(&bt, 1e-6).unwrap();
    let err = rel_err(&net, &pass.grad, &fd);
    assert!(err < 1e-6, "relative gradient error {err:.3e}");
    // The loss is the mean over trials of √Σ(o − z)², from the returned outputs.
    let neurodyn::data::Targets::Trajectory(z) = &bt.targets else {
        unreachable!()
    };
    let l: f64 = (0..4)
        .map(|j| {
            (0..7)
                .flat_map(|t| (0..2).map(move |k| (t, k)))
                .map(|(t, k)| (pass.outputs[(t * 4 + j) * 2 + k] - z[(t * 4 + j) * 2 + k]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .sum::<f64>()
        / 4.0;
    assert!((pass.loss - l).abs() < 1e-12 * l, "{} vs {l}", pass.loss);
    // The random start is drawn: the same trials without it give other outputs.
    let mut net0 = net.clone();
    net0.x0_noise = 0.0;
    assert_ne!(net0.pass(&bt, false).unwrap().outputs, pass.outputs);
}

/// Kim, Li & Sejnowski's SST motif: the first som_N inhibitory units receive no inhibition, all
/// other entries are relu(W̃)·D; the mask survives a checkpoint round trip and refuses what it
/// cannot be.
#[test]
fn sst_mask_zeroes_inhibition_onto_sst_units_and_round_trips() {
    let signs = vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0];
    let cell = RateCell::new(
        7,
        2,
        RatePhi::Sigmoid,
        Some(signs.clone()),
        (2.0, 8.0),
        true,
        true,
    )
    .unwrap()
    .with_som(2)
    .unwrap();
    let mut net = SeqNet::<f64, AnyCell>::new(AnyCell::Rate(cell.clone()), 1).unwrap();
    let w0 = net.layout.get("W_raw").unwrap().offset;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for k in 0..49 {
        net.params[w0 + k] = rng.random_range(0.1..1.0);
    }
    let (w, _) = cell.effective(&net.params);
    let mut zeros = 0;
    for i in 0..7 {
        for j in 0..7 {
            let sst_row = i == 1 || i == 3;
            let expect = if sst_row && signs[j] < 0.0 {
                zeros += 1;
                0.0
            } else {
                signs[j] * net.params[w0 + i * 7 + j]
            };
            assert_eq!(w[i * 7 + j], expect, "W[{i}, {j}]");
        }
    }
    assert_eq!(zeros, 6);
    // Unit 5, the third inhibitory unit, still receives inhibition.
    assert!(w[5 * 7 + 1] < 0.0);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sst.safetensors");
    neurodyn::train::checkpoint::save(&net, &neurodyn::learn::Optimizer::adam(0.01), &path)
        .unwrap();
    let (back, _) = neurodyn::train::checkpoint::load::<f64>(&path).unwrap();
    let AnyCell::Rate(c) = &back.cell else {
        panic!("not a rate cell")
    };
    assert_eq!(c.som, 2);
    assert_eq!(c.effective(&back.params).0, w);

    let e = RateCell::new(7, 2, RatePhi::Sigmoid, Some(signs), (2.0, 8.0), true, true)
        .unwrap()
        .with_som(4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("som") && e.contains("only 3 inhibitory"), "{e}");
    let e = RateCell::new(7, 2, RatePhi::Tanh, None, (2.0, 8.0), true, false)
        .unwrap()
        .with_som(1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Dale"), "{e}");
}

/// The f32 exponential of the recurrent cells' logistic (`exp_neg_f32`, a vectorisable
/// polynomial) against f64's exp on [−87.3, 0]: at most 2 ulp (relative 2.4e-7) on a dense grid;
/// `sig_fast` in f32 within 3e-7 of σ in f64 (absolute) for |x| ≤ 100 and in f64 the same bits
/// as `sig`; e⁰ = 1 and σ(0) = ½ exactly;
/// NaN propagates; beyond −87.3 a tiny positive number, never 0 or ∞.
#[test]
fn the_f32_exponential_of_the_logistic_is_within_two_ulp() {
    use neurodyn::tensor::real::{exp_neg_f32, sig, sig_fast};
    let mut worst = 0.0f64;
    for k in 0..=200_000 {
        let x = -87.3f32 * k as f32 / 200_000.0;
        let want = (x as f64).exp();
        let got = exp_neg_f32(x) as f64;
        worst = worst.max(((got - want) / want).abs());
    }
    assert!(
        worst < 2.0 * f32::EPSILON as f64,
        "relative error {worst:e}"
    );
    assert!(worst > 0.0, "a polynomial is not exact everywhere: {worst}");
    assert_eq!(exp_neg_f32(0.0), 1.0);
    assert_eq!(sig_fast(0.0f32), 0.5);
    assert!(exp_neg_f32(f32::NAN).is_nan() && sig_fast(f32::NAN).is_nan());
    for x in [-88.0f32, -1e3, f32::NEG_INFINITY] {
        let e = exp_neg_f32(x);
        assert!(e > 0.0 && e < 1.3e-38, "{x}: {e}");
    }
    let mut worst_sig = 0.0f64;
    for k in -100_000..=100_000 {
        let x = k as f64 / 1000.0;
        let d = (sig_fast(x as f32) as f64 - sig(x)).abs();
        worst_sig = worst_sig.max(d);
        assert_eq!(sig_fast(x).to_bits(), sig(x).to_bits(), "f64 at {x}");
    }
    assert!(worst_sig < 3e-7, "σ: {worst_sig:e}");
}

/// The f32 tanh of the ANRU controller (`tanh_f32`, branch-free) against f64's tanh: at most
/// 3 ulp relative on a dense grid of [−12, 12] (both forms and the switch at |x| = 0.625), odd,
/// ±1 in the tails, NaN propagates; f64's `tanh_fast` is the standard library's to the bit.
#[test]
fn the_f32_tanh_of_the_controller_is_within_three_ulp() {
    use neurodyn::tensor::real::tanh_f32;
    use neurodyn::tensor::Real;
    let mut worst = 0.0f64;
    for k in -240_000..=240_000 {
        let x = k as f32 * 5e-5;
        if x == 0.0 {
            continue;
        }
        let want = (x as f64).tanh();
        let got = tanh_f32(x) as f64;
        worst = worst.max(((got - want) / want).abs());
        assert_eq!(tanh_f32(-x), -tanh_f32(x), "odd at {x}");
    }
    assert!(
        worst < 3.0 * f32::EPSILON as f64,
        "relative error {worst:e}"
    );
    assert!(worst > 0.0);
    assert_eq!(tanh_f32(0.0), 0.0);
    assert_eq!(tanh_f32(20.0), 1.0);
    assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
    assert!(tanh_f32(f32::NAN).is_nan());
    for x in [-3.0f64, -0.1, 0.4, 0.7, 2.5] {
        assert_eq!(x.tanh_fast().to_bits(), x.tanh().to_bits());
    }
}

/// `--kappa-max` reaches the built ORGaNICs cell (scaled by pool² like the default) and its
/// checkpoint; the seed's initialisation: W = e^{log W} ~ U(0, 1) off the diagonal (mean ½,
/// variance 1/12) and 1 on it, b0(0) = 1, y0 of unit norm, a0 and b1(0) in (0, 1).
#[test]
fn organics_rates_and_initialisation_follow_the_seed() {
    use neurodyn::train::cell::CellKind;
    use neurodyn::train::run::RunConfig;
    use neurodyn::train::Task;
    let mut c = RunConfig::new(Task::SeqDigits, CellKind::Organics);
    c.hidden = 64;
    let kappa = |c: &RunConfig| match c.spec().build::<f64>(c.task, c.seed).unwrap().cell {
        AnyCell::Organics(o) => o.kappa_max,
        _ => unreachable!(),
    };
    assert_eq!(kappa(&c), (0.01, 0.01, 0.1));
    c.kappa_max = Some([0.02, 0.005, 0.1]);
    assert_eq!(kappa(&c), (0.02, 0.005, 0.1));
    c.pool = 2;
    let k = kappa(&c);
    assert!((k.0 - 0.08).abs() < 1e-15 && (k.1 - 0.02).abs() < 1e-15 && (k.2 - 0.4).abs() < 1e-15);
    c.pool = 1;
    let net = c.spec().build::<f64>(c.task, c.seed).unwrap();
    let (p, l, n) = (&net.params, &net.layout, 64);
    let lw = l.off("log_W");
    let off: Vec<f64> = (0..n * n)
        .filter(|k| k / n != k % n)
        .map(|k| p[lw + k].exp())
        .collect();
    assert!((0..n).all(|i| p[lw + i * n + i] == 0.0));
    assert!(off.iter().all(|w| *w > 0.0 && *w < 1.0));
    let mean = off.iter().sum::<f64>() / off.len() as f64;
    let var = off.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / off.len() as f64;
    // 4,032 draws: the standard error of the mean is 0.0045, of the variance ≈ 0.0012.
    assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    assert!((var - 1.0 / 12.0).abs() < 0.006, "variance {var}");
    let block = |name: &str| &p[l.off(name)..l.off(name) + n];
    assert!(block("b00").iter().all(|v| *v == 1.0));
    let y0: f64 = block("y0").iter().map(|v| v * v).sum();
    assert!((y0 - 1.0).abs() < 1e-12);
    for name in ["a0", "b10"] {
        assert!(block(name).iter().all(|v| *v > 0.0 && *v < 1.0), "{name}");
    }
    // The rates travel with the checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("org.safetensors");
    let adam = neurodyn::learn::optim::Optimizer::adam(0.01);
    neurodyn::train::checkpoint::save(&net, &adam, &f).unwrap();
    let (back, _) = neurodyn::train::checkpoint::load::<f64>(&f).unwrap();
    match back.cell {
        AnyCell::Organics(o) => assert_eq!(o.kappa_max, (0.02, 0.005, 0.1)),
        _ => panic!("not an ORGaNICs checkpoint"),
    }
}
