//! Fold curves in two parameters, with their codimension-two points (Kuznetsov 2004, §8.2–8.4;
//! Govaerts 2000, *Numerical Methods for Bifurcations of Dynamical Equilibria*, ch. 4, the
//! minimally augmented systems).
//!
//! For a flow `dx/dt = f(x; p, q)` (a map: `f = F − x`) with `A = f_x`, the fold curve is the
//! solution set of the n + 1 equations in y = (x, p, q)
//!
//! $$ f(x; p, q) = 0, \qquad g(x; p, q) = 0, \qquad
//!    \begin{pmatrix} A & b \\ c^\top & 0 \end{pmatrix}\begin{pmatrix} v \\ g \end{pmatrix}
//!    = \begin{pmatrix} 0 \\ 1 \end{pmatrix}, $$
//!
//! where g vanishes exactly where A is singular, b and c approximate A's left and right null
//! vectors (updated at every point). Its gradient is `g_z = −wᵀ A_z v` with `w` from the transposed
//! system; `wᵀ A_z v` comes from two Jacobians along `v` (for the state: `∇ₓ(wᵀ A v) =
//! d/dt A(x + t v)ᵀ w`) and two along each parameter — no Hessian is formed. The curve is
//! followed by pseudo-arclength as the one-parameter branches are ([`super::continue_branch`]).
//!
//! Along it two test functions change sign at the codimension-two points, located by regula falsi
//! in the arclength:
//!
//! | kind | test | meaning |
//! |---|---|---|
//! | `cusp` | `a = ŵᵀ A_x(v̂) v̂` (the fold's quadratic normal-form coefficient) | two folds meet; three equilibria on one side |
//! | `bogdanov_takens` | `ŵᵀ v̂` (unit null vectors) | a double zero eigenvalue: the fold curve touches a Hopf curve |
//!
//! (For maps the second is the 1:1 resonance, reported as `resonance_1_1`.)

use super::param::Parametrised;
use crate::error::{Error, Result};
use crate::stability::TimeKind;
use faer::linalg::solvers::Solve;
use faer::{Mat, MatMut};
use std::sync::{Arc, Mutex};

/// A system with two parameters (p, q).
pub trait Parametrised2: Send + Sync {
    fn dim(&self) -> usize;
    fn kind(&self) -> TimeKind;
    /// `f(x; p, q)` (flows) or `F(x; p, q)` (maps).
    fn eval(&self, x: &[f64], p: f64, q: f64, out: &mut [f64]);
    /// `∂f/∂x` at (x, p, q), n×n.
    fn jacobian(&self, x: &[f64], p: f64, q: f64, jac: MatMut<'_, f64>);
    /// The two parameters' names.
    fn names(&self) -> (String, String);
}

type MakeOne = dyn Fn(f64) -> Result<Box<dyn Parametrised>> + Send + Sync;

/// A two-parameter system as a family of one-parameter systems: `make(q)` is the system in p at
/// the value q of the second parameter (the last few kept).
pub struct Family {
    make: Box<MakeOne>,
    dim: usize,
    kind: TimeKind,
    names: (String, String),
    cache: Mutex<Vec<(f64, Arc<dyn Parametrised>)>>,
}

impl Family {
    /// `make(q)` builds the system in the first parameter at q; `q0` is used to learn its
    /// dimension, kind and the first parameter's name.
    pub fn new(
        q_name: impl Into<String>,
        q0: f64,
        make: impl Fn(f64) -> Result<Box<dyn Parametrised>> + Send + Sync + 'static,
    ) -> Result<Self> {
        let s: Arc<dyn Parametrised> = Arc::from(make(q0)?);
        Ok(Family {
            dim: s.dim(),
            kind: s.kind(),
            names: (s.param_name(), q_name.into()),
            make: Box::new(make),
            cache: Mutex::new(vec![(q0, s)]),
        })
    }

    /// The one-parameter system at q (None when `make` rejects q).
    pub fn at(&self, q: f64) -> Option<Arc<dyn Parametrised>> {
        if let Ok(c) = self.cache.lock() {
            if let Some((_, s)) = c.iter().find(|(v, _)| *v == q) {
                return Some(s.clone());
            }
        }
        let s: Arc<dyn Parametrised> = Arc::from((self.make)(q).ok()?);
        if s.dim() != self.dim {
            return None;
        }
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= 6 {
                c.remove(0);
            }
            c.push((q, s.clone()));
        }
        Some(s)
    }
}

impl Parametrised2 for Family {
    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> TimeKind {
        self.kind
    }
    fn eval(&self, x: &[f64], p: f64, q: f64, out: &mut [f64]) {
        match self.at(q) {
            Some(s) => s.eval(x, p, out),
            None => out.iter_mut().for_each(|v| *v = f64::NAN),
        }
    }
    fn jacobian(&self, x: &[f64], p: f64, q: f64, mut jac: MatMut<'_, f64>) {
        match self.at(q) {
            Some(s) => s.jacobian(x, p, jac),
            None => jac.fill(f64::NAN),
        }
    }
    fn names(&self) -> (String, String) {
        self.names.clone()
    }
}

/// The two-parameter system at a fixed q, as a one-parameter system in p.
pub struct AtQ<'a, S: Parametrised2 + ?Sized> {
    pub sys: &'a S,
    pub q: f64,
}

impl<S: Parametrised2 + ?Sized> Parametrised for AtQ<'_, S> {
    fn dim(&self) -> usize {
        self.sys.dim()
    }
    fn kind(&self) -> TimeKind {
        self.sys.kind()
    }
    fn eval(&self, x: &[f64], p: f64, out: &mut [f64]) {
        self.sys.eval(x, p, self.q, out)
    }
    fn jacobian(&self, x: &[f64], p: f64, jac: MatMut<'_, f64>) {
        self.sys.jacobian(x, p, self.q, jac)
    }
    fn param_name(&self) -> String {
        self.sys.names().0
    }
}

