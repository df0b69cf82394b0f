//! Dissecting the ORGaNICs Euler RNNs trained on sequential and permuted sequential MNIST
//! (Rawat, Heeger & Martiniani 2024; the runs in `models/smnist-organics-64*` and
//! `models/psmnist-organics-64*`): each trained network as the map of its own update,
//! s_{t+1} = F(s_t, u_t) (s = the cell's whole state, u_t the pixel read at step t, in the seed's
//! permuted order for psMNIST), analysed with the same code as every other system.
//!
//! * its accuracy on the bundled test slice (500 digits, 784 steps each);
//! * its fixed points with the input held at 0 (blank screen) and at the data's mean pixel
//!   intensity (the "mean digit" drive), found by Newton from states the network visits while
//!   reading test digits, with their stability as a map (|μ| of the Jacobian);
//! * the eigenvalues of the Jacobian there against the unit circle;
//! * the leading Lyapunov exponents while the network reads test digits (784 steps from its
//!   initial state, the input driving the map), and at zero input after the transient —
//!   whether the trained circuit stays stable (the paper's claim: λ_max ≤ 0).
//!
//! Writes `figures/organics_{smnist,psmnist}_fixed_points.csv`, `…_eigenvalues.png/.svg`,
//! `…_lyapunov.csv` and `…_lyapunov.png/.svg`, and the learning curves of the committed runs
//! against the paper's accuracies (`figures/organics_seq_mnist_curves.png/.svg`: each run at its
//! constant rate, then its branch under the paper's StepLR and weight decay, and a run under the
//! paper's rates κ_max where committed). The networks dissected are the latest committed
//! checkpoints (the branches' when they exist).
//! Run:
//! `cargo run --release --example organics_dissection [-- path/to/checkpoint.safetensors]`
//! (≈ 2–4 min per network on 2 cores).

use neurodyn::data::digits::Digits;
use neurodyn::fixed_points::{find_map_fixed_points, FinderOptions};
use neurodyn::io::{Column, Table, TableFormat};
use neurodyn::lyapunov::{lyapunov_map, LyapunovOptions};
use neurodyn::model::Map;
use neurodyn::plot::LinePlot;
use neurodyn::train::cell::CellMap;
use neurodyn::train::checkpoint::load;
use std::path::PathBuf;

/// Test digits whose trajectories seed the fixed-point search and drive the Lyapunov exponents.
const DIGITS: usize = 12;
/// Leading Lyapunov exponents computed.
const K: usize = 6;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("figures");
    std::fs::create_dir_all(&out)?;
    learning_curves(&root, &out)?;
    // The latest committed checkpoint of each task (the branch's when it exists); a path given
    // on the command line replaces the sMNIST one.
    let latest = |task: &str| {
        [
            format!("models/{task}-organics-64-step"),
            format!("models/{task}-organics-64"),
        ]
        .map(|d| root.join(d).join("checkpoint.safetensors"))
        .into_iter()
        .find(|p| p.exists())
    };
    let smnist = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| latest("smnist"))
        .ok_or("no committed sMNIST checkpoint in models/")?;
    dissect(&smnist, "smnist", "sMNIST", None, &out)?;
    if let Some(ck) = latest("psmnist") {
        let perm = neurodyn::data::seed_permutation()?;
        dissect(&ck, "psmnist", "psMNIST", Some(perm), &out)?;
    }
    Ok(())
}

