//! Pointwise nonlinearities φ and their derivatives φ'.

use serde::{Deserialize, Serialize};

/// A pointwise nonlinearity φ of a rate network.
///
/// | name | φ(x) | φ'(x) |
/// |---|---|---|
/// | `tanh` | tanh x | 1 − tanh² x |
/// | `relu` | max(x, 0) | 1[x > 0] (0 at x = 0, as TensorFlow and PyTorch) |
/// | `sigmoid` | 1/(1 + e^{−x}) | φ(1 − φ) |
/// | `softplus` | ln(1 + eˣ) | sigmoid(x) |
/// | `linear` | x | 1 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Tanh,
    Relu,
    Sigmoid,
    Softplus,
    Linear,
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
        }
    }

    /// φ'(x).
    #[inline(always)]
    pub fn deriv(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => {
                let t = x.tanh();
                1.0 - t * t
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
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown activation `{s}` (expected one of tanh, relu, sigmoid, softplus, linear)"))
    }
}

/// The logistic sigmoid 1/(1 + e^{−x}), evaluated without overflow for any x.
#[inline(always)]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

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
    fn known_values_and_stability() {
        assert!((Activation::Softplus.eval(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(Activation::Softplus.eval(800.0), 800.0);
        assert_eq!(Activation::Softplus.eval(-800.0), 0.0);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
        assert!((sigmoid(0.3) - 0.574_442_516_811_659).abs() < 1e-14); // spiking.md X1, r0 of unit 2
        assert_eq!(Activation::Relu.deriv(0.0), 0.0);
        assert_eq!("softplus".parse::<Activation>(), Ok(Activation::Softplus));
        assert!("gelu".parse::<Activation>().is_err());
    }
}
