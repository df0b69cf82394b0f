//! The LIF network of Kim, Li & Sejnowski (2019) against closed forms and the reference values of
//! its per-step algorithm (single neuron, synaptic kernel, a two-unit circuit), and the
//! bookkeeping of trials and grid.

use neurodyn::faer::Mat;
use neurodyn::spiking::lif::{LifState, BASE_DT};
use neurodyn::spiking::{
    lif_correct, lif_trial, simulate, InitialVoltage, Neuron, SimOptions, SpikingNetwork,
};
use neurodyn::train::Task;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn quiet(v0: Vec<f64>, freeze: bool) -> SimOptions {
    let mut o = SimOptions::new(Neuron::Lif);
    o.noise = false;
    o.initial_refractory = freeze;
    o.v0 = InitialVoltage::Given(v0);
    o
}

/// One input u = 1 held constant; `ext` is each unit's external current W^in.
fn net(w: Vec<Vec<f64>>, ext: Vec<f64>, tau_d: f64, w_out: Vec<f64>) -> SpikingNetwork {
    let n = ext.len();
    SpikingNetwork::new(
        Mat::from_fn(n, n, |i, j| w[i][j]),
        Mat::from_fn(n, 1, |i, _| ext[i]),
        vec![tau_d; n],
        w_out,
    )
    .unwrap()
}

fn ones(columns: usize) -> Vec<Vec<f64>> {
    vec![vec![1.0]; columns]
}

#[test]
fn x3_single_neuron_constant_input() {
    // I = bias + ext = −40 + 10 = −30 mV, v0 = −65, noise off.
    let nw = net(vec![vec![0.0]], vec![10.0], 0.035, vec![0.0]);
    let tr = simulate(&nw, &ones(201), &quiet(vec![-65.0], true), 0).unwrap();
    assert_eq!(tr.steps, 20_000);
    let s = tr.train(0);
    assert_eq!(
        s[0], 290,
        "first spike (i_last = 0 freezes the first 40 steps)"
    );
    assert!(s.windows(2).all(|w| w[1] - w[0] == 290), "ISI 290 steps");
    assert_eq!(s.len(), 68);
    // The discrete ISI (14.5 ms) is within one step of the continuous one, t_ref + τ_m ln 3.5.
    let analytic = 0.002 + 0.010 * 3.5f64.ln();
    assert!((analytic - 14.527_629_684_953_7e-3).abs() < 1e-15);
    assert!((290.0 * BASE_DT - analytic).abs() < BASE_DT);
    assert!((1.0 / analytic - 68.834_353_689_212_2).abs() < 1e-9);
    // Without the initial freeze: first spike after k = ⌈ln(10/35)/ln(0.995)⌉ = 250 steps, then
    // the integer gate gives 290 throughout.
    let tr = simulate(&nw, &ones(201), &quiet(vec![-65.0], false), 0).unwrap();
    let s = tr.train(0);
    assert_eq!(s[0], 250);
    assert!(s.windows(2).all(|w| w[1] - w[0] == 290));
    // No firing when I ≤ v_th: ext = 0 leaves v below threshold for ever.
    let nw0 = net(vec![vec![0.0]], vec![0.0], 0.035, vec![0.0]);
    let tr = simulate(&nw0, &ones(201), &quiet(vec![-65.0], false), 0).unwrap();
    assert!(tr.spikes.is_empty());
}