/// Options of [`continue_fold`].
#[derive(Debug, Clone)]
pub struct FoldCurveOptions {
    /// The curve stops when p leaves this interval …
    pub p_range: (f64, f64),
    /// … or q leaves this one.
    pub q_range: (f64, f64),
    /// Initial and largest arclength steps (in the (x, p, q) norm).
    pub ds: f64,
    pub ds_max: f64,
    pub max_points: usize,
    /// Follow the curve towards decreasing q first (else increasing).
    pub q_decreasing: bool,
}

impl FoldCurveOptions {
    pub fn new(p_range: (f64, f64), q_range: (f64, f64)) -> Self {
        let span = (p_range.1 - p_range.0)
            .abs()
            .max((q_range.1 - q_range.0).abs());
        FoldCurveOptions {
            p_range: (p_range.0.min(p_range.1), p_range.0.max(p_range.1)),
            q_range: (q_range.0.min(q_range.1), q_range.0.max(q_range.1)),
            ds: 0.01 * span,
            ds_max: 0.05 * span,
            max_points: 2000,
            q_decreasing: false,
        }
    }
}

/// A point of a two-parameter curve.
#[derive(Debug, Clone)]
pub struct CurvePoint {
    pub p: f64,
    pub q: f64,
    pub x: Vec<f64>,
    /// The curve's test functions here (named by [`Curve2::test_names`]).
    pub tests: Vec<f64>,
    /// Hopf curves: the frequency ω.
    pub omega: Option<f64>,
}

/// A codimension-two point on a curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Codim2 {
    /// `cusp`, `bogdanov_takens` or `resonance_1_1` (fold curves); `bautin` (Hopf curves).
    pub kind: &'static str,
    pub p: f64,
    pub q: f64,
    pub x: Vec<f64>,
}

/// A fold or Hopf curve and the codimension-two points on it.
#[derive(Debug, Clone)]
pub struct Curve2 {
    /// `fold` or `hopf`.
    pub kind: &'static str,
    pub names: (String, String),
    pub test_names: Vec<&'static str>,
    pub points: Vec<CurvePoint>,
    pub events: Vec<Codim2>,
    /// Why it stopped (both directions).
    pub stop: String,
}

/// A fold curve ([`continue_fold`]).
pub type FoldCurve = Curve2;

/// What the curve follower asks of an augmented system in y = (x, p, q, extra…).
trait Augmented {
    fn n(&self) -> usize;
    fn residual(&self, y: &[f64]) -> Option<Vec<f64>>;
    /// The Jacobian of the residual, rows × (rows + 1).
    fn jacobian(&self, y: &[f64]) -> Option<Mat<f64>>;
    fn tests(&self, y: &[f64]) -> Option<Vec<f64>>;
    /// Called at every accepted point (borders and normalisations follow the curve).
    fn accept(&mut self, y: &[f64]);
    fn omega(&self, _y: &[f64]) -> Option<f64> {
        None
    }
    /// Stop here (e.g. ω → 0 at the end of a Hopf curve): the reason.
    fn end(&self, _y: &[f64]) -> Option<String> {
        None
    }
}

/// The minimally augmented fold system at y = (x, p, q) with borders (b, c).
struct FoldSystem<'a, S: Parametrised2 + ?Sized> {
    sys: &'a S,
    n: usize,
    b: Vec<f64>,
    c: Vec<f64>,
}

/// What one evaluation at y gives: f, g, A, v, w.
struct Eval {
    f: Vec<f64>,
    g: f64,
    a: Mat<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
}

