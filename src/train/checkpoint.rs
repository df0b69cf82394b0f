//! Checkpoints: a [`SeqNet`] with any cell as safetensors (one tensor per [`Layout`](super::cell::Layout) entry under
//! its name, row-major, float32 or float64 as trained), the Adam state, and the cell's
//! configuration in the metadata. Written atomically.
//!
//! Tensor names (N units, N_in inputs, C outputs, M controller units):
//! - rate: `W_raw` `[N, N]`, `W_in` `[N, N_in]`, `gamma` `[N]` (τ = τ_min + (τ_max − τ_min) σ(γ)),
//!   `dale` `[N]` (±1, only with Dale's law), and for convenience `W` (effective) and `tau` `[N]`;
//! - gamma: `U` `[N, N_in]`, `V` `[N, N]`, `b` `[N]`, `n` `[N]`, `s` `[N]`;
//! - anru: `U_xh`, `b_h`, `W_hh`, `u_ag`, `b_g`, `W_gg`, `w_gn`, `b_gn` `[1]`, `w_gs`, `b_gs` `[1]`;
//! - organics: `W_zx`, `W_r`, `W_bx0`, `W_by0`, `W_ba0`, `W_bx1`, `W_by1`, `W_ba1`, `log_W`,
//!   `theta_y`, `theta_a`, `theta_b0`, `theta_b1`, `y0`, `a0`, `b00`, `b10`;
//! - all: `W_out` `[C, N]`, `b_out` `[C]`; optional `adam_m`, `adam_v` `[P]`, `adam_t` `[1]`.
//!
//! Metadata (strings): `cell`, and per cell `phi`, `tau_min`, `tau_max`, `learn_tau`,
//! `fixed_input` (rate), `learn_ns` (gamma), `kappa_y`, `kappa_a`, `kappa_b`, `sigma` (organics),
//! and `noise`. A network trained in PyTorch loads if it uses these names (float32 or float64);
//! without metadata the cell is recognised from its tensor names and the defaults apply.

use super::cell::{AnruCell, GammaCell, OrganicsCell, RateCell, RatePhi};
use super::net::{AnyCell, SeqNet};
use super::real::Real;
use super::Adam;
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid("checkpoint", format!("{}: {msg}", path.display()))
}

fn to_bytes<F: Real>(v: &[F]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// Writes `net` and `adam` to `path` (atomically: temp file, then rename).
pub fn save<F: Real>(net: &SeqNet<F, AnyCell>, adam: &Adam, path: &Path) -> Result<()> {
    let dtype = if F::NAME == "f32" {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = net
        .layout
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                to_bytes(&net.params[t.range()]),
                dtype,
            )
        })
        .collect();
    let f64b = |v: &[f64]| to_bytes(v);
    let mut meta: Vec<(&str, String)> = vec![
        ("format", "neurodyn-seqnet-1".into()),
        (
            "cell",
            crate::train::cell::Cell::<F>::name(&net.cell).into(),
        ),
        ("noise", format!("{:?}", net.noise)),
    ];
    match &net.cell {
        AnyCell::Rate(c) => {
            meta.push(("phi", c.phi.name().into()));
            meta.push(("tau_min", format!("{:?}", c.tau.0)));
            meta.push(("tau_max", format!("{:?}", c.tau.1)));
            let train = |n: &str| net.layout.get(n).map(|t| t.train).unwrap_or(true);
            meta.push(("learn_tau", train("gamma").to_string()));
            meta.push(("fixed_input", (!train("W_in")).to_string()));
            let n = c.n;
            if let Some(d) = &c.dale {
                entries.push(("dale".into(), vec![n], f64b(d), Dtype::F64));
            }
            let (w, tau) = c.effective(&net.params);
            entries.push(("W".into(), vec![n, n], f64b(&w), Dtype::F64));
            entries.push(("tau".into(), vec![n], f64b(&tau), Dtype::F64));
        }
        AnyCell::Gamma(_) => {
            let train = net.layout.get("n").map(|t| t.train).unwrap_or(true);
            meta.push(("learn_ns", train.to_string()));
        }
        AnyCell::Anru(_) => {}
        AnyCell::Organics(c) => {
            meta.push(("kappa_y", format!("{:?}", c.kappa_max.0)));
            meta.push(("kappa_a", format!("{:?}", c.kappa_max.1)));
            meta.push(("kappa_b", format!("{:?}", c.kappa_max.2)));
            meta.push(("sigma", format!("{:?}", c.sigma)));
            if let Some(m) = c.wr_max_sv {
                meta.push(("wr_max_sv", format!("{m:?}")));
            }
            let train = net.layout.get("theta_y").map(|t| t.train).unwrap_or(true);
            meta.push(("learn_tau", train.to_string()));
        }
    }
    if !adam.m.is_empty() {
        entries.push((
            "adam_m".into(),
            vec![adam.m.len()],
            f64b(&adam.m),
            Dtype::F64,
        ));
        entries.push((
            "adam_v".into(),
            vec![adam.v.len()],
            f64b(&adam.v),
            Dtype::F64,
        ));
        entries.push(("adam_t".into(), vec![1], f64b(&[adam.t as f64]), Dtype::F64));
    }
    let views: Vec<(String, TensorView)> = entries
        .iter()
        .map(|(name, shape, data, dt)| {
            TensorView::new(*dt, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| bad(path, e))
        })
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let bytes = safetensors::serialize(views, &Some(meta)).map_err(|e| bad(path, e))?;
    crate::io::write_atomic(path, |w| {
        std::io::Write::write_all(w, &bytes).map_err(|e| Error::file(path, e))
    })
}

