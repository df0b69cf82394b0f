//! CordsNet's convolutions where the analyses spend their time: the flow's right-hand side and
//! its Jacobian-vector product on the MNIST network (1296 units) and its wide variant, and the
//! spectra operator (one D·K application) on R8-sized layers (64 × 56 × 56 and 512 × 7 × 7).
//!
//! cargo bench --bench cordsnet

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::cordsnet::conv::ConvOperator;
use neurodyn::cordsnet::{Arch, CordsNet};
use neurodyn::krylov::LinearOperator;
use neurodyn::model::Model;
use rand::{Rng, SeedableRng};

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for (name, arch) in [("mnist", Arch::mnist()), ("mnist-wide", Arch::mnist_wide())] {
        let net = CordsNet::random(arch, 1, 0.5).unwrap();
        let img: Vec<f64> = (0..28 * 28).map(|_| rng.random_range(-1.0..1.0)).collect();
        let r = net.run(&img, 0, 30).unwrap().state;
        let h = net.stem_forward(&img).unwrap();
        let flow = net.flow(&h);
        let n = flow.dim();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut out = vec![0.0; n];
        c.bench_function(&format!("cordsnet {name} stem"), |b| {
            b.iter(|| net.stem_forward(&img).unwrap())
        });
        c.bench_function(&format!("cordsnet {name} rhs"), |b| {
            b.iter(|| flow.rhs(0.0, &r, &mut out))
        });
        // The JVP at a fixed state (D cached after the first call, as in the Krylov solvers).
        c.bench_function(&format!("cordsnet {name} jvp"), |b| {
            b.iter(|| flow.jvp(0.0, &r, &v, &mut out))
        });
    }
    for (name, ch, size) in [("64x56x56", 64, 56), ("512x7x7", 512, 7)] {
        let k: Vec<f64> = (0..ch * ch * 9)
            .map(|_| rng.random_range(-1.0..1.0) / (3.0 * (ch as f64).sqrt()))
            .collect();
        let op = ConvOperator::new(k, ch, 3, size, size).unwrap();
        let x: Vec<f64> = (0..op.dim()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut y = vec![0.0; op.dim()];
        let mut g = c.benchmark_group("cordsnet operator");
        g.sample_size(20);
        g.bench_function(name, |b| b.iter(|| op.apply(&x, &mut y)));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
