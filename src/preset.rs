//! Model presets: TOML files in `models/` (or embedded defaults) that build a model and its initial
//! state, either from random draws (seeded, reproducible) or from `.npy` weight files.
//!
//! ```toml
//! model = "rate-rnn"          # the only model kind so far
//! n = 100                     # number of units N
//! activation = "tanh"         # tanh | relu | sigmoid | softplus | linear
//! tau = 1.0                   # a number, or a list of N numbers (all > 0)
//! g = 1.5                     # W = g Z / sqrt(N), Z ~ N(0, 1)        (when W is not given)
//! seed = 0                    # seeds the draws of W, b and x0
//! bias_std = 0.0              # b ~ bias_std · N(0, 1)                 (when b is not given)
//! x0_std = 1.0                # x0 ~ x0_std · N(0, 1)                  (when x0 is not given)
//! W = "W.npy"                 # optional .npy files (float64), relative to the preset's folder
//! b = "b.npy"
//! x0 = "x0.npy"
//! dale_inhibitory = 0.2       # optional: Dale's law, this fraction of units inhibitory (the last ones)
//!
//! [simulate]                  # optional defaults for the `simulate` binary
//! t1 = 50.0
//! method = "dopri5"
//! rtol = 1e-6
//! atol = 1e-9
//! dt = 0.01
//! ```
//!
//! Unknown keys are errors (a typo must not silently fall back to a default).

use crate::error::{Error, Result};
use crate::io::{read_npy_mat, read_npy_vec};
use crate::model::{Activation, RateRnn};
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The embedded default preset (`models/rate-rnn-chaotic.toml`).
pub const DEFAULT_PRESET: &str = include_str!("../models/rate-rnn-chaotic.toml");

/// A scalar or one value per unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerUnit {
    Scalar(f64),
    List(Vec<f64>),
}

impl PerUnit {
    fn expand(&self, n: usize, field: &str) -> Result<Vec<f64>> {
        match self {
            PerUnit::Scalar(v) => Ok(vec![*v; n]),
            PerUnit::List(v) if v.len() == n => Ok(v.clone()),
            PerUnit::List(v) => Err(Error::invalid(
                field,
                format!("has {} entries, expected n = {n}", v.len()),
            )),
        }
    }
}

/// Defaults for the `simulate` binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SimulateDefaults {
    pub t1: Option<f64>,
    pub method: Option<String>,
    pub rtol: Option<f64>,
    pub atol: Option<f64>,
    pub dt: Option<f64>,
}

/// A rate-RNN preset (see the module documentation for the file format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub model: String,
    pub n: Option<usize>,
    #[serde(default)]
    pub activation: Activation,
    pub tau: Option<PerUnit>,
    pub g: Option<f64>,
    #[serde(default)]
    pub seed: u64,
    pub bias_std: Option<f64>,
    pub x0_std: Option<f64>,
    #[serde(rename = "W")]
    pub w: Option<PathBuf>,
    pub b: Option<PathBuf>,
    pub x0: Option<PathBuf>,
    pub dale_inhibitory: Option<f64>,
    #[serde(default)]
    pub simulate: SimulateDefaults,
}

/// A built model with its initial state.
#[derive(Debug, Clone)]
pub struct Built {
    pub model: RateRnn,
    pub x0: Vec<f64>,
}

