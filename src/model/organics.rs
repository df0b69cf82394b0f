//! ORGaNICs: oscillatory recurrent gated neural integrator circuits (Heeger & Mackey 2019; Rawat,
//! Heeger & Martiniani 2024; Heeger & Mackey 2019).
//!
//! State $x = (y, a) \in \mathbb{R}^{2N}$ (principal neurons y, modulators a), input drive z:
//!
//! $$ \tau_y \odot \dot y = -y + b_1 \odot z + (1 - \sqrt{\lfloor a\rfloor}) \odot r(y), \qquad
//!    \tau_a \odot \dot a = -a + (\sigma b_0)^2 + W(\lfloor a\rfloor \odot \hat y^2), $$
//!
//! with, per [`Variant`]: unrectified $r = W_r y$, $\hat y = y$; rectified $r = W_r \lfloor y\rfloor$,
//! $\hat y = \lfloor y \rfloor$; rectified recurrence $r = \lfloor W_r y \rfloor$,
//! $\hat y = \lfloor y \rfloor$. ⌊·⌋ = max(·, 0), with derivative 1[· > 0]. Jacobian (a > 0):
//!
//! $$ J_{yy} = (-I + \mathrm{diag}(1-\sqrt a)\,\partial r/\partial y)/\tau_y,\quad
//!    J_{ya} = \mathrm{diag}(-r/(2\sqrt a))/\tau_y, $$
//! $$ J_{ay} = W\,\mathrm{diag}(2 a \hat y H)/\tau_a,\quad
//!    J_{aa} = (-I + W \mathrm{diag}(\hat y^2))/\tau_a, $$
//!
//! H = 1 (unrectified) or `1[y > 0]`; for a ≤ 0 the √⌊a⌋ terms and their derivatives vanish.

use super::Model;
use crate::error::{ensure_finite, Error, Result};
use faer::{Mat, MatMut};

/// Which ORGaNICs right-hand side (the stability sweep of Rawat, Heeger & Martiniani 2024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    #[default]
    Unrectified,
    Rectified,
    RectifiedRecurrence,
}

/// An ORGaNICs circuit (see the module documentation).
#[derive(Debug, Clone)]
pub struct Organics {
    pub variant: Variant,
    /// Recurrent weights W_r (N×N).
    pub w_r: Mat<f64>,
    /// Normalization weights W ≥ 0 (N×N).
    pub w: Mat<f64>,
    pub b0: Vec<f64>,
    pub b1: Vec<f64>,
    pub sigma: Vec<f64>,
    pub tau_y: Vec<f64>,
    pub tau_a: Vec<f64>,
    /// Input drive z.
    pub z: Vec<f64>,
    /// True when W_r is exactly the identity (closed-form fixed point).
    identity_recurrence: bool,
}

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

