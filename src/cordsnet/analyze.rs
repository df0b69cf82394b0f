//! Dissecting a CordsNet image by image (Soo et al. 2024, spec A.9): the protocol's trajectory,
//! the stimulus-driven steady state r* by Newton–Krylov from the protocol's end state, the leading
//! eigenvalues of each layer's recurrent block D_l K^rec_l at r* (Arnoldi; the block of the flow's
//! Jacobian is (−I + D_l K^rec_l)/τ, so an eigenvalue μ of D K maps to (μ − 1)/τ), and the
//! largest Lyapunov exponent of the stimulus phase — the growth rate of a tangent vector under the
//! network's own Euler map, v ← v + Δt J(r_t) v (Δt = ατ), renormalised every step, in 1/ms.

use super::conv::ConvOperator;
use super::CordsNet;
use crate::error::{Error, Result};
use crate::krylov::{arnoldi, newton_krylov, NewtonKrylovOptions};
use crate::model::Model;
use faer::c64;

/// What to compute per image (also the arguments of `cordsnet analyze`).
#[derive(clap::Args, Debug, Clone)]
pub struct AnalyzeOptions {
    /// Spontaneous and stimulus steps of the protocol.
    #[arg(long, default_value_t = 20)]
    pub spont: usize,
    #[arg(long, default_value_t = 40)]
    pub stim: usize,
    /// Arnoldi steps per layer and Ritz values kept.
    #[arg(long, default_value_t = 60)]
    pub m: usize,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// A unit to trace, `layer,channel,row,column` (repeatable; default: the centre unit of
    /// channel 0 in every layer).
    #[arg(long = "unit", value_parser = parse_unit)]
    pub units: Vec<[usize; 4]>,
    #[arg(skip)]
    pub newton: NewtonKrylovOptions,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            spont: 20,
            stim: 40,
            m: 60,
            k: 10,
            units: vec![],
            newton: NewtonKrylovOptions::default(),
        }
    }
}

/// The results of one image.
#[derive(Debug, Clone)]
pub struct ImageAnalysis {
    /// Arg-max of the logits at the end of the protocol and at the steady state.
    pub predicted_run: usize,
    pub predicted_steady: usize,
    pub steady: Vec<f64>,
    /// ‖f(r*)‖∞, Newton steps and JVPs.
    pub residual: f64,
    pub newton_steps: usize,
    pub jvps: usize,
    pub converged: bool,
    /// ‖r(end of protocol) − r*‖∞.
    pub distance: f64,
    /// λ₁ of the stimulus phase (1/ms).
    pub lyapunov: f64,
    /// Per layer: (eigenvalue of D K^rec, residual), largest modulus first.
    pub spectra: Vec<Vec<(c64, f64)>>,
    /// Per chosen unit, its rate at each of the spont + stim steps.
    pub traces: Vec<Vec<f64>>,
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

impl CordsNet {
    /// The state index of unit (layer, channel, row, column), checked.
    pub fn unit_index(&self, u: [usize; 4]) -> Result<usize> {
        let a = &self.arch;
        let [l, c, i, j] = u;
        let s = a.sizes();
        if l >= a.depth() || c >= a.channels[l] || i >= s[l] || j >= s[l] {
            return Err(Error::invalid(
                "unit",
                format!(
                    "{l},{c},{i},{j}: outside the network (layer < {}, then channel, row, column within that layer's C×H×W)",
                    a.depth()
                ),
            ));
        }
        Ok(a.offsets()[l] + c * s[l] * s[l] + i * s[l] + j)
    }