/// Reads a checkpoint into a network in precision `F` (either dtype converts), checking every
/// tensor's presence, dtype and shape.
pub fn load<F: Real>(path: &Path) -> Result<(SeqNet<F, AnyCell>, Adam)> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read ({e})")))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file ({e})")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file ({e})")))?;
    let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    let get = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let t = st
            .tensor(name)
            .map_err(|_| bad(path, format!("tensor `{name}` is missing")))?;
        let v: Vec<f64> = match t.dtype() {
            Dtype::F64 => t
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64)
                .collect(),
            d => {
                return Err(bad(
                    path,
                    format!("tensor `{name}` is {d:?}; expected F32 or F64"),
                ))
            }
        };
        crate::error::ensure_finite(&format!("checkpoint tensor {name}"), &v)?;
        Ok((t.shape().to_vec(), v))
    };
    let shape = |name: &str| -> Result<Vec<usize>> { Ok(get(name)?.0) };
    let has = |name: &str| st.tensor(name).is_ok();
    let mf = |k: &str, default: f64| -> Result<f64> {
        match meta.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .map_err(|_| bad(path, format!("metadata `{k}` = `{v}` is not a number"))),
        }
    };
    let mb =
        |k: &str, default: bool| -> bool { meta.get(k).map(|v| v == "true").unwrap_or(default) };
    let dim = |s: &[usize], k: usize, name: &str| -> Result<usize> {
        s.get(k)
            .copied()
            .filter(|&d| d > 0)
            .ok_or_else(|| bad(path, format!("tensor `{name}` has shape {s:?}")))
    };
    let kind = match meta.get("cell").map(|s| s.as_str()) {
        Some(k) => k.to_string(),
        None if has("W_raw") => "rate".into(),
        None if has("W_zx") => "organics".into(),
        None if has("W_gg") => "anru".into(),
        None if has("V") => "gamma".into(),
        None => return Err(bad(path, "no `cell` metadata and no known tensor names")),
    };
    let out = shape("W_out")?;
    let c = dim(&out, 0, "W_out")?;
    let cell = match kind.as_str() {
        "rate" => {
            let s = shape("W_in")?;
            let (n, k) = (dim(&s, 0, "W_in")?, dim(&s, 1, "W_in")?);
            let dale = if has("dale") {
                Some(get("dale")?.1)
            } else {
                None
            };
            let phi = RatePhi::parse(meta.get("phi").map(|s| s.as_str()).unwrap_or("sigmoid"))?;
            AnyCell::Rate(RateCell::new(
                n,
                k,
                phi,
                dale,
                (mf("tau_min", 4.0)?, mf("tau_max", 20.0)?),
                mb("learn_tau", true),
                mb("fixed_input", false),
            )?)
        }
        "gamma" => {
            let s = shape("U")?;
            AnyCell::Gamma(GammaCell::new(
                dim(&s, 0, "U")?,
                dim(&s, 1, "U")?,
                mb("learn_ns", true),
            )?)
        }
        "anru" => {
            let s = shape("U_xh")?;
            let m = dim(&shape("W_gg")?, 0, "W_gg")?;
            AnyCell::Anru(AnruCell::new(dim(&s, 0, "U_xh")?, m, dim(&s, 1, "U_xh")?)?)
        }
        "organics" => {
            let s = shape("W_zx")?;
            let mut o = OrganicsCell::new(
                dim(&s, 0, "W_zx")?,
                dim(&s, 1, "W_zx")?,
                mb("learn_tau", true),
            )?;
            o.kappa_max = (
                mf("kappa_y", 0.01)?,
                mf("kappa_a", 0.01)?,
                mf("kappa_b", 0.1)?,
            );
            o.sigma = mf("sigma", 1.0)?;
            o.wr_max_sv = match meta.get("wr_max_sv") {
                Some(_) => Some(mf("wr_max_sv", 1.0)?),
                None => None,
            };
            AnyCell::Organics(o)
        }
        k => return Err(bad(path, format!("unknown cell `{k}`"))),
    };
    let mut net = SeqNet::<F, AnyCell>::new(cell, c)?;
    net.noise = mf("noise", 0.0)?;
    for t in net.layout.tensors.clone() {
        let (s, v) = get(&t.name)?;
        if s != t.shape {
            return Err(bad(
                path,
                format!(
                    "tensor `{}` has shape {s:?}, expected {:?}",
                    t.name, t.shape
                ),
            ));
        }
        for (dst, src) in net.params[t.range()].iter_mut().zip(&v) {
            *dst = F::c(*src);
        }
    }
    let p = net.layout.len;
    let adam = match (get("adam_m"), get("adam_v"), get("adam_t")) {
        (Ok((_, m)), Ok((_, v)), Ok((_, t))) if m.len() == p && v.len() == p => Adam {
            lr: 0.0,
            m,
            v,
            t: t.first().copied().unwrap_or(0.0) as i32,
        },
        _ => Adam::new(0.0),
    };
    Ok((net, adam))
}