impl<S: Parametrised2 + ?Sized> FoldSystem<'_, S> {
    fn jac(&self, x: &[f64], p: f64, q: f64) -> Mat<f64> {
        let mut a = Mat::zeros(self.n, self.n);
        self.sys.jacobian(x, p, q, a.as_mut());
        if self.sys.kind() == TimeKind::Discrete {
            for i in 0..self.n {
                a[(i, i)] -= 1.0;
            }
        }
        a
    }

    fn eval(&self, y: &[f64]) -> Option<Eval> {
        let n = self.n;
        let (x, p, q) = (&y[..n], y[n], y[n + 1]);
        let mut f = vec![0.0; n];
        self.sys.eval(x, p, q, &mut f);
        if self.sys.kind() == TimeKind::Discrete {
            for (fi, xi) in f.iter_mut().zip(x) {
                *fi -= xi;
            }
        }
        let a = self.jac(x, p, q);
        let border = |t: bool| -> Option<(Vec<f64>, f64)> {
            let m = Mat::from_fn(n + 1, n + 1, |i, j| match (i < n, j < n) {
                (true, true) => {
                    if t {
                        a[(j, i)]
                    } else {
                        a[(i, j)]
                    }
                }
                (true, false) => {
                    if t {
                        self.c[i]
                    } else {
                        self.b[i]
                    }
                }
                (false, true) => {
                    if t {
                        self.b[j]
                    } else {
                        self.c[j]
                    }
                }
                (false, false) => 0.0,
            });
            let rhs = Mat::from_fn(n + 1, 1, |i, _| if i == n { 1.0 } else { 0.0 });
            let s = m.partial_piv_lu().solve(&rhs);
            let v: Vec<f64> = (0..n).map(|i| s[(i, 0)]).collect();
            let g = s[(n, 0)];
            (v.iter().all(|z| z.is_finite()) && g.is_finite()).then_some((v, g))
        };
        let (v, g) = border(false)?;
        let (w, _) = border(true)?;
        f.iter()
            .all(|z| z.is_finite())
            .then_some(Eval { f, g, a, v, w })
    }

    /// `wᵀ A_z v` for every z in (x, p, q), by central differences of A along v and the params.
    fn g_gradient(&self, y: &[f64], e: &Eval) -> Vec<f64> {
        let n = self.n;
        let (x, p, q) = (&y[..n], y[n], y[n + 1]);
        let vn = norm(&e.v).max(1e-300);
        let h = 1e-6 * (1.0 + norm(x)) / vn;
        let xp: Vec<f64> = x.iter().zip(&e.v).map(|(a, b)| a + h * b).collect();
        let xm: Vec<f64> = x.iter().zip(&e.v).map(|(a, b)| a - h * b).collect();
        let (ap, am) = (self.jac(&xp, p, q), self.jac(&xm, p, q));
        let mut grad = vec![0.0; n + 2];
        for (k, gk) in grad.iter_mut().enumerate().take(n) {
            // (d/dt A(x + t v)ᵀ w)_k = Σ_i w_i d/dt A_ik.
            *gk = -(0..n)
                .map(|i| e.w[i] * (ap[(i, k)] - am[(i, k)]))
                .sum::<f64>()
                / (2.0 * h);
        }
        let wav = |a: &Mat<f64>| -> f64 {
            (0..n)
                .map(|i| e.w[i] * (0..n).map(|j| a[(i, j)] * e.v[j]).sum::<f64>())
                .sum()
        };
        for (slot, (dp, dq)) in [(n, (1.0, 0.0)), (n + 1, (0.0, 1.0))] {
            let hp = 1e-6 * (1.0 + if dp > 0.0 { p.abs() } else { q.abs() });
            let a_plus = self.jac(x, p + hp * dp, q + hp * dq);
            let a_minus = self.jac(x, p - hp * dp, q - hp * dq);
            grad[slot] = -(wav(&a_plus) - wav(&a_minus)) / (2.0 * hp);
        }
        grad
    }

    /// The (n + 1) × (n + 2) Jacobian of (f, g) at y.
    fn jacobian(&self, y: &[f64], e: &Eval) -> Mat<f64> {
        let n = self.n;
        let (x, p, q) = (&y[..n], y[n], y[n + 1]);
        let mut m = Mat::zeros(n + 1, n + 2);
        for i in 0..n {
            for j in 0..n {
                m[(i, j)] = e.a[(i, j)];
            }
        }
        for (col, (dp, dq)) in [(n, (1.0, 0.0)), (n + 1, (0.0, 1.0))] {
            let h = 1e-6 * (1.0 + if dp > 0.0 { p.abs() } else { q.abs() });
            let (mut fp, mut fm) = (vec![0.0; n], vec![0.0; n]);
            self.sys.eval(x, p + h * dp, q + h * dq, &mut fp);
            self.sys.eval(x, p - h * dp, q - h * dq, &mut fm);
            for i in 0..n {
                m[(i, col)] = (fp[i] - fm[i]) / (2.0 * h);
            }
        }
        for (j, gj) in self.g_gradient(y, e).into_iter().enumerate() {
            m[(n, j)] = gj;
        }
        m
    }

    /// The codimension-two tests at y: (cusp coefficient, ŵᵀv̂).
    fn tests(&self, y: &[f64], e: &Eval) -> (f64, f64) {
        let n = self.n;
        let (x, p, q) = (&y[..n], y[n], y[n + 1]);
        let (vn, wn) = (norm(&e.v).max(1e-300), norm(&e.w).max(1e-300));
        let v: Vec<f64> = e.v.iter().map(|z| z / vn).collect();
        let w: Vec<f64> = e.w.iter().map(|z| z / wn).collect();
        let h = 1e-5 * (1.0 + norm(x));
        let xp: Vec<f64> = x.iter().zip(&v).map(|(a, b)| a + h * b).collect();
        let xm: Vec<f64> = x.iter().zip(&v).map(|(a, b)| a - h * b).collect();
        let (ap, am) = (self.jac(&xp, p, q), self.jac(&xm, p, q));
        let a = (0..n)
            .map(|i| {
                w[i] * (0..n)
                    .map(|j| (ap[(i, j)] - am[(i, j)]) * v[j])
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (2.0 * h);
        let bt = w.iter().zip(&v).map(|(a, b)| a * b).sum();
        (a, bt)
    }

    fn update_borders(&mut self, e: &Eval) {
        let (vn, wn) = (norm(&e.v), norm(&e.w));
        if vn > 0.0 && wn > 0.0 && vn.is_finite() && wn.is_finite() {
            self.c = e.v.iter().map(|z| z / vn).collect();
            self.b = e.w.iter().map(|z| z / wn).collect();
        }
    }
}

impl<S: Parametrised2 + ?Sized> Augmented for FoldSystem<'_, S> {
    fn n(&self) -> usize {
        self.n
    }
    fn residual(&self, y: &[f64]) -> Option<Vec<f64>> {
        let e = self.eval(y)?;
        let mut r = e.f;
        r.push(e.g);
        Some(r)
    }
    fn jacobian(&self, y: &[f64]) -> Option<Mat<f64>> {
        let e = self.eval(y)?;
        Some(FoldSystem::jacobian(self, y, &e))
    }
    fn tests(&self, y: &[f64]) -> Option<Vec<f64>> {
        let e = self.eval(y)?;
        let (a, bt) = FoldSystem::tests(self, y, &e);
        Some(vec![a, bt])
    }
    fn accept(&mut self, y: &[f64]) {
        if let Some(e) = self.eval(y) {
            self.update_borders(&e);
        }
    }
}