    /// The leading eigenvalues of each layer's D_l K^rec_l at state `r` (`D_l = 1[r_l > 0]`, the
    /// active set at a steady state), with Arnoldi residuals.
    pub fn layer_spectra(&self, r: &[f64], m: usize, k: usize) -> Result<Vec<Vec<(c64, f64)>>> {
        let a = &self.arch;
        let s = a.sizes();
        let off = a.offsets();
        (0..a.depth())
            .map(|l| {
                let mask = r[off[l]..off[l + 1]]
                    .iter()
                    .map(|v| if *v > 0.0 { 1.0 } else { 0.0 })
                    .collect();
                let mut op = ConvOperator::new(self.rec[l].clone(), a.channels[l], 3, s[l], s[l])?;
                op.mask = Some(mask);
                let rz = arnoldi(&op, m.min(off[l + 1] - off[l]), l as u64)?;
                Ok(rz
                    .values
                    .iter()
                    .zip(&rz.residuals)
                    .take(k)
                    .map(|(v, e)| (*v, *e))
                    .collect())
            })
            .collect()
    }

    /// Everything of [`ImageAnalysis`] for one image.
    pub fn analyze_image(&self, image: &[f64], opts: &AnalyzeOptions) -> Result<ImageAnalysis> {
        let a = &self.arch;
        let idx = opts
            .units
            .iter()
            .map(|&u| self.unit_index(u))
            .collect::<Result<Vec<_>>>()?;
        let h = self.stem_forward(image)?;
        let blank = vec![0.0; h.len()];
        let (spont_flow, stim_flow) = (self.flow(&blank), self.flow(&h));
        let n = a.units();
        let dt = a.alpha * a.tau;
        let mut r = vec![0.0; n];
        let mut f = vec![0.0; n];
        let mut traces = vec![Vec::with_capacity(opts.spont + opts.stim); idx.len()];
        // Tangent vector of the stimulus phase: a fixed seeded direction.
        let mut v: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.754_877_666).sin()).collect();
        let mut jv = vec![0.0; n];
        let mut log_growth = 0.0;
        for step in 0..opts.spont + opts.stim {
            let flow = if step < opts.spont {
                &spont_flow
            } else {
                &stim_flow
            };
            if step >= opts.spont {
                flow.jvp(0.0, &r, &v, &mut jv);
                let mut norm = 0.0;
                for (vi, ji) in v.iter_mut().zip(&jv) {
                    *vi += dt * ji;
                    norm += *vi * *vi;
                }
                let norm = norm.sqrt();
                if !(norm > 0.0 && norm.is_finite()) {
                    return Err(Error::failed(
                        "lyapunov",
                        "the tangent vector vanished or overflowed",
                    ));
                }
                log_growth += norm.ln();
                v.iter_mut().for_each(|x| *x /= norm);
            }
            flow.rhs(0.0, &r, &mut f);
            for (ri, fi) in r.iter_mut().zip(&f) {
                *ri += dt * fi;
            }
            for (t, &i) in traces.iter_mut().zip(&idx) {
                t.push(r[i]);
            }
        }
        let lyapunov = if opts.stim > 0 {
            log_growth / (opts.stim as f64 * dt)
        } else {
            f64::NAN
        };
        let nk = newton_krylov(&stim_flow, &r, &opts.newton)?;
        let distance = r
            .iter()
            .zip(&nk.x)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        let spectra = self.layer_spectra(&nk.x, opts.m, opts.k)?;
        Ok(ImageAnalysis {
            predicted_run: argmax(&self.logits(&r)),
            predicted_steady: argmax(&self.logits(&nk.x)),
            residual: nk.residual,
            newton_steps: nk.newton_steps,
            jvps: nk.jvps,
            converged: nk.converged,
            steady: nk.x,
            distance,
            lyapunov,
            spectra,
            traces,
        })
    }
}