impl Preset {
    /// Parses a preset from TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let p: Preset = toml::from_str(text).map_err(|e| {
            let field = toml_error_field(&e, text);
            Error::invalid(field, format!("{origin}: {}", e.message()))
        })?;
        if p.model != "rate-rnn" {
            return Err(Error::invalid(
                "model",
                format!(
                    "{origin}: unknown model kind `{}` (expected \"rate-rnn\")",
                    p.model
                ),
            ));
        }
        Ok(p)
    }

    /// Reads a preset file.
    pub fn load(path: &Path) -> Result<(Self, PathBuf)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid("model", format!("cannot read {}: {e}", path.display())))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((Self::from_toml(&text, &path.display().to_string())?, dir))
    }

    /// The embedded default preset.
    pub fn default_preset() -> Self {
        Self::from_toml(DEFAULT_PRESET, "embedded default preset")
            .expect("the embedded preset is valid")
    }

    /// Builds the model and initial state; relative `.npy` paths are resolved against `dir`.
    pub fn build(&self, dir: &Path) -> Result<Built> {
        let resolve = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                dir.join(p)
            }
        };
        let w_file = self
            .w
            .as_ref()
            .map(|p| read_npy_mat(&resolve(p), "W", None))
            .transpose()?;
        let n = match (&w_file, self.n) {
            (Some(w), Some(n)) if w.nrows() != n => {
                return Err(Error::invalid(
                    "W",
                    format!("has {} rows but the preset says n = {n}", w.nrows()),
                ))
            }
            (Some(w), _) => w.nrows(),
            (None, Some(n)) => n,
            (None, None) => {
                return Err(Error::invalid(
                    "n",
                    "missing: give `n` or a weight file `W`",
                ))
            }
        };
        if n == 0 {
            return Err(Error::invalid("n", "must be at least 1"));
        }
        if let Some(w) = &w_file {
            if w.ncols() != n {
                return Err(Error::invalid(
                    "W",
                    format!("must be square, got {}×{}", w.nrows(), w.ncols()),
                ));
            }
        }
        for (name, v) in [
            ("g", self.g),
            ("bias_std", self.bias_std),
            ("x0_std", self.x0_std),
        ] {
            if let Some(v) = v {
                if !(v >= 0.0 && v.is_finite()) {
                    return Err(Error::invalid(
                        name,
                        format!("{v} (must be finite and ≥ 0)"),
                    ));
                }
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
        // Draw order is fixed (W row-major, then b, then x0) so a seed always gives the same network.
        let w = match w_file {
            Some(w) => w,
            None => {
                let g = self.g.unwrap_or(1.0);
                let s = g / (n as f64).sqrt();
                let z: Vec<f64> = (0..n * n).map(|_| normal()).collect();
                Mat::from_fn(n, n, |i, j| s * z[i * n + j])
            }
        };
        let b_draw: Vec<f64> = (0..n).map(|_| normal()).collect();
        let x0_draw: Vec<f64> = (0..n).map(|_| normal()).collect();
        let b = match &self.b {
            Some(p) => read_npy_vec(&resolve(p), "b", Some(n))?,
            None => b_draw
                .iter()
                .map(|z| self.bias_std.unwrap_or(0.0) * z)
                .collect(),
        };
        let x0 = match &self.x0 {
            Some(p) => read_npy_vec(&resolve(p), "x0", Some(n))?,
            None => x0_draw
                .iter()
                .map(|z| self.x0_std.unwrap_or(1.0) * z)
                .collect(),
        };
        let tau = self
            .tau
            .clone()
            .unwrap_or(PerUnit::Scalar(1.0))
            .expand(n, "tau")?;
        let mut model = RateRnn::new(w, self.activation)?
            .with_bias(b)?
            .with_tau(tau)?;
        if let Some(f) = self.dale_inhibitory {
            if !(0.0..=1.0).contains(&f) {
                return Err(Error::invalid(
                    "dale_inhibitory",
                    format!("{f} (a fraction in [0, 1])"),
                ));
            }
            let n_inh = (f * n as f64).round() as usize;
            let d: Vec<f64> = (0..n)
                .map(|j| if j >= n - n_inh { -1.0 } else { 1.0 })
                .collect();
            model = model.with_dale(d)?;
        }
        Ok(Built { model, x0 })
    }
}

/// The TOML key an error is about: the key on the line the error points at, else the name in
/// backticks of serde's message ("missing field `n`"), else "model".
pub(crate) fn toml_error_field(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message();
    if !msg.starts_with("missing field") {
        if let Some(span) = e.span() {
            let start = text[..span.start.min(text.len())]
                .rfind('\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            let line = text[start..].lines().next().unwrap_or("");
            if let Some((key, _)) = line.split_once('=') {
                let key = key.trim().trim_matches('"');
                if !key.is_empty() && !key.starts_with('[') {
                    return key.to_string();
                }
            }
        }
    }
    // serde messages: "unknown field `foo`, expected ..." / "missing field `bar`" / "invalid type ..."
    if let Some(start) = msg.find('`') {
        if let Some(len) = msg[start + 1..].find('`') {
            return msg[start + 1..start + 1 + len].to_string();
        }
    }
    "model".to_string()
}