impl<S: Parametrised2 + ?Sized> Clone for FoldSystem<'_, S> {
    fn clone(&self) -> Self {
        FoldSystem {
            sys: self.sys,
            n: self.n,
            b: self.b.clone(),
            c: self.c.clone(),
        }
    }
}

impl<S: Parametrised2 + ?Sized> Clone for HopfSystem<'_, S> {
    fn clone(&self) -> Self {
        HopfSystem {
            sys: self.sys,
            n: self.n,
            c: self.c.clone(),
            w_scale: self.w_scale,
            w_sign: self.w_sign,
        }
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|z| z * z).sum::<f64>().sqrt()
}

/// Follows the fold curve through the fold at (x0, p0) of the system at q0 (a fold of the
/// one-parameter branch in p, e.g. from [`super::continue_branch`]), in both directions of the
/// curve up to the boundaries of `opts` (first towards decreasing or increasing q as asked), and
/// locates its cusp and Bogdanov–Takens points. Points come back in curve order.
pub fn continue_fold<S: Parametrised2 + ?Sized>(
    sys: &S,
    x0: &[f64],
    p0: f64,
    q0: f64,
    opts: &FoldCurveOptions,
) -> Result<Curve2> {
    let n = sys.dim();
    crate::error::ensure_state("x0", x0, n, "system")?;
    check_options(opts)?;
    // Borders from A's singular vectors at the start.
    let mut fs = FoldSystem {
        sys,
        n,
        b: vec![0.0; n],
        c: vec![0.0; n],
    };
    let a0 = fs.jac(x0, p0, q0);
    let svd = a0
        .thin_svd()
        .map_err(|e| Error::failed("fold curve", format!("SVD of the Jacobian: {e:?}")))?;
    let (u, v) = (svd.U(), svd.V());
    fs.b = (0..n).map(|i| u[(i, n - 1)]).collect();
    fs.c = (0..n).map(|i| v[(i, n - 1)]).collect();
    let mut y0 = x0.to_vec();
    y0.extend([p0, q0]);
    let bt = if sys.kind() == TimeKind::Discrete {
        "resonance_1_1"
    } else {
        "bogdanov_takens"
    };
    let names = sys.names();
    trace_both(&mut fs, y0, opts, ("fold", names, vec!["cusp", bt]))
}

fn check_options(opts: &FoldCurveOptions) -> Result<()> {
    if !(opts.ds > 0.0 && opts.ds_max >= opts.ds && opts.max_points >= 2) {
        return Err(Error::invalid(
            "ds",
            format!(
                "need 0 < ds ≤ ds_max and at least 2 points (ds {}, ds_max {}, max_points {})",
                opts.ds, opts.ds_max, opts.max_points
            ),
        ));
    }
    Ok(())
}

/// Corrects the start at fixed q, then follows the curve both ways from it.
fn trace_both<A: Augmented + Clone>(
    sys: &mut A,
    y0: Vec<f64>,
    opts: &FoldCurveOptions,
    (kind, names, test_names): (&'static str, (String, String), Vec<&'static str>),
) -> Result<Curve2> {
    let n = sys.n();
    let m = y0.len();
    let mut pin = vec![0.0; m];
    pin[n + 1] = 1.0;
    let y0 = correct(sys, y0.clone(), &pin, &y0).ok_or_else(|| {
        Error::failed(
            format!("{kind} curve"),
            format!(
                "no {kind} point near the start at {} = {}",
                names.1,
                y0[n + 1]
            ),
        )
    })?;
    sys.accept(&y0);
    let mut dir = vec![0.0; m];
    dir[n + 1] = if opts.q_decreasing { -1.0 } else { 1.0 };
    let t0 = tangent(sys, &y0, &dir)
        .ok_or_else(|| Error::failed(format!("{kind} curve"), "no tangent at the start"))?;
    let mut halves = vec![];
    let mut stops = vec![];
    let mut events = vec![];
    for flip in [1.0, -1.0] {
        let mut s = sys.clone();
        let t: Vec<f64> = t0.iter().map(|z| z * flip).collect();
        let (pts, stop) = follow(&mut s, &y0, t, opts, &test_names, &mut events)?;
        halves.push(pts);
        stops.push(stop);
    }
    let mut points: Vec<CurvePoint> = halves[1].iter().skip(1).rev().cloned().collect();
    points.extend(halves[0].iter().cloned());
    events.sort_by(|a: &Codim2, b: &Codim2| a.q.total_cmp(&b.q).then(a.p.total_cmp(&b.p)));
    events.dedup_by(|a, b| {
        a.kind == b.kind
            && (a.p - b.p).abs() < 1e-7 * (1.0 + a.p.abs())
            && (a.q - b.q).abs() < 1e-7 * (1.0 + a.q.abs())
    });
    Ok(Curve2 {
        kind,
        names,
        test_names,
        points,
        events,
        stop: stops.join("; "),
    })
}

