//! Checkpoints: a [`SeqNet`] with any cell as safetensors (one tensor per [`Layout`](crate::tensor::Layout) entry under
//! its name, row-major, float32 or float64 as trained), the Adam state, and the cell's
//! configuration in the metadata. Written atomically.
//!
//! Tensor names (N units, N_in inputs, C outputs, M controller units):
//! - rate: `W_raw` `[N, N]`, `W_in` `[N, N_in]`, `gamma` `[N]` (τ = τ_min + (τ_max − τ_min) σ(γ)),
//!   `dale` `[N]` (±1, only with Dale's law), and for convenience `W` (effective) and `tau` `[N]`;
//! - gamma: `U` `[N, N_in]`, `V` `[N, N]`, `b` `[N]`, `n` `[N]`, `s` `[N]`;
//! - anru: `U_xh`, `b_h`, `W_hh`, `u_ag`, `b_g`, `W_gg`, `w_gn`, `b_gn` `[1]`, `w_gs`, `b_gs` `[1]`;
//! - lstm, gru: PyTorch's `weight_ih_l0` `[G·N, N_in]`, `weight_hh_l0` `[G·N, N]`, `bias_ih_l0`,
//!   `bias_hh_l0` `[G·N]` (G = 4, 3), so the file is also the layer's state dict;
//! - organics: `W_zx`, `W_r`, `W_bx0`, `W_by0`, `W_ba0`, `W_bx1`, `W_by1`, `W_ba1`, `log_W`,
//!   `theta_y`, `theta_a`, `theta_b0`, `theta_b1`, `y0`, `a0`, `b00`, `b10`;
//! - all: `W_out` `[C, N]`, `b_out` `[C]`; the optimiser's `optimizer.m`, `optimizer.v` `[P]`
//!   (older checkpoints: `adam_m`, `adam_v` `[P]`, `adam_t` `[1]`, still read).
//!
//! Metadata (strings): `cell`, and per cell `phi`, `tau_min`, `tau_max`, `learn_tau`,
//! `fixed_input` (rate), `learn_ns` (gamma), `kappa_y`, `kappa_a`, `kappa_b`, `sigma` (organics),
//! and `noise`; a checkpoint written by `train` also records where its run stands (`run.epoch`,
//! `run.metrics`: the per-epoch rows, in the shared driver's schema, [`crate::learn`]), which is
//! what a resumed run continues from; `optimizer.t` counts the optimiser's steps. A network
//! trained in PyTorch loads if it uses these names (float32 or float64); without metadata the cell
//! is recognised from its tensor names ([`CellFamily::SIGNATURE`](super::cell::CellFamily)) and
//! the defaults apply.

use super::cell::{AnyCell, CellKind};
use super::net::SeqNet;
use crate::error::{Error, Result};
use crate::learn::Optimizer;
use crate::tensor::real::Real;
use crate::tensor::safetensors::{bad, to_bytes, CheckpointReader, CheckpointWriter};
use safetensors::tensor::Dtype;
use std::collections::HashMap;
use std::path::Path;

/// Writes `net` and `adam` to `path` (atomically: temp file, then rename).
pub fn save<F: Real>(net: &SeqNet<F, AnyCell>, opt: &Optimizer, path: &Path) -> Result<()> {
    save_with(net, opt, path, &[])
}

