//! The feed-forward layers: every backward pass against central finite differences (f64,
//! relative error < 1e-6) including stride/padding corner cases, pools that do not divide the
//! size and divisive normalization with P ≠ 2; the spec's divnorm cross-check value; the static
//! ORGaNICs layer and the divnorm layer as steady states of the ORGaNICs circuit; whole networks;
//! thread-count independence.

use neurodyn::fixed_points::{newton, NewtonOptions};
use neurodyn::integrate::{integrate, Method, Options, SaveAt};
use neurodyn::model::organics::{Organics, Variant};
use neurodyn::nn::divnorm::DivNormOptions;
use neurodyn::nn::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(n: usize, rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Relative error ‖g − g_fd‖/‖g_fd‖ of the input and (trainable) parameter gradients of
/// L = Σ r ⊙ layer(x) + the layer's penalty, for `b` samples.
fn check_layer(
    name: &str,
    l: &dyn Layer<f64>,
    b: usize,
    p: &mut Vec<f64>,
    x: Vec<f64>,
    train: bool,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let (ni, no) = (l.in_shape().len(), l.out_shape().len());
    assert_eq!(x.len(), b * ni);
    let r = rand_vec(b * no, &mut rng, -1.0, 1.0);
    let mut ctx = Ctx {
        train,
        seed: 7,
        ..Default::default()
    };
    let mut y = vec![0.0; b * no];
    let loss = |p: &mut Vec<f64>, x: &[f64]| -> f64 {
        let mut c = Ctx {
            train,
            seed: 7,
            ..Default::default()
        };
        let mut y = vec![0.0; b * no];
        l.forward(p, x, &mut y, b, &mut c);
        y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>() + l.penalty(x, b, &c)
    };
    l.forward(p, &x, &mut y, b, &mut ctx);
    let mut g = vec![0.0; p.len()];
    let mut dx = vec![0.0; b * ni];
    l.backward(
        p,
        Back {
            x: &x,
            y: &y,
            dy: &r,
            dx: Some(&mut dx),
            g: &mut g,
            b,
        },
        &ctx,
    );
    // The parameter gradient without ∂L/∂x must be the same.
    let mut g2 = vec![0.0; p.len()];
    l.backward(
        p,
        Back {
            x: &x,
            y: &y,
            dy: &r,
            dx: None,
            g: &mut g2,
            b,
        },
        &ctx,
    );
    assert_eq!(g, g2, "{name}: gradient depends on whether dx is asked for");
    let h = 1e-6;
    let mut fd_x = vec![0.0; x.len()];
    for k in 0..x.len() {
        let mut xp = x.clone();
        xp[k] += h;
        let lp = loss(p, &xp);
        xp[k] -= 2.0 * h;
        fd_x[k] = (lp - loss(p, &xp)) / (2.0 * h);
    }
    let mut trained = vec![];
    for q in l.params() {
        let n: usize = q.shape.iter().product();
        trained.extend(std::iter::repeat_n(q.train, n));
    }
    let mut fd_p = vec![0.0; p.len()];
    for k in 0..p.len() {
        if !trained[k] {
            continue;
        }
        let v = p[k];
        p[k] = v + h;
        let lp = loss(p, &x);
        p[k] = v - h;
        let lm = loss(p, &x);
        p[k] = v;
        fd_p[k] = (lp - lm) / (2.0 * h);
    }
    let rel = |a: &[f64], b: &[f64]| {
        let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        let den: f64 = b.iter().map(|y| y * y).sum();
        (num / den.max(1e-300)).sqrt()
    };
    let ex = rel(&dx, &fd_x);
    assert!(ex < 1e-6, "{name}: ∂L/∂x relative error {ex:e}");
    if trained.iter().any(|&t| t) {
        let gp: Vec<f64> = g
            .iter()
            .zip(&trained)
            .map(|(v, t)| if *t { *v } else { 0.0 })
            .collect();
        let ep = rel(&gp, &fd_p);
        assert!(ep < 1e-6, "{name}: ∂L/∂θ relative error {ep:e}");
    }
}

fn params_of(l: &dyn Layer<f64>, seed: u64, jitter: f64) -> Vec<f64> {
    let n: usize = l
        .params()
        .iter()
        .map(|q| q.shape.iter().product::<usize>())
        .sum();
    let mut p = vec![0.0; n];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    l.init(&mut p, &mut rng);
    for v in &mut p {
        *v += jitter * rng.random_range(-1.0..1.0);
    }
    p
}

#[test]
fn convolution_backward_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // (input, out channels, kernel, stride, padding): stride and padding corner cases, a kernel
    // that does not tile the input, a 1×1 kernel, a kernel as large as the padded input.
    for (s, co, k, st, pd) in [
        (Shape::new(3, 7, 6), 4, 3, 2, 1),
        (Shape::new(2, 5, 5), 3, 2, 1, 0),
        (Shape::new(2, 8, 7), 2, 5, 3, 2),
        (Shape::new(3, 4, 4), 5, 1, 1, 0),
        (Shape::new(1, 3, 3), 2, 5, 1, 1),
    ] {
        let l = Conv2d::new(s, co, k, st, pd).unwrap();
        let mut p = params_of(&l, 2, 0.0);
        let b = 11; // two chunks, the second partial
        let x = rand_vec(b * s.len(), &mut rng, -1.0, 1.0);
        check_layer(
            &format!("conv {s} k{k} s{st} p{pd}"),
            &l,
            b,
            &mut p,
            x,
            true,
        );
    }
    assert!(Conv2d::new(Shape::new(1, 3, 3), 2, 6, 1, 1).is_err());
}