/// Newton on (G, tᵀ(y − y_pred)) = 0 from `y`.
fn correct<A: Augmented + ?Sized>(
    s: &A,
    mut y: Vec<f64>,
    t: &[f64],
    y_pred: &[f64],
) -> Option<Vec<f64>> {
    let m = y.len();
    for _ in 0..12 {
        let r = s.residual(&y)?;
        let arc: f64 = t
            .iter()
            .zip(y.iter().zip(y_pred))
            .map(|(a, (b, c))| a * (b - c))
            .sum();
        let res = r.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let scale = 1.0 + norm(&y);
        if !res.is_finite() {
            return None;
        }
        if res < 1e-11 * scale && arc.abs() < 1e-11 * scale {
            return Some(y);
        }
        let g = s.jacobian(&y)?;
        let mat = Mat::from_fn(m, m, |i, j| if i < m - 1 { g[(i, j)] } else { t[j] });
        let rhs = Mat::from_fn(m, 1, |i, _| if i < m - 1 { -r[i] } else { -arc });
        let d = mat.partial_piv_lu().solve(&rhs);
        let step = (0..m).map(|i| d[(i, 0)] * d[(i, 0)]).sum::<f64>().sqrt();
        if !step.is_finite() {
            return None;
        }
        for i in 0..m {
            y[i] += d[(i, 0)];
        }
        if step < 1e-13 * scale {
            return s.residual(&y).map(|_| y);
        }
    }
    None
}

/// The unit tangent at y, oriented along `prev`.
fn tangent<A: Augmented + ?Sized>(s: &A, y: &[f64], prev: &[f64]) -> Option<Vec<f64>> {
    let m = y.len();
    let g = s.jacobian(y)?;
    let mat = Mat::from_fn(m, m, |i, j| if i < m - 1 { g[(i, j)] } else { prev[j] });
    let rhs = Mat::from_fn(m, 1, |i, _| if i == m - 1 { 1.0 } else { 0.0 });
    let sol = mat.partial_piv_lu().solve(&rhs);
    let mut t: Vec<f64> = (0..m).map(|i| sol[(i, 0)]).collect();
    let nt = norm(&t);
    if !(nt.is_finite() && nt > 0.0) {
        return None;
    }
    t.iter_mut().for_each(|z| *z /= nt);
    Some(t)
}

/// One direction of the curve from y0.
fn follow<A: Augmented + ?Sized>(
    s: &mut A,
    y0: &[f64],
    t0: Vec<f64>,
    opts: &FoldCurveOptions,
    test_names: &[&'static str],
    events: &mut Vec<Codim2>,
) -> Result<(Vec<CurvePoint>, String)> {
    let n = s.n();
    let point = |s: &A, y: &[f64]| -> Option<CurvePoint> {
        Some(CurvePoint {
            p: y[n],
            q: y[n + 1],
            x: y[..n].to_vec(),
            tests: s.tests(y)?,
            omega: s.omega(y),
        })
    };
    let first =
        point(s, y0).ok_or_else(|| Error::failed("curve", "test functions at the start"))?;
    let mut out = vec![first];
    let (mut y, mut t) = (y0.to_vec(), t0);
    let mut ds = opts.ds;
    let inside = |y: &[f64]| {
        y[n] >= opts.p_range.0
            && y[n] <= opts.p_range.1
            && y[n + 1] >= opts.q_range.0
            && y[n + 1] <= opts.q_range.1
    };
    let stop = loop {
        if out.len() >= opts.max_points {
            break "max_points".to_string();
        }
        crate::io::check_interrupt("two-parameter curve stopped")?;
        let pred: Vec<f64> = y.iter().zip(&t).map(|(a, b)| a + ds * b).collect();
        let accepted = correct(s, pred.clone(), &t, &pred)
            .and_then(|y1| Some((tangent(s, &y1, &t)?, point(s, &y1)?, y1)));
        let Some((t1, cur, y1)) = accepted else {
            ds *= 0.5;
            if ds < 1e-9 * opts.ds {
                break "the corrector failed".to_string();
            }
            continue;
        };
        let prev = out.last().expect("start point").tests.clone();
        for (k, kind) in test_names.iter().enumerate() {
            let (f0, f1) = (prev[k], cur.tests[k]);
            if f0 != 0.0 && f1.is_finite() && f0.signum() != f1.signum() {
                if let Some(z) = locate(s, &y, &t, ds, k, f0, f1) {
                    events.push(Codim2 {
                        kind,
                        p: z[n],
                        q: z[n + 1],
                        x: z[..n].to_vec(),
                    });
                }
            }
        }
        let end = s.end(&y1);
        s.accept(&y1);
        let done = !inside(&y1);
        out.push(cur);
        if let Some(why) = end {
            break why;
        }
        if done {
            break "left the parameter box".to_string();
        }
        y = y1;
        t = t1;
        ds = (ds * 1.3).min(opts.ds_max);
    };
    Ok((out, stop))
}

/// Regula falsi (Illinois) in the arclength s ∈ (0, ds) from y along t on test `which`.
fn locate<A: Augmented + ?Sized>(
    s: &A,
    y: &[f64],
    t: &[f64],
    ds: f64,
    which: usize,
    f0: f64,
    f1: f64,
) -> Option<Vec<f64>> {
    let (mut a, mut b, mut fa, mut fb) = (0.0, ds, f0, f1);
    let mut best = None;
    let mut side = 0i8;
    let mut last = f64::INFINITY;
    for _ in 0..60 {
        let at = (a * fb - b * fa) / (fb - fa);
        let pred: Vec<f64> = y.iter().zip(t).map(|(u, v)| u + at * v).collect();
        let z = correct(s, pred.clone(), t, &pred)?;
        let f = s.tests(&z)?[which];
        last = f;
        best = Some(z);
        if f == 0.0 || (b - a).abs() < 1e-13 * (1.0 + ds) {
            break;
        }
        if f.signum() == fa.signum() {
            a = at;
            fa = f;
            if side == -1 {
                fb *= 0.5;
            }
            side = -1;
        } else {
            b = at;
            fb = f;
            if side == 1 {
                fa *= 0.5;
            }
            side = 1;
        }
    }
    // A sign change through a pole (the test function blowing up) is not a zero: the located
    // value must be small against the bracket's.
    (last.abs() <= 1e-6 * f0.abs().max(f1.abs()))
        .then_some(best)
        .flatten()
}

/// The standard augmented Hopf system (Kuznetsov 2004, §10.2.2) in y = (x, p, q, v_re, v_im, ω):
/// f = 0, A v = iω v (two real blocks), cᵀv_re = 1, cᵀv_im = 0 — 3n + 2 equations in 3n + 3
/// unknowns; ∂(A v)/∂x = d/dt A(x + t v) from two Jacobians.
struct HopfSystem<'a, S: Parametrised2 + ?Sized> {
    sys: &'a S,
    n: usize,
    c: Vec<f64>,
    /// y holds ω / w_scale (the start's ω), so that the arclength weighs ω like the rest.
    w_scale: f64,
    /// The sign of ω at the last accepted point: through ω = 0 the curve turns back onto its
    /// mirror image (v_im, ω) → (−v_im, −ω) past a Bogdanov–Takens point.
    w_sign: f64,
}

