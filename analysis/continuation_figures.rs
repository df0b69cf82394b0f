//! Regenerates the continuation figures into `figures/`:
//!
//! * `continuation_organics_w`: the scalar ORGaNICs circuit of `models/organics-2d-bistable.toml`
//!   followed in its recurrent weight w = W_r from 3 down: the upper branch turns at the fold where
//!   the two extra fixed points of the w > 1 regime are born, and loses stability at a
//!   supercritical Hopf point (Rawat, Heeger & Martiniani 2024, the w > 1 regimes);
//! * `continuation_organics_two_parameter`: the same circuit's fold curve and Hopf curve in
//!   (w, b0), from b0 = 1 down: the Hopf curve ends at the Bogdanov–Takens point where it meets
//!   the fold curve (w ≈ 1.0541, b0 ≈ 0.0119);
//! * `continuation_organics_delta`: an N = 100 ORGaNICs circuit with the paper's defaults and
//!   W_r = I + δ G (G a seeded N(0, 1/N) matrix, ‖G‖₂ ≈ 2), followed in δ from the closed-form
//!   normalization fixed point at δ = 0 to δ = 10: its largest growth rate against δ. With the
//!   paper's one-hot input it stays linearly stable throughout (max Re λ rises from −131 to about
//!   −65 s⁻¹, no bifurcation is detected) although the largest singular value of W_r reaches ≈ 20
//!   (the stability sweep's breakdown at large δ is measured on its own matrix ensemble, inputs and
//!   initial conditions: a trajectory criterion, not this one point's spectrum);
//! * `continuation_go_nogo`: a Dale rate network trained on Go/NoGo (the `train` defaults) followed
//!   in its input level u (the constant input u·W_in·1): from the NoGo attractor at u = 0 to the
//!   fold where it vanishes — the input level above which the network must go to the Go state.
//!
//! Run: `cargo run --release --example continuation_figures` (about 15 s on 2 cores).

use neurodyn::continuation::{continue_branch, ContinuationOptions};
use neurodyn::learn::Optimizer;
use neurodyn::plot::LinePlot;
use neurodyn::source::{Source, View};
use neurodyn::train::{checkpoint, train_step, CellSpec, DataSource, Task};
use std::path::Path;

fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("figures");
    std::fs::create_dir_all(&out)?;

    // 1. The scalar circuit in w.
    let src = Source::Preset {
        path: Some(root.join("models/organics-2d-bistable.toml")),
        overrides: Default::default(),
        input: None,
    };
    let r = src.parametrised(View::Natural, "W_r", None, 0, 3.0)?;
    let b = continue_branch(
        r.system.as_ref(),
        &r.x0,
        &ContinuationOptions::new(3.0, 0.5),
    )?;
    for z in &b.bifurcations {
        eprintln!(
            "scalar circuit: {} at w = {:.10} (ω = {:?}, l1 = {:?})",
            z.kind.label(),
            z.p,
            z.omega,
            z.l1
        );
    }
    b.diagram(
        "Scalar ORGaNICs circuit: fixed points vs w = W_r",
        "‖(y, a)‖",
        norm,
    )
    .save(&out.join("continuation_organics_w"))?;

    // 1b. The same circuit in two parameters: its fold and Hopf curves in (w, b0).
    let (family, start) = src.parametrised2(View::Natural, "W_r", "b0", None, 0, 3.0, 1.0)?;
    let b1 = continue_branch(
        start.system.as_ref(),
        &start.x0,
        &ContinuationOptions::new(3.0, 0.5),
    )?;
    let curves = neurodyn::continuation::two::curves_from_branch(
        &family,
        &b1,
        1.0,
        &neurodyn::continuation::two::FoldCurveOptions::new((3.0, 0.5), (1.0, 0.0)),
    )?;
    for c in &curves {
        for z in &c.events {
            eprintln!(
                "scalar circuit in (w, b0): {} at ({:.6}, {:.6})",
                z.kind, z.p, z.q
            );
        }
    }
    let mut two = neurodyn::continuation::two::diagram(&curves);
    two.title = "Scalar ORGaNICs circuit: fold and Hopf curves in (w = W_r, b0)".into();
    two.save(&out.join("continuation_organics_two_parameter"))?;

    // 2. N = 100 in δ, from the normalization point at δ = 0.
    let n = 100;
    let src = Source::Organics { n, x0: None };
    let r = src.parametrised(View::Natural, "delta", None, 3, 0.0)?;
    let m = neurodyn::model::organics::Organics::defaults(n)?;
    let (y0, a0) = m.fixed_point_identity()?;
    let x0: Vec<f64> = y0.into_iter().chain(a0).collect();
    let b = continue_branch(
        r.system.as_ref(),
        &x0,
        &ContinuationOptions::new(0.0, 10.0)
            .ds(0.1)
            .ds_max(0.2)
            .max_points(400),
    )?;
    for z in &b.bifurcations {
        eprintln!(
            "N = 100 circuit: {} at δ = {:.10} (ω = {:?}, l1 = {:?})",
            z.kind.label(),
            z.p,
            z.omega,
            z.l1
        );
    }
    let growth: Vec<(f64, f64)> = b
        .points
        .iter()
        .map(|p| (p.p, p.stability.max_growth))
        .collect();
    let mut plot = LinePlot::new(
        "ORGaNICs N = 100, W_r = I + δG: the normalization point's largest Re λ",
        "δ",
        "max Re λ (1/s)",
    )
    .series("max Re λ", growth)
    .series(
        "0",
        vec![(0.0, 0.0), (b.points.last().map_or(10.0, |p| p.p), 0.0)],
    );
    for z in &b.bifurcations {
        plot = plot.points(
            format!("{} at δ = {:.4}", z.kind.label(), z.p),
            vec![(z.p, 0.0)],
        );
    }
    plot.save(&out.join("continuation_organics_delta"))?;

    // 3. A trained Go/NoGo network in its input level.
    let task = Task::GoNoGo;
    let data = DataSource::new(task, None, 1, 1)?;
    let mut net = CellSpec::default_for("rate".parse()?, task).build::<f64>(task, 1)?;
    let mut adam = Optimizer::adam(0.01);
    for it in 0..800 {
        train_step(&mut net, &mut adam, &data.batch::<f64>(it, 16, 1)?, None)?;
    }
    let dir = std::env::temp_dir().join(format!("neurodyn-cont-fig-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ck = dir.join("go_nogo.safetensors");
    checkpoint::save(&net, &adam, &ck)?;
    let src = Source::Checkpoint { path: ck, x0: None };
    let r = src.parametrised(View::Natural, "input", None, 0, 0.0)?;
    // The NoGo attractor: where the input-free flow settles from x = 0.
    let rest = neurodyn::integrate::integrate(
        &match src.resolve(View::Natural, 1.0)?.system {
            neurodyn::model::System::Flow(m) => m,
            _ => unreachable!("a rate checkpoint is a flow"),
        },
        &r.x0,
        (0.0, 2000.0),
        &neurodyn::integrate::Method::dopri5(1e-10, 1e-12),
        &neurodyn::integrate::Options::new(),
    )?;
    let b = continue_branch(
        r.system.as_ref(),
        rest.last(),
        &ContinuationOptions::new(0.0, 1.5),
    )?;
    for z in &b.bifurcations {
        eprintln!("Go/NoGo network: {} at u = {:.10}", z.kind.label(), z.p);
    }
    b.diagram(
        "Trained Go/NoGo network: fixed points vs input level u",
        "‖x‖",
        norm,
    )
    .save(&out.join("continuation_go_nogo"))?;

    // 3b. The same network in two parameters, its input level u and its recurrent gain g
    // (W scaled by g): the fold curves through the branch's folds, followed from g = 1.
    let (family, start) = src.parametrised2(View::Natural, "input", "g", None, 0, 0.0, 1.0)?;
    let b2 = continue_branch(
        start.system.as_ref(),
        rest.last(),
        &ContinuationOptions::new(0.0, 1.5),
    )?;
    let curves = neurodyn::continuation::two::curves_from_branch(
        &family,
        &b2,
        1.0,
        &neurodyn::continuation::two::FoldCurveOptions::new((0.0, 1.5), (0.5, 1.5)),
    )?;
    for c in &curves {
        eprintln!(
            "Go/NoGo network in (u, g): {} curve of {} points{}",
            c.kind,
            c.points.len(),
            c.events
                .iter()
                .map(|z| format!(", {} at (u, g) = ({:.6}, {:.6})", z.kind, z.p, z.q))
                .collect::<String>()
        );
    }
    let mut two = neurodyn::continuation::two::diagram(&curves);
    two.title = "Trained Go/NoGo network: fold curves in (input level u, gain g)".into();
    two.save(&out.join("continuation_go_nogo_two_parameter"))?;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("wrote figures/continuation_organics_w, continuation_organics_two_parameter, continuation_organics_delta, continuation_go_nogo, continuation_go_nogo_two_parameter (.png, .svg)");
    Ok(())
}