fn heav(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Refuses (naming `field`) a circuit of N units whose W_r, W and 2N × 2N Jacobian with its
/// eigen-workspace exceed the memory available.
pub fn check_size(field: &str, n: usize) -> Result<()> {
    crate::memory::check(field, (n as u128).pow(2) * 8 * (2 + 3 * 4), None)
}

impl Organics {
    /// The paper's defaults for N units: W_r = I, W = ones, z one-hot at N/2, b0 = b1 = 0.5,
    /// σ = 0.1, τ_a = 0.001, τ_y = 0.002 (Rawat, Heeger & Martiniani 2024).
    pub fn defaults(n: usize) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid("n", "must be at least 1"));
        }
        check_size("organics", n)?;
        let mut z = vec![0.0; n];
        z[n / 2] = 1.0;
        Organics::new(
            Variant::Unrectified,
            Mat::identity(n, n),
            Mat::from_fn(n, n, |_, _| 1.0),
            vec![0.5; n],
            vec![0.5; n],
            vec![0.1; n],
            vec![0.002; n],
            vec![0.001; n],
            z,
        )
    }

    /// The conventional start (y, a) = (b1 z, (σ b0)²): the drive without recurrence and the
    /// modulators at rest, near the normalization fixed point.
    pub fn default_start(&self) -> Vec<f64> {
        let n = self.n();
        (0..n)
            .map(|i| self.b1[i] * self.z[i])
            .chain((0..n).map(|i| (self.sigma[i] * self.b0[i]).powi(2)))
            .collect()
    }

    /// Builds and validates a circuit (every vector has length N; τ > 0; W ≥ 0; all finite).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        variant: Variant,
        w_r: Mat<f64>,
        w: Mat<f64>,
        b0: Vec<f64>,
        b1: Vec<f64>,
        sigma: Vec<f64>,
        tau_y: Vec<f64>,
        tau_a: Vec<f64>,
        z: Vec<f64>,
    ) -> Result<Self> {
        let n = w_r.nrows();
        if n == 0 || w_r.ncols() != n {
            return Err(Error::invalid(
                "W_r",
                format!(
                    "must be square and non-empty, got {}×{}",
                    w_r.nrows(),
                    w_r.ncols()
                ),
            ));
        }
        if w.nrows() != n || w.ncols() != n {
            return Err(Error::invalid(
                "W",
                format!(
                    "has shape {}×{}, expected {n}×{n} (the size of W_r)",
                    w.nrows(),
                    w.ncols()
                ),
            ));
        }
        for (name, m) in [("W_r", &w_r), ("W", &w)] {
            for j in 0..n {
                for i in 0..n {
                    let v = m[(i, j)];
                    if !v.is_finite() {
                        return Err(Error::invalid(
                            name,
                            format!("entry ({i}, {j}) is {v} (must be finite)"),
                        ));
                    }
                    if name == "W" && v < 0.0 {
                        return Err(Error::invalid(
                            "W",
                            format!("entry ({i}, {j}) is {v}: normalization weights must be ≥ 0"),
                        ));
                    }
                }
            }
        }
        for (name, v) in [
            ("b0", &b0),
            ("b1", &b1),
            ("sigma", &sigma),
            ("tau_y", &tau_y),
            ("tau_a", &tau_a),
            ("z", &z),
        ] {
            if v.len() != n {
                return Err(Error::invalid(
                    name,
                    format!("has length {}, expected N = {n}", v.len()),
                ));
            }
            ensure_finite(name, v)?;
        }
        for (name, v) in [("tau_y", &tau_y), ("tau_a", &tau_a)] {
            if let Some(i) = v.iter().position(|&t| t <= 0.0) {
                return Err(Error::invalid(
                    name,
                    format!("entry {i} is {} (time constants must be positive)", v[i]),
                ));
            }
        }
        let identity_recurrence =
            (0..n).all(|j| (0..n).all(|i| w_r[(i, j)] == if i == j { 1.0 } else { 0.0 }));
        Ok(Organics {
            variant,
            w_r,
            w,
            b0,
            b1,
            sigma,
            tau_y,
            tau_a,
            z,
            identity_recurrence,
        })
    }

    /// Number of principal neurons N (the state has 2N entries).
    pub fn n(&self) -> usize {
        self.w_r.nrows()
    }

    /// Splits a state into (y, a).
    pub fn split<'a>(&self, x: &'a [f64]) -> (&'a [f64], &'a [f64]) {
        x.split_at(self.n())
    }

    /// r = W_r ŷ_r with the product y ← y + W_r v done by `product(v, r)` (the packed symmetric
    /// product of [`UniformPool`], or the general one); for ŷ_r = ⌊y⌋ the rectified copy lives in
    /// the thread's scratch pool.
    fn recurrent_with(&self, y: &[f64], r: &mut [f64], product: impl Fn(&[f64], &mut [f64])) {
        r.fill(0.0);
        match self.variant {
            Variant::Unrectified => product(y, r),
            Variant::Rectified => crate::model::scratch::with_scratch(y.len(), |v| {
                v.iter_mut().zip(y).for_each(|(b, &x)| *b = relu(x));
                product(v, r)
            }),
            Variant::RectifiedRecurrence => {
                product(y, r);
                r.iter_mut().for_each(|v| *v = relu(*v));
            }
        }
    }

    /// The recurrent term r = W_r ŷ_r through the general product.
    fn recurrent(&self, y: &[f64], r: &mut [f64]) {
        self.recurrent_with(y, r, |v, r| {
            crate::model::kernels::gemv_add(self.w_r.as_ref(), v, r)
        })
    }

    fn yhat(&self, y: f64) -> (f64, f64) {
        match self.variant {
            Variant::Unrectified => (y, 1.0),
            _ => (relu(y), heav(y)),
        }
    }

    /// The closed-form fixed point for W_r = I (Rawat, Heeger & Martiniani 2024): `a* = (σ b0)² + W (b1 z)²`,
    /// `y* = b1 z / √a*` (rectified: `y* = b1 z` where z ≤ 0, and the pool sees ⌊b1 z⌋²).
    /// Errors if W_r is not the identity.
    pub fn fixed_point_identity(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        if !self.identity_recurrence {
            return Err(Error::invalid(
                "W_r",
                "the closed-form fixed point needs W_r = I (use the iterative scheme)",
            ));
        }
        let n = self.n();
        let drive: Vec<f64> = (0..n)
            .map(|i| {
                let v = self.b1[i] * self.z[i];
                match self.variant {
                    Variant::Unrectified => v * v,
                    _ => relu(v).powi(2),
                }
            })
            .collect();
        let mut a: Vec<f64> = (0..n)
            .map(|i| (self.sigma[i] * self.b0[i]).powi(2))
            .collect();
        crate::model::kernels::gemv_add(self.w.as_ref(), &drive, &mut a);
        let y = (0..n)
            .map(|i| {
                let v = self.b1[i] * self.z[i];
                if self.variant != Variant::Unrectified && v <= 0.0 {
                    v
                } else {
                    v / a[i].sqrt()
                }
            })
            .collect();
        Ok((y, a))
    }

    /// The iterative scheme for general W_r (Rawat, Heeger & Martiniani 2024): from `a = (b0 σ)²`, repeat
    /// `y ← solve(I − diag(1 − √a) W_r, b1 z)`, `a ← (b0σ)² + W(a ⊙ y²)`. Unrectified variant only
    /// (the linear solve needs it). Returns the state (y, a) after `iterations` rounds;
    /// [`crate::fixed_points::organics_iterative`] polishes it by Newton on the ODE.
    pub fn fixed_point_iteration(&self, iterations: usize) -> Result<Vec<f64>> {
        if self.variant != Variant::Unrectified {
            return Err(Error::invalid(
                "variant",
                "the iterative scheme is defined for the unrectified model",
            ));
        }
        use faer::linalg::solvers::Solve;
        let n = self.n();
        let base: Vec<f64> = (0..n)
            .map(|i| (self.sigma[i] * self.b0[i]).powi(2))
            .collect();
        let mut a = base.clone();
        let mut y = vec![0.0; n];
        let rhs = Mat::<f64>::from_fn(n, 1, |i, _| self.b1[i] * self.z[i]);
        for _ in 0..iterations.max(1) {
            let m = Mat::<f64>::from_fn(n, n, |i, j| {
                (if i == j { 1.0 } else { 0.0 }) - (1.0 - relu(a[i]).sqrt()) * self.w_r[(i, j)]
            });
            let sol = m.partial_piv_lu().solve(&rhs);
            for i in 0..n {
                y[i] = sol[(i, 0)];
            }
            let p: Vec<f64> = (0..n).map(|i| relu(a[i]) * y[i] * y[i]).collect();
            let mut an = base.clone();
            crate::model::kernels::gemv_add(self.w.as_ref(), &p, &mut an);
            a = an;
        }
        let mut x = y;
        x.extend_from_slice(&a);
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::failed(
                "fixed point",
                "the iterative scheme diverged (I − diag(1 − √a) W_r singular for this W_r?)",
            ));
        }
        Ok(x)
    }
}