impl<S: Parametrised2 + ?Sized> HopfSystem<'_, S> {
    fn split<'y>(&self, y: &'y [f64]) -> (&'y [f64], f64, f64, &'y [f64], &'y [f64], f64) {
        let n = self.n;
        (
            &y[..n],
            y[n],
            y[n + 1],
            &y[n + 2..2 * n + 2],
            &y[2 * n + 2..3 * n + 2],
            y[3 * n + 2] * self.w_scale,
        )
    }
    fn jac(&self, x: &[f64], p: f64, q: f64) -> Mat<f64> {
        let mut a = Mat::zeros(self.n, self.n);
        self.sys.jacobian(x, p, q, a.as_mut());
        a
    }
}

fn matvec(a: &Mat<f64>, v: &[f64]) -> Vec<f64> {
    (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|j| a[(i, j)] * v[j]).sum())
        .collect()
}

impl<S: Parametrised2 + ?Sized> Augmented for HopfSystem<'_, S> {
    fn n(&self) -> usize {
        self.n
    }
    fn residual(&self, y: &[f64]) -> Option<Vec<f64>> {
        let n = self.n;
        let (x, p, q, vr, vi, w) = self.split(y);
        let mut r = vec![0.0; n];
        self.sys.eval(x, p, q, &mut r);
        let a = self.jac(x, p, q);
        let (avr, avi) = (matvec(&a, vr), matvec(&a, vi));
        r.extend((0..n).map(|i| avr[i] + w * vi[i]));
        r.extend((0..n).map(|i| avi[i] - w * vr[i]));
        r.push(self.c.iter().zip(vr).map(|(a, b)| a * b).sum::<f64>() - 1.0);
        r.push(self.c.iter().zip(vi).map(|(a, b)| a * b).sum::<f64>());
        r.iter().all(|v| v.is_finite()).then_some(r)
    }
    fn jacobian(&self, y: &[f64]) -> Option<Mat<f64>> {
        let n = self.n;
        let (x, p, q, vr, vi, w) = self.split(y);
        let a = self.jac(x, p, q);
        let mut m = Mat::zeros(3 * n + 2, 3 * n + 3);
        // d/dt A(x + t v), the x-derivative of A v.
        let along = |v: &[f64]| -> Mat<f64> {
            let h = 1e-6 * (1.0 + norm(x)) / norm(v).max(1e-300);
            let xp: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + h * b).collect();
            let xm: Vec<f64> = x.iter().zip(v).map(|(a, b)| a - h * b).collect();
            let (ap, am) = (self.jac(&xp, p, q), self.jac(&xm, p, q));
            Mat::from_fn(n, n, |i, j| (ap[(i, j)] - am[(i, j)]) / (2.0 * h))
        };
        let (hr, hi) = (along(vr), along(vi));
        for i in 0..n {
            for j in 0..n {
                m[(i, j)] = a[(i, j)];
                m[(n + i, j)] = hr[(i, j)];
                m[(2 * n + i, j)] = hi[(i, j)];
                m[(n + i, n + 2 + j)] = a[(i, j)];
                m[(2 * n + i, 2 * n + 2 + j)] = a[(i, j)];
            }
            m[(n + i, 2 * n + 2 + i)] = w;
            m[(2 * n + i, n + 2 + i)] = -w;
            m[(n + i, 3 * n + 2)] = vi[i] * self.w_scale;
            m[(2 * n + i, 3 * n + 2)] = -vr[i] * self.w_scale;
        }
        for (col, (dp, dq)) in [(n, (1.0, 0.0)), (n + 1, (0.0, 1.0))] {
            let h = 1e-6 * (1.0 + if dp > 0.0 { p.abs() } else { q.abs() });
            let (mut fp, mut fm) = (vec![0.0; n], vec![0.0; n]);
            self.sys.eval(x, p + h * dp, q + h * dq, &mut fp);
            self.sys.eval(x, p - h * dp, q - h * dq, &mut fm);
            let (ap, am) = (
                self.jac(x, p + h * dp, q + h * dq),
                self.jac(x, p - h * dp, q - h * dq),
            );
            let (dr, di) = (
                matvec(&Mat::from_fn(n, n, |i, j| ap[(i, j)] - am[(i, j)]), vr),
                matvec(&Mat::from_fn(n, n, |i, j| ap[(i, j)] - am[(i, j)]), vi),
            );
            for i in 0..n {
                m[(i, col)] = (fp[i] - fm[i]) / (2.0 * h);
                m[(n + i, col)] = dr[i] / (2.0 * h);
                m[(2 * n + i, col)] = di[i] / (2.0 * h);
            }
        }
        for j in 0..n {
            m[(3 * n, n + 2 + j)] = self.c[j];
            m[(3 * n + 1, 2 * n + 2 + j)] = self.c[j];
        }
        Some(m)
    }
    fn tests(&self, y: &[f64]) -> Option<Vec<f64>> {
        let (x, p, q, _, _, w) = self.split(y);
        let slice = AtQ { sys: self.sys, q };
        let l1 = super::hopf::first_lyapunov(&slice, x, p, w.abs()).ok()?;
        Some(vec![l1])
    }
    fn accept(&mut self, y: &[f64]) {
        let (_, _, _, vr, _, _) = self.split(y);
        let nr: f64 = vr.iter().map(|v| v * v).sum();
        if nr > 0.0 && nr.is_finite() {
            self.c = vr.iter().map(|v| v / nr).collect();
        }
        self.w_sign = self.split(y).5.signum();
    }
    fn omega(&self, y: &[f64]) -> Option<f64> {
        Some(self.split(y).5.abs())
    }
    fn end(&self, y: &[f64]) -> Option<String> {
        let (x, p, q, _, _, w) = self.split(y);
        let scale = norm_inf(&self.jac(x, p, q)).max(1e-300);
        (w.abs() < 1e-4 * scale || w.signum() != self.w_sign)
            .then(|| "ω → 0: the Hopf curve ends (a Bogdanov–Takens point)".to_string())
    }
}

