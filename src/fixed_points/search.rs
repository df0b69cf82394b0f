//! The whole fixed-point search of a system, as `fixed-points` and the Python bindings run it:
//! the starts (random states in a box, folded into the coordinates a model keeps non-negative,
//! the resolver's own start, states along a trajectory), one or several methods (Newton from every
//! start; for ORGaNICs circuits the closed form, the quartic and the iterative scheme as
//! candidates), the points merged across methods with [`FinderOptions::dedup_tol`], and the
//! evidence per point: the tables (points, spectra), the Jacobians and eigenvectors, the plots.

use super::{find_system_fixed_points, organics_candidates, random_starts, FinderOptions};
use super::{FixedPoint, OrganicsMethod};
use crate::error::{Error, Result};
use crate::integrate::{integrate, Method as Stepper, Options, SaveAt};
use crate::io::{Column, Table};
use crate::model::organics::Organics;
use crate::model::System;
use crate::plot::LinePlot;
use faer::{c64, Mat};

/// How points are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchMethod {
    /// Multi-start Newton / Levenberg–Marquardt (any system).
    Newton,
    /// ORGaNICs, W_r = I: the closed form.
    ClosedForm,
    /// ORGaNICs, one unit: every positive root of the quartic.
    Quartic,
    /// ORGaNICs, any W_r: the iterative scheme, then Newton.
    Iterative,
    /// All of the above that apply.
    All,
}

impl SearchMethod {
    /// The methods asked for, `All` expanded, each once, in order.
    pub fn expand(asked: &[SearchMethod]) -> Vec<SearchMethod> {
        let mut out: Vec<SearchMethod> = vec![];
        for m in asked {
            let add: &[SearchMethod] = match m {
                SearchMethod::All => &[
                    SearchMethod::Newton,
                    SearchMethod::ClosedForm,
                    SearchMethod::Quartic,
                    SearchMethod::Iterative,
                ],
                one => std::slice::from_ref(one),
            };
            for a in add {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
        out
    }
}

/// Where the random starts come from.
#[derive(Debug, Clone)]
pub struct Starts {
    /// Random states, uniform in `[lo, hi]` in every coordinate.
    pub count: usize,
    pub lo: f64,
    pub hi: f64,
    pub seed: u64,
    /// States sampled along a trajectory from the system's x0.
    pub trajectory: usize,
}

impl Starts {
    /// Parses the box `LO:HI` (naming `box`) and checks that there is at least one start.
    pub fn new(count: usize, bx: &str, seed: u64, trajectory: usize) -> Result<Starts> {
        let (lo, hi) = bx
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)))
            .filter(|(a, b)| a.is_finite() && b.is_finite() && a < b)
            .ok_or_else(|| Error::invalid("box", format!("`{bx}`: expected LO:HI with LO < HI")))?;
        if count + trajectory == 0 {
            return Err(Error::invalid("starts", "need at least one initial state"));
        }
        Ok(Starts {
            count,
            lo,
            hi,
            seed,
            trajectory,
        })
    }

    /// The initial states for `system` of dimension n: the random ones with the coordinates in
    /// `nonnegative` folded to |x|, then `extra` (a start the source knows), then the trajectory
    /// samples from `x0`. The memory they and one result per start take is checked first.
    pub fn states(
        &self,
        system: &System,
        x0: &[f64],
        nonnegative: std::ops::Range<usize>,
        extra: Option<Vec<f64>>,
    ) -> Result<Vec<Vec<f64>>> {
        let n = system.dim() as u128;
        let per_start = n * 8 * 4 + 256;
        // Name the flag that asks for the memory: the trajectory samples when they alone are
        // too many, the random starts otherwise.
        let field = if self.trajectory > self.count {
            "trajectory"
        } else {
            "starts"
        };
        crate::memory::check(
            field,
            (self.count as u128 + self.trajectory as u128) * per_start + n * n * 8 * 4,
            None,
        )?;
        let mut starts = random_starts(system.dim(), self.count, self.lo, self.hi, self.seed);
        for s in starts.iter_mut() {
            for v in s[nonnegative.clone()].iter_mut() {
                *v = v.abs();
            }
        }
        starts.extend(extra);
        if self.trajectory > 0 {
            let t = trajectory(system, x0, self.trajectory, 50.0, None)?;
            starts.extend(t.into_iter().take(self.trajectory));
        }
        Ok(starts)
    }
}

/// What a search found.
#[derive(Debug, Clone)]
pub struct Found {
    /// Distinct points, in the order first found.
    pub points: Vec<FixedPoint>,
    /// Per point, the methods that found it (`newton;iterative`).
    pub found_by: Vec<String>,
    /// One line per method: how many points, or why it did not apply.
    pub notes: Vec<String>,
}

