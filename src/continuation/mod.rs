//! Continuation of fixed points in one parameter, with bifurcation detection and location
//! (Keller 1977 pseudo-arclength; Kuznetsov 2004, *Elements of Applied Bifurcation Theory*, for the
//! test functions and the first Lyapunov coefficient).
//!
//! For a [`Parametrised`] flow `dx/dt = f(x; p)` the branch is the solution curve of
//! `G(x, p) = f(x; p) = 0`; for a map `x ← F(x; p)` of `G = F(x; p) − x = 0`. With `y = (x, p)`
//! and the unit tangent `t` (`[G_x  G_p] t = 0`, oriented along the branch), one step is
//!
//! $$ y^{pred} = y + \Delta s\, t, \qquad
//!    \begin{pmatrix} G(y) \\ t^\top (y - y^{pred}) \end{pmatrix} = 0 \ \text{by Newton on}\
//!    \begin{pmatrix} G_x & G_p \\ t_x^\top & t_p \end{pmatrix}, $$
//!
//! the bordered Jacobian factorised by faer's LU; Δs grows after easy corrections and halves after
//! failed ones. The curve is followed through folds (turning points), where `t_p` changes sign.
//!
//! At every point the spectrum of `J = f_x` (flows) or `D = F_x` (maps) gives the stability and the
//! test functions; between two points a change signals
//!
//! | kind | flows | maps |
//! |---|---|---|
//! | `fold` | `t_p` changes sign | `t_p` changes sign |
//! | `branch_point` | a real eigenvalue crosses 0 without a fold | a real eigenvalue crosses +1 without a fold |
//! | `hopf` | a complex pair crosses Re λ = 0 | — |
//! | `flip` | — | a real eigenvalue crosses −1 |
//! | `neimark_sacker` | — | a complex pair crosses \|λ\| = 1 |
//!
//! and the point is located by regula falsi (Illinois) in the arclength on the test function
//! (`t_p`, the critical eigenvalue's real part, λ ∓ 1, |λ| − 1), each evaluation a corrected point on
//! the branch, to `|Δp| ≤ 1e-10 max(1, |p|)`. At Hopf points the frequency ω (the pair's imaginary
//! part) and the first Lyapunov coefficient l1 (negative: supercritical, a stable limit cycle is
//! born; positive: subcritical) are reported.
//!
//! ```
//! use neurodyn::continuation::{continue_branch, ContinuationOptions, Kind, ParamFn};
//! use neurodyn::stability::TimeKind;
//! // dx/dt = p − x²: the branch x = ±√p turns at the fold p = 0.
//! let f = ParamFn::new("p", 1, TimeKind::Continuous, |x, p, o| o[0] = p - x[0] * x[0])
//!     .with_jacobian(|x, _p, mut j| j[(0, 0)] = -2.0 * x[0]);
//! let opts = ContinuationOptions::new(1.0, -1.0).ds(0.05).max_points(200);
//! let b = continue_branch(&f, &[1.0], &opts).unwrap();
//! let fold = b.bifurcations.iter().find(|z| z.kind == Kind::Fold).unwrap();
//! assert!(fold.p.abs() < 1e-10 && fold.x[0].abs() < 1e-5);
//! ```

pub mod cycles;
pub mod hopf;
pub mod param;
pub mod switch;
pub mod two;

pub use param::{
    frozen, jacobian_at, ParamFn, Parametrised, RateKnob, RateParam, Rebuild, Residual,
};

use crate::error::{Error, Result};
use crate::stability::{analyze_jacobian, Stability, TimeKind};
use faer::linalg::solvers::Solve;
use faer::{c64, Mat};
use std::sync::Arc;

/// Options of [`continue_branch`].
#[derive(Clone)]
pub struct ContinuationOptions {
    /// Start value of the parameter (the branch starts from a fixed point at this value).
    pub from: f64,
    /// The direction and the end: the branch is followed from `from` towards `to` and stops when
    /// the parameter leaves the closed interval between them (on either side, after folds).
    pub to: f64,
    /// Initial arclength step (default 1 % of |to − from|).
    pub ds: f64,
    /// Largest step (default 5 % of |to − from|, at least `ds`).
    pub ds_max: f64,
    /// Smallest step: below it the continuation stops (default 1e-9 of |to − from|).
    pub ds_min: f64,
    /// Most points on the branch.
    pub max_points: usize,
    /// Newton tolerance on ‖G‖∞.
    pub tol: f64,
    /// Detect and locate bifurcations.
    pub detect: bool,
    /// How each point's spectrum is computed.
    pub spectrum: Spectrum,
    /// Called with the number of points so far.
    pub progress: Option<Arc<dyn Fn(usize) + Send + Sync>>,
}

/// How the spectrum at each branch point is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spectrum {
    /// [`Spectrum::Nearest`] with 8 eigenvalues for flows of more than 64 states, where the
    /// dense eigensolver would dominate the branch's cost; [`Spectrum::Full`] otherwise.
    #[default]
    Auto,
    /// Every eigenvalue at every point (faer's dense eigensolver, O(N³) per point, the points in
    /// parallel): every column of every row exact.
    Full,
    /// Flows: the `nev` eigenvalues nearest a real shift σ right of the last point's rightmost
    /// eigenvalue (by 0.05 (1 + |Re λ|)), by shift-invert Arnoldi (one more LU and O(N²) per
    /// Krylov step, started from the last point's Ritz vectors, on a second thread that follows
    /// the trace), in the manner of BifurcationKit.jl's `eigs` at a shift. Ritz values right of
    /// the `nev` nearest (a complex pair off a nearly vertical right edge of the spectrum) are
    /// kept and iterated until they converge, so a row's `max_growth` is the rightmost
    /// eigenvalue's real part unless such a pair has not yet shown up as a Ritz value. Every
    /// eigenvalue is computed at the two ends, wherever the Arnoldi run does not converge, and
    /// at both ends of every step where a test function changes sign; if a full spectrum there
    /// counts other unstable eigenvalues than the tracked ones, the whole branch falls back to
    /// [`Spectrum::Full`]. So stability, unstable counts and bifurcations are those of full
    /// spectra. Maps always use the full spectrum (their boundary is a circle).
    Nearest { nev: usize },
}

impl Spectrum {
    /// The `nev` to track for an `n`-state system (None: full spectra).
    fn tracked(self, n: usize, map: bool) -> Option<usize> {
        match self {
            _ if map => None,
            Spectrum::Full => None,
            Spectrum::Auto => (n > 64).then_some(8),
            Spectrum::Nearest { nev } => (nev < n).then_some(nev),
        }
    }
}

