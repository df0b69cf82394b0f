//! Pointwise nonlinearities φ and their derivatives φ'.

use serde::{Deserialize, Serialize};
use wide::f64x4;

/// A pointwise nonlinearity φ of a rate network.
///
/// | name | φ(x) | φ'(x) |
/// |---|---|---|
/// | `tanh` | tanh x | sech² x = 1 − tanh² x |
/// | `relu` | max(x, 0) | `1[x > 0]` (0 at x = 0, as TensorFlow and PyTorch) |
/// | `sigmoid` | 1/(1 + e^{−x}) | φ(1 − φ) |
/// | `softplus` | ln(1 + eˣ) | sigmoid(x) |
/// | `linear` | x | 1 |
/// | `gamma` | γ(x; n, s) (see [`gamma`](super::gamma)) | ∂γ/∂x |
///
/// In TOML: `activation = "tanh"`, or `activation = { gamma = { n = 5.0, s = 0.2 } }`; on the
/// command line `gamma:5:0.2` (plain `gamma` is n = 5, s = 0, the seed's initialisation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Tanh,
    Relu,
    Sigmoid,
    Softplus,
    Linear,
    Gamma {
        n: f64,
        s: f64,
    },
}

impl Activation {
    /// All variants, for tests and `--help`.
    pub const ALL: [Activation; 5] = [
        Activation::Tanh,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Softplus,
        Activation::Linear,
    ];

    /// φ(x).
    #[inline(always)]
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => sigmoid(x),
            // ln(1 + e^x) = max(x, 0) + ln(1 + e^{−|x|}), stable for any x.
            Activation::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Activation::Linear => x,
            Activation::Gamma { n, s } => super::gamma::gamma(x, n, s),
        }
    }

    /// φ'(x).
    #[inline(always)]
    pub fn deriv(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => {
                // sech² x = 4u/(1+u)², u = e^{−2|x|}: accurate to a few ulps even where tanh x rounds to ±1.
                let u = (-2.0 * x.abs()).exp();
                4.0 * u / ((1.0 + u) * (1.0 + u))
            }
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Activation::Softplus => sigmoid(x),
            Activation::Linear => 1.0,
            Activation::Gamma { n, s } => super::gamma::gamma_dx(x, n, s),
        }
    }

    /// `out[i] = φ(x[i])`, four lanes at a time (SIMD `exp`/`tanh` of the `wide` crate, within a
    /// few ulps of the scalar [`eval`](Self::eval)).
    pub fn eval_into(self, x: &[f64], out: &mut [f64]) {
        match self {
            Activation::Relu => out.iter_mut().zip(x).for_each(|(o, &v)| *o = v.max(0.0)),
            Activation::Linear => out.copy_from_slice(x),
            Activation::Tanh => super::kernels::tanh_sech2_into(x, Some(out), None),
            Activation::Gamma { .. } => out.iter_mut().zip(x).for_each(|(o, &v)| *o = self.eval(v)),
            _ => simd_map(x, out, |v| match self {
                Activation::Sigmoid => simd_sigmoid(v),
                _ => v.max(f64x4::ZERO) + (-v.abs()).exp().ln_1p(),
            }),
        }
    }

    /// `out[i] = φ'(x[i]) · v[i]` (the building block of Jacobian-vector products), vectorised.
    pub fn deriv_mul_into(self, x: &[f64], v: &[f64], out: &mut [f64]) {
        match self {
            Activation::Relu => out
                .iter_mut()
                .zip(x.iter().zip(v))
                .for_each(|(o, (&a, &b))| *o = if a > 0.0 { b } else { 0.0 }),
            Activation::Linear => out.copy_from_slice(v),
            Activation::Tanh => {
                super::kernels::tanh_sech2_into(x, None, Some(out));
                out.iter_mut().zip(v).for_each(|(o, vi)| *o *= vi);
            }
            Activation::Gamma { .. } => out
                .iter_mut()
                .zip(x.iter().zip(v))
                .for_each(|(o, (&a, &b))| *o = self.deriv(a) * b),
            _ => {
                for ((xc, vc), oc) in x.chunks(4).zip(v.chunks(4)).zip(out.chunks_mut(4)) {
                    let (xa, va) = (load4(xc), load4(vc));
                    let d = match self {
                        Activation::Sigmoid => {
                            let s = simd_sigmoid(xa);
                            s * (f64x4::ONE - s)
                        }
                        _ => simd_sigmoid(xa),
                    };
                    oc.copy_from_slice(&(d * va).to_array()[..oc.len()]);
                }
            }
        }
    }

    /// The lowercase name used in TOML presets and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
            Activation::Linear => "linear",
            Activation::Gamma { .. } => "gamma",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("gamma") {
            let parts: Vec<&str> = rest.split(':').skip(1).collect();
            let num = |k: usize, d: f64| -> Result<f64, String> {
                parts
                    .get(k)
                    .map(|p| {
                        p.parse::<f64>()
                            .map_err(|_| format!("gamma parameter `{p}` is not a number"))
                    })
                    .unwrap_or(Ok(d))
            };
            if !(rest.is_empty() || rest.starts_with(':')) || parts.len() > 2 {
                return Err(format!("`{s}`: write gamma, gamma:N or gamma:N:S"));
            }
            let (n, sat) = (num(0, 5.0)?, num(1, 0.0)?);
            if !(n > 0.0 && n.is_finite() && sat.is_finite()) {
                return Err(format!(
                    "`{s}`: the gamma gain n must be positive and s finite"
                ));
            }
            return Ok(Activation::Gamma { n, s: sat });
        }
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown activation `{s}` (expected one of tanh, relu, sigmoid, softplus, linear, gamma:N:S)"))
    }
}

