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

/// A point of a fold curve.
#[derive(Debug, Clone)]
pub struct FoldPoint {
    pub p: f64,
    pub q: f64,
    pub x: Vec<f64>,
    /// The cusp test: the quadratic normal-form coefficient ŵᵀ A_x(v̂) v̂.
    pub a: f64,
    /// The Bogdanov–Takens (maps: 1:1) test: ŵᵀ v̂.
    pub bt: f64,
}

/// A codimension-two point on a fold curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Codim2 {
    /// `cusp`, `bogdanov_takens` or `resonance_1_1`.
    pub kind: &'static str,
    pub p: f64,
    pub q: f64,
    pub x: Vec<f64>,
}

/// A fold curve and the codimension-two points on it.
#[derive(Debug, Clone)]
pub struct FoldCurve {
    pub names: (String, String),
    pub points: Vec<FoldPoint>,
    pub events: Vec<Codim2>,
    /// Why it stopped.
    pub stop: String,
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
        f.iter().all(|z| z.is_finite()).then_some(Eval { f, g, a, v, w })
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
            .map(|i| w[i] * (0..n).map(|j| (ap[(i, j)] - am[(i, j)]) * v[j]).sum::<f64>())
            .sum::<f64>()
            / (2.0 * h);
        let bt = w.iter().zip(&v).map(|(a, b)| a * b).sum();
        (a, bt)
    }

    /// Newton on (f, g, tᵀ(y − y_pred)) from `y`; the corrected point and its evaluation.
    fn correct(&self, mut y: Vec<f64>, t: &[f64], y_pred: &[f64]) -> Option<(Vec<f64>, Eval)> {
        let n = self.n;
        for _ in 0..12 {
            let e = self.eval(&y)?;
            let arc: f64 = t.iter().zip(y.iter().zip(y_pred)).map(|(a, (b, c))| a * (b - c)).sum();
            let mut r = Mat::zeros(n + 2, 1);
            for i in 0..n {
                r[(i, 0)] = -e.f[i];
            }
            r[(n, 0)] = -e.g;
            r[(n + 1, 0)] = -arc;
            let res = (0..n).fold(e.g.abs(), |m, i| m.max(e.f[i].abs()));
            let scale = 1.0 + norm(&y);
            if res < 1e-11 * scale && arc.abs() < 1e-11 * scale {
                return Some((y, e));
            }
            let g = self.jacobian(&y, &e);
            let m = Mat::from_fn(n + 2, n + 2, |i, j| if i <= n { g[(i, j)] } else { t[j] });
            let d = m.partial_piv_lu().solve(&r);
            let step = (0..n + 2).map(|i| d[(i, 0)] * d[(i, 0)]).sum::<f64>().sqrt();
            for i in 0..n + 2 {
                y[i] += d[(i, 0)];
            }
            if !step.is_finite() {
                return None;
            }
            if step < 1e-13 * scale {
                let e = self.eval(&y)?;
                return Some((y, e));
            }
        }
        None
    }

    /// The unit tangent at y (null vector of the (n+1)×(n+2) Jacobian), oriented along `prev`.
    fn tangent(&self, y: &[f64], e: &Eval, prev: &[f64]) -> Option<Vec<f64>> {
        let n = self.n;
        let g = self.jacobian(y, e);
        let m = Mat::from_fn(n + 2, n + 2, |i, j| if i <= n { g[(i, j)] } else { prev[j] });
        let rhs = Mat::from_fn(n + 2, 1, |i, _| if i == n + 1 { 1.0 } else { 0.0 });
        let s = m.partial_piv_lu().solve(&rhs);
        let mut t: Vec<f64> = (0..n + 2).map(|i| s[(i, 0)]).collect();
        let nt = norm(&t);
        if !(nt.is_finite() && nt > 0.0) {
            return None;
        }
        t.iter_mut().for_each(|z| *z /= nt);
        Some(t)
    }

    fn update_borders(&mut self, e: &Eval) {
        let (vn, wn) = (norm(&e.v), norm(&e.w));
        if vn > 0.0 && wn > 0.0 && vn.is_finite() && wn.is_finite() {
            self.c = e.v.iter().map(|z| z / vn).collect();
            self.b = e.w.iter().map(|z| z / wn).collect();
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
) -> Result<FoldCurve> {
    let n = sys.dim();
    crate::error::ensure_state("x0", x0, n, "system")?;
    if !(opts.ds > 0.0 && opts.ds_max >= opts.ds && opts.max_points >= 2) {
        return Err(Error::invalid(
            "ds",
            format!(
                "need 0 < ds ≤ ds_max and at least 2 points (ds {}, ds_max {}, max_points {})",
                opts.ds, opts.ds_max, opts.max_points
            ),
        ));
    }
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
    let last = n - 1;
    fs.b = (0..n).map(|i| u[(i, last)]).collect();
    fs.c = (0..n).map(|i| v[(i, last)]).collect();
    let mut y0 = x0.to_vec();
    y0.push(p0);
    y0.push(q0);
    // Correct the start at fixed q (the arclength row pins q).
    let mut pin = vec![0.0; n + 2];
    pin[n + 1] = 1.0;
    let (y0, e0) = fs.correct(y0.clone(), &pin, &y0).ok_or_else(|| {
        Error::failed(
            "fold curve",
            format!("no fold of the {}-branch near the start at {} = {q0}", sys.names().0, sys.names().1),
        )
    })?;
    fs.update_borders(&e0);
    let sign = if opts.q_decreasing { -1.0 } else { 1.0 };
    let mut dir = vec![0.0; n + 2];
    dir[n + 1] = sign;
    let t0 = fs
        .tangent(&y0, &e0, &dir)
        .ok_or_else(|| Error::failed("fold curve", "no tangent at the start"))?;
    let mut halves: Vec<Vec<(Vec<f64>, FoldPoint)>> = vec![];
    let mut stops = vec![];
    let mut events = vec![];
    for flip in [1.0, -1.0] {
        let t_start: Vec<f64> = t0.iter().map(|z| z * flip).collect();
        let mut fsd = FoldSystem {
            sys,
            n,
            b: fs.b.clone(),
            c: fs.c.clone(),
        };
        let (pts, stop) = follow(&mut fsd, &y0, &e0, t_start, opts, &mut events)?;
        halves.push(pts);
        stops.push(stop);
    }
    let mut points: Vec<FoldPoint> = halves[1].iter().skip(1).rev().map(|p| p.1.clone()).collect();
    points.extend(halves[0].iter().map(|p| p.1.clone()));
    events.sort_by(|a: &Codim2, b: &Codim2| a.q.total_cmp(&b.q).then(a.p.total_cmp(&b.p)));
    events.dedup_by(|a, b| {
        a.kind == b.kind && (a.p - b.p).abs() < 1e-7 * (1.0 + a.p.abs()) && (a.q - b.q).abs() < 1e-7 * (1.0 + a.q.abs())
    });
    Ok(FoldCurve {
        names: sys.names(),
        points,
        events,
        stop: stops.join("; "),
    })
}

type Traced = (Vec<f64>, FoldPoint);

/// One direction of the curve from y0.
fn follow<S: Parametrised2 + ?Sized>(
    fs: &mut FoldSystem<'_, S>,
    y0: &[f64],
    e0: &Eval,
    t0: Vec<f64>,
    opts: &FoldCurveOptions,
    events: &mut Vec<Codim2>,
) -> Result<(Vec<Traced>, String)> {
    let n = fs.n;
    let point = |fs: &FoldSystem<'_, S>, y: &[f64], e: &Eval| -> FoldPoint {
        let (a, bt) = fs.tests(y, e);
        FoldPoint {
            p: y[n],
            q: y[n + 1],
            x: y[..n].to_vec(),
            a,
            bt,
        }
    };
    let mut out: Vec<Traced> = vec![(y0.to_vec(), point(fs, y0, e0))];
    let (mut y, mut t) = (y0.to_vec(), t0);
    let mut ds = opts.ds;
    let inside = |y: &[f64]| {
        y[n] >= opts.p_range.0 && y[n] <= opts.p_range.1 && y[n + 1] >= opts.q_range.0 && y[n + 1] <= opts.q_range.1
    };
    let bt_kind = if fs.sys.kind() == TimeKind::Discrete {
        "resonance_1_1"
    } else {
        "bogdanov_takens"
    };
    let stop = loop {
        if out.len() >= opts.max_points {
            break "max_points".to_string();
        }
        crate::io::check_interrupt("fold curve stopped")?;
        let pred: Vec<f64> = y.iter().zip(&t).map(|(a, b)| a + ds * b).collect();
        let Some((y1, e1)) = fs.correct(pred.clone(), &t, &pred) else {
            ds *= 0.5;
            if ds < 1e-9 * opts.ds {
                break "corrector failed".to_string();
            }
            continue;
        };
        let Some(t1) = fs.tangent(&y1, &e1, &t) else {
            break "no tangent".to_string();
        };
        let prev = out.last().map(|o| o.1.clone()).expect("start point");
        let cur = point(fs, &y1, &e1);
        for (which, f0, f1, kind) in [
            (0, prev.a, cur.a, "cusp"),
            (1, prev.bt, cur.bt, bt_kind),
        ] {
            if f0 != 0.0 && f0.signum() != f1.signum() {
                if let Some(z) = locate(fs, &y, &t, ds, which, f0, f1) {
                    events.push(Codim2 {
                        kind,
                        p: z[n],
                        q: z[n + 1],
                        x: z[..n].to_vec(),
                    });
                }
            }
        }
        fs.update_borders(&e1);
        let done = !inside(&y1);
        out.push((y1.clone(), cur));
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
fn locate<S: Parametrised2 + ?Sized>(
    fs: &FoldSystem<'_, S>,
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
    for _ in 0..60 {
        let s = (a * fb - b * fa) / (fb - fa);
        let pred: Vec<f64> = y.iter().zip(t).map(|(u, v)| u + s * v).collect();
        let (z, e) = fs.correct(pred.clone(), t, &pred)?;
        let (ta, tb) = fs.tests(&z, &e);
        let f = [ta, tb][which];
        best = Some(z);
        if f == 0.0 || (b - a).abs() < 1e-12 * ds.max(1e-300) {
            break;
        }
        if f.signum() == fa.signum() {
            a = s;
            fa = f;
            if side == -1 {
                fb *= 0.5;
            }
            side = -1;
        } else {
            b = s;
            fb = f;
            if side == 1 {
                fa *= 0.5;
            }
            side = 1;
        }
        if (b - a).abs() < 1e-13 * (1.0 + ds) {
            break;
        }
    }
    best
}

/// The fold curves through every fold of `branch` (a one-parameter branch in p at q = `q0`),
/// each followed both ways; a fold already on a computed curve is not followed again.
pub fn fold_curves_from_branch<S: Parametrised2 + ?Sized>(
    sys: &S,
    branch: &super::Branch,
    q0: f64,
    opts: &FoldCurveOptions,
) -> Result<Vec<FoldCurve>> {
    let mut curves: Vec<FoldCurve> = vec![];
    for fold in branch
        .bifurcations
        .iter()
        .filter(|b| b.kind == super::Kind::Fold)
    {
        let seen = curves.iter().any(|c| {
            c.points.iter().any(|pt| {
                (pt.q - q0).abs() < 1e-9 * (1.0 + q0.abs())
                    && (pt.p - fold.p).abs() < 1e-6 * (1.0 + fold.p.abs())
            })
        });
        if !seen {
            curves.push(continue_fold(sys, &fold.x, fold.p, q0, opts)?);
        }
    }
    Ok(curves)
}

/// The curves as one table (curve, p, q, cusp_test, bt_test, x0 … x{n−1}), the codimension-two
/// points as another (curve, kind, p, q, x…).
pub fn tables(curves: &[FoldCurve]) -> (crate::io::Table, crate::io::Table) {
    use crate::io::{Column, Table};
    let n = curves.first().and_then(|c| c.points.first()).map_or(0, |p| p.x.len());
    let (p_name, q_name) = curves
        .first()
        .map(|c| c.names.clone())
        .unwrap_or(("p".into(), "q".into()));
    let pts: Vec<(usize, &FoldPoint)> = curves
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.points.iter().map(move |p| (i, p)))
        .collect();
    let mut t = Table::new();
    t.push("curve", Column::I64(pts.iter().map(|(i, _)| *i as i64).collect()))
        .push(&p_name, Column::F64(pts.iter().map(|(_, p)| p.p).collect()))
        .push(&q_name, Column::F64(pts.iter().map(|(_, p)| p.q).collect()))
        .push("cusp_test", Column::F64(pts.iter().map(|(_, p)| p.a).collect()))
        .push("bt_test", Column::F64(pts.iter().map(|(_, p)| p.bt).collect()));
    for j in 0..n {
        t.push(format!("x{j}"), Column::F64(pts.iter().map(|(_, p)| p.x[j]).collect()));
    }
    let ev: Vec<(usize, &Codim2)> = curves
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.events.iter().map(move |e| (i, e)))
        .collect();
    let mut e = Table::new();
    e.push("curve", Column::I64(ev.iter().map(|(i, _)| *i as i64).collect()))
        .push("kind", Column::Str(ev.iter().map(|(_, z)| z.kind.to_string()).collect()))
        .push(&p_name, Column::F64(ev.iter().map(|(_, z)| z.p).collect()))
        .push(&q_name, Column::F64(ev.iter().map(|(_, z)| z.q).collect()));
    for j in 0..n {
        e.push(format!("x{j}"), Column::F64(ev.iter().map(|(_, z)| z.x[j]).collect()));
    }
    (t, e)
}

