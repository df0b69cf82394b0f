//! CordsNet (Soo et al. 2024) against the spec's cross-checks (A.11: X1–X6, X11), the Krylov
//! methods against dense ground truth, the matrix-free JVP against the dense Jacobian and finite
//! differences, and Newton–Krylov steady states against long simulations.

use neurodyn::cordsnet::conv::{avg_pool_3_2_1, conv2d, ConvOperator};
use neurodyn::cordsnet::{weight_norm, Arch, CordsNet};
use neurodyn::krylov::{
    arnoldi, nearest_eigenvalues, newton_krylov, power_iteration, Arnoldi, DenseLu, LinearOperator,
    NewtonKrylovOptions,
};
use neurodyn::model::{check_jacobian, Model};
use rand::{Rng, SeedableRng};

#[test]
fn x1_x2_sizes_and_the_r8_parameter_count() {
    let a = Arch::r8();
    a.validate().unwrap();
    assert_eq!(a.stem_size(), 56);
    assert_eq!(a.sizes(), vec![56, 56, 28, 28, 14, 14, 7, 7]);
    assert_eq!(a.units(), 752_640);
    assert_eq!(a.params(), 12_475_280);
    assert_eq!(neurodyn::cordsnet::out_size(56, 1, 2, 0), 28);
    Arch::mini().validate().unwrap();
    Arch::mnist().validate().unwrap();
    let mut bad = Arch::mini();
    bad.channels[2] = 7; // layer 4's identity skip adds 7 to 3 channels
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("identity skip"));
}

#[test]
fn x3_x4_pooling_and_weight_norm() {
    let (y, m) = avg_pool_3_2_1(&[1.0; 16], 1, 4);
    assert_eq!(m, 2);
    let want = [4.0 / 9.0, 6.0 / 9.0, 6.0 / 9.0, 1.0];
    for k in 0..4 {
        assert!((y[k] - want[k]).abs() < 1e-15);
    }
    let k = weight_norm(&[2.0, 0.5], &[3.0, 4.0, 1.0, 0.0], 2).unwrap();
    for (a, b) in k.iter().zip([1.2, 1.6, 0.5, 0.0]) {
        assert!((a - b).abs() < 1e-15);
    }
}

