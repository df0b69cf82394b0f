//! Model contract tests: Jacobians against finite differences (and a checker that can fail),
//! the rate RNN against a naive implementation and against the one-step cross-check of Kim, Li & Sejnowski's (2019) model.

use faer::{Mat, MatMut};
use neurodyn::integrate::{integrate, Method, Options, SaveAt};
use neurodyn::model::{check_jacobian, Activation, InputSignal, Model, RateRnn};
use neurodyn::preset::Preset;
use neurodyn::testing::{on_threads, Linear, Logistic, Robertson, Spiral};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use std::sync::Arc;

fn randn_vec(rng: &mut ChaCha8Rng, n: usize, s: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            s * z
        })
        .collect()
}

fn random_rnn(n: usize, act: Activation, seed: u64) -> RateRnn {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let z = randn_vec(&mut rng, n * n, 1.5 / (n as f64).sqrt());
    let w = Mat::from_fn(n, n, |i, j| z[i * n + j]);
    let b = randn_vec(&mut rng, n, 0.3);
    let tau: Vec<f64> = (0..n)
        .map(|_| Uniform::new(0.5, 3.0).unwrap().sample(&mut rng))
        .collect();
    RateRnn::new(w, act)
        .unwrap()
        .with_bias(b)
        .unwrap()
        .with_tau(tau)
        .unwrap()
}

#[test]
fn rate_rnn_jacobian_passes_for_every_activation() {
    for (k, act) in Activation::ALL.into_iter().enumerate() {
        let m = random_rnn(20, act, k as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(100 + k as u64);
        for _ in 0..5 {
            let x = randn_vec(&mut rng, 20, 1.5);
            let c = check_jacobian(&m, 0.0, &x);
            assert!(c.passes(1e-6), "{act:?}: {c:?}");
            assert!(c.jvp_rel_err < 1e-12, "{act:?}: jvp {c:?}");
        }
    }
    // With Dale's law and a time-dependent input (the input must not enter the Jacobian).
    let m = random_rnn(12, Activation::Sigmoid, 9)
        .with_dale((0..12).map(|j| if j < 9 { 1.0 } else { -1.0 }).collect())
        .unwrap()
        .with_input(
            Mat::from_fn(12, 2, |i, j| (i + j) as f64 * 0.1),
            InputSignal::Func(Arc::new(|t, u| {
                u[0] = t.sin();
                u[1] = 1.0;
            })),
        )
        .unwrap();
    let x: Vec<f64> = (0..12).map(|i| (i as f64 * 0.7).sin()).collect();
    assert!(check_jacobian(&m, 1.3, &x).passes(1e-6));
    // Gamma units with per-neuron gain and saturation.
    let n: Vec<f64> = (0..12).map(|i| 1.0 + 0.5 * i as f64).collect();
    let s: Vec<f64> = (0..12).map(|i| i as f64 / 11.0).collect();
    let g = random_rnn(12, Activation::Tanh, 4)
        .with_gamma_per_neuron(n.clone(), s.clone())
        .unwrap();
    let c = check_jacobian(&g, 0.0, &x);
    assert!(c.passes(1e-6), "{c:?}");
    let mut dx = vec![0.0; 12];
    g.rhs(0.0, &x, &mut dx);
    let tau = g.tau();
    let want0 = (-x[0]
        + (0..12)
            .map(|j| g.w()[(0, j)] * neurodyn::model::gamma::gamma(x[j], n[j], s[j]))
            .sum::<f64>()
        + g.bias()[0])
        / tau[0];
    assert!((dx[0] - want0).abs() < 1e-13);
}

/// A model whose Jacobian omits the leak term −δ_ij/τ_i: a plausible bug.
struct MissingLeak(RateRnn);
impl Model for MissingLeak {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn rhs(&self, t: f64, x: &[f64], dx: &mut [f64]) {
        self.0.rhs(t, x, dx)
    }
    fn jacobian(&self, t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        self.0.jacobian(t, x, jac.as_mut());
        let tau = self.0.tau();
        for i in 0..self.dim() {
            jac[(i, i)] += 1.0 / tau[i];
        }
    }
}

/// A model whose Jacobian is transposed: another plausible bug.
struct Transposed(RateRnn);
impl Model for Transposed {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn rhs(&self, t: f64, x: &[f64], dx: &mut [f64]) {
        self.0.rhs(t, x, dx)
    }
    fn jacobian(&self, t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        let j = neurodyn::model::jacobian_mat(&self.0, t, x);
        jac.copy_from(j.transpose());
    }
}

#[test]
fn check_jacobian_fails_for_wrong_jacobians() {
    let x: Vec<f64> = (0..15).map(|i| (i as f64).cos()).collect();
    let c = check_jacobian(&MissingLeak(random_rnn(15, Activation::Tanh, 1)), 0.0, &x);
    assert!(!c.passes(1e-6) && c.rel_err > 1e-2, "{c:?}");
    let c = check_jacobian(&Transposed(random_rnn(15, Activation::Tanh, 2)), 0.0, &x);
    assert!(!c.passes(1e-6) && c.rel_err > 1e-2, "{c:?}");
}

#[test]
fn reference_problems_pass_the_conformance_check() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let a = Mat::from_fn(7, 7, |_, _| -> f64 { StandardNormal.sample(&mut rng) });
    assert!(check_jacobian(&Linear { a }, 0.0, &randn_vec(&mut rng, 7, 1.0)).passes(1e-8));
    assert!(check_jacobian(&Logistic { r: 2.0 }, 0.0, &[0.3]).passes(1e-8));
    assert!(check_jacobian(&Spiral { omega: 3.0 }, 0.0, &[0.4, -1.2]).passes(1e-8));
    assert!(check_jacobian(&Robertson, 0.0, &[0.9, 2e-5, 0.1]).passes(1e-6));
}

