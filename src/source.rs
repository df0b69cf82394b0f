//! The model resolver: where a system comes from, resolved once into a flow or a map plus its
//! initial state, for every binary and script.
//!
//! A [`Source`] is one of
//!
//! * a **preset** TOML file (`model = "rate-rnn"` or `model = "organics"`, see `models/`), or the
//!   embedded default rate RNN, with command-line overrides (`--W`, `--b`, `--x0`, `--activation`,
//!   `--tau`) for rate-RNN presets;
//! * a **checkpoint** written by `train` (or PyTorch under the same tensor names): the rate cell
//!   as its flow, the gamma cell as its RNN map, ANRU as its map, any other cell as the map of its
//!   own update ([`CellMap`](crate::train::cell::CellMap));
//! * `--organics N`: an ORGaNICs circuit with N units and the defaults of Heeger & Mackey (2019);
//! * `--anru N:M`: an ANRU network (Geadah et al. 2024) in the seed initialisation.
//!
//! A [`View`] says how a binary wants to see it (the natural system, the rate RNN's discrete map
//! `h ← φ(W h + b)`, or the forward-Euler map of a flow), and a gain scales the recurrent weights of
//! rate networks (`lyapunov --sweep-g`). [`SourceArgs`] is the one set of clap arguments that
//! `simulate`, `fixed-points` and `lyapunov` flatten into their own.
//!
//! Model families beyond the built-in rate RNNs and ORGaNICs circuits live in a small registry,
//! [`FAMILIES`]: each names the `model` key of its preset files and the checkpoints it
//! recognises, and resolves them into a [`Resolved`] system. CordsNet (Soo et al. 2024) is one: a
//! preset with `model = "cordsnet"` (see `models/cordsnet-mnist.toml`) or a `cordsnet train`
//! checkpoint is a flow of `simulate`, `fixed-points` (Newton–Krylov and Arnoldi above
//! [`FinderOptions::dense_limit`](crate::fixed_points::FinderOptions) units) and `lyapunov`
//! (`--k` leading exponents through Jacobian-vector products). A new family adds one entry there;
//! every binary and the Python bindings then reach it.
//!
//! ```
//! use neurodyn::source::{Source, View};
//! // The embedded default preset (a chaotic rate RNN, N = 100) as its flow and as its map.
//! let flow = Source::default().resolve(View::Natural, 1.0).unwrap();
//! assert!(!flow.system.is_map() && flow.system.dim() == 100);
//! let map = Source::default().resolve(View::Map, 1.0).unwrap();
//! assert!(map.system.is_map() && map.x0.len() == 100);
//! ```

use crate::error::{Error, Result};
use crate::io::{read_npy_mat, read_npy_vec};
use crate::model::organics::Organics;
use crate::model::{Activation, Anru, EulerMap, RateRnn, RnnMap, System};
use crate::preset::{load_any, AnyModel, Overrides, Preset, SimulateDefaults};
use crate::train::checkpoint::{analysis, load, Analysis};
use faer::Mat;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a system comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A preset file (`None`: the embedded default rate RNN) with overrides for rate RNNs.
    Preset {
        path: Option<PathBuf>,
        overrides: Overrides,
        /// Input weights U (N×N_in) and an input sequence (N_in×T) driving the rate RNN's map.
        input: Option<(PathBuf, PathBuf)>,
    },
    /// A training checkpoint (safetensors); `x0` overrides the initial state.
    Checkpoint { path: PathBuf, x0: Option<PathBuf> },
    /// An ORGaNICs circuit with N units and the paper's defaults.
    Organics { n: usize, x0: Option<PathBuf> },
    /// An ANRU network with N neurons and M controller units each, seed initialisation, a constant
    /// drive added to every pre-activation.
    Anru {
        n: usize,
        m: usize,
        seed: u64,
        drive: f64,
        x0: Option<PathBuf>,
    },
}

impl Default for Source {
    fn default() -> Self {
        Source::Preset {
            path: None,
            overrides: Overrides::default(),
            input: None,
        }
    }
}

/// How a binary sees the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum View {
    /// The source's own system: rate RNNs and ORGaNICs as flows, map cells as maps.
    Natural,
    /// Rate RNNs as the discrete map `h ← φ(W h + b)` (FixedPointFinder's and the Lyapunov
    /// literature's setting); an error for other flows; maps as they are.
    Map,
    /// Rate RNNs as their discrete map, every other source as its natural system.
    PreferMap,
    /// The forward-Euler map `x ← x + dt f(x)` of a flow; an error for maps.
    Euler(f64),
}

/// A resolved system with everything the binaries need to know about it.
pub struct Resolved {
    pub system: System,
    /// The natural initial state (the preset's x0, the cell's initial state, zeros, or `--x0`).
    pub x0: Vec<f64>,
    /// `simulate` defaults from the preset.
    pub simulate: SimulateDefaults,
    /// Time per step for maps (1, or the Euler step); `None` for flows.
    pub map_dt: Option<f64>,
    /// State entries that are non-negative by construction (ORGaNICs modulators, the ORGaNICs cell's
    /// state): random starts are folded into them.
    pub nonnegative: Range<usize>,
    /// A state the fixed-point finder should also start from (ORGaNICs presets and trained cells).
    pub extra_start: Option<Vec<f64>>,
    /// Steps of input available to an input-driven map.
    pub input_len: Option<usize>,
}