/// Writes the analysis of `results` (test images 0.., `labels`) into `out`: `images.csv` (one
/// row per image: label, predictions at the protocol's end and at r*, the Newton–Krylov
/// residual, steps and JVPs, ‖r(end) − r*‖∞, λ₁, and each layer's leading |μ| of D K^rec),
/// `spectra.csv` (image, layer, rank, re, im, residual), `traces.csv` (image, step, unit, rate),
/// and the figures `eigenvalues` (every layer's Ritz values, all images), `steady_state` (the
/// channel-mean of layer 0's r* for image 0) and `traces` (image 0's chosen units), PNG + SVG.
pub fn write_outputs(
    net: &CordsNet,
    results: &[ImageAnalysis],
    labels: &[u8],
    units: &[[usize; 4]],
    out: &std::path::Path,
) -> Result<()> {
    use crate::io::{Column, Table, TableFormat};
    use crate::plot::{HeatMap, LinePlot};
    let a = &net.arch;
    let depth = a.depth();
    let mut t = Table::new();
    let col_i = |f: &dyn Fn(usize, &ImageAnalysis) -> i64| {
        Column::I64(results.iter().enumerate().map(|(i, r)| f(i, r)).collect())
    };
    let col_f = |f: &dyn Fn(&ImageAnalysis) -> f64| Column::F64(results.iter().map(f).collect());
    t.push("image", col_i(&|i, _| i as i64));
    t.push("label", col_i(&|i, _| labels[i] as i64));
    t.push("predicted_run", col_i(&|_, r| r.predicted_run as i64));
    t.push("predicted_steady", col_i(&|_, r| r.predicted_steady as i64));
    t.push("converged", col_i(&|_, r| r.converged as i64));
    t.push("residual", col_f(&|r| r.residual));
    t.push("newton_steps", col_i(&|_, r| r.newton_steps as i64));
    t.push("jvps", col_i(&|_, r| r.jvps as i64));
    t.push("distance", col_f(&|r| r.distance));
    t.push("lyapunov", col_f(&|r| r.lyapunov));
    for l in 0..depth {
        t.push(
            format!("rho_layer{l}"),
            col_f(&|r| r.spectra[l].first().map_or(f64::NAN, |v| v.0.norm())),
        );
    }
    t.write(&out.join("images.csv"), TableFormat::Csv)?;

    let (mut im, mut ly, mut rank, mut re, mut imv, mut res) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, r) in results.iter().enumerate() {
        for (l, sp) in r.spectra.iter().enumerate() {
            for (k, (v, e)) in sp.iter().enumerate() {
                im.push(i as i64);
                ly.push(l as i64);
                rank.push(k as i64);
                re.push(v.re);
                imv.push(v.im);
                res.push(*e);
            }
        }
    }
    let mut t = Table::new();
    t.push("image", Column::I64(im));
    t.push("layer", Column::I64(ly.clone()));
    t.push("rank", Column::I64(rank));
    t.push("re", Column::F64(re.clone()));
    t.push("im", Column::F64(imv.clone()));
    t.push("residual", Column::F64(res));
    t.write(&out.join("spectra.csv"), TableFormat::Csv)?;

    let names: Vec<String> = units
        .iter()
        .map(|u| format!("r[{},{},{},{}]", u[0], u[1], u[2], u[3]))
        .collect();
    let (mut ti, mut ts, mut tu, mut tr) = (vec![], vec![], vec![], vec![]);
    for (i, r) in results.iter().enumerate() {
        for (u, tr_u) in r.traces.iter().enumerate() {
            for (s, v) in tr_u.iter().enumerate() {
                ti.push(i as i64);
                ts.push(s as i64 + 1);
                tu.push(names[u].clone());
                tr.push(*v);
            }
        }
    }
    let mut t = Table::new();
    t.push("image", Column::I64(ti));
    t.push("step", Column::I64(ts));
    t.push("unit", Column::Str(tu));
    t.push("rate", Column::F64(tr));
    t.write(&out.join("traces.csv"), TableFormat::Csv)?;

    let mut p = LinePlot::new(
        "eigenvalues of D·K_rec per layer at the steady states",
        "Re μ",
        "Im μ",
    );
    for l in 0..depth {
        let pts = ly
            .iter()
            .zip(re.iter().zip(&imv))
            .filter(|(k, _)| **k == l as i64)
            .map(|(_, (x, y))| (*x, *y))
            .collect();
        p = p.points(format!("layer {l}"), pts);
    }
    // The flow's eigenvalues are (μ − 1)/τ: its stability boundary is the line Re μ = 1.
    let (lo, hi) = imv
        .iter()
        .fold((-1.0f64, 1.0f64), |(a, b), v| (a.min(*v), b.max(*v)));
    p.segment(
        "Re μ = 1 (Re λ = 0 for the flow)",
        vec![(1.0, lo), (1.0, hi)],
        crate::plot::auto_color(depth),
        true,
    )
    .save(&out.join("eigenvalues"))?;

    if let Some(r0) = results.first() {
        let s = a.sizes()[0];
        let c = a.channels[0];
        let plane = s * s;
        let values: Vec<f64> = (0..plane)
            .map(|q| (0..c).map(|ch| r0.steady[ch * plane + q]).sum::<f64>() / c as f64)
            .collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        HeatMap {
            title: format!("steady state r*, layer 0, mean over {c} channels (image 0)"),
            xlabel: "column".into(),
            ylabel: "row".into(),
            xs: (0..s).map(|j| j as f64).collect(),
            ys: (0..s).map(|i| i as f64).collect(),
            values,
            vmin: lo,
            vmax: if hi > lo { hi } else { lo + 1.0 },
            log: false,
            curve: None,
        }
        .save(&out.join("steady_state"))?;
        let mut p = LinePlot::new("rates of chosen units (image 0)", "step", "rate r");
        for (u, tr_u) in r0.traces.iter().enumerate() {
            p = p.series(
                names[u].clone(),
                tr_u.iter()
                    .enumerate()
                    .map(|(s, v)| (s as f64 + 1.0, *v))
                    .collect(),
            );
        }
        p.save(&out.join("traces"))?;
    }
    Ok(())
}

