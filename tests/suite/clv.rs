//! Covariant Lyapunov vectors (Ginelli et al. 2007): the exact linear case, invariance under the
//! tangent dynamics, growth rates that reproduce the exponents, the flow direction as the neutral
//! vector, partial sets.

use faer::Mat;
use neurodyn::lyapunov::{
    covariant_vectors_flow, covariant_vectors_map, ClvOptions, LyapunovOptions,
};
use neurodyn::model::{Activation, FlowFn, Map, MapFn, Model, RnnMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn window(forward: usize, window: usize, backward: usize) -> ClvOptions {
    ClvOptions {
        forward,
        window,
        backward,
    }
}

/// |cos| of the angle between two vectors.
fn cos(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    (dot / (na * nb)).abs()
}

fn col(m: &Mat<f64>, j: usize) -> Vec<f64> {
    (0..m.nrows()).map(|i| m[(i, j)]).collect()
}

/// A constant non-normal linear map: the covariant vectors are its eigenvectors (not orthogonal),
/// the exponents ln|eigenvalues|, the angle between them the eigenvectors' angle.
#[test]
fn linear_map_gives_its_eigenvectors_and_their_angle() {
    let a = Mat::from_fn(2, 2, |i, j| [[0.9, 1.0], [0.0, 0.3]][i][j]);
    let map = RnnMap::new(a, Activation::Linear).unwrap();
    let c = covariant_vectors_map(
        &map,
        &[1.0, 1.0],
        &LyapunovOptions::new(),
        &window(50, 100, 50),
    )
    .unwrap();
    assert!(
        (c.exponents[0] - 0.9f64.ln()).abs() < 1e-12,
        "{:?}",
        c.exponents
    );
    assert!(
        (c.exponents[1] - 0.3f64.ln()).abs() < 1e-12,
        "{:?}",
        c.exponents
    );
    let e2 = [1.0, -0.6];
    for v in &c.vectors {
        assert!((cos(&col(v, 0), &[1.0, 0.0]) - 1.0).abs() < 1e-14);
        assert!((cos(&col(v, 1), &e2) - 1.0).abs() < 1e-14);
    }
    // Both exponents negative: no expanding subspace, no angle; the vectors' own angle is fixed.
    assert!(c.angles.is_empty() && c.unstable.is_empty());
    let angle = cos(&col(&c.vectors[7], 0), &col(&c.vectors[7], 1)).acos();
    assert!((angle - (1.0f64 / (1.0f64 + 0.36).sqrt()).acos()).abs() < 1e-14);
}

/// Hénon (a = 1.4, b = 0.3): D(h_m) v_j(m) ∝ v_j(m+1) to 1e-8, and the covariant vectors' growth
/// rates are the exponents (0.41922, −1.62319; Sprott 2003) and the QR method's on the window.
#[test]
fn henon_vectors_are_carried_onto_themselves_and_grow_at_the_exponents() {
    let henon = MapFn::new(2, |_t, h| {
        let (x, y) = (h[0], h[1]);
        h[0] = 1.0 - 1.4 * x * x + y;
        h[1] = 0.3 * x;
    })
    .with_jacobian(|_t, h, mut d| {
        d[(0, 0)] = -2.8 * h[0];
        d[(0, 1)] = 1.0;
        d[(1, 0)] = 0.3;
        d[(1, 1)] = 0.0;
    });
    let opts = LyapunovOptions::new().warmup(1000);
    let c = covariant_vectors_map(&henon, &[0.1, 0.1], &opts, &window(200, 20_000, 200)).unwrap();
    let mut d = Mat::<f64>::zeros(2, 2);
    let mut worst: f64 = 0.0;
    for m in 0..c.vectors.len() - 1 {
        henon.jacobian(m, &c.states[m], d.as_mut());
        for j in 0..2 {
            let pushed = d.as_ref() * faer::Col::from_fn(2, |i| c.vectors[m][(i, j)]).as_ref();
            let pushed: Vec<f64> = (0..2).map(|i| pushed[i]).collect();
            worst = worst.max(1.0 - cos(&pushed, &col(&c.vectors[m + 1], j)));
        }
    }
    assert!(worst < 1e-8, "invariance defect {worst:e}");
    assert!((c.exponents[0] - 0.41922).abs() < 0.01, "{:?}", c.exponents);
    assert!((c.exponents[1] + 1.62319).abs() < 0.01, "{:?}", c.exponents);
    for j in 0..2 {
        assert!((c.exponents[j] - c.qr_exponents[j]).abs() < 1e-3, "{c:?}");
    }
    // One expanding and one contracting direction, never parallel, sometimes nearly so
    // (the homoclinic tangencies of the Hénon attractor).
    assert_eq!(
        (c.unstable.as_slice(), c.stable.as_slice()),
        (&[0][..], &[1][..])
    );
    let min = c.angles.iter().cloned().fold(f64::INFINITY, f64::min);
    let mean = c.angles.iter().sum::<f64>() / c.angles.len() as f64;
    assert!(
        min > 0.0 && min < 0.05 && mean > 0.3,
        "min {min}, mean {mean}"
    );
}

/// Lorenz: the vector with the zero exponent is the flow direction f(x(t)), the three growth
/// rates are (0.9056, 0, −14.5723) (Sprott 2003), and the expanding/contracting angle is defined.
#[test]
fn lorenz_neutral_vector_is_the_flow_direction() {
    let (s, r, b) = (10.0, 28.0, 8.0 / 3.0);
    let f = move |x: &[f64], dx: &mut [f64]| {
        dx[0] = s * (x[1] - x[0]);
        dx[1] = x[0] * (r - x[2]) - x[1];
        dx[2] = x[0] * x[1] - b * x[2];
    };
    let lorenz = FlowFn::new(3, move |_t, x, dx| f(x, dx)).with_jacobian(move |_t, x, mut j| {
        let rows = [[-s, s, 0.0], [r - x[2], -1.0, -x[0]], [x[1], x[0], -b]];
        for (i, row) in rows.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                j[(i, k)] = *v;
            }
        }
    });
    let opts = LyapunovOptions::new().dt(0.005).warmup(4000).reorth(4);
    let c = covariant_vectors_flow(
        &lorenz,
        &[1.0, 1.0, 20.0],
        &opts,
        &window(500, 40_000, 1000),
    )
    .unwrap();
    assert_eq!(c.neutral, vec![1]);
    let mut dx = vec![0.0; 3];
    let mut worst: f64 = 0.0;
    for (x, v) in c.states.iter().zip(&c.vectors) {
        lorenz.rhs(0.0, x, &mut dx);
        worst = worst.max(1.0 - cos(&dx, &col(v, 1)));
    }
    assert!(worst < 1e-8, "flow direction defect {worst:e}");
    let want = [0.9056, 0.0, -14.5723];
    for j in 0..3 {
        assert!((c.exponents[j] - want[j]).abs() < 0.1, "{:?}", c.exponents);
    }
    assert!(c.exponents[1].abs() < 0.01, "{:?}", c.exponents);
    assert_eq!(c.angles.len(), c.vectors.len());
    assert!(c
        .angles
        .iter()
        .all(|&a| a > 0.0 && a <= std::f64::consts::FRAC_PI_2 + 1e-12));
}