#[test]
fn rhs_matches_naive_formula_across_column_blocks() {
    // N = 300 spans two column blocks of the stack-buffered product.
    let n = 300;
    let m = random_rnn(n, Activation::Softplus, 11)
        .with_input(
            Mat::from_fn(n, 3, |i, j| ((i * 3 + j) as f64 * 0.37).sin()),
            InputSignal::Constant(vec![0.5, -1.0, 2.0]),
        )
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let x = randn_vec(&mut rng, n, 1.0);
    let mut dx = vec![0.0; n];
    m.rhs(0.7, &x, &mut dx);
    let tau = m.tau();
    let u = [0.5, -1.0, 2.0];
    for i in 0..n {
        let wphi: f64 = (0..n)
            .map(|j| m.w()[(i, j)] * Activation::Softplus.eval(x[j]))
            .sum();
        let bu: f64 = (0..3)
            .map(|k| ((i * 3 + k) as f64 * 0.37).sin() * u[k])
            .sum();
        let want = (-x[i] + wphi + m.bias()[i] + bu) / tau[i];
        assert!(
            (dx[i] - want).abs() < 1e-12 * (1.0 + want.abs()),
            "unit {i}: {} vs {want}",
            dx[i]
        );
    }
}

#[test]
fn input_table_is_linearly_interpolated_and_held() {
    let m = RateRnn::new(Mat::zeros(1, 1), Activation::Linear)
        .unwrap()
        .with_input(
            Mat::from_fn(1, 1, |_, _| 1.0),
            InputSignal::Table {
                t: vec![0.0, 1.0],
                u: vec![vec![0.0], vec![2.0]],
            },
        )
        .unwrap();
    let mut dx = [0.0];
    for (t, want) in [(-1.0, 0.0), (0.25, 0.5), (0.5, 1.0), (3.0, 2.0)] {
        m.rhs(t, &[0.0], &mut dx);
        assert!((dx[0] - want).abs() < 1e-15, "t = {t}");
    }
    let bad = RateRnn::new(Mat::zeros(1, 1), Activation::Linear)
        .unwrap()
        .with_input(
            Mat::from_fn(1, 1, |_, _| 1.0),
            InputSignal::Table {
                t: vec![1.0, 0.0],
                u: vec![vec![0.0], vec![2.0]],
            },
        );
    assert!(bad.is_err());
}