impl std::str::FromStr for Spectrum {
    type Err = Error;
    /// `auto`, `full`, `nearest` (8 eigenvalues) or `nearest:K`.
    fn from_str(v: &str) -> Result<Self> {
        match v {
            "auto" => Ok(Spectrum::Auto),
            "full" => Ok(Spectrum::Full),
            "nearest" => Ok(Spectrum::Nearest { nev: 8 }),
            _ => match v.strip_prefix("nearest:").map(str::parse::<usize>) {
                Some(Ok(nev)) if nev >= 1 => Ok(Spectrum::Nearest { nev }),
                _ => Err(Error::invalid(
                    "spectrum",
                    format!("{v:?}: expected auto, full, nearest or nearest:K with K ≥ 1"),
                )),
            },
        }
    }
}

impl ContinuationOptions {
    /// From `from` towards `to` with the default steps.
    pub fn new(from: f64, to: f64) -> Self {
        let span = (to - from).abs().max(1e-300);
        ContinuationOptions {
            from,
            to,
            ds: 0.01 * span,
            ds_max: 0.05 * span,
            ds_min: 1e-9 * span,
            max_points: 1000,
            tol: 1e-11,
            detect: true,
            spectrum: Spectrum::Auto,
            progress: None,
        }
    }
    pub fn spectrum(mut self, s: Spectrum) -> Self {
        self.spectrum = s;
        self
    }
    pub fn ds(mut self, ds: f64) -> Self {
        self.ds = ds;
        self.ds_max = self.ds_max.max(ds);
        self
    }
    pub fn ds_max(mut self, ds_max: f64) -> Self {
        self.ds_max = ds_max;
        self
    }
    pub fn max_points(mut self, n: usize) -> Self {
        self.max_points = n;
        self
    }
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    pub fn detect(mut self, on: bool) -> Self {
        self.detect = on;
        self
    }
    pub fn progress(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    fn validate(&self) -> Result<()> {
        for (f, v) in [("from", self.from), ("to", self.to)] {
            if !v.is_finite() {
                return Err(Error::invalid(f, format!("{v} (must be finite)")));
            }
        }
        if self.from == self.to {
            return Err(Error::invalid("to", "must differ from `from`"));
        }
        if !(self.ds > 0.0 && self.ds_max >= self.ds && self.ds_min > 0.0 && self.ds_min < self.ds)
        {
            return Err(Error::invalid(
                "ds",
                format!(
                    "need 0 < ds_min < ds ≤ ds_max (got {}, {}, {})",
                    self.ds_min, self.ds, self.ds_max
                ),
            ));
        }
        if self.max_points < 2 {
            return Err(Error::invalid("max-points", "must be at least 2"));
        }
        if !(self.tol > 0.0) {
            return Err(Error::invalid("tol", "must be positive"));
        }
        Ok(())
    }
}

/// One point of a branch.
#[derive(Debug, Clone)]
pub struct BranchPoint {
    pub p: f64,
    pub x: Vec<f64>,
    /// ‖G(x, p)‖∞.
    pub residual: f64,
    /// The unit tangent (x part, then p).
    pub tangent: Vec<f64>,
    /// Spectrum of J (flows) or D (maps) and its reading.
    pub stability: Stability,
}

/// The kinds of bifurcation detected along a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fold,
    BranchPoint,
    Hopf,
    Flip,
    NeimarkSacker,
}

impl Kind {
    /// The name written to tables (`fold`, `branch_point`, `hopf`, `flip`, `neimark_sacker`).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Fold => "fold",
            Kind::BranchPoint => "branch_point",
            Kind::Hopf => "hopf",
            Kind::Flip => "flip",
            Kind::NeimarkSacker => "neimark_sacker",
        }
    }
}

/// A located bifurcation.
#[derive(Debug, Clone)]
pub struct Bifurcation {
    pub kind: Kind,
    pub p: f64,
    pub x: Vec<f64>,
    /// Between branch points `index − 1` and `index`.
    pub index: usize,
    /// Hopf: the crossing pair's imaginary part (flows, in the model's time unit);
    /// Neimark–Sacker: its angle arg λ.
    pub omega: Option<f64>,
    /// Hopf: the first Lyapunov coefficient (Kuznetsov's normalisation).
    pub l1: Option<f64>,
    /// The test function's value at the located point.
    pub test: f64,
}

/// Why a continuation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The parameter left the interval [from, to] (the last point is on its boundary).
    Range,
    /// `max_points` were computed.
    Points,
    /// The step fell below `ds_min` (the corrector kept failing).
    Step { p: f64 },
}

/// A computed branch.
#[derive(Debug, Clone)]
pub struct Branch {
    pub points: Vec<BranchPoint>,
    pub bifurcations: Vec<Bifurcation>,
    pub stop: Stop,
    /// Corrector iterations in total, factorisations in total.
    pub newton_iterations: usize,
    pub param: String,
    pub kind: TimeKind,
}

impl Branch {
    /// The bifurcation diagram: `y(x)` against the parameter, stable pieces solid, unstable ones
    /// dashed, each located bifurcation a labelled marker.
    pub fn diagram(
        &self,
        title: &str,
        ylabel: &str,
        y: impl Fn(&[f64]) -> f64,
    ) -> crate::plot::LinePlot {
        let plot = crate::plot::LinePlot::new(title, self.param.clone(), ylabel);
        let mut plot = self.draw(plot, ("stable", "unstable"), 0, &y);
        for z in &self.bifurcations {
            plot = plot.points(
                format!("{} at {:.6}", z.kind.label(), z.p),
                vec![(z.p, y(&z.x))],
            );
        }
        plot
    }

    /// Draws the branch on `plot` in palette colour `colour`: stable runs solid, unstable
    /// dashed, the first of each labelled `labels.0` / `labels.1` (the bifurcation markers are
    /// [`Self::diagram`]'s). Switched branches go onto their parent's diagram with this.
    pub fn draw(
        &self,
        mut plot: crate::plot::LinePlot,
        labels: (&str, &str),
        colour: usize,
        y: &dyn Fn(&[f64]) -> f64,
    ) -> crate::plot::LinePlot {
        let mut pieces: Vec<(bool, Vec<(f64, f64)>)> = vec![];
        for p in &self.points {
            let s = p.stability.class.is_stable();
            let pt = (p.p, y(&p.x));
            match pieces.last_mut() {
                Some((stable, seg)) if *stable == s => seg.push(pt),
                Some((_, seg)) => {
                    // The new piece starts where the last one ended (no gap in the curve).
                    let joint = *seg.last().unwrap_or(&pt);
                    pieces.push((s, vec![joint, pt]));
                }
                None => pieces.push((s, vec![pt])),
            }
        }
        let (mut stable_shown, mut unstable_shown) = (false, false);
        for (stable, pts) in pieces {
            let shown = if stable {
                &mut stable_shown
            } else {
                &mut unstable_shown
            };
            let label = if *shown {
                ""
            } else if stable {
                labels.0
            } else {
                labels.1
            };
            *shown = true;
            plot = plot.segment(label, pts, colour, !stable);
        }
        plot
    }
}

