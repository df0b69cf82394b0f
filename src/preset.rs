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
//! method = "tsit5"
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
        // The size comes from the weight file when there is one: name it.
        let size_field = if w_file.is_some() { "W" } else { "n" };
        if n == 0 {
            return Err(Error::invalid(size_field, "must be at least 1 × 1 (n ≥ 1)"));
        }
        // W, the Jacobian and an eigen-workspace, before drawing or reading anything N × N.
        crate::memory::check(size_field, (n as u128).pow(2) * 8 * 4, None)?;
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

/// A matrix in an ORGaNICs preset: a number c (c·I for `W_r`, c·ones for `W`), `"identity"`, or
/// a path to a float64 `.npy` file (relative to the preset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatSpec {
    Number(f64),
    Text(String),
}

/// The input drive of an ORGaNICs preset: a number (all units), a list, or `"one-hot"` (1 at N/2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DriveSpec {
    Scalar(f64),
    List(Vec<f64>),
    Text(String),
}

/// An ORGaNICs preset (`model = "organics"`, see models/organics-*.toml). Unset fields take the
/// paper's defaults (Rawat, Heeger & Martiniani 2024): W_r = I, W = ones, z one-hot, b0 = b1 = 0.5, σ = 0.1,
/// τ_y = 2 ms, τ_a = 1 ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganicsPreset {
    pub model: String,
    pub n: usize,
    #[serde(default)]
    pub variant: crate::model::organics::Variant,
    #[serde(rename = "W_r")]
    pub w_r: Option<MatSpec>,
    #[serde(rename = "W")]
    pub w: Option<MatSpec>,
    pub b0: Option<PerUnit>,
    pub b1: Option<PerUnit>,
    pub sigma: Option<PerUnit>,
    pub tau_y: Option<PerUnit>,
    pub tau_a: Option<PerUnit>,
    pub z: Option<DriveSpec>,
    /// Initial state (y then a), length 2N; default: the normalization fixed point's neighbourhood
    /// y = b1 z, a = (σ b0)².
    pub x0: Option<Vec<f64>>,
    /// Defaults for the `simulate` binary (t1 defaults to 100 τ_max).
    #[serde(default)]
    pub simulate: SimulateDefaults,
}

/// Any model a preset can describe.
pub enum AnyModel {
    RateRnn(Built),
    Organics(crate::model::organics::Organics, Vec<f64>, SimulateDefaults),
}

impl OrganicsPreset {
    /// Builds the circuit; relative `.npy` paths are resolved against `dir`.
    pub fn build(&self, dir: &Path) -> Result<(crate::model::organics::Organics, Vec<f64>)> {
        let n = self.n;
        if n == 0 {
            return Err(Error::invalid("n", "must be at least 1"));
        }
        crate::model::organics::check_size("n", n)?;
        let mat =
            |spec: &Option<MatSpec>, field: &str, identity_default: bool| -> Result<Mat<f64>> {
                Ok(match spec {
                    None if identity_default => Mat::identity(n, n),
                    None => Mat::from_fn(n, n, |_, _| 1.0),
                    Some(MatSpec::Number(c)) if identity_default => {
                        Mat::from_fn(n, n, |i, j| if i == j { *c } else { 0.0 })
                    }
                    Some(MatSpec::Number(c)) => Mat::from_fn(n, n, |_, _| *c),
                    Some(MatSpec::Text(t)) if t == "identity" => Mat::identity(n, n),
                    Some(MatSpec::Text(t)) => {
                        let p = PathBuf::from(t);
                        let p = if p.is_absolute() { p } else { dir.join(p) };
                        read_npy_mat(&p, field, Some((n, n)))?
                    }
                })
            };
        let w_r = mat(&self.w_r, "W_r", true)?;
        let w = mat(&self.w, "W", false)?;
        let pu = |v: &Option<PerUnit>, d: f64, f: &str| {
            v.clone().unwrap_or(PerUnit::Scalar(d)).expand(n, f)
        };
        let z = match &self.z {
            None => {
                let mut z = vec![0.0; n];
                z[n / 2] = 1.0;
                z
            }
            Some(DriveSpec::Text(t)) if t == "one-hot" => {
                let mut z = vec![0.0; n];
                z[n / 2] = 1.0;
                z
            }
            Some(DriveSpec::Text(t)) => {
                return Err(Error::invalid(
                    "z",
                    format!("`{t}`: give a number, a list or \"one-hot\""),
                ))
            }
            Some(DriveSpec::Scalar(v)) => vec![*v; n],
            Some(DriveSpec::List(v)) => PerUnit::List(v.clone()).expand(n, "z")?,
        };
        let m = crate::model::organics::Organics::new(
            self.variant,
            w_r,
            w,
            pu(&self.b0, 0.5, "b0")?,
            pu(&self.b1, 0.5, "b1")?,
            pu(&self.sigma, 0.1, "sigma")?,
            pu(&self.tau_y, 0.002, "tau_y")?,
            pu(&self.tau_a, 0.001, "tau_a")?,
            z,
        )?;
        let x0 = match &self.x0 {
            Some(v) if v.len() == 2 * n => v.clone(),
            Some(v) => {
                return Err(Error::invalid(
                    "x0",
                    format!("has length {}, expected 2N = {}", v.len(), 2 * n),
                ))
            }
            None => m.default_start(),
        };
        crate::error::ensure_finite("x0", &x0)?;
        Ok((m, x0))
    }
}