#[test]
fn convolution_matches_a_direct_sum() {
    // y[o,i,j] = b_o + Σ W[o,c,k,l] x[c, s i − p + k, s j − p + l], by hand, one entry.
    let s = Shape::new(2, 5, 6);
    let l = Conv2d::new(s, 3, 3, 2, 1).unwrap();
    let p = params_of(&l, 5, 0.3);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = rand_vec(s.len(), &mut rng, -1.0, 1.0);
    let mut y = vec![0.0; Layer::<f64>::out_shape(&l).len()];
    let mut pp = p.clone();
    Layer::<f64>::forward(&l, &mut pp, &x, &mut y, 1, &mut Ctx::default());
    assert_eq!(Layer::<f64>::out_shape(&l), Shape::new(3, 3, 3));
    for (o, i, j) in [(0, 0, 0), (2, 1, 2), (1, 2, 1)] {
        let mut v = p[3 * 2 * 9 + o];
        for c in 0..2 {
            for k in 0..3 {
                for m in 0..3 {
                    let (ii, jj) = (2 * i as isize - 1 + k, 2 * j as isize - 1 + m);
                    if ii >= 0 && ii < 5 && jj >= 0 && jj < 6 {
                        v += p[((o * 2 + c) * 3 + k as usize) * 3 + m as usize]
                            * x[c * 30 + ii as usize * 6 + jj as usize];
                    }
                }
            }
        }
        let got = y[o * 9 + i * 3 + j];
        assert!((got - v).abs() < 1e-14, "y[{o},{i},{j}] = {got} vs {v}");
    }
}

#[test]
fn pooling_backward_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let s = Shape::new(2, 7, 7);
    let x = rand_vec(5 * s.len(), &mut rng, -1.0, 1.0);
    // 7 does not divide by 2 or 3: the last row and column are dropped or half-covered.
    let cases: Vec<(String, Box<dyn Layer<f64>>)> = vec![
        (
            "max k3 s2 p1".into(),
            Box::new(MaxPool2d::new(s, 3, 2, 1).unwrap()),
        ),
        (
            "max k2 s2".into(),
            Box::new(MaxPool2d::new(s, 2, 2, 0).unwrap()),
        ),
        (
            "avg k3 s2 p1 incl".into(),
            Box::new(AvgPool2d::new(s, 3, 2, 1, true).unwrap()),
        ),
        (
            "avg k3 s2 p1 excl".into(),
            Box::new(AvgPool2d::new(s, 3, 2, 1, false).unwrap()),
        ),
        (
            "avg k2 s3".into(),
            Box::new(AvgPool2d::new(s, 2, 3, 0, true).unwrap()),
        ),
    ];
    for (name, l) in &cases {
        check_layer(name, l.as_ref(), 5, &mut vec![], x.clone(), true);
    }
    // count_include_pad: the corner window of k3 p1 covers 4 inputs out of 9.
    let l = AvgPool2d::new(Shape::new(1, 2, 2), 3, 2, 1, true).unwrap();
    let l2 = AvgPool2d::new(Shape::new(1, 2, 2), 3, 2, 1, false).unwrap();
    let x = [1.0, 2.0, 3.0, 4.0];
    let (mut y, mut y2) = (vec![0.0; 1], vec![0.0; 1]);
    Layer::<f64>::forward(&l, &mut [], &x, &mut y, 1, &mut Ctx::default());
    Layer::<f64>::forward(&l2, &mut [], &x, &mut y2, 1, &mut Ctx::default());
    assert_eq!((y[0], y2[0]), (10.0 / 9.0, 2.5));
    assert!(MaxPool2d::new(s, 2, 2, 2).is_err());
}