/// A model family the resolver builds from its own preset files and checkpoints.
pub struct Family {
    /// The preset files' `model` key.
    pub key: &'static str,
    /// One line for messages and the README.
    pub about: &'static str,
    /// Whether a checkpoint's safetensors metadata is one of this family's.
    pub recognises: fn(&std::collections::HashMap<String, String>) -> bool,
    /// A preset file (its text, the folder relative paths are resolved against).
    pub preset: fn(text: &str, path: &Path, view: View) -> Result<Resolved>,
    /// A checkpoint, with an optional initial state.
    pub checkpoint: fn(path: &Path, x0: Option<&Path>, view: View) -> Result<Resolved>,
}

/// The registered families (beyond rate RNNs, ORGaNICs and the trained cells, built in).
pub const FAMILIES: &[Family] = &[Family {
    key: "cordsnet",
    about: "CordsNet convolutional RNN (Soo et al. 2024) driven by one image",
    recognises: |meta| {
        meta.get("run.kind").map(String::as_str) == Some("cordsnet") || meta.contains_key("arch")
    },
    preset: cordsnet_preset,
    checkpoint: |path, x0, view| {
        let spec = crate::cordsnet::spec::NetSpec {
            weights: Some(path.to_path_buf()),
            ..Default::default()
        };
        cordsnet(
            &CordsPreset {
                spec,
                start_steps: 0,
            },
            x0,
            view,
        )
    },
}];

/// The family whose preset files carry `model = key`.
fn family(key: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.key == key)
}

/// A CordsNet preset file (`model = "cordsnet"`): the network and its image, as
/// [`NetSpec`](crate::cordsnet::spec::NetSpec) fields (`weights`/`image` relative to the file),
/// and `start_steps`: the state after this many stimulus steps from r = 0 is the natural initial
/// state (0: r = 0, the protocol's start).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CordsPresetFile {
    #[allow(dead_code)]
    model: String,
    #[serde(default = "default_arch")]
    arch: String,
    weights: Option<PathBuf>,
    #[serde(default = "one")]
    seed: u64,
    #[serde(default = "half")]
    gain: f64,
    image: Option<PathBuf>,
    mnist: Option<usize>,
    #[serde(default)]
    start_steps: usize,
}

fn default_arch() -> String {
    "mnist".into()
}
fn one() -> u64 {
    1
}
fn half() -> f64 {
    0.5
}

struct CordsPreset {
    spec: crate::cordsnet::spec::NetSpec,
    start_steps: usize,
}