/// [`save`] with extra metadata entries (a training run's state: `run.epoch`, `run.metrics`).
pub fn save_with<F: Real>(
    net: &SeqNet<F, AnyCell>,
    opt: &Optimizer,
    path: &Path,
    extra: &[(String, String)],
) -> Result<()> {
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
    let mut w = CheckpointWriter::default();
    w.meta("format", "neurodyn-seqnet-1");
    w.meta("cell", net.cell.kind().name());
    w.meta_f64("noise", net.noise);
    if net.x0_noise != 0.0 {
        w.meta_f64("x0_noise", net.x0_noise);
    }
    if net.traj_loss != super::net::TrajLoss::MeanSquare {
        w.meta("loss", net.traj_loss.name());
    }
    net.cell.save(&net.layout, &net.params, &mut w);
    for (name, shape, data) in &w.tensors {
        entries.push((name.clone(), shape.clone(), f64b(data), Dtype::F64));
    }
    let (state, opt_meta) = opt.state();
    entries.extend(state);
    let meta: std::collections::BTreeMap<String, String> = w
        .meta
        .into_iter()
        .chain(opt_meta)
        .chain(extra.iter().cloned())
        .collect();
    crate::tensor::safetensors::write_safetensors(path, &entries, &meta).map_err(|e| bad(path, e))
}

/// Reads a checkpoint into a network in precision `F` (either dtype converts), checking every
/// tensor's presence, dtype and shape.
pub fn load<F: Real>(path: &Path) -> Result<(SeqNet<F, AnyCell>, Optimizer)> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read ({e})")))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file ({e})")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file ({e})")))?;
    let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    let ck = CheckpointReader::new(path, &st, &meta);
    let kind = match ck.meta("cell") {
        Some(k) => k
            .parse::<CellKind>()
            .map_err(|_| bad(path, format!("unknown cell `{k}`")))?,
        None => CellKind::from_tensors(|n| ck.has(n), |n| ck.shape(n).ok())
            .ok_or_else(|| bad(path, "no `cell` metadata and no known tensor names"))?,
    };
    let c = ck.dim("W_out", 0)?;
    let cell = kind.load(&ck)?;
    let mut net = SeqNet::<F, AnyCell>::new(cell, c)?;
    net.noise = ck.meta_f64("noise", 0.0)?;
    net.x0_noise = ck.meta_f64("x0_noise", 0.0)?;
    if let Some(l) = ck.meta("loss") {
        net.traj_loss = super::net::TrajLoss::parse(l)
            .ok_or_else(|| bad(path, format!("unknown `loss` metadata `{l}`")))?;
    }
    for t in net.layout.tensors.clone() {
        let (s, v) = ck.tensor(&t.name)?;
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
    let mut opt = Optimizer::adam(0.0);
    let tensors = crate::tensor::safetensors::read_tensors(path)?;
    opt.restore(&tensors, &meta, net.layout.len, path)?;
    Ok((net, opt))
}

pub use super::cell::Analysis;

/// Converts a trained network for `fixed-points`, `lyapunov` and `simulate` (each cell's
/// [`CellFamily::analysis`](super::cell::CellFamily::analysis)).
pub fn analysis<F: Real>(net: &SeqNet<F, AnyCell>) -> Result<Analysis> {
    let net = net.cast::<f64>();
    net.cell.analysis(&net)
}

/// An ANRU checkpoint (`train --cell anru`) as the network of the fractional-order analysis
/// (Geadah et al. 2024): the f64 model, and each neuron's own input weight with U_xh ← diag
/// (Σ_c U_xh[i, c]; U_xh[i, 0] for the one-channel psMNIST network). Field `anru` in errors.
pub fn anru_with_inputs(path: &Path) -> Result<(crate::model::Anru, Vec<f64>)> {
    let (net, _) = load::<f64>(path)?;
    let Analysis::Anru(model) = analysis(&net)? else {
        return Err(Error::invalid(
            "anru",
            format!(
                "{}: not an ANRU checkpoint (train --cell anru)",
                path.display()
            ),
        ));
    };
    let u_xh = crate::tensor::safetensors::read_tensors(path)?
        .into_iter()
        .find(|t| t.0 == "U_xh")
        .ok_or_else(|| Error::invalid("anru", "the checkpoint has no `U_xh`"))?;
    let k = u_xh.1.get(1).copied().unwrap_or(1).max(1);
    let u = u_xh.2.chunks(k).map(|r| r.iter().sum()).collect();
    Ok((model, u))
}