/// The stimulus-driven steady state of one image and each layer's leading spectrum there.
#[derive(Debug, Clone)]
pub struct SteadyState {
    pub newton: crate::krylov::NewtonKrylovResult,
    /// Per layer: (eigenvalue of D K^rec, Arnoldi residual), largest modulus first.
    pub spectra: Vec<Vec<(c64, f64)>>,
    pub logits: Vec<f64>,
}

impl CordsNet {
    /// r* for `image` by Newton–Krylov from the end of `stim` stimulus steps (from r = 0), then
    /// the `k` leading eigenvalues of each layer's D K^rec there (`m` Arnoldi steps). A solve that
    /// does not converge is a failed run (exit 1), naming the residual.
    pub fn steady_state(
        &self,
        image: &[f64],
        stim: usize,
        m: usize,
        k: usize,
        newton: &NewtonKrylovOptions,
    ) -> Result<SteadyState> {
        let start = self.run(image, 0, stim)?;
        let h = self.stem_forward(image)?;
        let nk = newton_krylov(&self.flow(&h), &start.state, newton)?;
        if !nk.converged {
            return Err(Error::failed(
                "steady-state",
                format!(
                    "Newton–Krylov stopped at ‖f‖∞ = {:.2e} after {} steps",
                    nk.residual, nk.newton_steps
                ),
            ));
        }
        Ok(SteadyState {
            spectra: self.layer_spectra(&nk.x, m, k)?,
            logits: self.logits(&nk.x),
            newton: nk,
        })
    }
}

impl SteadyState {
    /// One row per eigenvalue: layer, re, im, residual.
    pub fn table(&self) -> crate::io::Table {
        use crate::io::{Column, Table};
        let rows = || {
            self.spectra
                .iter()
                .enumerate()
                .flat_map(|(l, sp)| sp.iter().map(move |(v, e)| (l, v, e)))
        };
        let mut t = Table::new();
        t.push("layer", Column::I64(rows().map(|r| r.0 as i64).collect()))
            .push("re", Column::F64(rows().map(|r| r.1.re).collect()))
            .push("im", Column::F64(rows().map(|r| r.1.im).collect()))
            .push("residual", Column::F64(rows().map(|r| *r.2).collect()));
        t
    }
}