fn cordsnet_preset(text: &str, path: &Path, view: View) -> Result<Resolved> {
    let f: CordsPresetFile = toml::from_str(text).map_err(|e| {
        Error::invalid(
            crate::preset::toml_error_field(&e, text),
            format!("{}: {}", path.display(), e.message()),
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let spec = crate::cordsnet::spec::NetSpec {
        arch: f.arch,
        weights: f.weights.map(|w| dir.join(w)),
        seed: f.seed,
        gain: f.gain,
        image: f.image.map(|i| dir.join(i)),
        mnist: f.mnist,
    };
    cordsnet(
        &CordsPreset {
            spec,
            start_steps: f.start_steps,
        },
        None,
        view,
    )
}

/// A CordsNet flow driven by its image, as a flow or its Euler map of step α τ (the network's own
/// update, [`CordsNet::run`](crate::cordsnet::CordsNet::run)).
fn cordsnet(p: &CordsPreset, x0: Option<&Path>, view: View) -> Result<Resolved> {
    let (net, image) = p.spec.build()?;
    let n = net.arch.units();
    let dt = net.arch.alpha * net.arch.tau;
    let start = net.run(&image, 0, p.start_steps)?.state;
    let x = match x0 {
        Some(path) => read_npy_vec(path, "x0", Some(n))?,
        None => start.clone(),
    };
    let h = net.stem_forward(&image)?;
    let flow = net.into_flow(h);
    let mut r = match view {
        View::Natural | View::PreferMap => resolved(System::Flow(Box::new(flow)), x, None),
        View::Euler(step) => resolved(
            System::Map(Box::new(EulerMap {
                model: flow,
                dt: step,
            })),
            x,
            Some(step),
        ),
        View::Map => {
            return Err(Error::invalid(
                "map",
                "a CordsNet is a flow: analyse it as it is, or as its Euler map (--euler)",
            ))
        }
    };
    r.simulate.t1 = Some(100.0 * dt);
    r.simulate.dt = Some(dt);
    if p.start_steps > 0 {
        r.extra_start = Some(start);
    }
    Ok(r)
}

impl Resolved {
    /// An input-driven map must have input for each of the `need` steps asked for (field `inputs`).
    pub fn check_input_len(&self, need: usize) -> Result<()> {
        match self.input_len {
            Some(len) if len < need => Err(Error::invalid(
                "inputs",
                format!("has {len} steps but warmup + transient + steps = {need}"),
            )),
            _ => Ok(()),
        }
    }

    /// The integration `simulate` runs: the method named on the command line, else the preset's,
    /// else `tsit5`; `[dt, rtol, atol]` likewise (defaults 0.01, 1e-6, 1e-9); the end time the
    /// command line's, else the preset's, else 50, and greater than t0. Returns the method's name,
    /// the method and t1.
    pub fn integration(
        &self,
        method: Option<&str>,
        [dt, rtol, atol]: [Option<f64>; 3],
        (t0, t1): (f64, Option<f64>),
    ) -> Result<(String, crate::integrate::Method, f64)> {
        let d = &self.simulate;
        let name = method
            .map(str::to_string)
            .or(d.method.clone())
            .unwrap_or_else(|| "tsit5".into());
        let t1 = t1.or(d.t1).unwrap_or(50.0);
        let m = crate::integrate::Method::from_name(
            &name,
            dt.or(d.dt).unwrap_or(0.01),
            rtol.or(d.rtol).unwrap_or(1e-6),
            atol.or(d.atol).unwrap_or(1e-9),
        )?;
        if !(t1 > t0) {
            return Err(Error::invalid(
                "t1",
                format!("{t1} must be greater than t0 = {t0}"),
            ));
        }
        Ok((name, m, t1))
    }
}

impl Source {
    /// The ORGaNICs circuit and its initial state (`--x0` applied) when the source is one (an
    /// ORGaNICs preset or `--organics N`): what the circuit-specific analyses (the closed-form
    /// and iterative fixed points, parameters) need beyond the flow.
    pub fn organics_model(&self) -> Result<Option<(Organics, Vec<f64>)>> {
        let base = match self {
            Source::Preset { path: Some(p), .. } if registered(p)?.is_some() => None,
            Source::Preset { path: Some(p), .. } => match load_any(p)? {
                AnyModel::Organics(m, x0, _) => Some((m, x0)),
                AnyModel::RateRnn(_) => None,
            },
            Source::Organics { n, .. } => {
                let m = Organics::defaults(*n)?;
                let x0 = m.default_start();
                Some((m, x0))
            }
            _ => None,
        };
        let Some((m, x0)) = base else {
            return Ok(None);
        };
        let x0 = match self {
            Source::Preset { overrides, .. } => match &overrides.x0 {
                Some(p) => read_npy_vec(p, "x0", Some(x0.len()))?,
                None => x0,
            },
            Source::Organics { x0: Some(p), .. } => read_npy_vec(p, "x0", Some(x0.len()))?,
            _ => x0,
        };
        Ok(Some((m, x0)))
    }

    /// The reference gain g0 of the recurrent weights (the preset's g; 1 for given weights and
    /// other sources): `--sweep-g g` scales W by g / g0.
    pub fn reference_gain(&self) -> Result<f64> {
        match self {
            Source::Preset {
                path, overrides, ..
            } => {
                if overrides.w.is_some() {
                    return Ok(1.0);
                }
                Ok(match path {
                    Some(p) if registered(p)?.is_some() => 1.0,
                    Some(p) => match load_any(p)? {
                        AnyModel::RateRnn(_) => Preset::load(p)?.0.g.unwrap_or(1.0),
                        AnyModel::Organics(..) => 1.0,
                    },
                    None => Preset::default_preset().g.unwrap_or(1.0),
                })
            }
            _ => Ok(1.0),
        }
    }

    /// Resolves the source into a system (`gain` scales a rate network's W; it must be 1 for
    /// other sources).
    pub fn resolve(&self, view: View, gain: f64) -> Result<Resolved> {
        if !(gain.is_finite() && gain >= 0.0) {
            return Err(Error::invalid(
                "gain",
                format!("{gain} (must be finite and ≥ 0)"),
            ));
        }
        let not_rate = |what: &str| -> Result<()> {
            if gain != 1.0 {
                return Err(Error::invalid(
                    "sweep-g",
                    format!(
                        "scaling the recurrent weights applies to rate networks, not to {what}"
                    ),
                ));
            }
            Ok(())
        };
        match self {
            Source::Preset {
                path,
                overrides,
                input,
            } => {
                if let Some(p) = path {
                    if let Some((f, text)) = registered(p)? {
                        not_rate(f.about)?;
                        if overrides.w.is_some()
                            || overrides.b.is_some()
                            || overrides.activation.is_some()
                            || overrides.tau.is_some()
                            || input.is_some()
                        {
                            return Err(Error::invalid(
                                "model",
                                format!("--W/--b/--activation/--tau/--U apply to rate-RNN presets, not {} ones", f.key),
                            ));
                        }
                        let mut r = (f.preset)(&text, p, view)?;
                        if let Some(x) = &overrides.x0 {
                            r.x0 = read_npy_vec(x, "x0", Some(r.x0.len()))?;
                        }
                        return Ok(r);
                    }
                    if let AnyModel::Organics(m, x0, sim) = load_any(p)? {
                        not_rate("ORGaNICs circuits")?;
                        if overrides.w.is_some()
                            || overrides.b.is_some()
                            || overrides.activation.is_some()
                            || overrides.tau.is_some()
                        {
                            return Err(Error::invalid(
                                "model",
                                "--W/--b/--activation/--tau apply to rate-RNN presets, not ORGaNICs ones",
                            ));
                        }
                        let n = m.n();
                        let x0 = match &overrides.x0 {
                            Some(p) => read_npy_vec(p, "x0", Some(2 * n))?,
                            None => x0,
                        };
                        let mut r = organics(m, x0.clone(), view)?;
                        r.simulate = sim;
                        r.extra_start = Some(x0);
                        return Ok(r);
                    }
                }
                let (preset, dir) = Preset::load_with(path.as_deref(), overrides)?;
                let built = preset.build(&dir)?;
                let mut r = rate(built.model, built.x0, view, gain, input.as_ref())?;
                r.simulate = preset.simulate.clone();
                Ok(r)
            }
            Source::Checkpoint { path, x0 } => {
                let meta = crate::tensor::safetensors::read_metadata(path)?;
                if let Some(f) = FAMILIES.iter().find(|f| (f.recognises)(&meta)) {
                    not_rate(f.about)?;
                    return (f.checkpoint)(path, x0.as_deref(), view);
                }
                if let Some(m) = torch_layer(path)? {
                    not_rate("PyTorch recurrent layers")?;
                    let n = crate::model::Map::dim(&m);
                    let x = match x0 {
                        Some(p) => read_npy_vec(p, "x0", Some(n))?,
                        None => vec![0.0; n],
                    };
                    return map(Box::new(m), x, view, None);
                }
                let (net, _) = load::<f64>(path)?;
                let sys = analysis(&net)?;
                let x0_or = |n: usize, default: Vec<f64>| -> Result<Vec<f64>> {
                    match x0 {
                        Some(p) => read_npy_vec(p, "x0", Some(n)),
                        None => Ok(default),
                    }
                };
                match sys {
                    Analysis::Flow(m) => {
                        let n = crate::model::Model::dim(&m);
                        let x = x0_or(n, vec![0.0; n])?;
                        rate(m, x, view, gain, None)
                    }
                    Analysis::Map(m) => {
                        not_rate("this cell")?;
                        let n = crate::model::Map::dim(&m);
                        map(Box::new(m), x0_or(n, vec![0.0; n])?, view, None)
                    }
                    Analysis::Anru(a) => {
                        not_rate("ANRU")?;
                        let n = crate::model::Map::dim(&a);
                        map(Box::new(a), x0_or(n, vec![0.0; n])?, view, None)
                    }
                    Analysis::Cell(c) => {
                        not_rate("this cell")?;
                        let n = crate::model::Map::dim(&c);
                        let init = c.initial_state();
                        let x = x0_or(n, init.clone())?;
                        // State entries of the ORGaNICs Euler RNN (y, a, gains) are non-negative.
                        let mut r = map(Box::new(c), x, view, Some(0..n))?;
                        r.extra_start = Some(init);
                        Ok(r)
                    }
                }
            }
            Source::Organics { n, x0 } => {
                not_rate("ORGaNICs circuits")?;
                let m = Organics::defaults(*n)?;
                let x = match x0 {
                    Some(p) => read_npy_vec(p, "x0", Some(2 * n))?,
                    None => m.default_start(),
                };
                organics(m, x, view)
            }
            Source::Anru {
                n,
                m,
                seed,
                drive,
                x0,
            } => {
                not_rate("ANRU")?;
                let dim = n
                    .checked_mul(1 + m)
                    .filter(|&d| d <= 1 << 20 && *n <= 1 << 14)
                    .ok_or_else(|| {
                        Error::invalid(
                            "anru",
                            format!("{n}:{m} is too large (N ≤ 16384 and N(1 + M) ≤ 2^20)"),
                        )
                    })?;
                if !drive.is_finite() {
                    return Err(Error::invalid("drive", "must be finite"));
                }
                let mut a = Anru::seed_init(*n, *m, *seed)?;
                a.bias = vec![*drive; *n];
                let x = match x0 {
                    Some(p) => read_npy_vec(p, "x0", Some(dim))?,
                    None => vec![0.0; dim],
                };
                map(Box::new(a), x, view, None)
            }
        }
    }
}

/// The registered family of a preset file, with the file's text (None: a built-in model).
fn registered(path: &Path) -> Result<Option<(&'static Family, String)>> {
    let (text, key) = crate::preset::read_model_file(path)?;
    Ok(family(&key).map(|f| (f, text)))
}

fn resolved(system: System, x0: Vec<f64>, map_dt: Option<f64>) -> Resolved {
    Resolved {
        system,
        x0,
        simulate: SimulateDefaults::default(),
        map_dt,
        nonnegative: 0..0,
        extra_start: None,
        input_len: None,
    }
}

/// A rate RNN (scaled by `gain`) in the requested view.
fn rate(
    m: RateRnn,
    x0: Vec<f64>,
    view: View,
    gain: f64,
    input: Option<&(PathBuf, PathBuf)>,
) -> Result<Resolved> {
    let n = m.w().nrows();
    let scaled = |m: &RateRnn| -> Result<RateRnn> {
        if gain == 1.0 {
            return Ok(m.clone());
        }
        let w = Mat::from_fn(n, m.w().ncols(), |i, j| gain * m.w()[(i, j)]);
        RateRnn::new(w, m.activation())?
            .with_bias(m.bias().to_vec())?
            .with_tau(m.tau())
    };
    if input.is_some() && !matches!(view, View::Map | View::PreferMap) {
        return Err(Error::invalid(
            "U",
            "an input sequence (--U/--inputs) drives the discrete map only",
        ));
    }
    match view {
        View::Natural => Ok(resolved(System::Flow(Box::new(scaled(&m)?)), x0, None)),
        View::Euler(dt) => Ok(resolved(
            System::Map(Box::new(EulerMap {
                model: scaled(&m)?,
                dt,
            })),
            x0,
            Some(dt),
        )),
        View::Map | View::PreferMap => {
            let w = Mat::from_fn(n, m.w().ncols(), |i, j| gain * m.w()[(i, j)]);
            let mut map = RnnMap::new(w, m.activation())?.with_bias(m.bias().to_vec())?;
            let mut input_len = None;
            if let Some((u, x)) = input {
                let u = read_npy_mat(u, "U", None)?;
                let x = read_npy_mat(x, "inputs", None)?;
                map = map.with_input(u.as_ref(), x.as_ref())?;
                input_len = map.input_len();
            }
            let mut r = resolved(System::Map(Box::new(map)), x0, Some(1.0));
            r.input_len = input_len;
            Ok(r)
        }
    }
}

/// A PyTorch `nn.RNN`/`nn.GRU`/`nn.LSTM` state dict (recognised by `weight_hh_l0`), at zero input.
fn torch_layer(path: &Path) -> Result<Option<crate::model::torch_rnn::TorchRnn>> {
    let meta = crate::tensor::safetensors::read_metadata(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes)
        .map(|st| st.names().into_iter().cloned().collect())
        .unwrap_or_default();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    if !crate::model::torch_rnn::TorchRnn::recognises(&refs) {
        return Ok(None);
    }
    let tensors = crate::tensor::safetensors::read_tensors(path)?;
    crate::model::torch_rnn::TorchRnn::from_tensors(
        &tensors,
        meta.get("nonlinearity").map(|s| s.as_str()),
    )
    .map(Some)
}

fn organics(m: Organics, x0: Vec<f64>, view: View) -> Result<Resolved> {
    let n = m.n();
    let mut r =
        match view {
            View::Natural | View::PreferMap => resolved(System::Flow(Box::new(m)), x0, None),
            View::Euler(dt) => resolved(
                System::Map(Box::new(EulerMap { model: m, dt })),
                x0,
                Some(dt),
            ),
            View::Map => return Err(Error::invalid(
                "map",
                "an ORGaNICs circuit is a flow: analyse it as it is, or as its Euler map (--euler)",
            )),
        };
    r.nonnegative = n..2 * n;
    Ok(r)
}

fn map(
    m: Box<dyn crate::model::Map>,
    x0: Vec<f64>,
    view: View,
    nonnegative: Option<Range<usize>>,
) -> Result<Resolved> {
    if let View::Euler(_) = view {
        return Err(Error::invalid(
            "euler",
            "this source is a discrete-time map already (the Euler map is for flows)",
        ));
    }
    let mut r = resolved(System::Map(m), x0, Some(1.0));
    r.nonnegative = nonnegative.unwrap_or(0..0);
    Ok(r)
}

/// The command-line arguments that name a source, shared by `simulate`, `fixed-points`,
/// `lyapunov` (flatten them with `#[command(flatten)]`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Model preset (TOML, see models/): a rate RNN (`model = "rate-rnn"`) or an ORGaNICs circuit
    /// (`model = "organics"`). Default: the embedded chaotic rate RNN (N = 100, g = 1.5).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A network trained by `train` (checkpoint.safetensors): the rate cell as its flow
    /// τ ⊙ dx/dt = −x + W φ(x) (time in steps), the other cells as maps of their update; input off.
    #[arg(long, conflicts_with_all = ["model", "w", "organics", "anru"])]
    pub checkpoint: Option<PathBuf>,
    /// An ORGaNICs circuit with N units and the paper's defaults (W_r = I, W = ones, one-hot z,
    /// b0 = b1 = 0.5, σ = 0.1, τ_y = 2 ms, τ_a = 1 ms).
    #[arg(long, value_name = "N", conflicts_with_all = ["model", "w", "anru"])]
    pub organics: Option<usize>,
    /// An ANRU network with N neurons and M controller units per neuron (state dimension
    /// N(1 + M)), initialised as in the seed from --init-seed.
    #[arg(long, value_name = "N:M", conflicts_with_all = ["model", "w"])]
    pub anru: Option<String>,
    /// Seed of the ANRU initialisation.
    #[arg(long, default_value_t = 0)]
    pub init_seed: u64,
    /// Constant drive added to every ANRU pre-activation.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub drive: f64,
    /// Recurrent weights W (N×N float64 .npy); overrides the preset's W.
    #[arg(long = "W", value_name = "W.npy")]
    pub w: Option<PathBuf>,
    /// Bias b (length-N float64 .npy); overrides the preset's b.
    #[arg(long, value_name = "b.npy")]
    pub b: Option<PathBuf>,
    /// Initial state x0 (float64 .npy of the system's dimension); overrides the source's.
    #[arg(long, value_name = "x0.npy")]
    pub x0: Option<PathBuf>,
    /// Nonlinearity φ of a rate RNN: tanh, relu, sigmoid, softplus, linear or gamma:N:S
    /// (overrides the preset's).
    #[arg(long)]
    pub activation: Option<Activation>,
    /// Time constant τ of every unit of a rate RNN (overrides the preset's).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Input weights U (N×N_in) for an input-driven RNN map (with --inputs).
    #[arg(long = "U", value_name = "U.npy", requires = "inputs")]
    pub u: Option<PathBuf>,
    /// Input sequence (N_in×T: column t is x_t) for an input-driven RNN map (with --U).
    #[arg(long, value_name = "X.npy", requires = "u")]
    pub inputs: Option<PathBuf>,
}

impl SourceArgs {
    /// The source these arguments name.
    pub fn source(&self) -> Result<Source> {
        if let Some(path) = &self.checkpoint {
            return Ok(Source::Checkpoint {
                path: path.clone(),
                x0: self.x0.clone(),
            });
        }
        if let Some(n) = self.organics {
            return Ok(Source::Organics {
                n,
                x0: self.x0.clone(),
            });
        }
        if let Some(spec) = &self.anru {
            let bad = || Error::invalid("anru", format!("`{spec}`: expected N:M, e.g. 64:10"));
            let (n, m) = spec.split_once(':').ok_or_else(bad)?;
            let (n, m): (usize, usize) = (
                n.trim().parse().map_err(|_| bad())?,
                m.trim().parse().map_err(|_| bad())?,
            );
            if n == 0 || m == 0 {
                return Err(Error::invalid(
                    "anru",
                    format!("`{spec}`: N and M must be at least 1"),
                ));
            }
            return Ok(Source::Anru {
                n,
                m,
                seed: self.init_seed,
                drive: self.drive,
                x0: self.x0.clone(),
            });
        }
        Ok(Source::Preset {
            path: self.model.clone(),
            overrides: Overrides {
                w: self.w.clone(),
                b: self.b.clone(),
                x0: self.x0.clone(),
                activation: self.activation,
                tau: self.tau,
            },
            input: self.u.clone().zip(self.inputs.clone()),
        })
    }
}

/// A parametrised system from a source, for `continuation`: the system, its start state and the
/// parameter's meaning (see [`Source::parametrised`]).
pub struct ResolvedParam {
    pub system: Box<dyn crate::continuation::Parametrised>,
    pub x0: Vec<f64>,
    /// What p means, for messages and tables.
    pub description: String,
}

impl ResolvedParam {
    /// The fixed point at p = `from` nearest the start state among those Newton reaches from it
    /// and from `starts` random states (seeded) in a box twice the start's size.
    pub fn start_point(&self, from: f64, starts: usize, seed: u64) -> Result<Vec<f64>> {
        use crate::fixed_points::{find_fixed_points, random_starts, FinderOptions};
        let (sys, x0) = (self.system.as_ref(), &self.x0);
        let n = sys.dim();
        let scale = x0.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let mut s = random_starts(n, starts, -2.0 * scale, 2.0 * scale, seed);
        s.push(x0.to_vec());
        let residual = crate::continuation::Residual { sys, p: from };
        let pts = find_fixed_points(&residual, &s, &FinderOptions::default())?;
        let dist = |x: &[f64]| -> f64 { x.iter().zip(x0).map(|(a, b)| (a - b) * (a - b)).sum() };
        pts.into_iter()
            .map(|p| p.x)
            .min_by(|a, b| dist(a).total_cmp(&dist(b)))
            .ok_or_else(|| {
                Error::failed(
                    "continuation",
                    format!("no fixed point found at p = {from}: give a start with --x0"),
                )
            })
    }
}

impl Source {
    /// The source with one named parameter (Keller-style continuation needs ∂f/∂p):
    ///
    /// * rate RNNs (presets, `.npy`, rate checkpoints), as flows or maps (`view`): `g` (W scaled by
    ///   p / g0, g0 the preset's g or 1), `bias` (p added to every b_i), `input` (p times an input
    ///   pattern: `input` if given, else for a checkpoint W_in·1, else all ones);
    /// * ORGaNICs (presets, `--organics N`): `W_r` (W_r = p·I; the preset's W_r must be c·I),
    ///   `b0`, `b1`, `sigma`, `tau_y`, `tau_a` (every unit = p), `z` (p times the preset's drive
    ///   pattern z/max|z|), `delta` (W_r = I + p G, G a seeded N(0, 1/N) matrix);
    /// * other trained cells: `input` (every input channel held at p).
    pub fn parametrised(
        &self,
        view: View,
        param: &str,
        input: Option<Vec<f64>>,
        seed: u64,
        from: f64,
    ) -> Result<ResolvedParam> {
        self.parametrised_with(view, param, input, seed, from, None)
    }

    /// The source in two named parameters (`param` is p, `param2` is q; both as
    /// [`Source::parametrised`] knows them), as a family of one-parameter systems in p, and the
    /// source's initial state. `input` is the pattern of whichever is `input`.
    #[allow(clippy::too_many_arguments)]
    pub fn parametrised2(
        &self,
        view: View,
        param: &str,
        param2: &str,
        input: Option<Vec<f64>>,
        seed: u64,
        from: f64,
        from2: f64,
    ) -> Result<(crate::continuation::two::Family, ResolvedParam)> {
        if param == param2 {
            return Err(Error::invalid(
                "param2",
                format!("`{param2}` is already the first parameter"),
            ));
        }
        let start = self.parametrised_with(
            view,
            param,
            input.clone(),
            seed,
            from,
            Some((param2, from2)),
        )?;
        let (src, p1, p2) = (self.clone(), param.to_string(), param2.to_string());
        let family = crate::continuation::two::Family::new(param2, from2, move |q| {
            Ok(src
                .parametrised_with(view, &p1, input.clone(), seed, from, Some((&p2, q)))?
                .system)
        })?;
        Ok((family, start))
    }

    fn parametrised_with(
        &self,
        view: View,
        param: &str,
        input: Option<Vec<f64>>,
        seed: u64,
        from: f64,
        second: Option<(&str, f64)>,
    ) -> Result<ResolvedParam> {
        use crate::continuation::{RateKnob, RateParam, Rebuild};
        let knob_of = |name: &str,
                       field: &str,
                       g0: f64,
                       n: usize,
                       dflt: Option<Vec<f64>>|
         -> Result<RateKnob> {
            Ok(match name {
                "g" => RateKnob::Gain { g0 },
                "bias" => RateKnob::Bias,
                "input" => RateKnob::Input(input.clone().or(dflt).unwrap_or(vec![1.0; n])),
                other => {
                    return Err(Error::invalid(
                        field,
                        format!("`{other}` is not a parameter of a rate RNN (g, bias or input)"),
                    ))
                }
            })
        };
        let rate_knob =
            |g0: f64, n: usize, dflt: Option<Vec<f64>>| knob_of(param, "param", g0, n, dflt);
        // The rate network with the second knob held (a slice of a two-parameter family).
        let rate_param = |m: crate::model::RateRnn,
                          knob: RateKnob,
                          map: bool,
                          g0: f64,
                          dflt: Option<Vec<f64>>|
         -> Result<RateParam> {
            let n = m.w().nrows();
            let r = RateParam::new(m, knob, map)?;
            match second {
                Some((name, q)) => r.with_fixed(knob_of(name, "param2", g0, n, dflt)?, q),
                None => Ok(r),
            }
        };
        let map = match view {
            View::Map => true,
            View::Natural | View::PreferMap => false,
            View::Euler(_) => return Err(Error::invalid(
                "euler",
                "continuation follows the flow's fixed points (the Euler map has the same ones)",
            )),
        };
        let organics_base = self.organics_model()?;
        if let Some((base, x0)) = organics_base {
            if map {
                return Err(Error::invalid("map", "an ORGaNICs circuit is a flow"));
            }
            let base = match second {
                Some((name, q)) => {
                    organics_param(base, name, seed).map_err(|e| e.in_field("param2"))?(q)?
                }
                None => base,
            };
            let make = organics_param(base, param, seed)?;
            let description = format!("ORGaNICs `{param}`");
            let system = Rebuild::new(param, from, move |p| Ok(System::Flow(Box::new(make(p)?))))?;
            return Ok(ResolvedParam {
                system: Box::new(system),
                x0,
                description,
            });
        }
        match self {
            Source::Preset {
                path, overrides, ..
            } => {
                let (preset, dir) = Preset::load_with(path.as_deref(), overrides)?;
                let built = preset.build(&dir)?;
                let g0 = self.reference_gain()?;
                let n = built.x0.len();
                let knob = rate_knob(g0, n, None)?;
                let description = format!("rate RNN `{param}`");
                Ok(ResolvedParam {
                    system: Box::new(rate_param(built.model, knob, map, g0, None)?),
                    x0: built.x0,
                    description,
                })
            }
            Source::Checkpoint { path, x0 } => {
                if torch_layer(path)?.is_some() {
                    return Err(Error::invalid(
                        "param",
                        "a PyTorch nn.RNN/GRU/LSTM loads as a map for fixed points, Lyapunov spectra and simulation; continuation in its parameters is not built",
                    ));
                }
                let (net, _) = load::<f64>(path)?;
                match analysis(&net)? {
                    Analysis::Flow(m) => {
                        let n = crate::model::Model::dim(&m);
                        // The input pattern W_in·1 (every input channel at 1).
                        let w_in = net.layout.get("W_in").map(|t| {
                            let k = t.shape[1];
                            (0..n)
                                .map(|i| (0..k).map(|c| net.params[t.offset + i * k + c]).sum())
                                .collect::<Vec<f64>>()
                        });
                        let knob = rate_knob(1.0, n, w_in.clone())?;
                        let x = match x0 {
                            Some(p) => read_npy_vec(p, "x0", Some(n))?,
                            None => vec![0.0; n],
                        };
                        Ok(ResolvedParam {
                            system: Box::new(rate_param(m, knob, map, 1.0, w_in)?),
                            x0: x,
                            description: format!("trained rate network `{param}`"),
                        })
                    }
                    _ => {
                        if second.is_some() {
                            return Err(Error::invalid(
                                "param2",
                                "a trained non-rate cell has one parameter (`input`)",
                            ));
                        }
                        if param != "input" {
                            return Err(Error::invalid(
                                "param",
                                format!(
                                    "`{param}`: a trained {} cell is continued in `input` only",
                                    crate::train::cell::Cell::<f64>::name(&net.cell)
                                ),
                            ));
                        }
                        let k = crate::train::cell::Cell::<f64>::n_in(&net.cell);
                        // The direction in input space: --input-pattern (one value per input
                        // channel), or every channel alike.
                        let dir = match input {
                            Some(u) if u.len() == k => u,
                            Some(u) => {
                                return Err(Error::invalid(
                                    "input-pattern",
                                    format!(
                                        "has {} values; this cell takes {k} input channels (one direction value per channel)",
                                        u.len()
                                    ),
                                ))
                            }
                            None => vec![1.0; k],
                        };
                        let start = self.resolve(View::Natural, 1.0)?;
                        let sys = Rebuild::new("input", from, move |p| {
                            Ok(System::Map(Box::new(
                                crate::train::cell::CellMap::new(net.clone())
                                    .with_input(dir.iter().map(|d| p * d).collect())?,
                            )))
                        })?;
                        Ok(ResolvedParam {
                            system: Box::new(sys),
                            x0: start.x0,
                            description: "trained cell `input`".into(),
                        })
                    }
                }
            }
            Source::Anru { .. } => Err(Error::invalid(
                "anru",
                "continuation of ANRU networks is not offered (use a trained checkpoint's `input`)",
            )),
            Source::Organics { .. } => unreachable!("handled above"),
        }
    }
}

/// The straight path between two checkpoints of one architecture, θ(p) = (1 − p) θ₀ + p θ₁ (all
/// trained tensors; the Dale mask and every constraint applied after blending, as training
/// does): the network's analysis system — a rate cell's flow, any other cell's map — at each p,
/// as the parameter `path` (p = 0: `a`, p = 1: `b`). E.g. two epochs' checkpoints of one run, to
/// see where along training an attractor appears. The start state is the cell's own (zero for
/// rate cells).
pub fn checkpoint_path(a: &Path, b: &Path, from: f64) -> Result<ResolvedParam> {
    let (n0, _) = load::<f64>(a)?;
    let (n1, _) = load::<f64>(b)?;
    if n0.cell != n1.cell || n0.layout != n1.layout || n0.outputs != n1.outputs {
        return Err(Error::invalid(
            "path",
            format!(
                "{} and {} are not the same architecture (cell, sizes and read-out must match)",
                a.display(),
                b.display()
            ),
        ));
    }
    let blend = move |p: f64| -> Result<Analysis> {
        let mut net = n0.clone();
        for (t, (x0, x1)) in net.params.iter_mut().zip(n0.params.iter().zip(&n1.params)) {
            *t = (1.0 - p) * x0 + p * x1;
        }
        analysis(&net)
    };
    let x0 = match blend(from)? {
        Analysis::Flow(m) => vec![0.0; crate::model::Model::dim(&m)],
        Analysis::Map(m) => vec![0.0; crate::model::Map::dim(&m)],
        Analysis::Anru(m) => vec![0.0; crate::model::Map::dim(&m)],
        Analysis::Cell(c) => c.initial_state(),
    };
    let system = crate::continuation::Rebuild::new("path", from, move |p| {
        Ok(match blend(p)? {
            Analysis::Flow(m) => System::Flow(Box::new(m)),
            Analysis::Map(m) => System::Map(Box::new(m)),
            Analysis::Anru(m) => System::Map(Box::new(m)),
            Analysis::Cell(c) => System::Map(Box::new(c)),
        })
    })?;
    Ok(ResolvedParam {
        system: Box::new(system),
        x0,
        description: "the straight path between two checkpoints".into(),
    })
}

type OrganicsMake = std::sync::Arc<dyn Fn(f64) -> Result<Organics> + Send + Sync>;

/// `b` with one change applied, rebuilt through [`Organics::new`] (validation, and the W_r = I
/// test for the closed form, redone for the new values).
fn modified(b: &Organics, change: impl FnOnce(&mut Organics)) -> Result<Organics> {
    let mut m = b.clone();
    change(&mut m);
    Organics::new(
        m.variant, m.w_r, m.w, m.b0, m.b1, m.sigma, m.tau_y, m.tau_a, m.z,
    )
}

/// The ORGaNICs circuit as a function of one named parameter.
fn organics_param(b: Organics, param: &str, seed: u64) -> Result<OrganicsMake> {
    let n = b.n();
    let make: OrganicsMake = match param {
        "W_r" => {
            let c = b.w_r[(0, 0)];
            let scalar =
                (0..n).all(|i| (0..n).all(|j| b.w_r[(i, j)] == if i == j { c } else { 0.0 }));
            if !scalar {
                return Err(Error::invalid(
                    "param",
                    "`W_r` is a parameter only when the preset's W_r is c·I (use `delta`)",
                ));
            }
            std::sync::Arc::new(move |p| {
                modified(&b, |m| {
                    m.w_r = Mat::from_fn(n, n, |i, j| if i == j { p } else { 0.0 })
                })
            })
        }
        "delta" => {
            use rand::SeedableRng;
            use rand_distr::{Distribution, StandardNormal};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let s = 1.0 / (n as f64).sqrt();
            let g = Mat::from_fn(n, n, |_, _| {
                let z: f64 = StandardNormal.sample(&mut rng);
                s * z
            });
            std::sync::Arc::new(move |p| {
                modified(&b, |m| {
                    m.w_r = Mat::from_fn(n, n, |i, j| {
                        (if i == j { 1.0 } else { 0.0 }) + p * g[(i, j)]
                    })
                })
            })
        }
        "z" => {
            let zmax = b.z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if zmax == 0.0 {
                return Err(Error::invalid("param", "`z`: the preset's drive is zero"));
            }
            let pattern: Vec<f64> = b.z.iter().map(|v| v / zmax).collect();
            std::sync::Arc::new(move |p| {
                modified(&b, |m| m.z = pattern.iter().map(|v| p * v).collect())
            })
        }
        "b0" | "b1" | "sigma" | "tau_y" | "tau_a" => {
            let which = param.to_string();
            std::sync::Arc::new(move |p| {
                modified(&b, |m| {
                    let all = vec![p; n];
                    match which.as_str() {
                        "b0" => m.b0 = all,
                        "b1" => m.b1 = all,
                        "sigma" => m.sigma = all,
                        "tau_y" => m.tau_y = all,
                        _ => m.tau_a = all,
                    }
                })
            })
        }
        other => {
            return Err(Error::invalid(
                "param",
                format!(
                    "`{other}` is not an ORGaNICs parameter (W_r, delta, b0, b1, sigma, tau_y, tau_a, z)"
                ),
            ))
        }
    };
    Ok(make)
}