/// The branch table's columns for `pts`: param, x0 … x{n−1}, stable, n_unstable, max_re_eig
/// (flows) or max_abs_eig (maps), residual.
pub(crate) fn point_columns(t: &mut crate::io::Table, pts: &[&BranchPoint], kind: TimeKind) {
    use crate::io::Column;
    let n = pts.first().map_or(0, |p| p.x.len());
    t.push("param", Column::F64(pts.iter().map(|p| p.p).collect()));
    for i in 0..n {
        t.push(
            format!("x{i}"),
            Column::F64(pts.iter().map(|p| p.x[i]).collect()),
        );
    }
    t.push(
        "stable",
        Column::I64(
            pts.iter()
                .map(|p| i64::from(p.stability.class.is_stable()))
                .collect(),
        ),
    );
    t.push(
        "n_unstable",
        Column::I64(pts.iter().map(|p| p.stability.n_unstable as i64).collect()),
    );
    t.push(
        if kind == TimeKind::Discrete {
            "max_abs_eig"
        } else {
            "max_re_eig"
        },
        Column::F64(pts.iter().map(|p| p.stability.max_growth).collect()),
    );
    t.push(
        "residual",
        Column::F64(pts.iter().map(|p| p.residual).collect()),
    );
}

/// The residual machinery around a parametrised system.
struct Problem<'a, P: Parametrised + ?Sized> {
    sys: &'a P,
    n: usize,
    map: bool,
    tol: f64,
}

/// The LU of G_x at a branch point and `b = G_x⁻¹ G_p`: the tangent there, the next step's
/// corrector (block elimination) and shift-invert Arnoldi share this one factorisation.
struct Factored {
    lu: crate::krylov::DenseLu,
    b: Vec<f64>,
}

/// Counts of eigenvalues on the unstable side of each boundary (the test functions' signs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    /// Flows: real λ > 0; maps: real λ > 1.
    real_pos: usize,
    /// Maps: real λ < −1.
    real_neg: usize,
    /// Flows: complex λ with Re > 0; maps: complex λ with |λ| > 1.
    complex: usize,
}

