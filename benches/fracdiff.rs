//! Fractional-derivative benchmarks on the peers' problem (`../shared/peers/fracdiff.py`):
//! Grünwald–Letnikov D^0.5 of t² on linspace(0, 1, N), N = 10³ … 10⁶. Prints the error at t = 1
//! against the exact value and, up to N = 10⁴, the largest difference to the direct O(N²) sum.
//! Run `benches/compare_fracdiff.sh` to get the peers in the same run.

use criterion::{criterion_group, criterion_main, Criterion};
use neurodyn::fracdiff::{fracdiff, fracdiff_direct, power_derivative, Operator, Scheme};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fracdiff_gl");
    g.sample_size(10);
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let h = 1.0 / (n - 1) as f64;
        let f: Vec<f64> = (0..n).map(|k| (k as f64 * h).powi(2)).collect();
        let d = fracdiff(&f, 0.5, h, Scheme::GrunwaldLetnikov).unwrap();
        let err1 = d[n - 1] - power_derivative(2.0, 0.5, 1.0);
        let vs_direct = if n <= 10_000 {
            let dd = fracdiff_direct(&f, 0.5, h, Scheme::GrunwaldLetnikov).unwrap();
            format!(
                "{:.2e}",
                d.iter()
                    .zip(&dd)
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            )
        } else {
            "-".into()
        };
        eprintln!("N = {n}: error at t = 1 = {err1:.4e}, max |fft − direct| = {vs_direct}");
        g.bench_function(format!("fft_N{n}"), |b| {
            b.iter(|| fracdiff(black_box(&f), 0.5, h, Scheme::GrunwaldLetnikov).unwrap())
        });
        let op = Operator::new(0.5, h, n, Scheme::GrunwaldLetnikov).unwrap();
        // The floor of a prepared operator: one real FFT of the zero-padded input and one
        // inverse, of the operators' length (the spectrum product and the copies are O(N)).
        let len = neurodyn::fracdiff::fast_len(2 * n - 1);
        let mut planner = realfft::RealFftPlanner::<f64>::new();
        let (fwd, inv) = (planner.plan_fft_forward(len), planner.plan_fft_inverse(len));
        let (mut buf, mut spec) = (vec![0.0; len], fwd.make_output_vec());
        g.bench_function(format!("floor_fft_pair_N{n}"), |b| {
            b.iter(|| {
                buf[..n].copy_from_slice(&f);
                buf[n..].fill(0.0);
                fwd.process(&mut buf, &mut spec).unwrap();
                spec[0].im = 0.0;
                if let Some(last) = spec.last_mut() {
                    last.im = 0.0;
                }
                inv.process(&mut spec, &mut buf).unwrap();
            })
        });
        // The floor of the one-shot call: the weights' recurrence and three transforms (the
        // weights', the signal's, the inverse) into buffers allocated once; the two forward
        // transforms on two threads from N = 250,000 on, as `fracdiff` runs them.
        let wts = |w: &mut [f64]| {
            for (j, v) in w.iter_mut().enumerate().skip(1) {
                *v = (j as f64 - 1.5) / j as f64;
            }
            w[0] = 1.0;
            let mut c = 1.0;
            for v in &mut w[1..] {
                c *= *v;
                *v = c;
            }
        };
        let (mut kbuf, mut kspec) = (vec![0.0; len], fwd.make_output_vec());
        let (mut ksc, mut gsc) = (fwd.make_scratch_vec(), fwd.make_scratch_vec());
        g.bench_function(format!("floor_one_shot_N{n}"), |b| {
            b.iter(|| {
                let mut kernel_side = || {
                    wts(&mut kbuf[..n]);
                    kbuf[n..].fill(0.0);
                    fwd.process_with_scratch(&mut kbuf, &mut kspec, &mut ksc)
                        .unwrap();
                };
                let mut signal_side = || {
                    buf[..n].copy_from_slice(&f);
                    buf[n..].fill(0.0);
                    fwd.process_with_scratch(&mut buf, &mut spec, &mut gsc)
                        .unwrap();
                };
                if n >= 250_000 {
                    std::thread::scope(|s| {
                        s.spawn(kernel_side);
                        signal_side();
                    });
                } else {
                    kernel_side();
                    signal_side();
                }
                for (a, k) in spec.iter_mut().zip(&kspec) {
                    *a *= *k;
                }
                spec[0].im = 0.0;
                if let Some(last) = spec.last_mut() {
                    last.im = 0.0;
                }
                inv.process(&mut spec, &mut buf).unwrap();
            })
        });
        g.bench_function(format!("prepared_N{n}"), |b| {
            b.iter(|| op.apply(black_box(&f)).unwrap())
        });
        if n <= 10_000 {
            g.bench_function(format!("direct_N{n}"), |b| {
                b.iter(|| fracdiff_direct(black_box(&f), 0.5, h, Scheme::GrunwaldLetnikov).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