/// A trained network as a system for the f64 analyses (input off).
pub enum Analysis {
    /// Rate cell: τ ⊙ dx/dt = −x + W φ(x) (time in steps).
    Flow(crate::model::RateRnn),
    /// Gamma cell: h ← γ(V h + b; n, s).
    Map(crate::lyapunov::RnnMap),
    /// ANRU as a map of (h, g).
    Anru(crate::model::Anru),
    /// Any other cell (the ORGaNICs Euler RNN) as a map through its own step and backward pass.
    Cell(CellMap),
}

/// Converts a trained network for `fixed-points`, `lyapunov` and `simulate`.
pub fn analysis<F: Real>(net: &SeqNet<F, AnyCell>) -> Result<Analysis> {
    let p: Vec<f64> = net.params.iter().map(|v| v.f()).collect();
    let l = &net.layout;
    let vec = |name: &str| -> Vec<f64> {
        l.get(name)
            .map(|t| p[t.range()].to_vec())
            .unwrap_or_default()
    };
    let mat = |name: &str| -> faer::Mat<f64> {
        let t = l.get(name).expect("own tensor");
        let (r, c) = (t.shape[0], t.shape[1]);
        faer::Mat::from_fn(r, c, |i, j| p[t.offset + i * c + j])
    };
    match &net.cell {
        AnyCell::Rate(c) => {
            let (w, tau) = c.effective(&net.params);
            let n = c.n;
            let w = faer::Mat::from_fn(n, n, |i, j| w[i * n + j]);
            Ok(Analysis::Flow(
                crate::model::RateRnn::new(w, c.phi.activation())?.with_tau(tau)?,
            ))
        }
        AnyCell::Gamma(_) => Ok(Analysis::Map(
            crate::lyapunov::RnnMap::new(mat("V"), crate::model::Activation::Linear)?
                .with_bias(vec("b"))?
                .with_gamma_per_neuron(vec("n"), vec("s"))?,
        )),
        AnyCell::Anru(_) => Ok(Analysis::Anru(crate::model::Anru::new(
            mat("W_hh"),
            mat("W_gg"),
            vec("u_ag"),
            vec("b_g"),
            vec("w_gn"),
            vec("b_gn")[0],
            vec("w_gs"),
            vec("b_gs")[0],
            vec("b_h"),
        )?)),
        AnyCell::Organics(_) => Ok(Analysis::Cell(CellMap::new(net.cast::<f64>()))),
    }
}