impl<P: Parametrised + ?Sized> Problem<'_, P> {
    fn residual(&self, x: &[f64], p: f64, out: &mut [f64]) {
        use crate::model::Model;
        Residual { sys: self.sys, p }.rhs(0.0, x, out)
    }

    /// [G_x G_p] as an n × (n+1) matrix (columns: x, then p).
    fn jac_ext(&self, x: &[f64], p: f64) -> Mat<f64> {
        let n = self.n;
        use crate::model::Model;
        let mut a = Mat::<f64>::zeros(n, n + 1);
        Residual { sys: self.sys, p }.jacobian(0.0, x, a.as_mut().subcols_mut(0, n));
        let mut gp = vec![0.0; n];
        self.sys.dp(x, p, &mut gp);
        for i in 0..n {
            a[(i, n)] = gp[i];
        }
        a
    }

    /// The bordered matrix [[G_x, G_p], [cᵀ]].
    fn bordered(&self, a: &Mat<f64>, c: &[f64]) -> Mat<f64> {
        let n = self.n;
        Mat::from_fn(n + 1, n + 1, |i, j| if i < n { a[(i, j)] } else { c[j] })
    }

    /// The unit tangent at y oriented along `prev` (`[G_x G_p; prevᵀ] t = [0; 1]`).
    fn tangent(&self, y: &[f64], prev: &[f64]) -> Option<Vec<f64>> {
        let n = self.n;
        let a = self.jac_ext(&y[..n], y[n]);
        let m = self.bordered(&a, prev);
        let mut rhs = Mat::<f64>::zeros(n + 1, 1);
        rhs[(n, 0)] = 1.0;
        let t = m.partial_piv_lu().solve(&rhs);
        let mut t: Vec<f64> = (0..=n).map(|i| t[(i, 0)]).collect();
        let norm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return None;
        }
        t.iter_mut().for_each(|v| *v /= norm);
        if t.iter().zip(prev).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
            t.iter_mut().for_each(|v| *v = -*v);
        }
        Some(t)
    }

    /// Newton on [G(y); tᵀ(y − y_pred)] = 0 from y_pred. Returns the point and the iterations.
    fn correct(&self, y_pred: &[f64], t: &[f64]) -> Option<(Vec<f64>, usize)> {
        self.correct_with(y_pred, t, 12)
    }

    /// [`Self::correct`] with an iteration budget. Near a branch point the extended Jacobian is
    /// singular and Newton converges only linearly (rate ½): locating one needs more iterations.
    fn correct_with(&self, y_pred: &[f64], t: &[f64], max_it: usize) -> Option<(Vec<f64>, usize)> {
        self.newton(y_pred, t, max_it, None)
    }

    /// Newton on [G(y); tᵀ(y − y_pred)] = 0 from y_pred. Without `frozen`: chord steps on the
    /// bordered matrix, factorised at the first iterate and again only when an iteration
    /// contracts less than fivefold (one LU per step on a smooth branch). With `frozen` (the
    /// factors of G_x at the previous branch point): block elimination on them and no
    /// factorisation at all; None as soon as an iteration contracts less than twofold (near a
    /// fold G_x is nearly singular and the caller falls back to the bordered matrix).
    fn newton(
        &self,
        y_pred: &[f64],
        t: &[f64],
        max_it: usize,
        frozen: Option<&Factored>,
    ) -> Option<(Vec<f64>, usize)> {
        let n = self.n;
        let mut y = y_pred.to_vec();
        let mut g = vec![0.0; n];
        let inf = |v: &[f64]| v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
        let scale = 1.0 + inf(y_pred);
        let mut last_dy = f64::INFINITY;
        let mut lu: Option<faer::linalg::solvers::PartialPivLu<f64>> = None;
        let mut g_sol = vec![0.0; if frozen.is_some() { n } else { 0 }];
        // Block elimination: [G_x G_p; t_xᵀ t_p] [dx; dp] = [r; c] with G_x⁻¹ G_p = b known.
        let denom = frozen.map(|f| t[n] - (0..n).map(|i| t[i] * f.b[i]).sum::<f64>());
        if denom.is_some_and(|d| !(d.abs() > 1e-12)) {
            return None;
        }
        for it in 1..=max_it {
            self.residual(&y[..n], y[n], &mut g);
            if !g.iter().all(|v| v.is_finite()) {
                return None;
            }
            let c = -(0..=n).map(|i| t[i] * (y[i] - y_pred[i])).sum::<f64>();
            let mut rhs = Mat::<f64>::from_fn(n + 1, 1, |i, _| if i < n { -g[i] } else { c });
            let dy: Vec<f64> = match (frozen, denom) {
                (Some(f), Some(den)) => {
                    let r: Vec<f64> = (0..n).map(|i| rhs[(i, 0)]).collect();
                    f.lu.solve_into(&r, &mut g_sol);
                    let dp = (c - (0..n).map(|i| t[i] * g_sol[i]).sum::<f64>()) / den;
                    (0..n).map(|i| g_sol[i] - dp * f.b[i]).chain([dp]).collect()
                }
                _ => {
                    if lu.is_none() {
                        let a = self.jac_ext(&y[..n], y[n]);
                        lu = Some(self.bordered(&a, t).partial_piv_lu());
                    }
                    lu.as_ref()?.solve_in_place(rhs.as_mut());
                    (0..=n).map(|i| rhs[(i, 0)]).collect()
                }
            };
            let mut d = 0.0f64;
            for (yi, di) in y.iter_mut().zip(&dy) {
                *yi += di;
                d = d.max(di.abs());
            }
            if !d.is_finite() || (it > 3 && d > 0.9 * last_dy && d > 1e-8 * scale) {
                return None;
            }
            if d > 0.2 * last_dy {
                if frozen.is_some() && d > 0.5 * last_dy && d > 1e-8 * scale {
                    return None;
                }
                lu = None;
            }
            last_dy = d;
            if d <= 1e-13 * scale || (d <= 1e-9 * scale && inf(&g) <= self.tol) {
                self.residual(&y[..n], y[n], &mut g);
                if inf(&g) <= self.tol {
                    return Some((y, it));
                }
            }
        }
        self.residual(&y[..n], y[n], &mut g);
        (inf(&g) <= self.tol).then_some((y, max_it))
    }

    /// The LU of G_x at y and b = G_x⁻¹ G_p (None where G_x is numerically singular),
    /// factorised into `reuse`'s buffer when one is given.
    fn factor(&self, y: &[f64], reuse: Option<Factored>) -> Option<Factored> {
        use crate::model::Model;
        let n = self.n;
        let (x, p) = (&y[..n], y[n]);
        let mut lu = reuse.map(|f| f.lu).unwrap_or_default();
        if !lu.factor_with(n, |m| Residual { sys: self.sys, p }.jacobian(0.0, x, m)) {
            return None;
        }
        let mut gp = vec![0.0; n];
        self.sys.dp(x, p, &mut gp);
        let mut b = vec![0.0; n];
        lu.solve_into(&gp, &mut b);
        b.iter()
            .all(|v| v.is_finite())
            .then_some(Factored { lu, b })
    }

    /// The unit tangent from the factors at the point: t ∝ (−G_x⁻¹ G_p, 1), oriented along `prev`.
    fn tangent_factored(&self, f: &Factored, prev: &[f64]) -> Option<Vec<f64>> {
        let norm = (1.0 + f.b.iter().map(|v| v * v).sum::<f64>()).sqrt();
        if !norm.is_finite() {
            return None;
        }
        let mut t: Vec<f64> = f.b.iter().map(|v| -v / norm).chain([1.0 / norm]).collect();
        if t.iter().zip(prev).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
            t.iter_mut().for_each(|v| *v = -*v);
        }
        Some(t)
    }

    /// One step of the trace from (y, t): predictor, then the corrector on the frozen factors
    /// of the last point, or the bordered one if that fails; the new point's factors (in the
    /// buffer of `spare`, if any) and tangent. Returns (y₁, t₁, factors at y₁, Newton iterations).
    fn step(
        &self,
        y: &[f64],
        t: &[f64],
        ds: f64,
        frozen: Option<&Factored>,
        spare: &mut Option<Factored>,
    ) -> Option<(Vec<f64>, Vec<f64>, Option<Factored>, usize)> {
        let n = self.n;
        let pred: Vec<f64> = (0..=n).map(|i| y[i] + ds * t[i]).collect();
        let (y1, it) = frozen
            .and_then(|f| self.newton(&pred, t, 20, Some(f)))
            .or_else(|| self.correct(&pred, t))?;
        let f1 = self.factor(&y1, spare.take());
        let t1 = f1
            .as_ref()
            .and_then(|f| self.tangent_factored(f, t))
            .or_else(|| self.tangent(&y1, t))?;
        Some((y1, t1, f1, it))
    }

    /// The `nev` eigenvalues of G_x at y nearest σ, right of the last point's rightmost
    /// eigenvalue by 0.05 (1 + |Re λ|) (a full spectrum seeds the first point), by shift-invert
    /// Arnoldi on G_x − σI (factorised into `lu`'s buffer): accurate enough to fix the sign of every real part and the largest real part
    /// to 1e-10 (relative). None where the Arnoldi run does not get there or every tracked
    /// eigenvalue is unstable (the count of unstable ones is then unknown).
    fn nearest(
        &self,
        y: &[f64],
        nev: usize,
        top: &mut Option<f64>,
        lu: &mut crate::krylov::DenseLu,
        warm: &mut Option<Vec<f64>>,
    ) -> Result<Option<Vec<c64>>> {
        use crate::model::Model;
        let n = self.n;
        let (x, p) = (&y[..n], y[n]);
        let Some(last) = *top else {
            let j = jacobian_at(self.sys, x, p);
            let ev = j
                .eigenvalues()
                .map_err(|e| Error::failed("continuation", format!("eigenvalues: {e:?}")))?;
            *top = ev.iter().map(|l| l.re).reduce(f64::max);
            return Ok(None);
        };
        // Right of the last rightmost eigenvalue by 5 % of (1 + |Re λ|): near enough for
        // Arnoldi to converge in a few dozen steps, far enough that the nearest eigenvalues
        // are the rightmost ones unless the spectrum's right edge is nearly vertical.
        let sigma = last + 0.05 * (1.0 + last.abs());
        let ok = lu.factor_with(n, |mut m| {
            Residual { sys: self.sys, p }.jacobian(0.0, x, m.as_mut());
            for i in 0..n {
                m[(i, i)] -= sigma;
            }
        });
        if !ok {
            *top = None;
            return Ok(None);
        }
        let accept = |set: &[(c64, f64)]| {
            let top = set
                .iter()
                .map(|(l, _)| l.re)
                .fold(f64::NEG_INFINITY, f64::max);
            set.iter().all(|(l, e)| {
                let sign_sure = *e <= 0.1 * l.re.abs() || *e <= 1e-13 * (1.0 + l.norm());
                let top_sure = l.re < top - 10.0 * e || *e <= 1e-10 * (1.0 + l.norm());
                sign_sure && top_sure
            })
        };
        let found = crate::krylov::nearest_eigenvalues(
            lu,
            sigma,
            nev,
            4 * nev + 64,
            warm.as_deref(),
            accept,
        )?;
        let Some((set, next)) = found else {
            *top = None;
            *warm = None;
            return Ok(None);
        };
        *warm = Some(next);
        let ev: Vec<c64> = set.into_iter().map(|(l, _)| l).collect();
        *top = ev.iter().map(|l| l.re).reduce(f64::max);
        Ok(ev.iter().any(|l| l.re < 0.0).then_some(ev))
    }

    /// The branch points with their spectra. Full spectra (in parallel) where nothing is
    /// tracked, at the two ends and at both ends of every step whose signature changes; if a
    /// full spectrum disagrees with the tracked eigenvalues at the same point on the count of
    /// unstable ones, every point gets its full spectrum.
    fn spectra(
        &self,
        raw: Vec<(Vec<f64>, Vec<f64>, Option<Vec<c64>>)>,
    ) -> Result<Vec<BranchPoint>> {
        use rayon::prelude::*;
        let kind = if self.map {
            TimeKind::Discrete
        } else {
            TimeKind::Continuous
        };
        let len = raw.len();
        let mut full: Vec<Option<BranchPoint>> = vec![None; len];
        let tracked: Vec<Option<BranchPoint>> = raw
            .iter()
            .map(|(y, t, ev)| {
                ev.as_ref().map(|ev| {
                    let mut g = vec![0.0; self.n];
                    self.residual(&y[..self.n], y[self.n], &mut g);
                    BranchPoint {
                        p: y[self.n],
                        residual: g.iter().fold(0.0f64, |m, a| m.max(a.abs())),
                        x: y[..self.n].to_vec(),
                        tangent: t.clone(),
                        stability: crate::stability::classify_partial(
                            ev.clone(),
                            self.n,
                            kind,
                            1e-10,
                        ),
                    }
                })
            })
            .collect();
        let mut want: Vec<bool> = (0..len)
            .map(|i| tracked[i].is_none() || i == 0 || i + 1 == len)
            .collect();
        loop {
            let todo: Vec<usize> = (0..len).filter(|&i| want[i] && full[i].is_none()).collect();
            let done: Vec<BranchPoint> = todo
                .par_iter()
                .map(|&i| self.point(raw[i].0.clone(), raw[i].1.clone()))
                .collect::<Result<_>>()?;
            for (i, pt) in todo.into_iter().zip(done) {
                full[i] = Some(pt);
            }
            let disagree = (0..len).any(|i| match (&full[i], &tracked[i]) {
                (Some(a), Some(b)) => self.signature(&a.stability) != self.signature(&b.stability),
                _ => false,
            });
            if disagree && want.iter().any(|w| !w) {
                want = vec![true; len];
                continue;
            }
            let best = |i: usize| full[i].as_ref().or(tracked[i].as_ref());
            let mut more = false;
            for k in 1..len {
                let (a, b) = (best(k - 1), best(k));
                if let (Some(a), Some(b)) = (a, b) {
                    let changed = self.signature(&a.stability) != self.signature(&b.stability)
                        || a.tangent[self.n] * b.tangent[self.n] < 0.0;
                    if changed && !(want[k - 1] && want[k]) {
                        want[k - 1] = true;
                        want[k] = true;
                        more = true;
                    }
                }
            }
            if !more {
                break;
            }
        }
        full.into_iter()
            .zip(tracked)
            .map(|(f, t)| {
                f.or(t)
                    .ok_or_else(|| Error::failed("continuation", "a point without a spectrum"))
            })
            .collect()
    }

    fn point(&self, y: Vec<f64>, t: Vec<f64>) -> Result<BranchPoint> {
        let n = self.n;
        let mut g = vec![0.0; n];
        self.residual(&y[..n], y[n], &mut g);
        let j = jacobian_at(self.sys, &y[..n], y[n]);
        let stability = analyze_jacobian(
            j.as_ref(),
            if self.map {
                TimeKind::Discrete
            } else {
                TimeKind::Continuous
            },
            1e-10,
        )?;
        Ok(BranchPoint {
            p: y[n],
            residual: g.iter().fold(0.0f64, |m, a| m.max(a.abs())),
            x: y[..n].to_vec(),
            tangent: t,
            stability,
        })
    }

    fn signature(&self, s: &Stability) -> Signature {
        let mut sig = Signature {
            real_pos: 0,
            real_neg: 0,
            complex: 0,
        };
        let scale = 1.0 + s.eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.norm()));
        for l in &s.eigenvalues {
            let real = l.im.abs() <= 1e-9 * scale;
            if self.map {
                if real && l.re > 1.0 {
                    sig.real_pos += 1;
                } else if real && l.re < -1.0 {
                    sig.real_neg += 1;
                } else if !real && l.norm() > 1.0 {
                    sig.complex += 1;
                }
            } else if real && l.re > 0.0 {
                sig.real_pos += 1;
            } else if !real && l.re > 0.0 {
                sig.complex += 1;
            }
        }
        sig
    }

    /// The test function of `kind` at a point (zero at the bifurcation).
    fn test(&self, kind: Kind, pt: &BranchPoint) -> f64 {
        let ev = &pt.stability.eigenvalues;
        let scale = 1.0 + ev.iter().fold(0.0f64, |m, l| m.max(l.norm()));
        let real = |l: &faer::c64| l.im.abs() <= 1e-9 * scale;
        let nearest = |f: &dyn Fn(&faer::c64) -> Option<f64>| {
            ev.iter()
                .filter_map(f)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(f64::NAN)
        };
        match kind {
            Kind::Fold => pt.tangent[self.n],
            Kind::BranchPoint if self.map => nearest(&|l| real(l).then_some(l.re - 1.0)),
            Kind::BranchPoint => nearest(&|l| real(l).then_some(l.re)),
            Kind::Flip => nearest(&|l| real(l).then_some(l.re + 1.0)),
            Kind::Hopf => nearest(&|l| (!real(l)).then_some(l.re)),
            Kind::NeimarkSacker => nearest(&|l| (!real(l)).then_some(l.norm() - 1.0)),
        }
    }

    /// Refines a branch point by Newton on the minimally augmented system (Govaerts 2000)
    /// `G(x, p) = 0, ψ(x, p) = 0`, where ψ is the border of `[[G_x, b], [cᵀ, 0]] [w; ψ] = [0; 1]`
    /// (zero exactly when G_x is singular; b, c the left and right null vectors at the start) and
    /// `ψ_y = −vᵀ (∂_y G_x) w` from central differences of the analytic Jacobian. The system is
    /// singular at a branch point, so Newton converges linearly; 80 iterations reach 1e-12.
    fn refine_bp(&self, z: &BranchPoint) -> Option<BranchPoint> {
        let n = self.n;
        let gx = |y: &[f64]| -> Mat<f64> {
            crate::model::jacobian_mat(
                &Residual {
                    sys: self.sys,
                    p: y[n],
                },
                0.0,
                &y[..n],
            )
        };
        let mut y: Vec<f64> = z.x.iter().copied().chain([z.p]).collect();
        // Null vectors of G_x at the start: eigenvectors of G_x and G_xᵀ for the eigenvalue
        // nearest 0 (real parts).
        let null = |m: &Mat<f64>| -> Option<Vec<f64>> {
            let e = m.eigen().ok()?;
            let s = e.S().column_vector();
            let k = (0..n).min_by(|&a, &b| s[a].norm().total_cmp(&s[b].norm()))?;
            let v: Vec<f64> = (0..n).map(|i| e.U()[(i, k)].re).collect();
            let nv = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            (nv > 0.0).then(|| v.iter().map(|a| a / nv).collect())
        };
        let j0 = gx(&y);
        let c = null(&j0)?;
        let b = null(&j0.transpose().to_owned())?;
        let bordered = |j: &Mat<f64>| {
            Mat::from_fn(n + 1, n + 1, |i, k| match (i < n, k < n) {
                (true, true) => j[(i, k)],
                (true, false) => b[i],
                (false, true) => c[k],
                (false, false) => 0.0,
            })
        };
        let scale = 1.0 + y.iter().fold(0.0f64, |m, a| m.max(a.abs()));
        let mut g = vec![0.0; n];
        for _ in 0..80 {
            let j = gx(&y);
            let m = bordered(&j);
            let lu = m.partial_piv_lu();
            let mut e = Mat::<f64>::zeros(n + 1, 1);
            e[(n, 0)] = 1.0;
            let wpsi = lu.solve(&e);
            let psi = wpsi[(n, 0)];
            let w: Vec<f64> = (0..n).map(|i| wpsi[(i, 0)]).collect();
            let mt = m.transpose().to_owned();
            let vphi = mt.partial_piv_lu().solve(&e);
            let v: Vec<f64> = (0..n).map(|i| vphi[(i, 0)]).collect();
            // ψ_y by central differences of G_x w along each coordinate of y.
            let h = 1e-6 * scale;
            let mut psi_y = vec![0.0; n + 1];
            for (k, py) in psi_y.iter_mut().enumerate() {
                let mut yp = y.clone();
                yp[k] += h;
                let jp = gx(&yp);
                yp[k] -= 2.0 * h;
                let jm = gx(&yp);
                let mut s = 0.0;
                for i in 0..n {
                    let mut r = 0.0;
                    for l in 0..n {
                        r += (jp[(i, l)] - jm[(i, l)]) * w[l];
                    }
                    s += v[i] * r;
                }
                *py = -s / (2.0 * h);
            }
            self.residual(&y[..n], y[n], &mut g);
            let a = self.jac_ext(&y[..n], y[n]);
            let big = Mat::from_fn(
                n + 1,
                n + 1,
                |i, k| if i < n { a[(i, k)] } else { psi_y[k] },
            );
            let rhs = Mat::from_fn(n + 1, 1, |i, _| if i < n { -g[i] } else { -psi });
            let dy = big.partial_piv_lu().solve(&rhs);
            let mut d = 0.0f64;
            for i in 0..=n {
                let s = dy[(i, 0)];
                if !s.is_finite() {
                    return None;
                }
                y[i] += s;
                d = d.max(s.abs());
            }
            if d <= 1e-13 * scale {
                break;
            }
        }
        self.residual(&y[..n], y[n], &mut g);
        if g.iter().fold(0.0f64, |m, a| m.max(a.abs())) > self.tol {
            return None;
        }
        let t = self
            .tangent(&y, &z.tangent)
            .unwrap_or_else(|| z.tangent.clone());
        self.point(y, t).ok()
    }

    /// Locates a zero of `kind`'s test function between the branch points `a` and `b` by regula
    /// falsi (Illinois) on the position s along the chord from a to b: each evaluation is the
    /// branch point on the hyperplane orthogonal to the chord at s (the chord keeps the corrector
    /// on this branch where another one crosses it, at branch points).
    fn locate(
        &self,
        kind: Kind,
        a: &BranchPoint,
        b: &BranchPoint,
        _ds: f64,
    ) -> Option<BranchPoint> {
        let n = self.n;
        let ya: Vec<f64> = a.x.iter().copied().chain([a.p]).collect();
        let yb: Vec<f64> = b.x.iter().copied().chain([b.p]).collect();
        let len = ya
            .iter()
            .zip(&yb)
            .map(|(u, v)| (v - u) * (v - u))
            .sum::<f64>()
            .sqrt();
        if !(len > 0.0) {
            return None;
        }
        let chord: Vec<f64> = ya.iter().zip(&yb).map(|(u, v)| (v - u) / len).collect();
        let ta = &a.tangent;
        let at = |s: f64| -> Option<BranchPoint> {
            let pred: Vec<f64> = (0..=n).map(|i| ya[i] + s * chord[i]).collect();
            let (y, _) = self.correct_with(&pred, &chord, 60)?;
            let t = self.tangent(&y, ta)?;
            self.point(y, t).ok()
        };
        let ds = len;
        let (mut s0, mut f0, mut s1, mut f1) = (0.0, self.test(kind, a), ds, self.test(kind, b));
        let (mut p0, mut p1) = (a.p, b.p);
        if !(f0.is_finite() && f1.is_finite()) || f0 * f1 > 0.0 {
            // No sign change of the smooth test function (e.g. two crossings): report the end.
            return None;
        }
        let mut best = if f0.abs() < f1.abs() {
            a.clone()
        } else {
            b.clone()
        };
        let mut side = 0i32;
        for _ in 0..80 {
            if (p1 - p0).abs() <= 1e-10 * p0.abs().max(1.0) && (s1 - s0).abs() < 1e-6 * ds.abs() {
                break;
            }
            let s = (s0 * f1 - s1 * f0) / (f1 - f0);
            let s = if s.is_finite() && s > s0.min(s1) && s < s0.max(s1) {
                s
            } else {
                0.5 * (s0 + s1)
            };
            // A point the corrector cannot reach (right at a branch point): keep the best so far.
            let Some(pt) = at(s) else {
                break;
            };
            let f = self.test(kind, &pt);
            if !f.is_finite() {
                return Some(best);
            }
            if f * f1 < 0.0 {
                (s0, f0, p0) = (s1, f1, p1);
                (s1, f1, p1) = (s, f, pt.p);
                side = 0;
            } else {
                (s1, f1, p1) = (s, f, pt.p);
                side += 1;
                if side >= 2 {
                    f0 *= 0.5;
                }
            }
            best = pt;
            if f == 0.0 {
                break;
            }
        }
        Some(best)
    }
}