#[test]
fn x4_double_exponential_kernel() {
    let (tr_, td) = (2.0f64, 35.0f64);
    // Analytic kernel (ms): peak time and value; unit area.
    let t_star = tr_ * td * (td / tr_).ln() / (td - tr_);
    assert!((t_star - 6.071_335_201_971_6).abs() < 1e-12);
    let k = |t: f64| ((-t / td).exp() - (-t / tr_).exp()) / (td - tr_);
    assert!((k(t_star) - 0.024_021_289_447_054).abs() < 1e-14);
    // The discrete filter: one spike at step 1 (v0 above threshold; ext 0, so never again).
    let nw = net(vec![vec![0.0]], vec![0.0], td * 1e-3, vec![1.0]);
    let tr = simulate(&nw, &ones(401), &quiet(vec![-39.0], true), 0).unwrap();
    assert_eq!(tr.spikes, vec![(0, 1)]);
    // r(n) = r after step 1 + n, in 1/s (the reference values are per ms).
    let r = |n: usize| tr.output[n]; // output[i − 1] is step i; step 1 + n ↦ index n
    assert!((r(1) - 0.714_285_714_285_714).abs() < 1e-12);
    assert!((r(100) - 24.097_387_607_672_3).abs() < 1e-10);
    let (n_peak, peak) =
        tr.output
            .iter()
            .enumerate()
            .fold((0, 0.0), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
    assert_eq!(n_peak, 121);
    assert!((peak - 24.340_177_233_936_2).abs() < 1e-10);
    let area: f64 = tr.output.iter().sum::<f64>() * BASE_DT;
    assert!((area - 1.013_275_506_481_2).abs() < 1e-10, "{area}");
}

#[test]
fn x5_two_unit_circuit() {
    // Unit 0 → unit 1 with weight 0.5; currents (bias + ext): unit 0 −30, unit 1 −45.
    let nw = net(
        vec![vec![0.0, 0.0], vec![0.5, 0.0]],
        vec![10.0, -5.0],
        0.035,
        vec![1.0, 0.0],
    );
    let opts = quiet(vec![-65.0, -65.0], true);
    let mut rng = neurodyn::spiking::lif::NoiseRng::new(0);
    let mut st = LifState::new(&nw, &opts, &mut rng).unwrap();
    let ext = [10.0, -5.0];
    let (mut s0, mut s1) = (vec![], vec![]);
    let checks: [(usize, f64, f64); 5] = [
        (290, 0.0, -50.712_157_611_280_6),
        (291, 0.357_142_857_142_857, -50.683_596_823_224_2),
        (292, 0.704_957_985_900_782, -50.653_393_124_822_3),
        (300, 3.178_241_111_100_98, -50.358_909_777_629_4),
        (400, 12.138_679_148_706, -44.305_290_292_252_4),
    ];
    for i in 1..=1800usize {
        let spk = st.step(&nw, &ext, None, None).to_vec();
        st.reset_spiking();
        for j in spk {
            if j == 0 {
                s0.push(i)
            } else {
                s1.push(i)
            }
        }
        for &(at, ipsc, v) in &checks {
            if at == i {
                assert!(
                    (st.ipsc[1] - ipsc).abs() < 1e-10,
                    "IPSC₁ at {i}: {}",
                    st.ipsc[1]
                );
                assert!((st.v[1] - v).abs() < 1e-10, "v₁ at {i}: {}", st.v[1]);
            }
        }
        if i == 291 {
            assert!((st.r[0] - 0.714_285_714_285_714).abs() < 1e-12);
        }
        if i == 400 {
            assert!((st.r[0] - 24.277_358_297_412_1).abs() < 1e-10);
        }
    }
    assert_eq!(s0, vec![290, 580, 870, 1160, 1450, 1740]);
    assert_eq!(s1[..6], [498, 749, 968, 1180, 1362, 1542]);
}

#[test]
fn x6_trial_bookkeeping_and_criteria() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut seen_go = false;
    for _ in 0..20 {
        let (cols, (u, z, label)) = lif_trial(Task::GoNoGo, &mut rng).unwrap();
        assert_eq!(cols.len(), 201);
        assert_eq!(u.len(), 200);
        if label > 0.5 {
            seen_go = true;
            assert_eq!(cols.iter().map(|c| c[0]).sum::<f64>(), 25.0);
            assert_eq!(z.iter().sum::<f64>(), 125.0);
            assert!(
                cols[50][0] == 1.0
                    && cols[74][0] == 1.0
                    && cols[75][0] == 0.0
                    && cols[49][0] == 0.0
            );
        }
    }
    assert!(seen_go);
    let (cols, (_, z, _)) = lif_trial(Task::Xor, &mut rng).unwrap();
    assert_eq!(cols.len(), 301);
    assert_eq!(z.iter().filter(|v| **v != 0.0).count(), 100);
    assert!(z[170] != 0.0 && z[269] != 0.0 && z[169] == 0.0 && z[270] == 0.0);
    let (cols, (_, z, _)) = lif_trial(Task::Mante, &mut rng).unwrap();
    assert_eq!(cols.len(), 501);
    assert_eq!(z.iter().filter(|v| **v != 0.0).count(), 250);
    assert_eq!(
        cols[500][2] + cols[500][3],
        1.0,
        "the context lasts the whole trial"
    );
    // 20,000 / 30,000 / 50,000 steps of 0.05 ms.
    let o = SimOptions::default();
    assert_eq!(
        (o.steps(201), o.steps(301), o.steps(501)),
        (20_000, 30_000, 50_000)
    );
    // Criteria windows: Go/NoGo from step 10,000 (t = 0.5 s) on.
    let mut out = vec![0.0; 20_000];
    out[9_998] = 1.0; // step 9,999: before the window
    assert!(!lif_correct(Task::GoNoGo, &out, BASE_DT, 1.0));
    assert!(lif_correct(Task::GoNoGo, &out, BASE_DT, 0.0));
    out[9_999] = 1.0; // step 10,000
    assert!(lif_correct(Task::GoNoGo, &out, BASE_DT, 1.0));
    assert!(!lif_correct(Task::GoNoGo, &out, BASE_DT, 0.0));
    // NoGo ignores negative excursions (no absolute value in the LIF criterion).
    let neg = vec![-5.0; 20_000];
    assert!(lif_correct(Task::GoNoGo, &neg, BASE_DT, 0.0));
    let mut x = vec![0.0; 30_000];
    x[19_999] = -0.8;
    assert!(lif_correct(Task::Xor, &x, BASE_DT, -1.0));
    x[19_999] = 0.0;
    x[19_998] = -0.8;
    assert!(!lif_correct(Task::Xor, &x, BASE_DT, -1.0));
}

