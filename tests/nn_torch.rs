//! PyTorch parity: the networks of `benches/peers/cnn_torch.py` (every layer type; the static
//! ORGaNICs network), built here from the same weights, give PyTorch's logits, loss, parameter
//! gradients and running statistics in float32 to 1e-5 (fixture `tests/fixtures/nn_torch.safetensors`,
//! made by `cnn_torch.py fixture`; no torch needed here).

use neurodyn::nn::divnorm::DivNormOptions;
use neurodyn::nn::*;
use neurodyn::train::checkpoint::read_tensors;
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