#[test]
fn dense_layers_backward_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let s = Shape::new(3, 2, 2);
    let b = 10;
    let x = rand_vec(b * s.len(), &mut rng, -1.0, 1.0);
    let lin = Linear::new(s, 4).unwrap();
    check_layer(
        "linear",
        &lin,
        b,
        &mut params_of(&lin, 1, 0.0),
        x.clone(),
        true,
    );
    check_layer("relu", &Relu { shape: s }, b, &mut vec![], x.clone(), true);
    let d = Dropout::new(s, 0.3).unwrap();
    check_layer("dropout", &d, b, &mut vec![], x.clone(), true);
    let bn = BatchNorm2d::new(s);
    let mut p = params_of(&bn, 1, 0.0);
    for v in &mut p[..6] {
        *v += rng.random_range(-0.5..0.5);
    }
    check_layer("batchnorm train", &bn, b, &mut p, x.clone(), true);
    p[6..9].copy_from_slice(&[0.1, -0.2, 0.3]);
    p[9..12].copy_from_slice(&[0.5, 1.5, 2.0]);
    check_layer("batchnorm eval", &bn, b, &mut p, x.clone(), false);
}

#[test]
fn batchnorm_normalizes_and_tracks_running_statistics_as_pytorch() {
    let s = Shape::new(2, 3, 1);
    let bn = BatchNorm2d::new(s);
    let mut p = params_of(&bn, 0, 0.0);
    // Channel 0 of two samples: 1, 2, 3 and 4, 5, 6 → mean 3.5, biased var 35/12.
    let x = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0];
    let mut y = vec![0.0; 12];
    Layer::<f64>::forward(
        &bn,
        &mut p,
        &x,
        &mut y,
        2,
        &mut Ctx {
            train: true,
            ..Default::default()
        },
    );
    let sd = (35.0f64 / 12.0 + 1e-5).sqrt();
    assert!((y[0] - (1.0 - 3.5) / sd).abs() < 1e-12);
    assert_eq!(y[3], 0.0);
    // running_mean = 0.9·0 + 0.1·3.5; running_var = 0.9·1 + 0.1·(unbiased 3.5).
    assert!((p[4] - 0.35).abs() < 1e-12);
    assert!((p[6] - (0.9 + 0.1 * 3.5)).abs() < 1e-12);
}

#[test]
fn divnorm_cross_check_value() {
    // C = 4 (2 pools of 2), γ = σ = 1, ε = 0, P = 2, channels [1, 2, 3, 4].
    let s = Shape::new(4, 1, 1);
    let l = DivNorm::new(s, DivNormOptions::default()).unwrap();
    assert_eq!(l.pool, 2);
    let mut p = params_of(&l, 0, 0.0);
    assert_eq!(p, vec![1.0; 4]);
    let mut y = vec![0.0; 4];
    Layer::<f64>::forward(
        &l,
        &mut p,
        &[1.0, 2.0, 3.0, 4.0],
        &mut y,
        1,
        &mut Ctx::default(),
    );
    let want = [0.4530469714, 1.8121878856, 0.9409437099, 1.6727888175];
    for c in 0..4 {
        assert!(
            (y[c] - want[c]).abs() < 1e-9,
            "channel {c}: {} vs {}",
            y[c],
            want[c]
        );
    }
    // Pool sizes 2^⌊p log₂ C⌋: C = 64 → 8, C = 32 → 4; p = 1 → all channels.
    assert_eq!(
        DivNorm::new(Shape::new(64, 1, 1), DivNormOptions::default())
            .unwrap()
            .pool,
        8
    );
    assert_eq!(
        DivNorm::new(Shape::new(32, 1, 1), DivNormOptions::default())
            .unwrap()
            .pool,
        4
    );
    assert_eq!(
        DivNorm::all_channels(Shape::new(12, 1, 1), DivNormOptions::default())
            .unwrap()
            .pool,
        12
    );
    let wide = DivNormOptions {
        p: 0.9,
        ..DivNormOptions::default()
    };
    assert!(DivNorm::new(Shape::new(12, 1, 1), wide).is_err());
}

#[test]
fn divnorm_backward_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let s = Shape::new(8, 3, 2);
    let b = 9;
    let x = rand_vec(b * s.len(), &mut rng, -1.5, 1.5);
    let base = DivNormOptions::default();
    let variants = [
        ("pooled P=2", base),
        (
            "pooled P=1.5 eps",
            DivNormOptions {
                power: 1.5,
                eps: 1e-3,
                ..base
            },
        ),
        (
            "P=3 single γ σ",
            DivNormOptions {
                power: 3.0,
                single_gamma: true,
                single_sigma: true,
                ..base
            },
        ),
        (
            "fixed γ",
            DivNormOptions {
                fix_gamma: true,
                ..base
            },
        ),
    ];
    for (name, o) in variants {
        let l = DivNorm::new(s, o).unwrap();
        check_layer(name, &l, b, &mut params_of(&l, 3, 0.3), x.clone(), true);
    }
    let l = DivNorm::all_channels(s, base).unwrap();
    check_layer(
        "all channels",
        &l,
        b,
        &mut params_of(&l, 3, 0.3),
        x.clone(),
        true,
    );
    let mut m = MillerNorm::new(s);
    m.init = [0.7, 0.4, 0.8, 1.5]; // window ⌈5.6⌉ → 7 channels
    check_layer(
        "miller",
        &m,
        b,
        &mut params_of(&m, 3, 0.05),
        x.clone(),
        true,
    );
    let m = MillerNorm::new(s); // the study's λ = 10: the window spans every channel
    check_layer("miller λ=10", &m, b, &mut params_of(&m, 3, 0.0), x, true);
}