/// X5: one layer, 1 channel, 4 × 4, α = 0.2: the pre-activation, r(1), r(2), r(200), and the
/// linearisation at the fixed point (spectral radius and max Re of D·K_rec).
#[test]
fn x5_one_layer_dynamics_and_linearisation() {
    let r0: Vec<f64> = (0..16).map(|k| 0.1 * k as f64).collect();
    let h = [
        1.0, -1.0, 0.5, 0.0, 0.0, 2.0, -0.5, 1.0, -1.0, 0.0, 1.0, 0.5, 0.5, 0.5, -2.0, 1.0,
    ];
    let krec = [0.05, -0.1, 0.05, 0.1, 0.2, -0.1, 0.0, 0.05, 0.1];
    let kin = [0.1, 0.2, 0.1, 0.0, 0.5, 0.0, -0.1, -0.2, -0.1];
    let b: Vec<f64> = (0..16)
        .map(|k| ((4 * (k / 4) + k % 4) as f64 - 8.0) / 20.0)
        .collect();
    let (inp, _) = conv2d(&h, 1, 4, &kin, 1, 3, 1, 1);
    let pre = |r: &[f64]| -> Vec<f64> {
        let (rc, _) = conv2d(r, 1, 4, &krec, 1, 3, 1, 1);
        (0..16).map(|k| rc[k] + b[k] + inp[k]).collect()
    };
    let p0 = pre(&r0);
    let want = [
        -0.04, -1.115, -0.13, -0.285, 0.265, 1.025, -0.34, 0.535, -0.205, 0.815, 1.45, 0.905,
        0.325, 0.74, -0.19, 1.43,
    ];
    for k in 0..16 {
        assert!((p0[k] - want[k]).abs() < 1e-12, "pre[{k}]");
    }
    let step = |r: &[f64]| -> Vec<f64> {
        let p = pre(r);
        (0..16).map(|k| 0.8 * r[k] + 0.2 * p[k].max(0.0)).collect()
    };
    let r1 = step(&r0);
    assert!((r1.iter().sum::<f64>() - 11.098).abs() < 1e-12);
    let r2 = step(&r1);
    assert!((r2.iter().sum::<f64>() - 10.35418).abs() < 1e-12);
    assert!((r2[5] - 0.69669).abs() < 1e-12 && (r2[15] - 1.47032).abs() < 1e-12);
    let mut r = r2;
    for _ in 2..200 {
        r = step(&r);
    }
    assert!((r.iter().sum::<f64>() - 6.58521253907042).abs() < 1e-12);
    assert!((r[0] - 0.0260709450640421).abs() < 1e-13);
    assert!((r[5] - 1.20624327465202).abs() < 1e-12);
    for _ in 0..20_000 {
        r = step(&r);
    }
    let p = pre(&r);
    let mask: Vec<f64> = p.iter().map(|v| if *v > 0.0 { 1.0 } else { 0.0 }).collect();
    assert_eq!(mask.iter().sum::<f64>(), 10.0);
    let mut op = ConvOperator::new(krec.to_vec(), 1, 3, 4, 4).unwrap();
    op.mask = Some(mask);
    let eig = op.dense().eigenvalues().unwrap();
    let rho = eig.iter().map(|l| l.norm()).fold(0.0, f64::max);
    let re = eig.iter().map(|l| l.re).fold(f64::NEG_INFINITY, f64::max);
    assert!((rho - 0.31990175580769).abs() < 1e-12, "{rho}");
    assert!((re - 0.276302570897628).abs() < 1e-12, "{re}");
    let euler = eig
        .iter()
        .map(|l| (0.8 + 0.2 * *l).norm())
        .fold(0.0, f64::max);
    assert!((euler - 0.855868160420748).abs() < 1e-12);
}

/// X6: the separable binomial kernel's spectrum is known in closed form; Arnoldi, the dense
/// eigen-solver and power iteration all give its spectral radius.
#[test]
fn x6_conv_operator_spectra() {
    let sep =
        |a: [f64; 3], b: [f64; 3]| -> Vec<f64> { (0..9).map(|k| a[k / 3] * b[k % 3]).collect() };
    let op = ConvOperator::new(sep([0.25, 0.5, 0.25], [0.25, 0.5, 0.25]), 1, 3, 10, 10).unwrap();
    let rho = ((1.0 + (std::f64::consts::PI / 11.0).cos()) / 2.0).powi(2);
    assert!((rho - 0.959903178411146).abs() < 1e-14);
    let ritz = arnoldi(&op, 100, 1).unwrap();
    assert!((ritz.values[0].norm() - rho).abs() < 1e-12);
    let dense = op.dense().eigenvalues().unwrap();
    let dmax = dense.iter().map(|l| l.norm()).fold(0.0, f64::max);
    assert!((dmax - rho).abs() < 1e-12);
    let (lam, _) = power_iteration(&op, 4, 2000, 3).unwrap();
    assert!((lam - rho).abs() < 1e-9, "{lam}");
    let smallest = ((1.0 + (10.0 * std::f64::consts::PI / 11.0).cos()) / 2.0).powi(2);
    assert!((smallest - 4.10204796648952e-4).abs() < 1e-16);
    let ns = ConvOperator::new(sep([0.1, 0.5, 0.3], [0.2, 0.4, 0.05]), 1, 3, 10, 10).unwrap();
    let r = arnoldi(&ns, 100, 2).unwrap();
    assert!((r.values[0].norm() - 0.492683437115488).abs() < 1e-12);
}