fn norm_inf(a: &Mat<f64>) -> f64 {
    (0..a.nrows())
        .flat_map(|i| (0..a.ncols()).map(move |j| (i, j)))
        .fold(0.0f64, |m, (i, j)| m.max(a[(i, j)].abs()))
}

/// Follows the Hopf curve (flows) through the Hopf point (x0, p0) with frequency `omega` of the
/// system at q0, both ways within the box of `opts`, with the frequency and the first Lyapunov
/// coefficient l1 at every point; locates the Bautin (generalised Hopf) points where l1 changes
/// sign, and stops where ω → 0 (the curve ends at a Bogdanov–Takens point).
pub fn continue_hopf<S: Parametrised2 + ?Sized>(
    sys: &S,
    x0: &[f64],
    p0: f64,
    q0: f64,
    omega: f64,
    opts: &FoldCurveOptions,
) -> Result<Curve2> {
    let n = sys.dim();
    crate::error::ensure_state("x0", x0, n, "system")?;
    check_options(opts)?;
    if sys.kind() == TimeKind::Discrete {
        return Err(Error::invalid(
            "param2",
            "Hopf curves are for flows (maps have Neimark–Sacker points)",
        ));
    }
    if !(omega > 0.0 && omega.is_finite()) {
        return Err(Error::invalid(
            "omega",
            format!("{omega}: must be positive"),
        ));
    }
    let hs = HopfSystem {
        sys,
        n,
        c: vec![],
        w_scale: omega,
        w_sign: 1.0,
    };
    let a = hs.jac(x0, p0, q0);
    let (vr, vi) = super::hopf::eigvec(&a, faer::c64::new(0.0, omega))?;
    // Scale v by 1/(cᵀv) with c = v_re/|v_re|²-ish: cᵀv_re = 1, cᵀv_im = 0.
    let c: Vec<f64> = {
        let nr = norm(&vr).max(1e-300);
        vr.iter().map(|v| v / nr).collect()
    };
    let (zr, zi) = (
        c.iter().zip(&vr).map(|(a, b)| a * b).sum::<f64>(),
        c.iter().zip(&vi).map(|(a, b)| a * b).sum::<f64>(),
    );
    let d = zr * zr + zi * zi;
    // v / z = v · conj(z) / |z|².
    let wr: Vec<f64> = (0..n).map(|i| (vr[i] * zr + vi[i] * zi) / d).collect();
    let wi: Vec<f64> = (0..n).map(|i| (vi[i] * zr - vr[i] * zi) / d).collect();
    let mut hs = HopfSystem {
        sys,
        n,
        c,
        w_scale: omega,
        w_sign: 1.0,
    };
    let mut y0 = x0.to_vec();
    y0.extend([p0, q0]);
    y0.extend(wr);
    y0.extend(wi);
    y0.push(1.0);
    trace_both(&mut hs, y0, opts, ("hopf", sys.names(), vec!["bautin"]))
}

/// The fold curves through every fold of `branch` (a one-parameter branch in p at q = `q0`) and,
/// for flows, the Hopf curves through every Hopf point, each followed both ways; a point already
/// on a computed curve of its kind is not followed again.
pub fn curves_from_branch<S: Parametrised2 + ?Sized>(
    sys: &S,
    branch: &super::Branch,
    q0: f64,
    opts: &FoldCurveOptions,
) -> Result<Vec<Curve2>> {
    let mut curves: Vec<Curve2> = vec![];
    for b in &branch.bifurcations {
        let kind = match b.kind {
            super::Kind::Fold => "fold",
            super::Kind::Hopf if sys.kind() == TimeKind::Continuous => "hopf",
            _ => continue,
        };
        let seen = curves.iter().filter(|c| c.kind == kind).any(|c| {
            c.points.iter().any(|pt| {
                (pt.q - q0).abs() < 1e-9 * (1.0 + q0.abs())
                    && (pt.p - b.p).abs() < 1e-6 * (1.0 + b.p.abs())
            })
        });
        if seen {
            continue;
        }
        curves.push(match (kind, b.omega) {
            ("hopf", Some(w)) => continue_hopf(sys, &b.x, b.p, q0, w, opts)?,
            ("hopf", None) => continue,
            _ => continue_fold(sys, &b.x, b.p, q0, opts)?,
        });
    }
    Ok(curves)
}