/// the one-step cross-check of the Kim, Li & Sejnowski (2019) rate model: one Euler step (Δt = 1 step) of the Dale's-law rate model,
/// x1 = (1 − 1/τ) x0 + (1/τ)(W σ(x0) + W_in u), is one forward-Euler step of τ dx/dt = −x + W σ(x) + W_in u.
#[test]
fn spiking_x1_one_euler_step_of_the_dale_rate_model() {
    let w_raw = Mat::from_fn(3, 3, |i, j| {
        [[0.0, 0.5, -0.2], [0.3, 0.0, 0.4], [0.6, -0.1, 0.0]][i][j]
    });
    // τ_i = τ_min + (τ_max − τ_min) σ(γ_i), γ = (0, 1, −1), [4, 20] steps.
    let tau: Vec<f64> = [0.0f64, 1.0, -1.0]
        .iter()
        .map(|g| 4.0 + 16.0 * neurodyn::model::activation::sigmoid(*g))
        .collect();
    assert!((tau[1] - 15.6969372580801).abs() < 1e-12 && (tau[2] - 8.30306274191992).abs() < 1e-12);
    let m = RateRnn::new(w_raw, Activation::Sigmoid)
        .unwrap()
        .with_dale(vec![1.0, 1.0, -1.0])
        .unwrap()
        .with_tau(tau)
        .unwrap()
        .with_input(
            Mat::from_fn(3, 1, |i, _| [1.0, -0.5, 0.25][i]),
            InputSignal::Constant(vec![1.0]),
        )
        .unwrap();
    let w_eff = [[0.0, 0.5, 0.0], [0.3, 0.0, -0.4], [0.6, 0.0, 0.0]];
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(m.w()[(i, j)], w_eff[i][j]);
        }
    }
    let s = integrate(
        &m,
        &[0.1, -0.2, 0.3],
        (0.0, 1.0),
        &Method::euler(1.0),
        &Options::new().save(SaveAt::Final),
    )
    .unwrap();
    let want = [0.193756916778647, -0.223716935626365, 0.331914429738019];
    for i in 0..3 {
        assert!(
            (s.last()[i] - want[i]).abs() < 1e-13,
            "unit {i}: {} vs {}",
            s.last()[i],
            want[i]
        );
    }
    // Readout o1 = w_out · σ(x1) + b_out.
    let o1: f64 = [0.2, -0.1, 0.05]
        .iter()
        .zip(s.last())
        .map(|(w, x)| w * neurodyn::model::activation::sigmoid(*x))
        .sum::<f64>()
        + 0.01;
    assert!((o1 - 0.104338619416472).abs() < 1e-13);
}

#[test]
fn builder_rejects_bad_parameters_naming_the_field() {
    let field = |r: neurodyn::Result<RateRnn>| match r {
        Err(neurodyn::Error::Invalid { field, .. }) => field,
        other => panic!("expected an Invalid error, got {other:?}"),
    };
    let w = || Mat::<f64>::zeros(3, 3);
    assert_eq!(field(RateRnn::new(Mat::zeros(3, 2), Activation::Tanh)), "W");
    assert_eq!(
        field(RateRnn::new(
            Mat::from_fn(2, 2, |i, _| if i == 0 { f64::NAN } else { 0.0 }),
            Activation::Tanh
        )),
        "W"
    );
    assert_eq!(
        field(
            RateRnn::new(w(), Activation::Tanh)
                .unwrap()
                .with_tau(vec![1.0, -1.0, 1.0])
        ),
        "tau"
    );
    assert_eq!(
        field(
            RateRnn::new(w(), Activation::Tanh)
                .unwrap()
                .with_tau(vec![1.0, 1.0])
        ),
        "tau"
    );
    assert_eq!(
        field(RateRnn::new(w(), Activation::Tanh).unwrap().with_bias(vec![
            0.0,
            f64::INFINITY,
            0.0
        ])),
        "b"
    );
    assert_eq!(
        field(
            RateRnn::new(w(), Activation::Tanh)
                .unwrap()
                .with_dale(vec![1.0, 0.5, -1.0])
        ),
        "dale"
    );
}