impl Organics {
    /// The right-hand side with the pooled drive W (⌊a⌋ ⊙ ŷ²) added into `da` by `pool(y, a, da)`.
    fn rhs_with(&self, x: &[f64], dx: &mut [f64], pool: impl Fn(&[f64], &[f64], &mut [f64])) {
        let n = self.n();
        let (y, a) = x.split_at(n);
        let (dy, da) = dx.split_at_mut(n);
        self.recurrent(y, dy);
        for i in 0..n {
            dy[i] = (-y[i] + self.b1[i] * self.z[i] + (1.0 - relu(a[i]).sqrt()) * dy[i])
                / self.tau_y[i];
            da[i] = -a[i] + (self.sigma[i] * self.b0[i]).powi(2);
        }
        pool(y, a, da);
        for i in 0..n {
            da[i] /= self.tau_a[i];
        }
    }

    /// This circuit seen through its all-to-all pool, when every entry of W is the same value c
    /// (the stability sweep's W = 11ᵀ; Morone, Rawat, Heeger & Martiniani 2025): the same system,
    /// whose pooled drive is c Σ_j ⌊a_j⌋ ŷ_j² — one pass instead of a matrix–vector product.
    /// `None` when W is not uniform. Checked when called (O(N²)), so it is never stale.
    pub fn uniform_pool(&self) -> Option<UniformPool<'_>> {
        let c = self.pool_weight()?;
        let n = self.n();
        Some(UniformPool {
            model: self,
            c,
            packed: crate::model::kernels::PackedSymmetric::new(self.w_r.as_ref()),
            inv_tau_y: self.tau_y.iter().map(|t| 1.0 / t).collect(),
            inv_tau_a: self.tau_a.iter().map(|t| 1.0 / t).collect(),
            drive: (0..n).map(|i| self.b1[i] * self.z[i]).collect(),
            floor: (0..n)
                .map(|i| (self.sigma[i] * self.b0[i]).powi(2))
                .collect(),
        })
    }

    /// The common entry c of W when W = c 11ᵀ (every entry equal), else `None`: the test behind
    /// [`Self::uniform_pool`], without building the fast path.
    pub fn pool_weight(&self) -> Option<f64> {
        let c = *self.w.get(0, 0);
        (0..self.w.ncols())
            .all(|j| self.w.col(j).iter().all(|&v| v == c))
            .then_some(c)
    }
}