#[test]
fn static_organics_backward_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let s = Shape::new(1, 3, 2);
    let l = StaticOrganics::new(s, 5, 0.5).unwrap();
    let b = 4;
    let x = rand_vec(b * s.len(), &mut rng, -1.0, 1.0);
    let mut p = params_of(&l, 4, 0.2);
    check_layer("static organics", &l, b, &mut p, x, true);
}

/// The autoencoder stem: the code's gradient and the reconstruction error's, through decoder
/// and encoder, against finite differences of Σ r ⊙ code + λ MSE; the penalty is the mean
/// squared error times λ in training and zero in evaluation.
#[test]
fn autoencoder_backward_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let s = Shape::new(1, 3, 3);
    let b = 3;
    // Pixels in [0, 1] as the logistic decoder reproduces them; λ = 0.7 to see it enter.
    let x = rand_vec(b * s.len(), &mut rng, 0.0, 1.0);
    let l = Autoencoder::new(s, 4, 0.7).unwrap();
    let mut p = params_of(&l, 5, 0.05);
    check_layer("autoencoder", &l, b, &mut p, x.clone(), true);
    // λ = 0: only the code's error reaches the encoder, none the decoder.
    let l0 = Autoencoder::new(s, 4, 0.0).unwrap();
    check_layer("autoencoder λ=0", &l0, b, &mut p, x.clone(), true);
    let mut ctx = Ctx {
        train: true,
        ..Default::default()
    };
    let mut code = vec![0.0; b * 4];
    l.forward(&mut p, &x, &mut code, b, &mut ctx);
    assert!(code.iter().all(|c| *c > 0.0 && *c < 1.0));
    let pen = l.penalty(&x, b, &ctx);
    // The decoder's output is the last b × D entries the layer keeps.
    let xh = &ctx.f[ctx.f.len() - b * s.len()..];
    let mse: f64 = xh.iter().zip(&x).map(|(a, q)| (a - q).powi(2)).sum::<f64>() / x.len() as f64;
    assert!(
        (pen - 0.7 * mse).abs() < 1e-15 && pen > 0.0,
        "{pen} vs {mse}"
    );
    let mut eval = Ctx::default();
    let mut code2 = vec![0.0; b * 4];
    l.forward(&mut p, &x, &mut code2, b, &mut eval);
    assert_eq!(code, code2, "evaluation gives the same code");
    assert_eq!(l.penalty(&x, b, &eval), 0.0);
    let names: Vec<_> = <Autoencoder as Layer<f64>>::params(&l)
        .iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names[0], "encoder.0.weight");
    assert_eq!(names[11], "decoder.4.bias");
}

