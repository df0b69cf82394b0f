//! The differentiable CordsNet (BPTT): its forward pass is the model's protocol, and its
//! hand-derived gradient matches central finite differences in f64.

use neurodyn::cordsnet::train::{Bptt, Protocol};
use neurodyn::cordsnet::{Arch, CordsNet};
use rand::{Rng, SeedableRng};

/// Depth 4 (identity skip at layer 2, projection at layer 3), 12 × 12 images → 3 × 3 grids.
fn tiny() -> Arch {
    Arch {
        img_channels: 1,
        img_size: 12,
        stem: 2,
        channels: vec![2, 2, 3, 3],
        strides: vec![1, 1, 2, 1],
        classes: 3,
        alpha: 0.2,
        tau: 10.0,
    }
}

fn batch(b: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x = (0..b * d).map(|_| rng.random_range(-1.0..1.5)).collect();
    let y = (0..b).map(|_| rng.random_range(0..3u8)).collect();
    (x, y)
}

fn random_net(seed: u64) -> Bptt<f64> {
    let mut net = Bptt::<f64>::new(tiny()).unwrap();
    net.init(seed, 0.9);
    // Non-zero biases, so that units sit on both sides of the ReLU.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
    for t in net.layout.tensors.clone() {
        if t.name.starts_with("conv_bias") || t.name == "out_fc.bias" {
            for v in &mut net.params[t.range()] {
                *v = rng.random_range(-0.5..0.5);
            }
        }
    }
    net
}

#[test]
fn the_unrolled_relu_network_is_the_model_protocol() {
    let net = random_net(3);
    let model: CordsNet = net.to_net().unwrap();
    let (x, y) = batch(3, 144, 4);
    let proto = Protocol {
        spont: 7,
        stim: 9,
        post: 0,
        ramp: 1,
        window: 0,
        stability: 0.0,
    };
    let got = net.evaluate(&x, &y, 0.0, &proto).unwrap();
    for s in 0..3 {
        let run = model.run(&x[s * 144..(s + 1) * 144], 7, 9).unwrap();
        for k in 0..3 {
            let d = (got.logits[s * 3 + k] - run.logits[k]).abs();
            assert!(d < 1e-12, "sample {s} class {k}: {d:e}");
        }
    }
    // And back: Bptt::from_net reproduces the parameters bit for bit.
    let again = Bptt::<f64>::from_net(&model).unwrap();
    assert_eq!(again.params, net.params);
}

#[test]
fn bptt_gradient_matches_finite_differences() {
    // The stability term's baseline r(spont) is a constant of the loss (no gradient flows into
    // it, spec A.7), which a finite difference cannot hold fixed when spont > 0: so one protocol
    // tests the stability term from r = 0, the other the spontaneous phase without it.
    let with_post = Protocol {
        spont: 0,
        stim: 5,
        post: 4,
        ramp: 3,
        window: 3,
        stability: 0.5,
    };
    let with_spont = Protocol {
        spont: 3,
        post: 2,
        stability: 0.0,
        ..with_post
    };
    for (slope, seed, proto) in [
        (1.0, 1u64, with_post),
        (0.3, 2, with_post),
        (0.0, 5, with_post),
        (0.3, 6, with_spont),
        (0.0, 7, with_spont),
    ] {
        let mut net = random_net(seed);
        let (x, y) = batch(3, 144, seed + 10);
        let res = net.loss_grad(&x, &y, slope, &proto).unwrap();
        assert!(res.cross_entropy > 0.0);
        assert_eq!(res.stability > 0.0, proto.stability > 0.0);
        let g = net.grad.clone();
        let h = 1e-6;
        let (mut worst, mut scale) = (0.0f64, 0.0f64);
        for k in 0..net.params.len() {
            let p0 = net.params[k];
            net.params[k] = p0 + h;
            let lp = net.evaluate_loss(&x, &y, slope, &proto).unwrap();
            net.params[k] = p0 - h;
            let lm = net.evaluate_loss(&x, &y, slope, &proto).unwrap();
            net.params[k] = p0;
            let fd = (lp - lm) / (2.0 * h);
            worst = worst.max((fd - g[k]).abs());

            scale = scale.max(g[k].abs());
        }
        assert!(scale > 1e-3, "gradient too small to test: {scale}");
        assert!(
            worst / scale < 1e-6,
            "slope {slope}: max |fd − g| = {worst:e}, max |g| = {scale:e}"
        );
    }
}