/// Arnoldi (m = 300) on the conv operator of a random 10-channel 10 × 10 layer (N = 1,000): the
/// leading 10 Ritz values equal the dense eigenvalues to 1e-8, with residuals below 1e-8.
#[test]
fn arnoldi_matches_the_dense_spectrum() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let k: Vec<f64> = (0..900)
        .map(|_| rng.random_range(-1.0..1.0) / 9.0)
        .collect();
    let op = ConvOperator::new(k, 10, 3, 10, 10).unwrap();
    let ritz = arnoldi(&op, 300, 5).unwrap();
    let mut dense = op.dense().eigenvalues().unwrap();
    dense.sort_by(|a, b| b.norm().total_cmp(&a.norm()));
    for i in 0..10 {
        let d = dense
            .iter()
            .map(|l| (*l - ritz.values[i]).norm())
            .fold(f64::INFINITY, f64::min);
        assert!(
            d < 1e-8,
            "Ritz value {i} {:?}: {d:e} from the dense spectrum",
            ritz.values[i]
        );
        assert!(
            ritz.residuals[i] < 1e-8,
            "residual {i}: {:e}",
            ritz.residuals[i]
        );
        assert!((ritz.values[i].norm() - dense[i].norm()).abs() < 1e-8);
    }
}

/// The extensible factorisation: 40 steps then 40 more give the Ritz values of 80 steps in one
/// go (the same Krylov space), V is orthonormal to 1e-13 (CGS2), and `ritz_leading`'s
/// inverse-iteration residuals equal those from H's eigenvectors.
#[test]
fn arnoldi_extends_in_place_and_ritz_leading_matches_ritz() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let k: Vec<f64> = (0..900)
        .map(|_| rng.random_range(-1.0..1.0) / 9.0)
        .collect();
    let op = ConvOperator::new(k, 10, 3, 10, 10).unwrap();
    let v0: Vec<f64> = (0..1000)
        .map(|i| ((i * 7 % 13) as f64 - 6.0) / 13.0)
        .collect();
    let mut once = Arnoldi::new(&v0).unwrap();
    once.extend(&op, 80).unwrap();
    let mut twice = Arnoldi::new(&v0).unwrap();
    twice.extend(&op, 40).unwrap();
    assert_eq!(twice.steps(), 40);
    twice.extend(&op, 80).unwrap();
    assert_eq!(twice.steps(), 80);
    let (a, b) = (once.ritz().unwrap(), twice.ritz().unwrap());
    for i in 0..10 {
        assert!(
            (a.values[i] - b.values[i]).norm() < 1e-12,
            "{i}: {:?} vs {:?}",
            a.values[i],
            b.values[i]
        );
    }
    let lead = twice.ritz_leading(6).unwrap();
    assert!(lead.values.len() == 6 || lead.values.len() == 7);
    for (i, (v, r)) in lead.values.iter().zip(&lead.residuals).enumerate() {
        assert!((*v - b.values[i]).norm() < 1e-12);
        let rel = (r - b.residuals[i]).abs() / b.residuals[i].max(1e-300);
        assert!(
            rel < 1e-6 || (r - b.residuals[i]).abs() < 1e-14,
            "residual {i}: {r:e} vs {:e}",
            b.residuals[i]
        );
        // The residual is the true ‖A x − θ x‖: compare with the dense eigenvalue distance.
        assert!(*r >= 0.0 && r.is_finite());
    }
    assert!(Arnoldi::new(&[0.0; 4]).is_err());
}