/// What [`trace`] returns: the points inside the range (state with parameter, tangent), the
/// first point beyond it, the point exactly on the range's end, why it stopped and the Newton
/// iterations spent.
struct Traced {
    points: Vec<(Vec<f64>, Vec<f64>)>,
    beyond: Option<(Vec<f64>, Vec<f64>)>,
    boundary: Option<(Vec<f64>, Vec<f64>)>,
    stop: Stop,
    iters: usize,
}

/// Pseudo-arclength steps from (y0, t0) until the range [lo, hi], `max_points` or the smallest
/// step ends the branch; `visit` sees every accepted point and the one beyond the range, in order.
fn trace<P: Parametrised + ?Sized>(
    prob: &Problem<'_, P>,
    y0: Vec<f64>,
    t0: Vec<f64>,
    opts: &ContinuationOptions,
    (lo, hi): (f64, f64),
    e_p: &[f64],
    visit: impl Fn(&[f64]),
) -> Result<Traced> {
    let n = prob.n;
    let mut fac = prob.factor(&y0, None);
    let mut spare: Option<Factored> = None;
    visit(&y0);
    let mut raw = vec![(y0, t0)];
    let mut beyond = None;
    let mut boundary = None;
    let mut ds = opts.ds;
    let mut iters = 0usize;
    let stop = loop {
        if raw.len() >= opts.max_points {
            break Stop::Points;
        }
        let (y, t) = raw
            .last()
            .cloned()
            .ok_or_else(|| Error::failed("continuation", "empty"))?;
        let Some((y1, t1, f1, it)) = prob.step(&y, &t, ds, fac.as_ref(), &mut spare) else {
            ds *= 0.5;
            if ds < opts.ds_min {
                break Stop::Step { p: y[n] };
            }
            continue;
        };
        iters += it;
        visit(&y1);
        spare = std::mem::replace(&mut fac, f1);
        if y1[n] < lo || y1[n] > hi {
            // End exactly on the boundary: Newton at fixed p from the interpolated state.
            let bound = if y1[n] > hi { hi } else { lo };
            let w = (bound - y[n]) / (y1[n] - y[n]);
            let mut yb: Vec<f64> = (0..n).map(|i| y[i] + w * (y1[i] - y[i])).collect();
            yb.push(bound);
            if let Some((yb, _)) = prob.correct(&yb, e_p) {
                boundary = prob.tangent(&yb, &t).map(|tb| (yb, tb));
            }
            beyond = Some((y1, t1));
            break Stop::Range;
        }
        raw.push((y1, t1));
        crate::io::check_interrupt("continuation stopped")?;
        if let Some(cb) = &opts.progress {
            cb(raw.len());
        }
        if it <= 3 {
            ds = (ds * 1.5).min(opts.ds_max);
        } else if it >= 7 {
            ds = (ds * 0.7).max(opts.ds_min);
        }
    };
    Ok(Traced {
        points: raw,
        beyond,
        boundary,
        stop,
        iters,
    })
}