/// The layer's (y*, a*) is where the ORGaNICs ODE with W_r = I comes to rest: integrated with
/// ESDIRK34 to near rest, then Newton to ‖f‖∞ < 1e-12, it agrees to 1e-8.
#[test]
fn static_organics_layer_is_the_circuit_steady_state() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let s = Shape::new(1, 4, 4);
    let n = 6;
    let sigma = 0.3;
    let l = StaticOrganics::new(s, n, sigma).unwrap();
    let p = params_of(&l, 11, 0.3);
    for trial in 0..3 {
        let x = rand_vec(s.len(), &mut rng, -1.0, 1.0);
        let (y, a) = l.steady_state(&p, &x);
        // The circuit's constants from the layer's parameters.
        let d = s.len();
        let dot = |w: &[f64]| {
            (0..n)
                .map(|i| (0..d).map(|k| w[i * d + k] * x[k]).sum::<f64>())
                .collect::<Vec<_>>()
        };
        let v = dot(&p[..n * d]);
        let nv = v.iter().map(|t| t * t).sum::<f64>().sqrt();
        let z: Vec<f64> = v.iter().map(|t| t / nv).collect();
        let sg = |t: f64| 1.0 / (1.0 + (-t).exp());
        let b1: Vec<f64> = dot(&p[n * d..2 * n * d]).into_iter().map(sg).collect();
        let b0: Vec<f64> = p[2 * n * d..2 * n * d + n].iter().map(|t| sg(*t)).collect();
        let w = faer::Mat::from_fn(n, n, |i, j| p[2 * n * d + n + i * n + j].exp());
        let circuit = Organics::new(
            Variant::Unrectified,
            faer::Mat::identity(n, n),
            w,
            b0,
            b1,
            vec![sigma; n],
            vec![0.002; n],
            vec![0.001; n],
            z,
        )
        .unwrap();
        let x0 = circuit.default_start();
        let sol = integrate(
            &circuit,
            &x0,
            (0.0, 0.5),
            &Method::Esdirk34 {
                rtol: 1e-8,
                atol: 1e-10,
            },
            &Options::new().save(SaveAt::Final).steady_state(1e-6),
        )
        .unwrap();
        let r = newton(&circuit, sol.last(), &NewtonOptions::default()).unwrap();
        assert!(
            r.residual < 1e-12,
            "trial {trial}: residual {:e}",
            r.residual
        );
        for i in 0..n {
            assert!(
                (r.x[i] - y[i]).abs() < 1e-8,
                "trial {trial} y[{i}]: {} vs {}",
                r.x[i],
                y[i]
            );
            assert!(
                (r.x[n + i] - a[i]).abs() < 1e-8,
                "trial {trial} a[{i}]: {} vs {}",
                r.x[n + i],
                a[i]
            );
        }
    }
}

/// Divisive normalization with P = 2 is e^γ ŷ² where ŷ is the steady state of the ORGaNICs
/// circuit with W_r = I, W = the block matrix of ones over each pool, b₀ = b₁ = 1, z = x.
#[test]
fn divnorm_is_the_circuit_steady_state_squared() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let c = 8;
    let s = Shape::new(c, 1, 1);
    let l = DivNorm::new(s, DivNormOptions::default()).unwrap();
    let mut p = params_of(&l, 5, 0.4);
    let x = rand_vec(c, &mut rng, 0.1, 1.5);
    let mut out = vec![0.0; c];
    Layer::<f64>::forward(&l, &mut p, &x, &mut out, 1, &mut Ctx::default());
    let pools = l.pools();
    let ps = l.pool;
    let sigma: Vec<f64> = (0..c).map(|ch| p[pools + ch / ps].abs()).collect();
    let w = faer::Mat::from_fn(c, c, |i, j| if i / ps == j / ps { 1.0 } else { 0.0 });
    let circuit = Organics::new(
        Variant::Unrectified,
        faer::Mat::identity(c, c),
        w,
        vec![1.0; c],
        vec![1.0; c],
        sigma,
        vec![0.002; c],
        vec![0.001; c],
        x.clone(),
    )
    .unwrap();
    let sol = integrate(
        &circuit,
        &circuit.default_start(),
        (0.0, 0.5),
        &Method::Esdirk34 {
            rtol: 1e-8,
            atol: 1e-10,
        },
        &Options::new().save(SaveAt::Final).steady_state(1e-6),
    )
    .unwrap();
    let r = newton(&circuit, sol.last(), &NewtonOptions::default()).unwrap();
    assert!(r.residual < 1e-12);
    for ch in 0..c {
        let want = p[ch / ps].exp() * r.x[ch].powi(2);
        assert!(
            (out[ch] - want).abs() < 1e-8,
            "channel {ch}: {} vs {want}",
            out[ch]
        );
    }
}

/// Whole networks: the gradient of the mean cross-entropy against central differences on a
/// sample of parameters, every normalization with ReLU on and off, and the static ORGaNICs net.
#[test]
fn network_gradients_match_finite_differences() {
    // 16 × 16 inputs keep every layer (small-alexnet ends at 1 × 1) and the test fast.
    let input = Shape::new(1, 16, 16);
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let b = 3;
    let x = rand_vec(b * input.len(), &mut rng, -1.0, 2.0);
    let labels = [3u8, 7, 0];
    let specs = [
        (Arch::SmallAlexnet, Norm::Divnorm, true),
        (Arch::SmallAlexnet, Norm::Divnorm, false),
        (Arch::SmallAlexnet, Norm::Batchnorm, true),
        (Arch::SmallVgg, Norm::DivnormAll, true),
        (Arch::SmallVgg, Norm::Miller, false),
        (Arch::SmallVgg, Norm::None, true),
        (Arch::StaticOrganics, Norm::None, true),
        (Arch::OrganicsAutoencoder, Norm::None, true),
    ];
    for (arch, norm, relu) in specs {
        let mut spec = ArchSpec::new(arch, norm, relu);
        spec.hidden = 16;
        let mut net = spec.build::<f64>(input).unwrap();
        net.init(1);
        let (l0, _) = net.loss_grad(&x, &labels, 5).unwrap();
        assert!(l0.is_finite());
        let g = net.grad.clone();
        let mask = net.train_mask();
        let h = 1e-6;
        let (mut num, mut den) = (0.0, 0.0);
        for t in net.layout.tensors.clone() {
            if !t.train {
                continue;
            }
            for _ in 0..3 {
                let k = t.offset + rng.random_range(0..t.len());
                assert!(mask[k]);
                let v = net.params[k];
                // BatchNorm's running statistics move on every training pass but do not enter
                // the training-mode output: the loss is a function of the trained entries only.
                net.params[k] = v + h;
                let lp = net.loss(&x, &labels, true, 5).unwrap().0;
                net.params[k] = v - h;
                let lm = net.loss(&x, &labels, true, 5).unwrap().0;
                net.params[k] = v;
                let fd = (lp - lm) / (2.0 * h);
                num += (g[k] - fd).powi(2);
                den += fd * fd;
            }
        }
        let rel = (num / den).sqrt();
        assert!(
            rel < 1e-6,
            "{arch:?} {norm:?} relu {relu}: relative error {rel:e}"
        );
    }
}