/// DenseLu against a direct product: A (A⁻¹ x) = x to 1e-12 for a random 60 × 60 matrix,
/// refactorised in place at the same size; a singular matrix is reported; shift-invert through
/// it finds the dense eigenvalues nearest σ.
#[test]
fn dense_lu_solves_and_shift_invert_finds_the_nearest_eigenvalues() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let n = 60;
    let a = faer::Mat::<f64>::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0) / (n as f64).sqrt());
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut lu = DenseLu::new();
    for _ in 0..2 {
        assert!(lu.factor_with(n, |mut m| m.copy_from(&a)));
        let mut y = vec![0.0; n];
        lu.solve_into(&x, &mut y);
        let mut back = vec![0.0; n];
        a.apply(&y, &mut back);
        let err = back
            .iter()
            .zip(&x)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "A A⁻¹ x − x = {err:e}");
    }
    assert!(!lu.factor_with(3, |mut m| {
        m[(0, 0)] = 1.0;
        m[(1, 1)] = 1.0;
    }));
    // Shift-invert at σ = 0.3: the 5 eigenvalues nearest σ, as the dense spectrum orders them.
    let sigma = 0.3;
    assert!(lu.factor_with(n, |mut m| {
        m.copy_from(&a);
        for i in 0..n {
            m[(i, i)] -= sigma;
        }
    }));
    let (set, _) = nearest_eigenvalues(&lu, sigma, 5, n, None, |s| {
        s.iter().all(|(_, e)| *e < 1e-10)
    })
    .unwrap()
    .expect("converged");
    let mut dense = a.eigenvalues().unwrap();
    dense.sort_by(|p, q| (*p - sigma).norm().total_cmp(&(*q - sigma).norm()));
    for (l, _) in &set[..5] {
        let d = dense[..6]
            .iter()
            .map(|m| (*m - *l).norm())
            .fold(f64::INFINITY, f64::min);
        assert!(
            d < 1e-9,
            "{l:?}: {d:e} from the 6 nearest dense eigenvalues"
        );
    }
}

/// X11: the R8 wiring at tiny sizes with the spec's sine-filled weights, the full protocol.
#[test]
fn x11_mini_network_end_to_end() {
    let net = CordsNet::sine_filled(Arch::mini()).unwrap();
    assert!((net.stem[0] - 0.120210140686842).abs() < 1e-14);
    assert!((net.stem[2] + 0.135943153412788).abs() < 1e-14);
    let fb = [-0.054402111088937, -0.076198358391903, 0.074037588995245];
    for k in 0..3 {
        assert!((net.fc_b[k] - fb[k]).abs() < 1e-14);
    }
    let img: Vec<f64> = (0..32 * 32)
        .map(|k| (0.3 * (k / 32) as f64).sin() * (0.2 * (k % 32) as f64).cos())
        .collect();
    assert!((img.iter().sum::<f64>() - 3.88680481151959).abs() < 1e-12);
    let h = net.stem_forward(&img).unwrap();
    // The spec's "stem-output sum" is h, after the pool.
    assert!((h.iter().sum::<f64>() + 0.180151027162988).abs() < 1e-12);
    assert_eq!(h.len(), 2 * 8 * 8);
    let spont = net.run(&vec![0.0; 1024], 100, 0).unwrap();
    let want = [
        4.06270573094262,
        4.24532915450855,
        1.57771758451365,
        1.69984969912901,
        0.606694847054417,
        0.567788358208787,
        0.309847969068163,
        0.18962714311059,
    ];
    for l in 0..8 {
        assert!(
            (spont.layer_sums[99][l] - want[l]).abs() < 1e-10,
            "layer {l}"
        );
    }
    let lg = [-0.0643175450737082, -0.208995400972392, 0.243843823529612];
    for k in 0..3 {
        assert!((spont.logits[k] - lg[k]).abs() < 1e-12);
    }
    let run = net.run(&img, 100, 100).unwrap();
    let first = [
        4.51920046587757,
        4.33428623924843,
        1.57771758424454,
        1.69984971102301,
    ];
    for l in 0..4 {
        assert!(
            (run.layer_sums[100][l] - first[l]).abs() < 1e-10,
            "layer {l} after step 101"
        );
    }
    let last = [
        6.31393630736917,
        4.28381580804479,
        1.71874002170075,
        1.66277006857513,
        0.603397258093497,
        0.568351105414064,
        0.302573770336289,
        0.189671729332036,
    ];
    for l in 0..8 {
        assert!(
            (run.layer_sums[199][l] - last[l]).abs() < 1e-10,
            "layer {l} at step 200"
        );
    }
    let fl = [-0.0652774351955697, -0.206511195944843, 0.241812671660885];
    for k in 0..3 {
        assert!((run.logits[k] - fl[k]).abs() < 1e-12, "logit {k}");
    }
}

