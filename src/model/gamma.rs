//! The adaptive gamma nonlinearity of Geadah et al. (Geadah et al. 2024):
//!
//! $$ \gamma(x; n, s) = (1 - s)\,\mathrm{sp}_n(x) + s\,\sigma(n x), \qquad
//!    \mathrm{sp}_n(x) = \tfrac1n \ln(1 + e^{n x}), $$
//!
//! with gain $n > 0$ and saturation $s$ (s = 0: softplus, → ReLU as n → ∞; s = 1: logistic of slope
//! n/4). Derivatives:
//!
//! $$ \partial_x\gamma = (1-s)\sigma + s\,n\,\sigma(1-\sigma),\quad
//!    \partial_n\gamma = \tfrac{1-s}{n}\,(x\sigma - \mathrm{sp}_n) + s\,x\,\sigma(1-\sigma),\quad
//!    \partial_s\gamma = \sigma - \mathrm{sp}_n, $$
//!
//! all with σ = σ(nx). The softplus is evaluated in the stable form
//! `max(nx, 0)/n + log1p(e^{−|nx|})/n` (no torch threshold), and `xσ − sp_n`, which cancels
//! catastrophically for nx ≫ 0, as `−x σ(−nx) − log1p(e^{−nx})/n` there.

/// What every quantity below shares at one (x, n): z = nx, e = e^{−|z|} ∈ (0, 1],
/// l = ln(1 + e) and σ(z) — one exponential and one logarithm, whichever quantities are asked
/// for (σ(±z) from e are the very bits of `kernels::sigmoid(±z)`).
struct Shared {
    z: f64,
    e: f64,
    l: f64,
    sg: f64,
}

impl Shared {
    #[inline(always)]
    fn new(x: f64, n: f64) -> Self {
        let z = n * x;
        let e = (-z.abs()).exp();
        Shared {
            z,
            e,
            l: e.ln_1p(),
            sg: logistic(e, z),
        }
    }
    /// sp_n(x) = (max(z, 0) + ln(1 + e^{−|z|}))/n.
    #[inline(always)]
    fn sp(&self, n: f64) -> f64 {
        (self.z.max(0.0) + self.l) / n
    }
    /// `x σ(nx) − sp_n(x)`, without cancellation for z ≫ 0.
    #[inline(always)]
    fn x_sigma_minus_sp(&self, x: f64, n: f64) -> f64 {
        if self.z > 0.0 {
            -x * logistic(self.e, -self.z) - self.l / n
        } else {
            x * self.sg - self.sp(n)
        }
    }
    #[inline(always)]
    fn gamma(&self, n: f64, s: f64) -> f64 {
        (1.0 - s) * self.sp(n) + s * self.sg
    }
    #[inline(always)]
    fn dx(&self, n: f64, s: f64) -> f64 {
        (1.0 - s) * self.sg + s * n * self.sg * (1.0 - self.sg)
    }
    #[inline(always)]
    fn dn(&self, x: f64, n: f64, s: f64) -> f64 {
        (1.0 - s) / n * self.x_sigma_minus_sp(x, n) + s * x * self.sg * (1.0 - self.sg)
    }
    #[inline(always)]
    fn ds(&self, n: f64) -> f64 {
        self.sg - self.sp(n)
    }
}