#[test]
fn same_bits_whatever_the_thread_count() {
    let input = Shape::new(1, 28, 28);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let b = 19;
    let x: Vec<f32> = (0..b * input.len())
        .map(|_| rng.random_range(-1.0..2.0))
        .collect();
    let labels: Vec<u8> = (0..b).map(|i| (i % 10) as u8).collect();
    let run = |threads: usize| {
        neurodyn::testing::on_threads(threads, || {
            let mut net = ArchSpec::new(Arch::SmallAlexnet, Norm::Divnorm, true)
                .build::<f32>(input)
                .unwrap();
            net.init(3);
            let l = net.loss_grad(&x, &labels, 9).unwrap();
            (l, net.grad.clone(), net.params.clone())
        })
    };
    let a = run(1);
    let b2 = run(3);
    assert_eq!(a.0, b2.0);
    assert!(a.1 == b2.1 && a.2 == b2.2);
}

/// PyTorch parity: the networks of `benches/peers/cnn_torch.py` (every layer type; the static
/// ORGaNICs network), built here from the same weights, give PyTorch's logits, loss, parameter
/// gradients and running statistics in float32 to 1e-5 (fixture `tests/fixtures/nn_torch.safetensors`,
/// made by `cnn_torch.py fixture`; no torch needed here).
mod torch_parity {
    use super::*;
    use neurodyn::tensor::safetensors::read_tensors;
    use std::path::Path;

    type Tensors = Vec<(String, Vec<usize>, Vec<f64>)>;