/// The curves as one table (curve, kind, p, q, omega, one column per test function — cusp,
/// bogdanov_takens, bautin (l1) — empty where it does not apply, x0 … x{n−1}), and the
/// codimension-two points as another (curve, kind, p, q, x…).
pub fn tables(curves: &[Curve2]) -> (crate::io::Table, crate::io::Table) {
    use crate::io::{Column, Table};
    let n = curves
        .first()
        .and_then(|c| c.points.first())
        .map_or(0, |p| p.x.len());
    let (p_name, q_name) = curves
        .first()
        .map(|c| c.names.clone())
        .unwrap_or(("p".into(), "q".into()));
    let pts: Vec<(usize, &Curve2, &CurvePoint)> = curves
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.points.iter().map(move |p| (i, c, p)))
        .collect();
    let mut t = Table::new();
    t.push(
        "curve",
        Column::I64(pts.iter().map(|(i, _, _)| *i as i64).collect()),
    )
    .push(
        "kind",
        Column::Str(pts.iter().map(|(_, c, _)| c.kind.to_string()).collect()),
    )
    .push(
        &p_name,
        Column::F64(pts.iter().map(|(_, _, p)| p.p).collect()),
    )
    .push(
        &q_name,
        Column::F64(pts.iter().map(|(_, _, p)| p.q).collect()),
    )
    .push(
        "omega",
        Column::F64(
            pts.iter()
                .map(|(_, _, p)| p.omega.unwrap_or(f64::NAN))
                .collect(),
        ),
    );
    let mut names: Vec<&'static str> = vec![];
    for c in curves {
        for nm in &c.test_names {
            if !names.contains(nm) {
                names.push(nm);
            }
        }
    }
    for nm in names {
        let col = pts
            .iter()
            .map(|(_, c, p)| {
                c.test_names
                    .iter()
                    .position(|x| *x == nm)
                    .map_or(f64::NAN, |k| p.tests[k])
            })
            .collect();
        t.push(format!("test_{nm}"), Column::F64(col));
    }
    for j in 0..n {
        t.push(
            format!("x{j}"),
            Column::F64(pts.iter().map(|(_, _, p)| p.x[j]).collect()),
        );
    }
    let ev: Vec<(usize, &Codim2)> = curves
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.events.iter().map(move |e| (i, e)))
        .collect();
    let mut e = Table::new();
    e.push(
        "curve",
        Column::I64(ev.iter().map(|(i, _)| *i as i64).collect()),
    )
    .push(
        "kind",
        Column::Str(ev.iter().map(|(_, z)| z.kind.to_string()).collect()),
    )
    .push(&p_name, Column::F64(ev.iter().map(|(_, z)| z.p).collect()))
    .push(&q_name, Column::F64(ev.iter().map(|(_, z)| z.q).collect()));
    for j in 0..n {
        e.push(
            format!("x{j}"),
            Column::F64(ev.iter().map(|(_, z)| z.x[j]).collect()),
        );
    }
    (t, e)
}

/// The curves in the (p, q) plane (folds and Hopf curves in two colours), the codimension-two
/// points marked.
pub fn diagram(curves: &[Curve2]) -> crate::plot::LinePlot {
    let (p_name, q_name) = curves
        .first()
        .map(|c| c.names.clone())
        .unwrap_or(("p".into(), "q".into()));
    let mut plot = crate::plot::LinePlot::new(
        format!("bifurcation curves in ({p_name}, {q_name})"),
        p_name,
        q_name,
    );
    let mut labelled = vec![];
    for c in curves {
        let pts = c.points.iter().map(|p| (p.p, p.q)).collect();
        let label = if labelled.contains(&c.kind) {
            ""
        } else {
            c.kind
        };
        labelled.push(c.kind);
        let color = usize::from(c.kind == "hopf");
        plot = plot.segment(label, pts, color, c.kind == "hopf");
    }
    for kind in ["cusp", "bogdanov_takens", "resonance_1_1", "bautin"] {
        let pts: Vec<(f64, f64)> = curves
            .iter()
            .flat_map(|c| {
                c.events
                    .iter()
                    .filter(|e| e.kind == kind)
                    .map(|e| (e.p, e.q))
            })
            .collect();
        if !pts.is_empty() {
            plot = plot.points(kind, pts);
        }
    }
    plot
}

/// Writes `curves.csv` + `.parquet`, `codim2.csv` and `two_parameter.png/.svg` into `dir`, and
/// (unless `quiet`) a line naming the codimension-two points.
pub fn write_outputs(curves: &[Curve2], dir: &std::path::Path, quiet: bool) -> Result<()> {
    use crate::io::TableFormat;
    let (t, e) = tables(curves);
    t.write(&dir.join("curves.csv"), TableFormat::Csv)?;
    t.write(&dir.join("curves.parquet"), TableFormat::Parquet)?;
    e.write(&dir.join("codim2.csv"), TableFormat::Csv)?;
    diagram(curves).save(&dir.join("two_parameter"))?;
    if !quiet {
        let ev: Vec<String> = curves
            .iter()
            .flat_map(|c| {
                c.events
                    .iter()
                    .map(|z| format!("{} at ({:.6}, {:.6})", z.kind, z.p, z.q))
            })
            .collect();
        let count = |k: &str| curves.iter().filter(|c| c.kind == k).count();
        eprintln!(
            "{} fold and {} Hopf curve(s), {} points; {}",
            count("fold"),
            count("hopf"),
            t.nrows(),
            if ev.is_empty() {
                "no codimension-two point".to_string()
            } else {
                ev.join(", ")
            }
        );
    }
    Ok(())
}