impl std::fmt::Display for SteadyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nk = &self.newton;
        write!(
            f,
            "steady state of {} units: ‖f‖∞ = {:.1e} after {} Newton steps ({} JVPs); logits {:?}",
            nk.x.len(),
            nk.residual,
            nk.newton_steps,
            nk.jvps,
            self.logits
        )
    }
}

/// A unit as `layer,channel,row,column` (the `--unit` argument).
pub fn parse_unit(s: &str) -> Result<[usize; 4], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|t| t.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{s}`: expected layer,channel,row,column"))?;
    <[usize; 4]>::try_from(v).map_err(|_| format!("`{s}`: expected four numbers"))
}

/// What [`analyze_test_set`] found, in a sentence for the terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSetSummary {
    pub images: usize,
    pub converged: usize,
    /// Images classified correctly at the steady state.
    pub correct: usize,
    /// The largest stimulus-phase λ₁ (1/ms).
    pub lyapunov_max: f64,
}

impl std::fmt::Display for TestSetSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} images: {} steady states converged, {} classified correctly at the steady state, largest stimulus-phase λ₁ = {:.4} /ms",
            self.images, self.converged, self.correct, self.lyapunov_max
        )
    }
}

/// Analyses the first `images` test images of `dataset` (from `data_dir`, or the bundled slice)
/// with a network trained by `cordsnet train` and writes [`write_outputs`]'s files into `out`.
/// `opts.units` empty: the centre unit of channel 0 in every layer. `tick` runs after each image.
pub fn analyze_test_set(
    checkpoint: &std::path::Path,
    dataset: crate::data::Dataset,
    data_dir: Option<&std::path::Path>,
    images: usize,
    mut opts: AnalyzeOptions,
    out: &std::path::Path,
    tick: &mut dyn FnMut(),
) -> Result<TestSetSummary> {
    crate::io::check_out_dir(out)?;
    let net = CordsNet::load_checkpoint(checkpoint)?;
    let d = dataset.load(data_dir, false)?;
    if images == 0 || images > d.len() {
        return Err(Error::invalid(
            "images",
            format!("{images}: the test split has {} images", d.len()),
        ));
    }
    let a = &net.arch;
    if (a.img_channels, a.img_size) != (1, d.rows) || d.rows != d.cols {
        return Err(Error::invalid(
            "checkpoint",
            format!(
                "the network takes {}×{}×{} images; the data are 1×{}×{}",
                a.img_channels, a.img_size, a.img_size, d.rows, d.cols
            ),
        ));
    }
    if opts.units.is_empty() {
        let s = a.sizes();
        opts.units = (0..a.depth()).map(|l| [l, 0, s[l] / 2, s[l] / 2]).collect();
    }
    for u in &opts.units {
        net.unit_index(*u)?;
    }
    let px = d.rows * d.cols;
    let mut results = Vec::with_capacity(images);
    for i in 0..images {
        let img = super::spec::normalise(&d.images[i * px..(i + 1) * px], dataset);
        results.push(net.analyze_image(&img, &opts)?);
        tick();
    }
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, e))?;
    write_outputs(&net, &results, &d.labels[..images], &opts.units, out)?;
    Ok(TestSetSummary {
        images,
        converged: results.iter().filter(|r| r.converged).count(),
        correct: results
            .iter()
            .zip(&d.labels)
            .filter(|(r, &y)| r.predicted_steady == y as usize)
            .count(),
        lyapunov_max: results
            .iter()
            .map(|r| r.lyapunov)
            .fold(f64::NEG_INFINITY, f64::max),
    })
}