    fn get<'a>(t: &'a Tensors, name: &str) -> &'a [f64] {
        &t.iter()
            .find(|x| x.0 == name)
            .unwrap_or_else(|| panic!("fixture has no `{name}`"))
            .2
    }

    /// max |got − want| ≤ 1e-5 × max(max |want|, `floor`).
    fn close_to(what: &str, got: &[f32], want: &[f64], floor: f64) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(floor);
        let err = got
            .iter()
            .zip(want)
            .fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
        assert!(
            err / scale < 1e-5,
            "{what}: max |Δ| {err:e} (scale {scale:e})"
        );
    }

    fn close(what: &str, got: &[f32], want: &[f64]) {
        close_to(what, got, want, 1e-3)
    }

    fn check(tag: &str, mut net: Sequential<f32>, t: &Tensors) {
        for tensor in net.layout.tensors.clone() {
            let v = get(t, &format!("{tag}/{}", tensor.name));
            for (d, s) in net.params[tensor.range()].iter_mut().zip(v) {
                *d = *s as f32;
            }
        }
        let x: Vec<f32> = get(t, "input").iter().map(|v| *v as f32).collect();
        let labels: Vec<u8> = get(t, "labels").iter().map(|v| *v as u8).collect();
        let logits = net.forward(&x, labels.len(), true, 0).to_vec();
        close(
            &format!("{tag} logits"),
            &logits,
            get(t, &format!("{tag}.logits")),
        );
        let (loss, _) = net.loss_grad(&x, &labels, 0).unwrap();
        let want = get(t, &format!("{tag}.loss"))[0];
        assert!(
            (loss - want).abs() < 1e-5 * want.abs(),
            "{tag} loss {loss} vs {want}"
        );
        // Gradients relative to the largest gradient entry of the network: some are zero in exact
        // arithmetic (a divnorm γ in front of BatchNorm only rescales what BatchNorm normalizes).
        let trained: Vec<_> = net.layout.tensors.iter().filter(|t| t.train).collect();
        let global = trained
            .iter()
            .flat_map(|x| get(t, &format!("{tag}.grad/{}", x.name)).to_vec())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        for tensor in &trained {
            let g = &net.grad[tensor.range()];
            let name = format!("{tag}.grad/{}", tensor.name);
            close_to(
                &format!("{tag} ∂L/∂{}", tensor.name),
                g,
                get(t, &name),
                global,
            );
        }
        assert!(trained.len() >= 4);
    }

    #[test]
    fn conv_network_matches_pytorch() {
        let t = read_tensors(Path::new("tests/fixtures/nn_torch.safetensors")).unwrap();
        let s0 = Shape::new(1, 12, 12);
        let conv1 = Conv2d::new(s0, 4, 3, 1, 1).unwrap();
        let s1 = Layer::<f32>::out_shape(&conv1);
        let dn = DivNorm::new(s1, DivNormOptions::default()).unwrap();
        let pool1 = MaxPool2d::new(s1, 3, 2, 0).unwrap();
        let s2 = Layer::<f32>::out_shape(&pool1);
        let conv2 = Conv2d::new(s2, 8, 3, 2, 1).unwrap();
        let s3 = Layer::<f32>::out_shape(&conv2);
        let mut miller = MillerNorm::new(s3);
        miller.init = [0.7, 0.4, 0.8, 1.5];
        let pool2 = AvgPool2d::new(s3, 3, 2, 1, true).unwrap();
        let s4 = Layer::<f32>::out_shape(&pool2);
        assert_eq!(s4, Shape::new(8, 2, 2));
        let layers: Vec<(String, Box<dyn Layer<f32>>)> = vec![
            ("conv1".into(), Box::new(conv1)),
            ("relu1".into(), Box::new(Relu { shape: s1 })),
            ("divnorm1".into(), Box::new(dn)),
            ("bn1".into(), Box::new(BatchNorm2d::new(s1))),
            ("pool1".into(), Box::new(pool1)),
            ("conv2".into(), Box::new(conv2)),
            ("relu2".into(), Box::new(Relu { shape: s3 })),
            ("miller2".into(), Box::new(miller)),
            ("bn2".into(), Box::new(BatchNorm2d::new(s3))),
            ("pool2".into(), Box::new(pool2)),
            ("fc".into(), Box::new(Linear::new(s4, 10).unwrap())),
        ];
        let net = Sequential::new(s0, layers).unwrap();
        check("conv", net, &t);
    }

    #[test]
    fn batchnorm_running_statistics_match_pytorch() {
        let t = read_tensors(Path::new("tests/fixtures/nn_torch.safetensors")).unwrap();
        // One training pass from the fixture's initial buffers (mean 0, var 1) gives torch's
        // running statistics: rebuild the first block and compare bn1's buffers.
        let s0 = Shape::new(1, 12, 12);
        let conv1 = Conv2d::new(s0, 4, 3, 1, 1).unwrap();
        let s1 = Layer::<f32>::out_shape(&conv1);
        let layers: Vec<(String, Box<dyn Layer<f32>>)> = vec![
            ("conv1".into(), Box::new(conv1)),
            ("relu1".into(), Box::new(Relu { shape: s1 })),
            (
                "divnorm1".into(),
                Box::new(DivNorm::new(s1, DivNormOptions::default()).unwrap()),
            ),
            ("bn1".into(), Box::new(BatchNorm2d::new(s1))),
        ];
        let mut net = Sequential::new(s0, layers).unwrap();
        for tensor in net.layout.tensors.clone() {
            let v = get(&t, &format!("conv/{}", tensor.name));
            for (d, s) in net.params[tensor.range()].iter_mut().zip(v) {
                *d = *s as f32;
            }
        }
        let x: Vec<f32> = get(&t, "input").iter().map(|v| *v as f32).collect();
        net.forward(&x, 6, true, 0);
        for name in ["bn1.running_mean", "bn1.running_var"] {
            let r = net.layout.get(name).unwrap().range();
            close(name, &net.params[r], get(&t, &format!("conv.after/{name}")));
        }
    }

    #[test]
    fn static_organics_network_matches_pytorch() {
        let t = read_tensors(Path::new("tests/fixtures/nn_torch.safetensors")).unwrap();
        let s0 = Shape::new(1, 12, 12);
        let org = StaticOrganics::new(s0, 16, 0.5).unwrap();
        let layers: Vec<(String, Box<dyn Layer<f32>>)> = vec![
            ("organics".into(), Box::new(org)),
            (
                "fc".into(),
                Box::new(Linear::new(Shape::new(16, 1, 1), 10).unwrap()),
            ),
        ];
        check("organics", Sequential::new(s0, layers).unwrap(), &t);
    }
}