/// An [`Organics`] circuit whose pool W = c 11ᵀ ([`Organics::uniform_pool`]), for long
/// fixed-step runs: the pooled drive is summed once, and the per-unit constants (b1 z, (σ b0)²,
/// 1/τ) are formed once, so a right-hand side is the W_r product plus one vectorised pass. It is
/// the same system; its values differ from [`Organics`]'s only by rounding (the order of the
/// pool's additions, a multiplication by 1/τ for a division by τ).
#[derive(Debug, Clone)]
pub struct UniformPool<'a> {
    pub model: &'a Organics,
    /// The common entry of W.
    pub c: f64,
    /// W_r in packed symmetric storage when it is exactly symmetric (the sweep's symmetric
    /// ensembles and deterministic matrix): half the memory traffic per product.
    packed: Option<crate::model::kernels::PackedSymmetric>,
    inv_tau_y: Vec<f64>,
    inv_tau_a: Vec<f64>,
    drive: Vec<f64>,
    floor: Vec<f64>,
}

/// Σ_j ⌊a_j⌋ ŷ_j², four interleaved partial sums (the loop vectorises; the order is fixed).
fn pooled(y: &[f64], a: &[f64], yhat: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let (yc, ac) = (y.chunks_exact(4), a.chunks_exact(4));
    let (yr, ar) = (yc.remainder(), ac.remainder());
    for (yq, aq) in yc.zip(ac) {
        for k in 0..4 {
            let yh = yhat(yq[k]);
            acc[k] += relu(aq[k]) * yh * yh;
        }
    }
    let tail = yr
        .iter()
        .zip(ar)
        .fold(0.0, |t, (yj, aj)| t + relu(*aj) * yhat(*yj) * yhat(*yj));
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

impl Model for UniformPool<'_> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        let m = self.model;
        let n = m.n();
        let (y, a) = x.split_at(n);
        let (dy, da) = dx.split_at_mut(n);
        match &self.packed {
            Some(p) => m.recurrent_with(y, dy, |v, r| p.mul_add(v, r)),
            None => m.recurrent(y, dy),
        }
        let s = self.c
            * if m.variant == Variant::Unrectified {
                pooled(y, a, |v| v)
            } else {
                pooled(y, a, relu)
            };
        for i in 0..n {
            dy[i] = (-y[i] + self.drive[i] + (1.0 - relu(a[i]).sqrt()) * dy[i]) * self.inv_tau_y[i];
            da[i] = (-a[i] + self.floor[i] + s) * self.inv_tau_a[i];
        }
    }
    fn jacobian(&self, t: f64, x: &[f64], jac: MatMut<'_, f64>) {
        self.model.jacobian(t, x, jac)
    }
    fn name(&self) -> String {
        self.model.name()
    }
}