/// A chaotic tanh RNN map (N = 24, g = 3): the 4 leading covariant vectors from the 4 leading
/// Gram–Schmidt vectors alone are carried onto themselves, and agree with the full set's.
#[test]
fn partial_sets_are_exact_heads_of_the_full_set() {
    let n = 24;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let w = Mat::from_fn(n, n, |_, _| {
        3.0 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
            / (n as f64).sqrt()
    });
    let map = RnnMap::new(w, Activation::Tanh).unwrap();
    let h0 = vec![0.3; n];
    let base = LyapunovOptions::new().warmup(500);
    let win = window(300, 200, 300);
    let part = covariant_vectors_map(&map, &h0, &base.clone().k(4), &win).unwrap();
    let full = covariant_vectors_map(&map, &h0, &base, &win).unwrap();
    let mut d = Mat::<f64>::zeros(n, n);
    let mut worst: f64 = 0.0;
    for m in 0..part.vectors.len() - 1 {
        map.jacobian(m, &part.states[m], d.as_mut());
        for j in 0..4 {
            let v = faer::Col::from_fn(n, |i| part.vectors[m][(i, j)]);
            let pushed = d.as_ref() * v.as_ref();
            let pushed: Vec<f64> = (0..n).map(|i| pushed[i]).collect();
            worst = worst.max(1.0 - cos(&pushed, &col(&part.vectors[m + 1], j)));
            assert!((cos(&col(&part.vectors[m], j), &col(&full.vectors[m], j)) - 1.0).abs() < 1e-8);
        }
    }
    assert!(worst < 1e-8, "invariance defect {worst:e}");
    assert!(part.exponents[0] > 0.0, "{:?}", part.exponents);
    for j in 0..4 {
        assert!((part.exponents[j] - full.exponents[j]).abs() < 1e-8);
    }
}

#[test]
fn bad_windows_are_refused_naming_the_field() {
    let a = Mat::from_fn(2, 2, |i, j| [[0.5, 0.0], [0.0, 0.2]][i][j]);
    let map = RnnMap::new(a, Activation::Linear).unwrap();
    let e = covariant_vectors_map(&map, &[1.0, 1.0], &LyapunovOptions::new(), &window(1, 1, 1))
        .unwrap_err();
    assert!(e.to_string().contains("`window`"), "{e}");
    let huge = window(1, 1 << 40, 1);
    let e = covariant_vectors_map(&map, &[1.0, 1.0], &LyapunovOptions::new(), &huge).unwrap_err();
    assert!(e.to_string().contains("`window`"), "{e}");
}