/// Follows the branch of fixed points through the fixed point near `x0` at `opts.from` (see the
/// module documentation). `x0` is polished by Newton at fixed p first.
pub fn continue_branch<P: Parametrised + ?Sized>(
    sys: &P,
    x0: &[f64],
    opts: &ContinuationOptions,
) -> Result<Branch> {
    opts.validate()?;
    let n = sys.dim();
    crate::error::ensure_state("x0", x0, n, "system")?;
    let prob = Problem {
        sys,
        n,
        map: sys.kind() == TimeKind::Discrete,
        tol: opts.tol,
    };
    // Newton at p = from: the bordered system with the border e_p (p held fixed).
    let mut e_p = vec![0.0; n + 1];
    e_p[n] = 1.0;
    let y0: Vec<f64> = x0.iter().copied().chain([opts.from]).collect();
    let (y0, _) = prob.correct(&y0, &e_p).ok_or_else(|| {
        Error::failed(
            "continuation",
            format!(
                "no fixed point near x0 at {} = {} (Newton did not converge to ‖G‖∞ ≤ {:e}); \
                 give a better --x0",
                sys.param_name(),
                opts.from,
                opts.tol
            ),
        )
    })?;
    let dir = (opts.to - opts.from).signum();
    let mut border = e_p.clone();
    border[n] = dir;
    let t0 = prob.tangent(&y0, &border).ok_or_else(|| {
        Error::failed(
            "continuation",
            "the start point is singular (a fold or branch point exactly at `from`): start elsewhere",
        )
    })?;
    let (lo, hi) = (opts.from.min(opts.to), opts.from.max(opts.to));
    let nev = opts.spectrum.tracked(n, prob.map);
    // 1. Trace the branch (one LU of G_x per point): raw points (y, t, tracked eigenvalues).
    // With tracked spectra, a second thread follows the trace point by point (its own LU of
    // G_x − σI and Arnoldi run each), in order, so the result does not depend on the threads.
    type Raw = (Vec<f64>, Vec<f64>, Option<Vec<c64>>);
    let (traced, evs) = std::thread::scope(|scope| -> Result<_> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<f64>>();
        let prob = &prob;
        let tracker = nev.map(|k| {
            scope.spawn(move || -> Result<Vec<Option<Vec<c64>>>> {
                // The rightmost real part at the last point (None: seed it from a full
                // spectrum), the shifted LU's buffer, and the last tracked Ritz vectors
                // (the next Arnoldi run's start).
                let (mut top, mut warm) = (None, None);
                let mut shifted = crate::krylov::DenseLu::new();
                rx.into_iter()
                    .map(|y| prob.nearest(&y, k, &mut top, &mut shifted, &mut warm))
                    .collect()
            })
        });
        let track = |y: &[f64]| {
            if tracker.is_some() {
                // A failed send means the tracker stopped on an error, reported at the join.
                let _ = tx.send(y.to_vec());
            }
        };
        let traced = trace(prob, y0, t0, opts, (lo, hi), &e_p, track);
        drop(tx);
        let evs = match tracker {
            Some(h) => Some(
                h.join()
                    .map_err(|_| Error::failed("continuation", "the spectrum thread panicked"))??,
            ),
            None => None,
        };
        Ok((traced?, evs))
    })?;
    let Traced {
        points: raw_points,
        beyond,
        boundary,
        stop,
        iters,
    } = traced;
    let mut evs = evs.map(|v| v.into_iter());
    let mut next_ev = || evs.as_mut().and_then(|e| e.next()).flatten();
    let raw: Vec<Raw> = raw_points
        .into_iter()
        .map(|(y, t)| {
            let ev = next_ev();
            (y, t, ev)
        })
        .collect();
    let beyond: Option<Raw> = beyond.map(|(y, t)| {
        let ev = next_ev();
        (y, t, ev)
    });
    // 2. The spectra: the full one at every point (in parallel), or the tracked ones checked
    // against full spectra where it matters.
    let inside = raw.len();
    let raw: Vec<Raw> = raw.into_iter().chain(beyond).collect();
    let analysed = prob.spectra(raw)?;
    // 3. Detection between consecutive points, location between them.
    let mut bifs = vec![];
    if opts.detect {
        for k in 1..analysed.len() {
            let (last, next) = (&analysed[k - 1], &analysed[k]);
            let ds: f64 = last
                .x
                .iter()
                .chain([&last.p])
                .zip(next.x.iter().chain([&next.p]))
                .map(|(a, b)| (b - a) * (b - a))
                .sum::<f64>()
                .sqrt();
            let (sa, sb) = (
                prob.signature(&last.stability),
                prob.signature(&next.stability),
            );
            let fold = last.tangent[n] * next.tangent[n] < 0.0;
            let mut kinds = vec![];
            if fold {
                kinds.push(Kind::Fold);
            } else if sa.real_pos != sb.real_pos {
                kinds.push(Kind::BranchPoint);
            }
            if sa.complex != sb.complex {
                kinds.push(if prob.map {
                    Kind::NeimarkSacker
                } else {
                    Kind::Hopf
                });
            }
            if prob.map && sa.real_neg != sb.real_neg {
                kinds.push(Kind::Flip);
            }
            for kind in kinds {
                let located = prob.locate(kind, last, next, ds).map(|z| {
                    if kind == Kind::BranchPoint {
                        prob.refine_bp(&z)
                            .filter(|r| (r.p - z.p).abs() <= (next.p - last.p).abs())
                            .unwrap_or(z)
                    } else {
                        z
                    }
                });
                let Some(z) = located else { continue };
                if z.p < lo - 1e-12 * hi.abs().max(1.0) || z.p > hi + 1e-12 * hi.abs().max(1.0) {
                    continue;
                }
                let test = prob.test(kind, &z);
                let crit = critical_pair(&z.stability, prob.map);
                let (omega, l1) = match (kind, crit) {
                    (Kind::Hopf, Some(l)) => {
                        let w = l.im.abs();
                        (Some(w), hopf::first_lyapunov(sys, &z.x, z.p, w).ok())
                    }
                    (Kind::NeimarkSacker, Some(l)) => (Some(l.im.atan2(l.re).abs()), None),
                    _ => (None, None),
                };
                bifs.push(Bifurcation {
                    kind,
                    p: z.p,
                    x: z.x,
                    index: k,
                    omega,
                    l1,
                    test,
                });
            }
        }
    }
    let mut points = analysed;
    points.truncate(inside);
    if let Some((yb, tb)) = boundary {
        points.push(prob.point(yb, tb)?);
    }
    Ok(Branch {
        points,
        bifurcations: bifs,
        stop,
        newton_iterations: iters,
        param: sys.param_name(),
        kind: sys.kind(),
    })
}