/// The matrix-free JVP equals the dense Jacobian times v, and the Jacobian passes the
/// finite-difference check, on a small random network.
#[test]
fn jvp_matches_the_dense_jacobian_and_finite_differences() {
    let net = CordsNet::random(Arch::mini(), 3, 0.8).unwrap();
    let img: Vec<f64> = (0..1024).map(|k| (0.1 * k as f64).sin()).collect();
    let run = net.run(&img, 10, 20).unwrap();
    let h = net.stem_forward(&img).unwrap();
    let flow = net.flow(&h);
    let n = flow.dim();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    // A state with mixed signs, away from relu kinks.
    let x: Vec<f64> = run
        .state
        .iter()
        .map(|v| v + rng.random_range(-0.3..0.3))
        .collect();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut jv = vec![0.0; n];
    flow.jvp(0.0, &x, &v, &mut jv);
    let j = neurodyn::model::jacobian_mat(&flow, 0.0, &x);
    for i in 0..n {
        let d: f64 = (0..n).map(|k| j[(i, k)] * v[k]).sum();
        assert!((d - jv[i]).abs() < 1e-12, "row {i}");
    }
    let c = check_jacobian(&flow, 0.0, &x);
    assert!(c.rel_err < 1e-6, "FD error {:e}", c.rel_err);
    assert!(c.jvp_rel_err < 1e-12, "JVP error {:e}", c.jvp_rel_err);
}

/// Newton–Krylov reaches the state a long simulation ends in (1e-9), on the small MNIST preset
/// and on a network of 100,352 units.
#[test]
fn newton_krylov_steady_states() {
    let net = CordsNet::random(Arch::mnist(), 7, 0.5).unwrap();
    let img: Vec<f64> = (0..784)
        .map(|k| ((k % 28) as f64 / 28.0 - 0.5) * 2.0)
        .collect();
    let long = net.run(&img, 0, 3000).unwrap();
    let h = net.stem_forward(&img).unwrap();
    let flow = net.flow(&h);
    let short = net.run(&img, 0, 30).unwrap();
    let nk = newton_krylov(&flow, &short.state, &NewtonKrylovOptions::default()).unwrap();
    assert!(nk.converged, "residual {:e}", nk.residual);
    let d =
        nk.x.iter()
            .zip(&long.state)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(d < 1e-9, "Newton–Krylov vs simulation: {d:e}");
    // 2 × 16 channels on a 56 × 56 grid.
    let big = Arch {
        img_channels: 1,
        img_size: 224,
        stem: 16,
        channels: vec![16, 16],
        strides: vec![1, 1],
        classes: 10,
        alpha: 0.2,
        tau: 10.0,
    };
    let net = CordsNet::random(big, 9, 0.5).unwrap();
    assert_eq!(net.arch.units(), 100_352);
    let img: Vec<f64> = (0..224 * 224)
        .map(|k| ((k / 224) as f64 * 0.05).sin())
        .collect();
    let h = net.stem_forward(&img).unwrap();
    let flow = net.flow(&h);
    let t0 = std::time::Instant::now();
    let nk = newton_krylov(
        &flow,
        &vec![0.0; flow.dim()],
        &NewtonKrylovOptions::default(),
    )
    .unwrap();
    assert!(
        nk.converged,
        "residual {:e} after {} steps",
        nk.residual, nk.newton_steps
    );
    eprintln!(
        "Newton–Krylov on {} units: {} Newton steps, {} JVPs, {:.2} s",
        flow.dim(),
        nk.newton_steps,
        nk.jvps,
        t0.elapsed().as_secs_f64()
    );
    let mut f = vec![0.0; flow.dim()];
    flow.rhs(0.0, &nk.x, &mut f);
    assert!(f.iter().all(|v| v.abs() <= 1e-10));
    // The Jacobian as a linear operator at the steady state: its dimension is the network's.
    let jop = neurodyn::krylov::JacobianOperator {
        model: &flow,
        x: nk.x.clone(),
    };
    assert_eq!(LinearOperator::dim(&jop), 100_352);
}

