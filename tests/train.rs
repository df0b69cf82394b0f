//! CPU reference trainer (issue 7, first part): BPTT gradients against finite differences, the
//! spiking.md X1 step, and Go/NoGo learning.

use neurodyn::train::{go_nogo_accuracy, go_nogo_trial, train_go_nogo, RateNet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn bptt_gradients_match_finite_differences() {
    let mut net = RateNet::init(8, 2, (4.0, 20.0), 3).unwrap();
    // Denser W̃ so that most entries are active, with some negative (relu-dead) ones.
    for i in 0..8 {
        for j in 0..8 {
            net.params.w_raw[(i, j)] = 0.4 * (((i * 8 + j) as f64) * 0.77).sin();
        }
    }
    let u: Vec<Vec<f64>> = (0..25)
        .map(|t| vec![(t as f64 * 0.3).sin(), if t < 10 { 1.0 } else { 0.0 }])
        .collect();
    let z: Vec<f64> = (0..25).map(|t| (t as f64 * 0.2).cos()).collect();
    for seed in [None, Some(7)] {
        let (loss, g) = net.loss_and_grad(&u, &z, seed);
        let f = |n: &RateNet| {
            let (o, _) = n.forward(&u, seed, false);
            o.iter()
                .zip(&z[1..])
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                / 24.0
        };
        assert!((f(&net) - loss).abs() < 1e-15);
        let h = 1e-6;
        let check = |name: &str, analytic: f64, perturb: &dyn Fn(&mut RateNet, f64)| {
            let (mut p, mut m) = (net.clone(), net.clone());
            perturb(&mut p, h);
            perturb(&mut m, -h);
            let fd = (f(&p) - f(&m)) / (2.0 * h);
            assert!(
                (fd - analytic).abs() <= 1e-6 * fd.abs().max(1e-3),
                "{name}: analytic {analytic:e} vs fd {fd:e}"
            );
        };
        for (i, j) in [(0, 1), (3, 5), (7, 7), (2, 6)] {
            if net.params.w_raw[(i, j)] > 1e-3 {
                check(&format!("W̃[{i},{j}]"), g.w_raw[(i, j)], &|n, d| {
                    n.params.w_raw[(i, j)] += d
                });
            }
        }
        for i in [0, 4, 7] {
            check(&format!("w_out[{i}]"), g.w_out[i], &|n, d| {
                n.params.w_out[i] += d
            });
            check(&format!("γ[{i}]"), g.gamma[i], &|n, d| {
                n.params.gamma[i] += d
            });
        }
        check("b_out", g.b_out, &|n, d| n.params.b_out += d);
        // relu-dead entries get no gradient (relu'(0) = 0 convention, spiking.md §B.7.7).
        let dead = (0..8)
            .flat_map(|i| (0..8).map(move |j| (i, j)))
            .find(|&(i, j)| net.params.w_raw[(i, j)] < 0.0)
            .unwrap();
        assert_eq!(g.w_raw[dead], 0.0);
    }
}

/// spiking.md §B.8 X1 through the trainer's forward pass (no noise).
#[test]
fn one_step_cross_check() {
    let mut net = RateNet::init(3, 1, (4.0, 20.0), 0).unwrap();
    net.params.w_raw = faer::Mat::from_fn(3, 3, |i, j| {
        [[0.0, 0.5, -0.2], [0.3, 0.0, 0.4], [0.6, -0.1, 0.0]][i][j]
    });
    net.dale = vec![1.0, 1.0, -1.0];
    net.w_in = faer::Mat::from_fn(3, 1, |i, _| [1.0, -0.5, 0.25][i]);
    net.params.gamma = vec![0.0, 1.0, -1.0];
    net.params.w_out = vec![0.2, -0.1, 0.05];
    net.params.b_out = 0.01;
    // The trainer starts from x0 = 0 without noise; start instead from X1's x0 by one step of
    // the library model elsewhere (tests/model.rs); here check o_1 from x0 = 0 against the formula.
    let (o, xs) = net.forward(&[vec![1.0], vec![1.0]], None, true);
    let alpha: Vec<f64> = net.alpha();
    let w = net.w();
    let x1: Vec<f64> = (0..3)
        .map(|i| alpha[i] * ((0..3).map(|j| w[(i, j)] * 0.5).sum::<f64>() + net.w_in[(i, 0)]))
        .collect();
    for i in 0..3 {
        assert!((xs[1][i] - x1[i]).abs() < 1e-15);
    }
    let o1: f64 = (0..3)
        .map(|i| net.params.w_out[i] * neurodyn::model::activation::sigmoid(x1[i]))
        .sum::<f64>()
        + 0.01;
    assert!((o[0] - o1).abs() < 1e-15);
    assert!((1.0 / alpha[1] - 15.6969372580801).abs() < 1e-12);
}

#[test]
fn go_nogo_is_learned() {
    let mut net = RateNet::init(40, 1, (4.0, 20.0), 1).unwrap();
    let before = go_nogo_accuracy(&net, 100, 99);
    let losses = train_go_nogo(&mut net, 800, 16, 0.01, 5);
    let after = go_nogo_accuracy(&net, 200, 99);
    eprintln!(
        "Go/NoGo accuracy {before:.2} → {after:.3}; loss {:.4} → {:.4}",
        losses[0],
        losses[losses.len() - 1]
    );
    assert!(losses[losses.len() - 1] < 0.2 * losses[0]);
    assert!(after >= 0.95, "accuracy {after}");
    // Same seed, same loss curve, bit for bit.
    let mut net2 = RateNet::init(40, 1, (4.0, 20.0), 1).unwrap();
    let l2 = train_go_nogo(&mut net2, 5, 16, 0.01, 5);
    assert_eq!(l2, losses[..5].to_vec());
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (_, z, go) = go_nogo_trial(&mut rng);
    assert_eq!(z[74], 0.0);
    assert_eq!(z[75], if go { 1.0 } else { 0.0 });
}

#[test]
fn xor_and_mante_trials_follow_the_spec() {
    use neurodyn::train::Task;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mut same, mut diff) = (0, 0);
    for _ in 0..200 {
        let (u, z, label) = Task::Xor.trial(&mut rng);
        assert_eq!((u.len(), u[0].len(), z.len()), (300, 2, 300));
        assert_eq!(label, u[60][0] * u[120][1]);
        assert_eq!(
            (u[49][0], u[100][0], u[109][1], u[160][1]),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!((z[169], z[170], z[269], z[270]), (0.0, label, label, 0.0));
        if label > 0.0 {
            same += 1
        } else {
            diff += 1
        }
    }
    assert!(same > 70 && diff > 70, "{same} / {diff}");
    let (u, z, label) = Task::Mante.trial(&mut rng);
    assert_eq!((u.len(), u[0].len()), (500, 4));
    let cue = if u[0][2] == 1.0 { 0 } else { 1 };
    assert_eq!(u[0][2] + u[0][3], 1.0);
    let mean: f64 = (50..250).map(|t| u[t][cue]).sum::<f64>() / 200.0;
    assert!(
        (mean - 0.5 * label).abs() < 0.25,
        "cued mean {mean} vs label {label}"
    );
    assert_eq!((u[49][0], u[250][1]), (0.0, 0.0));
    assert_eq!((z[249], z[250], z[499]), (0.0, label, label));
    // Criteria (spiking.md §B.3).
    let mut o = vec![0.0; 299];
    o[250] = 0.8;
    assert!(Task::Xor.correct(&o, 1.0) && !Task::Xor.correct(&o, -1.0));
    o[250] = -0.8;
    assert!(Task::Xor.correct(&o, -1.0));
    let mut o = vec![0.0; 499];
    o[250] = 0.8; // before the last 200 outputs: does not count
    assert!(!Task::Mante.correct(&o, 1.0));
    o[400] = 0.8;
    assert!(Task::Mante.correct(&o, 1.0));
    assert!("digits".parse::<Task>().is_err());
}