#[inline(always)]
fn load4(c: &[f64]) -> f64x4 {
    let mut a = [0.0; 4];
    a[..c.len()].copy_from_slice(c);
    f64x4::from(a)
}

#[inline(always)]
fn simd_map(x: &[f64], out: &mut [f64], f: impl Fn(f64x4) -> f64x4) {
    for (xc, oc) in x.chunks(4).zip(out.chunks_mut(4)) {
        oc.copy_from_slice(&f(load4(xc)).to_array()[..oc.len()]);
    }
}

/// 1/(1 + e^{−x}) lane-wise: e^{−x} overflows to +∞ for x ≪ 0, giving exactly 0.
#[inline(always)]
fn simd_sigmoid(v: f64x4) -> f64x4 {
    f64x4::ONE / (f64x4::ONE + (-v).exp())
}

pub use super::kernels::sigmoid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        for a in Activation::ALL {
            for &x in &[-3.1, -0.7, 0.3, 1.9, 25.0, -25.0] {
                let h = 1e-6;
                let fd = (a.eval(x + h) - a.eval(x - h)) / (2.0 * h);
                assert!(
                    (fd - a.deriv(x)).abs() < 1e-8,
                    "{a:?} at {x}: fd {fd} vs {}",
                    a.deriv(x)
                );
            }
        }
    }

    #[test]
    fn vectorised_forms_match_the_scalar_ones() {
        let x: Vec<f64> = (0..4003)
            .map(|k| -40.0 + 0.02 * k as f64 + 1e-3 * (k as f64).sin())
            .collect();
        let v: Vec<f64> = x.iter().map(|a| (a * 1.7).cos()).collect();
        let (mut y, mut d) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        for a in Activation::ALL {
            a.eval_into(&x, &mut y);
            a.deriv_mul_into(&x, &v, &mut d);
            for i in 0..x.len() {
                let (e, ed) = (a.eval(x[i]), a.deriv(x[i]) * v[i]);
                assert!(
                    (y[i] - e).abs() <= 4.0 * f64::EPSILON * e.abs().max(1e-300),
                    "{a:?} φ({}) = {} vs {e}",
                    x[i],
                    y[i]
                );
                assert!(
                    (d[i] - ed).abs() <= 1e-14 * ed.abs() + 1e-300,
                    "{a:?} φ'({}) v = {} vs {ed}",
                    x[i],
                    d[i]
                );
            }
        }
    }

    #[test]
    fn known_values_and_stability() {
        assert!((Activation::Softplus.eval(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(Activation::Softplus.eval(800.0), 800.0);
        assert_eq!(Activation::Softplus.eval(-800.0), 0.0);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
        assert!((sigmoid(0.3) - 0.574_442_516_811_659).abs() < 1e-14); // the Kim, Li & Sejnowski (2019) one-step cross-check, r0 of unit 2
        assert_eq!(Activation::Relu.deriv(0.0), 0.0);
        assert_eq!("softplus".parse::<Activation>(), Ok(Activation::Softplus));
        assert!("gelu".parse::<Activation>().is_err());
        assert_eq!(
            "gamma:6:0.25".parse::<Activation>(),
            Ok(Activation::Gamma { n: 6.0, s: 0.25 })
        );
        assert_eq!(
            "gamma".parse::<Activation>(),
            Ok(Activation::Gamma { n: 5.0, s: 0.0 })
        );
        assert!("gamma:-1".parse::<Activation>().is_err());
    }
}