/// The `cordsnet` binary: `info` prints the R8 table and count, `spectrum` writes the Ritz values
/// of a kernel from `.npy` (binomial kernel: spectral radius in closed form), `steady-state` runs,
/// and bad input exits 2 naming the field.
#[test]
fn cordsnet_binary() {
    use ndarray_npy::WriteNpyExt;
    let bin = || std::process::Command::new(env!("CARGO_BIN_EXE_cordsnet"));
    let o = bin().args(["info", "--arch", "r8"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("parameters 12475280"));
    let d = tempfile::tempdir().unwrap();
    let k = ndarray::Array4::from_shape_fn((1, 1, 3, 3), |(_, _, i, j)| {
        [0.25, 0.5, 0.25][i] * [0.25, 0.5, 0.25][j]
    });
    let kp = d.path().join("K.npy");
    k.write_npy(std::fs::File::create(&kp).unwrap()).unwrap();
    let out = d.path().join("ritz.csv");
    let o = bin()
        .args([
            "spectrum", "--size", "10", "10", "--m", "100", "--k", "5", "-q", "--kernel",
        ])
        .arg(&kp)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = std::fs::read_to_string(&out).unwrap();
    let mut l = t.lines();
    assert_eq!(l.next().unwrap(), "re,im,residual");
    let first: Vec<f64> = l
        .next()
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    assert!((first[0] - 0.959903178411146).abs() < 1e-12 && first[2] < 1e-8);
    assert_eq!(t.lines().count(), 6);
    let o = bin()
        .args(["steady-state", "--mnist", "3", "-q", "--out"])
        .arg(d.path().join("ss.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (args, field) in [
        (vec!["info", "--arch", "r9"], "arch"),
        (
            vec!["simulate", "--mnist", "100000", "--out", "x.csv"],
            "mnist",
        ),
        (
            vec!["simulate", "--arch", "r8", "--mnist", "0", "--out", "x.csv"],
            "mnist",
        ),
    ] {
        let o = bin().args(&args).current_dir(d.path()).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(field),
            "{args:?}"
        );
    }
}

/// The checkpoint loader reads the original's state-dict layout (spec A.5): weight-normed
/// `<name>.parametrizations.weight.original0` (g, `[C_out, 1, …]`) and `…original1` (V) pairs, plain
/// `conv_bias.{l}` and `out_fc.bias`; K = g V/‖V‖ per output row. Written here from the X11
/// network (V = 2K, g = ‖K‖ per row) and loaded back: the same logits at step 200.
#[test]
fn loads_the_original_state_dict_layout() {
    let net = CordsNet::sine_filled(Arch::mini()).unwrap();
    let shapes = neurodyn::cordsnet::tensor_shapes(&net.arch);
    let mut tensors: Vec<Vec<f64>> = vec![net.stem.clone(), net.inp_skip.clone()];
    tensors.extend(net.rec.iter().cloned());
    tensors.extend(net.inp.iter().cloned());
    tensors.extend(net.bias.iter().cloned());
    tensors.extend(net.proj.iter().cloned());
    tensors.push(net.fc_w.clone());
    tensors.push(net.fc_b.clone());
    let mut raw: Vec<neurodyn::tensor::safetensors::RawTensor> = vec![];
    let bytes = |v: &[f64]| {
        v.iter()
            .flat_map(|x| (*x as f32).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    for ((name, shape), t) in shapes.iter().zip(&tensors) {
        let plain = name.starts_with("conv_bias") || name == "out_fc.bias";
        if plain {
            raw.push((
                name.clone(),
                shape.clone(),
                bytes(t),
                safetensors::Dtype::F32,
            ));
            continue;
        }
        let base = name.trim_end_matches(".weight");
        let out = shape[0];
        let per = t.len() / out;
        let g: Vec<f64> = (0..out)
            .map(|o| {
                t[o * per..(o + 1) * per]
                    .iter()
                    .map(|x| x * x)
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let v: Vec<f64> = t.iter().map(|x| 2.0 * x).collect();
        let mut gshape = vec![out];
        gshape.extend(std::iter::repeat_n(1, shape.len() - 1));
        raw.push((
            format!("{base}.parametrizations.weight.original0"),
            gshape,
            bytes(&g),
            safetensors::Dtype::F32,
        ));
        raw.push((
            format!("{base}.parametrizations.weight.original1"),
            shape.clone(),
            bytes(&v),
            safetensors::Dtype::F32,
        ));
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mini.safetensors");
    std::fs::write(
        &p,
        neurodyn::tensor::safetensors::safetensors_bytes(&raw, &Default::default()).unwrap(),
    )
    .unwrap();
    let back = CordsNet::load(&p, Arch::mini()).unwrap();
    let img: Vec<f64> = (0..32 * 32)
        .map(|k| (0.3 * (k / 32) as f64).sin() * (0.2 * (k % 32) as f64).cos())
        .collect();
    let fl = [-0.0652774351955697, -0.206511195944843, 0.241812671660885];
    let run = back.run(&img, 100, 100).unwrap();
    for k in 0..3 {
        // float32 storage: agreement to ~1e-6.
        assert!(
            (run.logits[k] - fl[k]).abs() < 1e-5,
            "logit {k}: {}",
            run.logits[k]
        );
    }
    // A missing tensor is named.
    raw.retain(|t| t.0 != "conv_bias.3");
    std::fs::write(
        &p,
        neurodyn::tensor::safetensors::safetensors_bytes(&raw, &Default::default()).unwrap(),
    )
    .unwrap();
    let e = CordsNet::load(&p, Arch::mini()).unwrap_err().to_string();
    assert!(e.contains("conv_bias.3"), "{e}");
}

/// CordsNet through the model resolver (a `model = "cordsnet"` preset): its Euler map is the
/// network's own update, its steady state is the fixed point the matrix-free finder returns, and
/// the leading eigenvalues by shifted Arnoldi are the dense spectrum's of largest real part.
#[test]
fn cordsnet_is_a_source_of_every_analysis() {
    use neurodyn::fixed_points::{find_system_fixed_points, FinderOptions};
    use neurodyn::model::System;
    use neurodyn::source::{Source, View};
    use neurodyn::stability::{analyze_jacobian, TimeKind};
    let d = tempfile::tempdir().unwrap();
    let preset = d.path().join("c.toml");
    std::fs::write(
        &preset,
        "model = \"cordsnet\"\narch = \"mini\"\nseed = 3\ngain = 0.8\nstart_steps = 60\n",
    )
    .unwrap();
    let src = Source::Preset {
        path: Some(preset.clone()),
        overrides: Default::default(),
        input: None,
    };
    let net = CordsNet::random(Arch::mini(), 3, 0.8).unwrap();
    let img = vec![0.0; 32 * 32];
    // The Euler view at the network's step: 60 steps of it are the protocol's 60 stimulus steps.
    let dt = net.arch.alpha * net.arch.tau;
    let euler = src.resolve(View::Euler(dt), 1.0).unwrap();
    let System::Map(map) = &euler.system else {
        panic!("the Euler view is a map")
    };
    let mut x = vec![0.0; net.arch.units()];
    for t in 0..60 {
        map.step(t, &mut x);
    }
    let run = net.run(&img, 0, 60).unwrap();
    let err = x
        .iter()
        .zip(&run.state)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-13, "Euler map vs CordsNet::run: {err:e}");
    assert_eq!(euler.x0, run.state, "x0 is the state after start_steps");

    // Fixed points: dense (the whole spectrum) and matrix-free (Newton–Krylov, Arnoldi) agree.
    let flow = src.resolve(View::Natural, 1.0).unwrap();
    let starts = vec![flow.x0.clone()];
    let dense = find_system_fixed_points(&flow.system, &starts, &FinderOptions::default()).unwrap();
    let free = find_system_fixed_points(
        &flow.system,
        &starts,
        &FinderOptions {
            dense_limit: 0,
            leading: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((dense.len(), free.len()), (1, 1));
    let (a, b) = (&dense[0], &free[0]);
    let dx =
        a.x.iter()
            .zip(&b.x)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max);
    assert!(dx < 1e-9 && b.converged, "steady states differ by {dx:e}");
    assert_eq!(b.stability.eigenvalues.len(), 4);
    for (k, (u, v)) in a
        .stability
        .eigenvalues
        .iter()
        .zip(&b.stability.eigenvalues)
        .enumerate()
    {
        assert!(
            (u - v).norm() < 1e-7,
            "eigenvalue {k}: dense {u}, Arnoldi {v}"
        );
    }
    assert_eq!(a.stability.class, b.stability.class);
    // Against the model's dense Jacobian directly.
    let System::Flow(m) = &flow.system else {
        panic!("the natural view is a flow")
    };
    let j = neurodyn::model::jacobian_mat(m.as_ref(), 0.0, &a.x);
    let full = analyze_jacobian(j.as_ref(), TimeKind::Continuous, 1e-10).unwrap();
    assert!((full.max_growth - b.stability.max_growth).abs() < 1e-8);
}

/// One convolution: the flow, its JVP and the spectra operator run `nn::Conv2d` (the layer
/// CordsNet is trained with). Its parallel blocks (output positions of a large plane, output
/// channels of a wide layer) give the same bits on one thread as on many, and the operator equals
/// the dense matrix built column by column from single-thread applications.
#[test]
fn one_convolution_the_same_bits_on_any_thread_count() {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    // Blocks of positions (24 × 24 = 576 > 512) and blocks of channels (160 > 128 rows).
    for (c, s) in [(4usize, 24usize), (160, 3)] {
        let k: Vec<f64> = (0..c * c * 9)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let op = ConvOperator::new(k, c, 3, s, s).unwrap();
        let x: Vec<f64> = (0..op.dim()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut many = vec![0.0; op.dim()];
        let mut single = vec![0.0; op.dim()];
        op.apply(&x, &mut many);
        one.install(|| op.apply(&x, &mut single));
        assert!(many == single, "{c}×{s}×{s}: thread count changed the bits");
        // Against the direct sum (every output one dot product).
        let idx =
            |ch: usize, i: isize, j: isize| (ch * s) as isize * s as isize + i * s as isize + j;
        let mut worst = 0.0f64;
        for o in 0..c {
            for i in 0..s as isize {
                for j in 0..s as isize {
                    let mut acc = 0.0;
                    for ci in 0..c {
                        for a in 0..3isize {
                            for b in 0..3isize {
                                let (ii, jj) = (i + a - 1, j + b - 1);
                                if ii >= 0 && jj >= 0 && ii < s as isize && jj < s as isize {
                                    acc += op.kernel
                                        [((o * c + ci) * 3 + a as usize) * 3 + b as usize]
                                        * x[idx(ci, ii, jj) as usize];
                                }
                            }
                        }
                    }
                    worst = worst.max((acc - many[idx(o, i, j) as usize]).abs());
                }
            }
        }
        assert!(worst < 1e-12, "{c}×{s}×{s}: {worst:e} from the direct sum");
    }
    // The flow and its JVP on the MNIST network.
    let net = CordsNet::random(Arch::mnist(), 2, 0.5).unwrap();
    let img: Vec<f64> = (0..784).map(|_| rng.random_range(-1.0..1.0)).collect();
    let r = net.run(&img, 0, 20).unwrap().state;
    let h = net.stem_forward(&img).unwrap();
    let flow = net.flow(&h);
    let v: Vec<f64> = (0..r.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let run = |f: &dyn Fn(&mut [f64], &mut [f64])| {
        let (mut a, mut b) = (vec![0.0; r.len()], vec![0.0; r.len()]);
        f(&mut a, &mut b);
        (a, b)
    };
    let eval = |a: &mut [f64], b: &mut [f64]| {
        flow.rhs(0.0, &r, a);
        flow.jvp(0.0, &r, &v, b);
    };
    let (f1, j1) = run(&eval);
    let (f2, j2) = one.install(|| run(&eval));
    assert!(f1 == f2 && j1 == j2, "the flow depends on the thread count");
}