#[test]
fn downsampled_trials_hold_columns_and_scale_dt() {
    let nw = net(vec![vec![0.0]], vec![10.0], 0.035, vec![0.0]);
    let mut o = quiet(vec![-65.0], false);
    o.downsample = 2;
    // 201 columns → 101 kept → 10,000 steps of 0.1 ms.
    let tr = simulate(&nw, &ones(201), &o, 0).unwrap();
    assert_eq!(tr.steps, 10_000);
    assert!((tr.dt - 1e-4).abs() < 1e-18);
    // The refractory gate is 20 steps of 0.1 ms; the ISI stays near 14.5 ms.
    let s = tr.train(0);
    let isi = (s[2] - s[1]) as f64 * tr.dt;
    assert!((isi - 0.0145).abs() < 2e-4, "{isi}");
}

#[test]
fn qif_fires_and_bad_inputs_are_refused() {
    let nw = net(vec![vec![0.0]], vec![10.0], 0.035, vec![0.0]);
    let mut o = SimOptions::new(Neuron::Qif);
    o.noise = false;
    o.v0 = InitialVoltage::Given(vec![-65.0]);
    // τ_m dv/dt = v² + I with I > 0 has no rest state: the unit spikes repeatedly.
    let tr = simulate(&nw, &ones(21), &o, 0).unwrap();
    assert!(tr.spikes.len() > 5);
    // Input of the wrong width, too few columns, non-finite weights, bad downsample.
    let e = simulate(&nw, &vec![vec![1.0, 2.0]; 5], &o, 0).unwrap_err();
    assert!(e.to_string().contains("inputs"), "{e}");
    assert!(simulate(&nw, &ones(1), &o, 0).is_err());
    let mut bad = o.clone();
    bad.downsample = 0;
    assert!(simulate(&nw, &ones(21), &bad, 0)
        .unwrap_err()
        .to_string()
        .contains("downsample"));
    let e = SpikingNetwork::new(
        Mat::zeros(2, 2),
        Mat::zeros(2, 1),
        vec![0.0, 1.0],
        vec![0.0; 2],
    )
    .unwrap_err();
    assert!(e.to_string().contains("tau_d"), "{e}");
}

#[test]
fn same_seed_same_spikes_whatever_the_thread_count() {
    // A random 50-unit network with noise on: spikes and outputs bit for bit across pools.
    let n = 50;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    use rand::Rng;
    let w = Mat::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0) * 0.05);
    let nw = SpikingNetwork::new(
        w,
        Mat::from_fn(n, 1, |i, _| (i as f64) * 0.3),
        vec![0.03; n],
        vec![0.01; n],
    )
    .unwrap();
    let run = |threads: usize| {
        neurodyn::testing::on_threads(threads, || {
            use rayon::prelude::*;
            (0..4u64)
                .into_par_iter()
                .map(|s| simulate(&nw, &ones(21), &SimOptions::default(), s).unwrap())
                .collect::<Vec<_>>()
        })
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a, b);
    assert!(a[0].spikes.len() > 10);
    assert_ne!(a[0].spikes, a[1].spikes, "different seeds, different noise");
}

#[test]
fn noise_stream_is_standard_normal() {
    // Ziggurat on wyrand: mean 0, variance 1, kurtosis 3 and the tails of N(0, 1) over 10⁶ draws.
    let mut r = neurodyn::spiking::lif::NoiseRng::new(11);
    let mut z = vec![0.0; 1_000_003];
    r.fill_normal(&mut z);
    let n = z.len() as f64;
    let m = z.iter().sum::<f64>() / n;
    let v = z.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    let k = z.iter().map(|x| (x - m).powi(4)).sum::<f64>() / n / (v * v);
    assert!(
        m.abs() < 5e-3 && (v - 1.0).abs() < 5e-3 && (k - 3.0).abs() < 2e-2,
        "{m} {v} {k}"
    );
    let tail = z.iter().filter(|x| x.abs() > 2.0).count() as f64 / n;
    assert!((tail - 0.045_500_263_896).abs() < 1e-3, "{tail}");
    assert!(z.iter().all(|x| x.is_finite()));
    let mut a = neurodyn::spiking::lif::NoiseRng::new(11);
    let mut b = vec![0.0; 13];
    a.fill_normal(&mut b);
    assert_eq!(b[..8], z[..8]);
}