/// The dissection of one trained network, `tag` naming its files (`figures/organics_<tag>_*`)
/// and `name` its figures; `perm`: the pixel order it reads (psMNIST).
fn dissect(
    ck: &std::path::Path,
    tag: &str,
    name: &str,
    perm: Option<Vec<usize>>,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let perm = perm.as_deref();
    let (net, _) = load::<f64>(ck)?;
    let test = Digits::bundled(false)?;
    let idx: Vec<usize> = (0..test.len()).collect();
    let pass = net.pass(&test.batch::<f64>(&idx, perm)?, false)?;
    println!(
        "{}: test accuracy on the bundled slice {:.1} % ({} digits)",
        ck.display(),
        100.0 * pass.correct as f64 / test.len() as f64,
        test.len()
    );
    let pixels = |k: usize| -> Vec<f64> {
        let b = test.batch::<f64>(&[k], perm).expect("one digit");
        b.u
    };
    let mean_pixel = {
        let b = test.batch::<f64>(&idx, None)?;
        b.u.iter().sum::<f64>() / b.u.len() as f64
    };
    let free = CellMap::new(net.clone());
    let s = free.dim();
    let s0 = free.initial_state();
    println!("state dimension {s}; mean pixel intensity {mean_pixel:.4}");

    // Starts: the states visited while reading the first digits (every 49th step).
    let mut starts = vec![s0.clone()];
    for k in 0..DIGITS {
        let driven = CellMap::new(net.clone()).with_input_sequence(pixels(k))?;
        let mut h = s0.clone();
        for t in 0..test.pixels() {
            driven.step(t, &mut h);
            if t % 49 == 48 {
                starts.push(h.clone());
            }
        }
    }

    // Fixed points at zero input and at the mean pixel intensity.
    let mut fp = Table::new();
    let (mut drive, mut norm, mut class, mut unstable, mut growth, mut count) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    // The Euler map's multipliers crowd at μ = 1 (μ = 1 + Δt λ): drawn as growth ln|μ| against
    // rotation arg μ per step, the stability boundary is the line ln|μ| = 0.
    let mut eig = LinePlot::new(
        format!("Trained ORGaNICs ({name}): Jacobian multipliers at the fixed points"),
        "arg μ (rad per step)",
        "ln |μ| (per step)",
    );
    let mut pts: Vec<Vec<(f64, f64)>> = vec![vec![], vec![]];
    let mut arg_max = 0.0f64;
    for (label, u) in [("zero input", 0.0), ("mean pixel", mean_pixel)] {
        let map = CellMap::new(net.clone()).with_input(vec![u])?;
        let found = find_map_fixed_points(&map, 0, &starts, &FinderOptions::default())?;
        let found: Vec<_> = found.into_iter().filter(|p| p.converged).collect();
        println!("{label} (u = {u:.4}): {} fixed points", found.len());
        for (i, p) in found.iter().enumerate() {
            let st = &p.stability;
            println!(
                "  #{i}: ‖s‖ = {:.3}, {:?}, {} unstable, max |μ| = {:.5}, reached from {} starts",
                p.x.iter().map(|v| v * v).sum::<f64>().sqrt(),
                st.class,
                st.n_unstable,
                st.max_growth,
                p.count
            );
            drive.push(u);
            norm.push(p.x.iter().map(|v| v * v).sum::<f64>().sqrt());
            class.push(format!("{:?}", st.class));
            unstable.push(st.n_unstable as f64);
            growth.push(st.max_growth);
            count.push(p.count as f64);
            let which = usize::from(u != 0.0);
            for l in &st.eigenvalues {
                pts[which].push((l.arg(), l.norm().ln()));
                arg_max = arg_max.max(l.arg().abs());
            }
        }
    }
    fp.push("input", Column::F64(drive));
    fp.push("norm", Column::F64(norm));
    fp.push("class", Column::Str(class));
    fp.push("n_unstable", Column::F64(unstable));
    fp.push("max_abs_mu", Column::F64(growth));
    fp.push("starts", Column::F64(count));
    fp.write(
        &out.join(format!("organics_{tag}_fixed_points.csv")),
        TableFormat::Csv,
    )?;
    let edge = arg_max.max(1e-3) * 1.05;
    // The boundary dashed, so that multipliers just outside it stay visible; the mean-pixel
    // points in blue (the palette's yellow vanishes on white).
    eig = eig
        .segment(
            "stability boundary |μ| = 1",
            vec![(-edge, 0.0), (edge, 0.0)],
            0,
            true,
        )
        .points("at zero input", std::mem::take(&mut pts[0]))
        .points(
            format!("at the mean pixel {mean_pixel:.3}"),
            std::mem::take(&mut pts[1]),
        );
    if let Some(last) = eig.series.last_mut() {
        last.color = Some(3);
    }
    eig.save(&out.join(format!("organics_{tag}_eigenvalues")))?;

    // Leading Lyapunov exponents while reading digits (784 steps from s0), and at zero input.
    let opts = LyapunovOptions {
        k: Some(K.min(s)),
        steps: test.pixels(),
        ..Default::default()
    };
    let mut lt = Table::new();
    let (mut who, mut lmax, mut l2) = (vec![], vec![], vec![]);
    let mut plot = LinePlot::new(
        format!("Trained ORGaNICs ({name}): leading Lyapunov exponents"),
        "exponent index",
        "λ (per step)",
    )
    .integer_x();
    for k in 0..DIGITS {
        let driven = CellMap::new(net.clone()).with_input_sequence(pixels(k))?;
        let ex = lyapunov_map(&driven, &s0, &opts)?.sorted();
        who.push(format!("digit {} (label {})", k, test.labels[k]));
        lmax.push(ex[0]);
        l2.push(ex.get(1).copied().unwrap_or(f64::NAN));
        if k < 4 {
            plot = plot.series(
                format!("reading test digit {k}"),
                ex.iter()
                    .enumerate()
                    .map(|(i, &v)| ((i + 1) as f64, v))
                    .collect(),
            );
        }
    }
    let auto = LyapunovOptions {
        warmup: 2000,
        steps: 4000,
        ..opts.clone()
    };
    // Without input the trained map may not stay bounded: a trajectory that leaves the finite
    // numbers is a result (reported, NaN in the table), not a failure of the script.
    let free_run = lyapunov_map(&free, &s0, &auto).map(|sp| sp.sorted());
    let free_max = match &free_run {
        Ok(ex) => {
            who.push("zero input (after 2000 steps)".into());
            lmax.push(ex[0]);
            l2.push(ex.get(1).copied().unwrap_or(f64::NAN));
            plot = plot.series(
                "zero input",
                ex.iter()
                    .enumerate()
                    .map(|(i, &v)| ((i + 1) as f64, v))
                    .collect(),
            );
            format!("{:+.5}", ex[0])
        }
        Err(e) => {
            who.push(format!("zero input: diverges ({e})"));
            lmax.push(f64::NAN);
            l2.push(f64::NAN);
            format!("none: the free-running state diverges ({e})")
        }
    };
    let driven_max = lmax[..DIGITS]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    println!(
        "λ_max while reading {DIGITS} test digits: {:+.5} … {:+.5} per step; at zero input {free_max}",
        lmax[..DIGITS].iter().copied().fold(f64::INFINITY, f64::min),
        driven_max,
    );
    println!(
        "stable while driven (every λ_max < 0): {}",
        if driven_max < 0.0 { "yes" } else { "no" }
    );
    lt.push("run", Column::Str(who));
    lt.push("lambda_max", Column::F64(lmax));
    lt.push("lambda_2", Column::F64(l2));
    lt.write(
        &out.join(format!("organics_{tag}_lyapunov.csv")),
        TableFormat::Csv,
    )?;
    plot.save(&out.join(format!("organics_{tag}_lyapunov")))?;
    println!("wrote figures/organics_{tag}_*");
    Ok(())
}