/// Any trained cell as a discrete-time map for the analyses, `s ← f(s, u)` with the input held at
/// `u` (zero by default). Its Jacobian comes from the cell's own backward pass: one batched
/// `step_back` over the identity gives Jᵀ, so every cell — the ORGaNICs Euler RNN included — gets
/// fixed points and Lyapunov spectra with no extra code (O(S³) per Jacobian for S state entries).
pub struct CellMap {
    net: SeqNet<f64, AnyCell>,
    prep: super::net::AnyPrep<f64>,
    u: Vec<f64>,
}

impl CellMap {
    pub fn new(net: SeqNet<f64, AnyCell>) -> Self {
        let prep = super::cell::Cell::<f64>::prepare(&net.cell, &net.params);
        let k = super::cell::Cell::<f64>::n_in(&net.cell);
        CellMap {
            net,
            prep,
            u: vec![0.0; k],
        }
    }

    /// Holds the input at `u` (length N_in).
    pub fn with_input(mut self, u: Vec<f64>) -> Result<Self> {
        if u.len() != self.u.len() {
            return Err(Error::invalid(
                "input",
                format!("need {} values, got {}", self.u.len(), u.len()),
            ));
        }
        crate::error::ensure_finite("input", &u)?;
        self.u = u;
        Ok(self)
    }

    /// The cell's initial state s₀ (a natural start for the analyses).
    pub fn initial_state(&self) -> Vec<f64> {
        use super::cell::Cell;
        let mut s0 = vec![0.0; Cell::<f64>::state_dim(&self.net.cell)];
        self.net.cell.init_state(&self.net.params, &mut s0);
        s0
    }
}

impl crate::lyapunov::Map for CellMap {
    fn dim(&self) -> usize {
        super::cell::Cell::<f64>::state_dim(&self.net.cell)
    }

    fn step(&self, _t: usize, h: &mut [f64]) {
        use super::cell::Cell;
        let s = self.dim();
        let mut out = vec![0.0; s];
        self.net.cell.step(
            &self.net.params,
            &self.prep,
            faer::MatRef::from_column_major_slice(h, s, 1),
            faer::MatRef::from_column_major_slice(&self.u, self.u.len(), 1),
            faer::MatMut::from_column_major_slice_mut(&mut out, s, 1),
            &mut super::real::Scratch::new(),
        );
        h.copy_from_slice(&out);
    }

    fn step_tangent(
        &self,
        t: usize,
        h: &mut [f64],
        q: faer::MatRef<'_, f64>,
        out: faer::MatMut<'_, f64>,
    ) -> Option<f64> {
        let s = self.dim();
        let mut jac = faer::Mat::<f64>::zeros(s, s);
        self.jacobian(t, h, jac.as_mut());
        faer::linalg::matmul::matmul(
            out,
            faer::Accum::Replace,
            jac.as_ref(),
            q,
            1.0,
            faer::Par::Seq,
        );
        self.step(t, h);
        None
    }

    fn jacobian(&self, _t: usize, h: &[f64], mut jac: faer::MatMut<'_, f64>) {
        use super::cell::Cell;
        let s = self.dim();
        let states = faer::Mat::<f64>::from_fn(s, s, |i, _| h[i]);
        let inputs = faer::Mat::<f64>::from_fn(self.u.len(), s, |k, _| self.u[k]);
        let eye = faer::Mat::<f64>::identity(s, s);
        let mut jt = faer::Mat::<f64>::zeros(s, s);
        let mut scratch = vec![0.0; self.net.layout.len];
        self.net.cell.step_back(
            &self.net.params,
            &self.prep,
            states.as_ref(),
            inputs.as_ref(),
            eye.as_ref(),
            jt.as_mut(),
            &mut scratch,
            &mut super::real::Scratch::new(),
        );
        // Column j of the result is Jᵀ e_j, i.e. row j of J.
        for i in 0..s {
            for j in 0..s {
                jac[(i, j)] = jt[(j, i)];
            }
        }
    }
}