impl Model for Organics {
    fn dim(&self) -> usize {
        2 * self.n()
    }

    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        // W (⌊a⌋ ⊙ ŷ²), the pooled drive, formed block by block without allocating.
        self.rhs_with(x, dx, |y, a, da| {
            crate::model::kernels::gemv_add_blocked(
                self.w.as_ref(),
                |j0, buf| {
                    for (k, b) in buf.iter_mut().enumerate() {
                        let (yh, _) = self.yhat(y[j0 + k]);
                        *b = relu(a[j0 + k]) * yh * yh;
                    }
                },
                da,
            )
        });
    }

    fn jacobian(&self, _t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        let n = self.n();
        let (y, a) = x.split_at(n);
        let mut r = vec![0.0; n];
        self.recurrent(y, &mut r);
        // Pre-activation of the rectified recurrence (for its Heaviside factor).
        let hr: Vec<f64> = if self.variant == Variant::RectifiedRecurrence {
            let mut pre = vec![0.0; n];
            crate::model::kernels::gemv_add(self.w_r.as_ref(), y, &mut pre);
            pre.iter().map(|&v| heav(v)).collect()
        } else {
            vec![1.0; n]
        };
        for i in 0..n {
            let ap = relu(a[i]);
            let g = 1.0 - ap.sqrt();
            for j in 0..n {
                // ∂r_i/∂y_j
                let dr = match self.variant {
                    Variant::Unrectified => self.w_r[(i, j)],
                    Variant::Rectified => self.w_r[(i, j)] * heav(y[j]),
                    Variant::RectifiedRecurrence => hr[i] * self.w_r[(i, j)],
                };
                jac[(i, j)] = (g * dr - if i == j { 1.0 } else { 0.0 }) / self.tau_y[i];
                jac[(i, n + j)] = 0.0;
                let (yh, h) = self.yhat(y[j]);
                jac[(n + i, j)] = self.w[(i, j)] * 2.0 * relu(a[j]) * yh * h / self.tau_a[i];
                jac[(n + i, n + j)] = (self.w[(i, j)] * yh * yh * heav(a[j])
                    - if i == j { 1.0 } else { 0.0 })
                    / self.tau_a[i];
            }
            jac[(i, n + i)] = if a[i] > 0.0 {
                -r[i] / (2.0 * a[i].sqrt()) / self.tau_y[i]
            } else {
                0.0
            };
        }
    }

    fn name(&self) -> String {
        format!("organics ({:?}, N = {})", self.variant, self.n())
    }
}

/// All fixed points of the scalar 2-D circuit (N = 1, W_r = w, W = `wn`), unrectified, from the
/// quartic in s = √a (Rawat, Heeger & Martiniani 2024):
/// `w² s⁴ + 2(1−w) w s³ + [(1−w)² − W (b1 z)² − (b0 σ w)²] s² − 2(1−w) w (b0σ)² s − (1−w)² (b0σ)² = 0`,
/// every positive real root s giving `a = s²`, `y = b1 z / (1 − w + w s)`. Returns the (y, a) pairs,
/// sorted by a.
pub fn scalar_fixed_points(
    w: f64,
    wn: f64,
    b0: f64,
    b1: f64,
    sigma: f64,
    z: f64,
) -> Vec<(f64, f64)> {
    let c = b0 * sigma;
    let k = b1 * z;
    // Coefficients, highest degree first.
    let mut coef = vec![
        w * w,
        2.0 * (1.0 - w) * w,
        (1.0 - w).powi(2) - wn * k * k - (c * w).powi(2),
        -2.0 * (1.0 - w) * w * c * c,
        -(1.0 - w).powi(2) * c * c,
    ];
    while !coef.is_empty() && coef[0] == 0.0 {
        coef.remove(0);
    }
    let roots = real_roots(&coef);
    let quartic = |s: f64| coef.iter().fold(0.0, |acc, c| acc * s + c);
    let dquartic = |s: f64| {
        let d = coef.len() - 1;
        coef.iter()
            .enumerate()
            .take(d)
            .fold(0.0, |acc, (i, c)| acc * s + c * (d - i) as f64)
    };
    let mut out: Vec<(f64, f64)> = vec![];
    for mut s in roots {
        // Newton polish on the polynomial.
        for _ in 0..5 {
            let d = dquartic(s);
            if d == 0.0 {
                break;
            }
            s -= quartic(s) / d;
        }
        if s > 0.0 {
            let den = 1.0 - w + w * s;
            if den != 0.0
                && !out
                    .iter()
                    .any(|&(_, a)| (a.sqrt() - s).abs() < 1e-12 * s.max(1.0))
            {
                out.push((k / den, s * s));
            }
        }
    }
    out.sort_by(|p, q| p.1.total_cmp(&q.1));
    out
}

/// Real roots of a polynomial (coefficients highest degree first) as eigenvalues of its companion
/// matrix (faer), keeping those with |Im| ≤ 1e-8 (1 + |λ|).
pub fn real_roots(coef: &[f64]) -> Vec<f64> {
    let d = coef.len().saturating_sub(1);
    if d == 0 {
        return vec![];
    }
    let lead = coef[0];
    let c = Mat::<f64>::from_fn(d, d, |i, j| {
        if i == 0 {
            -coef[j + 1] / lead
        } else if i == j + 1 {
            1.0
        } else {
            0.0
        }
    });
    match c.eigenvalues() {
        Ok(ev) => ev
            .iter()
            .filter(|l| l.im.abs() <= 1e-8 * (1.0 + l.norm()))
            .map(|l| l.re)
            .collect(),
        Err(_) => vec![],
    }
}