#[test]
fn presets_build_and_reject_bad_fields() {
    let p = Preset::default_preset();
    let b = p.build(std::path::Path::new(".")).unwrap();
    assert_eq!(b.model.dim(), 100);
    assert_eq!(b.x0.len(), 100);
    // Same seed, same network, bit for bit.
    let b2 = p.build(std::path::Path::new(".")).unwrap();
    assert_eq!(b.x0, b2.x0);
    assert_eq!(
        b.model.w()[(3, 7)].to_bits(),
        b2.model.w()[(3, 7)].to_bits()
    );
    // Every shipped preset builds.
    for f in [
        "models/rate-rnn-chaotic.toml",
        "models/rate-rnn-stable.toml",
        "models/rate-rnn-dale.toml",
    ] {
        let (p, dir) = Preset::load(std::path::Path::new(f)).unwrap();
        p.build(&dir).unwrap();
    }
    let err = |text: &str| match Preset::from_toml(text, "t.toml")
        .and_then(|p| p.build(std::path::Path::new(".")))
    {
        Err(neurodyn::Error::Invalid { field, problem }) => (field, problem),
        other => panic!("expected an error for {text:?}, got {other:?}"),
    };
    assert_eq!(err("model = \"rate-rnn\"\nn = 3\ngain = 2.0\n").0, "gain");
    assert_eq!(err("model = \"rate-rnn\"\nn = 3\ntau = -1.0\n").0, "tau");
    assert_eq!(
        err("model = \"rate-rnn\"\nn = 3\ntau = [1.0, 2.0]\n").0,
        "tau"
    );
    assert_eq!(
        err("model = \"rate-rnn\"\nn = 3\nactivation = \"gelu\"\n").0,
        "activation"
    );
    assert_eq!(err("model = \"hopfield\"\nn = 3\n").0, "model");
    assert_eq!(err("model = \"rate-rnn\"\n").0, "n");
}

/// `J Y` for many columns (the Lyapunov flows' products) against the Jacobian times Y, on a
/// frame large enough for the threaded path (N k ≥ 2¹⁶) with the same bits on one thread and two,
/// and on a strided (non-contiguous) view.
#[test]
fn rate_rnn_jacobian_times_a_frame() {
    let n = 300;
    let m = random_rnn(n, Activation::Tanh, 17);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = randn_vec(&mut rng, n, 1.0);
    let z = randn_vec(&mut rng, n * n, 1.0);
    let y = Mat::from_fn(n, n, |i, j| z[i + j * n]);
    let mut jac = Mat::<f64>::zeros(n, n);
    m.jacobian(0.0, &x, jac.as_mut());
    let want = &jac * &y;
    let run = |threads| {
        on_threads(threads, || {
            let mut out = Mat::<f64>::zeros(n, n);
            m.jac_mul_mat(0.0, &x, y.as_ref(), out.as_mut());
            out
        })
    };
    let (one, two) = (run(1), run(2));
    assert!(one == two, "J Y depends on the thread count");
    for j in 0..n {
        for i in 0..n {
            let e = (one[(i, j)] - want[(i, j)]).abs();
            assert!(e < 1e-12 * (1.0 + want[(i, j)].abs()), "({i}, {j}): {e:e}");
        }
    }
    // A transposed (row-major) view: the strided fallbacks.
    let yt = y.transpose().to_owned();
    let mut out = Mat::<f64>::zeros(n, 40);
    let mut outt = Mat::<f64>::zeros(40, n);
    m.jac_mul_mat(
        0.0,
        &x,
        yt.transpose().get(.., ..40),
        outt.as_mut().transpose_mut(),
    );
    m.jac_mul_mat(0.0, &x, y.get(.., ..40), out.as_mut());
    for j in 0..40 {
        for i in 0..n {
            assert!((out[(i, j)] - outt[(j, i)]).abs() < 1e-13 * (1.0 + out[(i, j)].abs()));
            assert!((out[(i, j)] - want[(i, j)]).abs() < 1e-12 * (1.0 + want[(i, j)].abs()));
        }
    }
}