/// `train-cnn` end to end on the bundled MNIST slice: ≥ 90 % test accuracy in three epochs, a
/// killed-and-resumed run equal bit for bit to an uninterrupted one, tables pandas/polars read,
/// and bad input refused with exit 2 and nothing written.
mod train_cnn {
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
        let (ca, na) =
            load::<f32>(&std::path::Path::new(a).join("checkpoint.safetensors")).unwrap();
        let (cb, nb) =
            load::<f32>(&std::path::Path::new(b).join("checkpoint.safetensors")).unwrap();
        assert_eq!(ca, cb);
        assert!(na.params == nb.params, "resumed weights differ");
        let df =
            neurodyn::io::read_parquet(&std::path::Path::new(a).join("metrics.parquet")).unwrap();
        assert_eq!(df.nrows(), 3);
        let acc = df.f64s("test_accuracy").unwrap();
        let last = acc[2];
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
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("another configuration"), "{err}");
        // Named, and only it: a rerun may ask for more epochs.
        assert!(
            err.contains("it differs in model.norm (stored \"divnorm\", asked \"batchnorm\")"),
            "{err}"
        );
        assert!(!err.contains("epochs ("), "{err}");
    }

    /// The paper's static ORGaNICs network on the bundled slice: it learns (the loss, which
    /// includes the reconstruction error, falls; 4 epochs reach ≥ 40 % from 10 % chance), its
    /// checkpoint holds the decoder under PyTorch's names, and `predict` — raw grey levels, as
    /// this architecture reads them — reproduces the test accuracy the run reported.
    #[test]
    fn organics_autoencoder_learns_and_predicts_as_trained() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ae");
        let o = run(&[
            "--arch",
            "organics-autoencoder",
            "--norm",
            "none",
            "--batch",
            "32",
            "--lr",
            "0.003",
            "--epochs",
            "4",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let df = neurodyn::io::read_parquet(&out.join("metrics.parquet")).unwrap();
        let (loss, acc) = (
            df.f64s("train_loss").unwrap(),
            df.f64s("test_accuracy").unwrap(),
        );
        assert!(loss[3] < 0.8 * loss[0], "train loss {loss:?}");
        assert!(acc[3] >= 0.4, "test accuracy {acc:?}");
        let ckpt = out.join("checkpoint.safetensors");
        let (_, net) = load::<f32>(&ckpt).unwrap();
        for t in [
            "autoencoder.encoder.0.weight",
            "autoencoder.decoder.4.bias",
            "organics2.log_W",
        ] {
            assert!(net.layout.get(t).is_some(), "{t}");
        }
        let test = neurodyn::data::digits::Digits::bundled(false).unwrap();
        let b = test.len();
        let px: Vec<f64> = test.images.iter().map(|&v| v as f64 / 255.0).collect();
        let logits = neurodyn::nn::fit::predict(&ckpt, &px, b).unwrap();
        let correct = (0..b)
            .filter(|&s| {
                let row = &logits[s * 10..(s + 1) * 10];
                let arg = (0..10).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap();
                arg == test.labels[s] as usize
            })
            .count();
        let got = correct as f64 / b as f64;
        assert!(
            (got - acc[3]).abs() < 1e-9,
            "predict {got} vs reported {}",
            acc[3]
        );
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
}

/// The fused conv + ReLU equals the two layers (forward and backward), and passes the FD check.
#[test]
fn fused_relu_convolution_equals_conv_then_relu() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let s = Shape::new(2, 6, 5);
    let plain = Conv2d::new(s, 3, 3, 1, 1).unwrap();
    let fused = plain.clone().with_relu();
    let p = params_of(&plain, 4, 0.2);
    let b = 3;
    let x = rand_vec(b * s.len(), &mut rng, -1.0, 1.0);
    check_layer(
        "fused conv+relu",
        &fused,
        b,
        &mut p.clone(),
        x.clone(),
        true,
    );
    let out = Layer::<f64>::out_shape(&plain);
    let layers: Vec<(String, Box<dyn Layer<f64>>)> = vec![
        ("conv1".into(), Box::new(plain)),
        ("relu".into(), Box::new(Relu { shape: out })),
    ];
    let mut two = Sequential::new(s, layers).unwrap();
    two.params.copy_from_slice(&p);
    let mut one = Sequential::new(
        s,
        vec![("conv1".to_string(), Box::new(fused) as Box<dyn Layer<f64>>)],
    )
    .unwrap();
    one.params.copy_from_slice(&p);
    assert_eq!(
        two.forward(&x, b, true, 0).to_vec(),
        one.forward(&x, b, true, 0).to_vec()
    );
    let d = rand_vec(b * out.len(), &mut rng, -1.0, 1.0);
    two.backward(&d, b);
    one.backward(&d, b);
    assert_eq!(two.grad, one.grad);
}