/// σ(z) given e = e^{−|z|}.
#[inline(always)]
fn logistic(e: f64, z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// sp_n(x) = ln(1 + e^{nx})/n, stable for any nx.
#[inline]
pub fn softplus_n(x: f64, n: f64) -> f64 {
    Shared::new(x, n).sp(n)
}

/// γ(x; n, s).
#[inline]
pub fn gamma(x: f64, n: f64, s: f64) -> f64 {
    Shared::new(x, n).gamma(n, s)
}

/// ∂γ/∂x.
#[inline]
pub fn gamma_dx(x: f64, n: f64, s: f64) -> f64 {
    Shared::new(x, n).dx(n, s)
}

/// ∂γ/∂n.
#[inline]
pub fn gamma_dn(x: f64, n: f64, s: f64) -> f64 {
    Shared::new(x, n).dn(x, n, s)
}

/// ∂γ/∂s.
#[inline]
pub fn gamma_ds(x: f64, n: f64, _s: f64) -> f64 {
    Shared::new(x, n).ds(n)
}

/// (γ, ∂γ/∂x, ∂γ/∂n, ∂γ/∂s) at one point from one exponential and one logarithm — the same
/// bits as the four functions above (what the trainers' backward passes call).
#[inline]
pub fn gamma_with_partials(x: f64, n: f64, s: f64) -> (f64, f64, f64, f64) {
    let h = Shared::new(x, n);
    (h.gamma(n, s), h.dx(n, s), h.dn(x, n, s), h.ds(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Geadah et al. (2024) cross-checks (mpmath values to 15 digits; ln 2 appears as the spec prints it).
    #[allow(clippy::approx_constant)]
    const TABLE: [[f64; 7]; 5] = [
        [
            0.0,
            1.0,
            0.0,
            0.693147180559945,
            0.5,
            -0.693147180559945,
            -0.193147180559945,
        ],
        [
            0.5,
            2.0,
            0.3,
            0.678959164220379,
            0.629708164985893,
            -0.0723937540692159,
            0.0744277348708935,
        ],
        [
            -1.0,
            5.0,
            0.7,
            0.00508791655634648,
            0.0252760536250510,
            -0.00513579490687962,
            0.00534978122646124,
        ],
        [
            2.0,
            0.5,
            1.0,
            0.731058578630005,
            0.0983059666207409,
            0.393223866482964,
            -1.89546479640644,
        ],
        [
            1.5,
            6.0,
            0.0,
            1.50002056703162,
            0.999876605424014,
            -3.42764825999818e-5,
            -0.500143961607607,
        ],
    ];

    #[test]
    fn spec_cross_checks() {
        for r in TABLE {
            let (x, n, s) = (r[0], r[1], r[2]);
            for (got, want, what) in [
                (gamma(x, n, s), r[3], "γ"),
                (gamma_dx(x, n, s), r[4], "∂γ/∂x"),
                (gamma_dn(x, n, s), r[5], "∂γ/∂n"),
                (gamma_ds(x, n, s), r[6], "∂γ/∂s"),
            ] {
                // The table has 15 significant digits: 1e-12 relative is what it can certify.
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs(),
                    "{what}({x}, {n}, {s}) = {got:e}, spec {want:e}"
                );
            }
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for &(x, n, s) in &[
            (0.3, 2.0, 0.2),
            (-1.2, 4.0, 0.9),
            (2.5, 0.7, 0.5),
            (0.01, 8.0, -0.3),
            (1.1, 3.0, 1.4),
        ] {
            let h = 1e-5;
            let fd = |f: &dyn Fn(f64) -> f64, v: f64| {
                (f(v - 2.0 * h) - 8.0 * f(v - h) + 8.0 * f(v + h) - f(v + 2.0 * h)) / (12.0 * h)
            };
            let cx = fd(&|v| gamma(v, n, s), x);
            let cn = fd(&|v| gamma(x, v, s), n);
            let cs = fd(&|v| gamma(x, n, v), s);
            assert!((cx - gamma_dx(x, n, s)).abs() < 1e-9, "dx at {x},{n},{s}");
            assert!((cn - gamma_dn(x, n, s)).abs() < 1e-9, "dn at {x},{n},{s}");
            assert!((cs - gamma_ds(x, n, s)).abs() < 1e-9, "ds at {x},{n},{s}");
        }
    }

    #[test]
    fn limits_and_stability() {
        assert_eq!(gamma(-1000.0, 5.0, 0.3), 0.0);
        assert!((gamma(1000.0, 5.0, 0.0) - 1000.0).abs() < 1e-12);
        assert!((gamma(0.0, 3.0, 0.4) - (0.6 * 2f64.ln() / 3.0 + 0.2)).abs() < 1e-15);
        assert!(gamma_dn(50.0, 10.0, 0.0).abs() < 1e-200);
    }
}