/// Runs each method of `methods` on `system` (Newton from `starts`; the ORGaNICs methods from
/// their candidates, which need `organics`), merging the points that lie within
/// `opts.dedup_tol · (1 + ‖x‖)` (max norm) of one found before. With several methods, a method
/// that does not apply is noted and skipped; asked alone, it is an error naming `method`.
pub fn search(
    system: &System,
    starts: &[Vec<f64>],
    methods: &[SearchMethod],
    organics: Option<&Organics>,
    opts: &FinderOptions,
) -> Result<Found> {
    let methods = SearchMethod::expand(methods);
    let explicit_one = methods.len() == 1;
    let mut points: Vec<FixedPoint> = vec![];
    let mut found_by: Vec<Vec<&'static str>> = vec![];
    let mut notes: Vec<String> = vec![];
    for m in &methods {
        let om = match m {
            SearchMethod::Newton | SearchMethod::All => None,
            SearchMethod::ClosedForm => Some(OrganicsMethod::ClosedForm),
            SearchMethod::Quartic => Some(OrganicsMethod::Quartic),
            SearchMethod::Iterative => Some(OrganicsMethod::Iterative),
        };
        let (name, found) = match om {
            None => ("newton", find_system_fixed_points(system, starts, opts)?),
            Some(om) => {
                let Some(model) = organics else {
                    return Err(Error::invalid(
                        "method",
                        "closed-form, quartic and iterative are ORGaNICs methods (use an ORGaNICs preset or --organics N); other models use newton",
                    ));
                };
                match organics_candidates(model, om) {
                    Ok(c) if c.is_empty() => {
                        notes.push(format!("{}: no candidate (no positive root)", om.name()));
                        continue;
                    }
                    Ok(c) => (om.name(), find_system_fixed_points(system, &c, opts)?),
                    Err(e) if !explicit_one => {
                        notes.push(format!("{}: does not apply ({e})", om.name()));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        notes.push(format!("{name}: {} point(s)", found.len()));
        for p in found {
            let scale = 1.0 + p.x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let same = points.iter().position(|q| {
                q.x.iter()
                    .zip(&p.x)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
                    < opts.dedup_tol * scale
            });
            match same {
                Some(k) if !found_by[k].contains(&name) => found_by[k].push(name),
                Some(_) => {}
                None => {
                    points.push(p);
                    found_by.push(vec![name]);
                }
            }
        }
    }
    Ok(Found {
        points,
        found_by: found_by.iter().map(|v| v.join(";")).collect(),
        notes,
    })
}

/// States along a trajectory of `system` from `x0`: a flow over t ∈ [0, `time`] (RK4,
/// dt = 0.05, `count` evenly spaced samples; with `blowup`, an error once a state exceeds it), a
/// map over `count` steps.
pub fn trajectory(
    system: &System,
    x0: &[f64],
    count: usize,
    time: f64,
    blowup: Option<f64>,
) -> Result<Vec<Vec<f64>>> {
    Ok(match system {
        System::Flow(m) => {
            let mut opts = Options::new().save(SaveAt::Uniform(count.max(2)));
            if let Some(b) = blowup {
                opts = opts.blowup(b);
            }
            let sol = integrate(m, x0, (0.0, time), &Stepper::rk4(0.05), &opts)?;
            (0..sol.len()).map(|k| sol.state(k).to_vec()).collect()
        }
        System::Map(m) => {
            let mut h = x0.to_vec();
            (0..count)
                .map(|t| {
                    let s = h.clone();
                    m.step(t, &mut h);
                    s
                })
                .collect()
        }
    })
}

/// Eigenvectors of `j` ordered as `eig` (the spectrum table's order): for each listed eigenvalue
/// the eigenvector of the nearest unused eigenvalue of the decomposition.
pub fn eigenvectors(j: &Mat<f64>, eig: &[c64]) -> Result<Vec<Vec<c64>>> {
    let n = j.nrows();
    let e = j
        .eigen()
        .map_err(|e| Error::failed("eigenvectors", format!("{e:?}")))?;
    let (vals, vecs) = (e.S(), e.U());
    let mut used = vec![false; n];
    let mut out = vec![];
    for l in eig {
        let k = (0..n)
            .filter(|&k| !used[k])
            .min_by(|&a, &b| (vals[a] - *l).norm().total_cmp(&(vals[b] - *l).norm()))
            .unwrap_or(0);
        used[k] = true;
        out.push((0..n).map(|i| vecs[(i, k)]).collect());
    }
    Ok(out)
}

/// One row per point: index, norm, q, residual, converged, class, n_unstable, max_growth,
/// starts, input (NaN: none), found_by, and the coordinates x0 … x{N−1}.
pub fn points_table(found: &Found, input: Option<f64>, n: usize) -> Table {
    let points = &found.points;
    let k = points.len();
    let mut t = Table::new();
    t.push("index", Column::I64((0..k as i64).collect()));
    let f = |g: fn(&FixedPoint) -> f64| Column::F64(points.iter().map(g).collect());
    t.push("norm", f(|p| p.x.iter().map(|v| v * v).sum::<f64>().sqrt()));
    t.push("q", f(|p| p.q));
    t.push("residual", f(|p| p.residual));
    t.push(
        "converged",
        Column::I64(points.iter().map(|p| i64::from(p.converged)).collect()),
    );
    t.push(
        "class",
        Column::Str(points.iter().map(|p| p.stability.class.label()).collect()),
    );
    t.push(
        "n_unstable",
        Column::I64(
            points
                .iter()
                .map(|p| p.stability.n_unstable as i64)
                .collect(),
        ),
    );
    t.push("max_growth", f(|p| p.stability.max_growth));
    t.push(
        "starts",
        Column::I64(points.iter().map(|p| p.count as i64).collect()),
    );
    t.push("input", Column::F64(vec![input.unwrap_or(f64::NAN); k]));
    t.push("found_by", Column::Str(found.found_by.clone()));
    for i in 0..n {
        t.push(
            format!("x{i}"),
            Column::F64(points.iter().map(|p| p.x[i]).collect()),
        );
    }
    t
}

/// One row per eigenvalue: the point's index, Re λ, Im λ.
pub fn spectrum_table(points: &[FixedPoint]) -> Table {
    let rows: Vec<(usize, f64, f64)> = points
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.stability.eigenvalues.iter().map(move |l| (k, l.re, l.im)))
        .collect();
    let mut st = Table::new();
    st.push(
        "index",
        Column::I64(rows.iter().map(|r| r.0 as i64).collect()),
    );
    st.push("re", Column::F64(rows.iter().map(|r| r.1).collect()));
    st.push("im", Column::F64(rows.iter().map(|r| r.2).collect()));
    st
}

/// The eigenvalues of the first ten points in the complex plane.
pub fn eigenvalue_plot(points: &[FixedPoint]) -> LinePlot {
    let mut p = LinePlot::new(
        "Eigenvalues of the Jacobian at each fixed point",
        "Re λ",
        "Im λ",
    );
    p.markers = true;
    for (k, fp) in points.iter().enumerate().take(10) {
        p = p.series(
            format!("#{k} {}", fp.stability.class.label()),
            fp.stability
                .eigenvalues
                .iter()
                .map(|l| (l.re, l.im))
                .collect(),
        );
    }
    p
}

/// The points and trajectories from the first few starts, projected on the first two principal
/// components of the points and trajectory states together (None: too few states to project).
pub fn pca_plot(
    points: &[FixedPoint],
    system: &System,
    starts: &[Vec<f64>],
) -> Result<Option<LinePlot>> {
    let n = system.dim();
    let trajs: Vec<Vec<Vec<f64>>> = starts
        .iter()
        .take(5)
        .filter_map(|s| trajectory(system, s, 200, 50.0, Some(1e6)).ok())
        .collect();
    let rows: Vec<&Vec<f64>> = points
        .iter()
        .map(|p| &p.x)
        .chain(trajs.iter().flatten())
        .filter(|x| x.iter().all(|v| v.is_finite()))
        .collect();
    if rows.len() < 2 || n < 2 {
        return Ok(None);
    }
    let mean: Vec<f64> = (0..n)
        .map(|i| rows.iter().map(|x| x[i]).sum::<f64>() / rows.len() as f64)
        .collect();
    let a = Mat::from_fn(rows.len(), n, |r, i| rows[r][i] - mean[i]);
    let svd = a
        .thin_svd()
        .map_err(|e| Error::failed("pca", format!("{e:?}")))?;
    let v = svd.V();
    let proj = |x: &[f64]| -> (f64, f64) {
        let (mut p, mut q) = (0.0, 0.0);
        for i in 0..n {
            p += (x[i] - mean[i]) * v[(i, 0)];
            q += (x[i] - mean[i]) * v[(i, 1)];
        }
        (p, q)
    };
    let mut plot = LinePlot::new(
        "Fixed points and trajectories (first two PCs)",
        "PC 1",
        "PC 2",
    );
    for (k, t) in trajs.iter().enumerate() {
        plot = plot.series(
            format!("trajectory {k}"),
            t.iter()
                .filter(|x| x.iter().all(|v| v.is_finite()))
                .map(|x| proj(x))
                .collect(),
        );
    }
    for (k, p) in points.iter().enumerate().take(20) {
        plot = plot.points(
            format!("#{k} {}", p.stability.class.label()),
            vec![proj(&p.x)],
        );
    }
    Ok(Some(plot))
}