/// Held-out accuracy per epoch of the committed sequential-MNIST runs (`models/<run>`, its
/// `-step` branch and, where committed, the `-paper` run under the paper's κ_max), with the
/// paper's 64-unit accuracies dashed.
fn learning_curves(
    root: &std::path::Path,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let rows = |dir: &str| -> Result<Vec<(f64, f64)>, Box<dyn std::error::Error>> {
        let path = root.join("models").join(dir).join("metrics.parquet");
        if !path.exists() {
            return Ok(vec![]);
        }
        let t = neurodyn::io::read_parquet(&path)?;
        let col = |name: &str| t.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c);
        match (col("epoch"), col("accuracy")) {
            (Some(Column::I64(e)), Some(Column::F64(a))) => Ok(e
                .iter()
                .zip(a)
                .map(|(&e, &a)| (e as f64, 100.0 * a))
                .collect()),
            _ => Err(format!("{}: no epoch/accuracy columns", path.display()).into()),
        }
    };
    let mut plot = LinePlot::new(
        "ORGaNICs Euler RNN, 64 units: held-out accuracy (2,000 test digits)",
        "epoch",
        "accuracy (%)",
    );
    // Palette colours: (the first run and the paper's line, the branch).
    for (task, paper, (c, cb)) in [("smnist", 97.7, (3, 0)), ("psmnist", 89.9, (1, 4))] {
        let first = rows(&format!("{task}-organics-64"))?;
        let branch = rows(&format!("{task}-organics-64-step"))?;
        let name = if task == "smnist" {
            "sMNIST"
        } else {
            "psMNIST"
        };
        // The branch repeats the first run's rows; draw its own epochs, joined to the last one.
        let n = first.len();
        let tail: Vec<(f64, f64)> = branch.iter().skip(n.saturating_sub(1)).copied().collect();
        plot = plot.segment(format!("{name}, Adam 0.01"), first, c, false);
        if tail.len() > 1 {
            plot = plot.segment(
                format!("{name}, then StepLR(20, 0.7) + weight decay 1e-5"),
                tail,
                cb,
                false,
            );
        }
        // A run from scratch under the paper's whole protocol (its κ_max, StepLR, weight decay).
        let paper_run = rows(&format!("{task}-organics-64-paper"))?;
        if !paper_run.is_empty() {
            plot = plot.segment(
                format!("{name}, the paper's rates κmax = (0.02, 0.005, 0.1), StepLR, decay"),
                paper_run,
                if task == "smnist" { 5 } else { 10 },
                false,
            );
        }
        plot = plot.segment(
            format!("{name}, paper ({paper} %)"),
            vec![(1.0, paper), (100.0, paper)],
            c,
            true,
        );
    }
    plot.save(&out.join("organics_seq_mnist_curves"))?;
    println!("wrote figures/organics_seq_mnist_curves.png/.svg");
    Ok(())
}