/// The fold curves in the (p, q) plane, the codimension-two points marked.
pub fn diagram(curves: &[FoldCurve]) -> crate::plot::LinePlot {
    let (p_name, q_name) = curves
        .first()
        .map(|c| c.names.clone())
        .unwrap_or(("p".into(), "q".into()));
    let mut plot = crate::plot::LinePlot::new(
        format!("fold curves in ({p_name}, {q_name})"),
        p_name,
        q_name,
    );
    for (i, c) in curves.iter().enumerate() {
        let pts = c.points.iter().map(|p| (p.p, p.q)).collect();
        plot = plot.segment(if i == 0 { "fold" } else { "" }, pts, 0, false);
    }
    for kind in ["cusp", "bogdanov_takens", "resonance_1_1"] {
        let pts: Vec<(f64, f64)> = curves
            .iter()
            .flat_map(|c| c.events.iter().filter(|e| e.kind == kind).map(|e| (e.p, e.q)))
            .collect();
        if !pts.is_empty() {
            plot = plot.points(kind, pts);
        }
    }
    plot
}

/// Writes `fold_curves.csv` + `.parquet`, `codim2.csv` and `two_parameter.png/.svg` into `dir`,
/// and (unless `quiet`) a line naming the codimension-two points.
pub fn write_outputs(curves: &[FoldCurve], dir: &std::path::Path, quiet: bool) -> Result<()> {
    use crate::io::TableFormat;
    let (t, e) = tables(curves);
    t.write(&dir.join("fold_curves.csv"), TableFormat::Csv)?;
    t.write(&dir.join("fold_curves.parquet"), TableFormat::Parquet)?;
    e.write(&dir.join("codim2.csv"), TableFormat::Csv)?;
    diagram(curves).save(&dir.join("two_parameter"))?;
    if !quiet {
        let ev: Vec<String> = curves
            .iter()
            .flat_map(|c| c.events.iter().map(|z| format!("{} at ({:.6}, {:.6})", z.kind, z.p, z.q)))
            .collect();
        eprintln!(
            "{} fold curve(s), {} points; {}",
            curves.len(),
            t.nrows(),
            if ev.is_empty() {
                "no cusp or Bogdanov–Takens point".to_string()
            } else {
                ev.join(", ")
            }
        );
    }
    Ok(())
}