/// A preset file's text and its `model` key (empty when absent); errors name `model`.
pub fn read_model_file(path: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid("model", format!("cannot read {}: {e}", path.display())))?;
    let kind = text
        .parse::<toml::Table>()
        .map_err(|e| Error::invalid("model", format!("{}: {}", path.display(), e.message())))?
        .get("model")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Ok((text, kind))
}

/// Loads a rate-RNN or ORGaNICs preset file, dispatching on its `model` key.
pub fn load_any(path: &Path) -> Result<AnyModel> {
    let (text, kind) = read_model_file(path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if kind == "organics" {
        let p: OrganicsPreset = toml::from_str(&text).map_err(|e| {
            Error::invalid(
                toml_error_field(&e, &text),
                format!("{}: {}", path.display(), e.message()),
            )
        })?;
        let (m, x0) = p.build(&dir)?;
        let mut sim = p.simulate.clone();
        if sim.t1.is_none() {
            sim.t1 = Some(
                100.0
                    * m.tau_y
                        .iter()
                        .chain(&m.tau_a)
                        .fold(0.0f64, |a, b| a.max(*b)),
            );
        }
        Ok(AnyModel::Organics(m, x0, sim))
    } else {
        Ok(AnyModel::RateRnn(
            Preset::from_toml(&text, &path.display().to_string())?.build(&dir)?,
        ))
    }
}

/// Command-line replacements for parts of a preset (paths relative to the working directory).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub w: Option<PathBuf>,
    pub b: Option<PathBuf>,
    pub x0: Option<PathBuf>,
    pub activation: Option<Activation>,
    pub tau: Option<f64>,
}

impl Preset {
    /// Loads `model` (or the embedded default) and applies `o`: a given W fixes N and, unless a
    /// bias file is given too, a zero bias (a given network gets no random bias).
    pub fn load_with(model: Option<&Path>, o: &Overrides) -> Result<(Self, PathBuf)> {
        let (mut p, dir) = match model {
            Some(m) => Preset::load(m)?,
            None => (Preset::default_preset(), PathBuf::from(".")),
        };
        let cwd = std::env::current_dir().unwrap_or_default();
        let abs = |q: &PathBuf| {
            if q.is_absolute() {
                q.clone()
            } else {
                cwd.join(q)
            }
        };
        if let Some(w) = &o.w {
            p.w = Some(abs(w));
            p.n = None;
            if o.b.is_none() {
                p.bias_std = Some(0.0);
            }
        }
        if let Some(b) = &o.b {
            p.b = Some(abs(b));
        }
        if let Some(x) = &o.x0 {
            p.x0 = Some(abs(x));
        }
        if let Some(a) = o.activation {
            p.activation = a;
        }
        if let Some(t) = o.tau {
            p.tau = Some(PerUnit::Scalar(t));
        }
        Ok((p, dir))
    }
}