/// The complex eigenvalue nearest its stability boundary (Re λ = 0 or |λ| = 1), upper half plane.
fn critical_pair(s: &Stability, map: bool) -> Option<faer::c64> {
    let scale = 1.0 + s.eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.norm()));
    s.eigenvalues
        .iter()
        .filter(|l| l.im > 1e-9 * scale)
        .min_by(|a, b| {
            let d = |l: &faer::c64| {
                if map {
                    (l.norm() - 1.0).abs()
                } else {
                    l.re.abs()
                }
            };
            d(a).total_cmp(&d(b))
        })
        .copied()
}

impl Branch {
    /// The branch as tables: one row per point (`param`, `x0`…, `stable`, `n_unstable`,
    /// `max_re_eig` for flows or `max_abs_eig` for maps, `residual`), and one per bifurcation
    /// (`kind`, `param`, `x0`…, `omega`, `l1`; NaN where not defined).
    pub fn tables(&self) -> (crate::io::Table, crate::io::Table) {
        use crate::io::{Column, Table};
        let n = self.points.first().map_or(0, |p| p.x.len());
        let mut t = Table::new();
        point_columns(&mut t, &self.points.iter().collect::<Vec<_>>(), self.kind);
        let bf = &self.bifurcations;
        let mut z = Table::new();
        z.push(
            "kind",
            Column::Str(bf.iter().map(|z| z.kind.label().to_string()).collect()),
        );
        z.push("param", Column::F64(bf.iter().map(|z| z.p).collect()));
        for i in 0..n {
            z.push(
                format!("x{i}"),
                Column::F64(bf.iter().map(|z| z.x[i]).collect()),
            );
        }
        z.push(
            "omega",
            Column::F64(bf.iter().map(|z| z.omega.unwrap_or(f64::NAN)).collect()),
        );
        z.push(
            "l1",
            Column::F64(bf.iter().map(|z| z.l1.unwrap_or(f64::NAN)).collect()),
        );
        (t, z)
    }
}
