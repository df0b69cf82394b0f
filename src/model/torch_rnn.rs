//! PyTorch's own recurrent layers as maps — what most FixedPointFinder users have (Golub &
//! Sussillo 2018): a single-layer `nn.RNN`, `nn.GRU` or `nn.LSTM` state dict saved with
//! safetensors (`weight_ih_l0` [G·N, K], `weight_hh_l0` [G·N, N], optional `bias_ih_l0`,
//! `bias_hh_l0` [G·N]; G = 1, 3, 4), held at a constant input x (zero by default), in PyTorch's
//! gate order and equations (its `nn.RNN`, `nn.GRU` and `nn.LSTM` documentation):
//!
//! - RNN: h' = φ(W_ih x + b_ih + W_hh h + b_hh), φ = tanh or relu (metadata `nonlinearity`);
//! - GRU (gates r, z, n): r = σ(a_r + g_r), z = σ(a_z + g_z), n = tanh(a_n + r ⊙ g_n),
//!   h' = (1 − z) ⊙ n + z ⊙ h, with a = W_ih x + b_ih and g = W_hh h + b_hh;
//! - LSTM (gates i, f, g, o; state [h; c] of 2N): c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c').
//!
//! Jacobians are analytic: for the GRU ∂h'/∂h = diag(1 − z) ∂n/∂h + diag(z) + diag(h − n) ∂z/∂h
//! with ∂z/∂h = diag(z(1 − z)) W_hz, ∂n/∂h = diag(1 − n²)(diag(g_n) diag(r(1 − r)) W_hr + diag(r) W_hn);
//! for the LSTM ∂c'/∂h = diag(c) ∂f/∂h + diag(g) ∂i/∂h + diag(i) ∂g/∂h, ∂c'/∂c = diag(f),
//! ∂h'/∂· = diag(tanh c') ∂o/∂· + diag(o (1 − tanh² c')) ∂c'/∂·.

use super::map::Map;
use crate::error::{Error, Result};
use faer::{Mat, MatMut};

/// Which layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchKind {
    RnnTanh,
    RnnRelu,
    Gru,
    Lstm,
}

impl TorchKind {
    /// Gates G (rows of W_hh per unit).
    pub fn gates(self) -> usize {
        match self {
            TorchKind::RnnTanh | TorchKind::RnnRelu => 1,
            TorchKind::Gru => 3,
            TorchKind::Lstm => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            TorchKind::RnnTanh => "torch RNN (tanh)",
            TorchKind::RnnRelu => "torch RNN (relu)",
            TorchKind::Gru => "torch GRU",
            TorchKind::Lstm => "torch LSTM",
        }
    }
}

/// A PyTorch recurrent layer at constant input (see the module documentation).
#[derive(Debug, Clone)]
pub struct TorchRnn {
    pub kind: TorchKind,
    /// Hidden units N.
    pub n: usize,
    /// Input size K.
    pub k: usize,
    /// W_hh, [G·N, N].
    pub w_hh: Mat<f64>,
    /// W_ih, [G·N, K].
    pub w_ih: Mat<f64>,
    pub b_ih: Vec<f64>,
    pub b_hh: Vec<f64>,
    /// a = W_ih x + b_ih at the held input x.
    a: Vec<f64>,
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl TorchRnn {
    /// Whether a tensor list looks like a PyTorch recurrent layer (`weight_hh_l0`).
    pub fn recognises(names: &[&str]) -> bool {
        names.contains(&"weight_hh_l0")
    }

    /// From the state-dict tensors (name, shape, values); `nonlinearity` from the metadata.
    pub fn from_tensors(
        tensors: &[(String, Vec<usize>, Vec<f64>)],
        nonlinearity: Option<&str>,
    ) -> Result<Self> {
        let find = |n: &str| tensors.iter().find(|t| t.0 == n);
        if find("weight_hh_l1").is_some() {
            return Err(Error::invalid(
                "checkpoint",
                "a multi-layer recurrent layer: only single-layer nn.RNN/GRU/LSTM state dicts (layer l0) load as maps",
            ));
        }
        if tensors.iter().any(|t| t.0.ends_with("_reverse")) {
            return Err(Error::invalid(
                "checkpoint",
                "a bidirectional layer has no single recurrence to analyse",
            ));
        }
        let hh = find("weight_hh_l0")
            .ok_or_else(|| Error::invalid("checkpoint", "no `weight_hh_l0`"))?;
        let (rows, n) = match hh.1.as_slice() {
            [r, n] if *n > 0 && r % n == 0 => (*r, *n),
            s => {
                return Err(Error::invalid(
                    "checkpoint",
                    format!("`weight_hh_l0` has shape {s:?}; need [G·N, N]"),
                ))
            }
        };
        let kind = match (rows / n, nonlinearity) {
            (1, Some("relu")) => TorchKind::RnnRelu,
            (1, None | Some("tanh")) => TorchKind::RnnTanh,
            (1, Some(other)) => {
                return Err(Error::invalid(
                    "checkpoint",
                    format!("nonlinearity `{other}`: nn.RNN has tanh or relu"),
                ))
            }
            (3, _) => TorchKind::Gru,
            (4, _) => TorchKind::Lstm,
            (g, _) => {
                return Err(Error::invalid(
                    "checkpoint",
                    format!("`weight_hh_l0` has {g}·N rows; nn.RNN/GRU/LSTM have 1, 3 or 4"),
                ))
            }
        };
        let ih = find("weight_ih_l0")
            .ok_or_else(|| Error::invalid("checkpoint", "no `weight_ih_l0`"))?;
        let k = match ih.1.as_slice() {
            [r, k] if *r == rows => *k,
            s => {
                return Err(Error::invalid(
                    "checkpoint",
                    format!("`weight_ih_l0` has shape {s:?}; need [{rows}, K]"),
                ))
            }
        };
        let bias = |name: &str| -> Result<Vec<f64>> {
            match find(name) {
                None => Ok(vec![0.0; rows]),
                Some(t) if t.2.len() == rows => Ok(t.2.clone()),
                Some(t) => Err(Error::invalid(
                    "checkpoint",
                    format!("`{name}` has shape {:?}; need [{rows}]", t.1),
                )),
            }
        };
        let all_finite = tensors.iter().all(|t| t.2.iter().all(|v| v.is_finite()));
        if !all_finite {
            return Err(Error::invalid("checkpoint", "non-finite weights"));
        }
        let w_hh = Mat::from_fn(rows, n, |i, j| hh.2[i * n + j]);
        let w_ih = Mat::from_fn(rows, k, |i, j| ih.2[i * k + j]);
        let b_ih = bias("bias_ih_l0")?;
        let mut m = TorchRnn {
            kind,
            n,
            k,
            w_hh,
            w_ih,
            b_ih: b_ih.clone(),
            b_hh: bias("bias_hh_l0")?,
            a: b_ih,
        };
        m.set_input(&vec![0.0; k])?;
        Ok(m)
    }

    /// Loads a safetensors state dict.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let tensors = crate::tensor::safetensors::read_tensors(path)?;
        let meta = crate::tensor::safetensors::read_metadata(path)?;
        Self::from_tensors(&tensors, meta.get("nonlinearity").map(|s| s.as_str()))
    }

    /// Holds the input at x (length K).
    pub fn set_input(&mut self, x: &[f64]) -> Result<()> {
        if x.len() != self.k || x.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "input",
                format!("needs {} finite values, got {}", self.k, x.len()),
            ));
        }
        self.a = (0..self.w_ih.nrows())
            .map(|r| self.b_ih[r] + (0..self.k).map(|j| self.w_ih[(r, j)] * x[j]).sum::<f64>())
            .collect();
        Ok(())
    }

    /// g = W_hh h + b_hh.
    fn hidden_drive(&self, h: &[f64]) -> Vec<f64> {
        let rows = self.w_hh.nrows();
        (0..rows)
            .map(|r| self.b_hh[r] + (0..self.n).map(|j| self.w_hh[(r, j)] * h[j]).sum::<f64>())
            .collect()
    }
}

impl Map for TorchRnn {
    fn dim(&self) -> usize {
        match self.kind {
            TorchKind::Lstm => 2 * self.n,
            _ => self.n,
        }
    }

    fn step(&self, _t: usize, x: &mut [f64]) {
        let n = self.n;
        let g = self.hidden_drive(&x[..n]);
        let a = &self.a;
        match self.kind {
            TorchKind::RnnTanh => (0..n).for_each(|i| x[i] = (a[i] + g[i]).tanh()),
            TorchKind::RnnRelu => (0..n).for_each(|i| x[i] = (a[i] + g[i]).max(0.0)),
            TorchKind::Gru => {
                for i in 0..n {
                    let r = sig(a[i] + g[i]);
                    let z = sig(a[n + i] + g[n + i]);
                    let nn = (a[2 * n + i] + r * g[2 * n + i]).tanh();
                    x[i] = (1.0 - z) * nn + z * x[i];
                }
            }
            TorchKind::Lstm => {
                for i in 0..n {
                    let (ig, fg, gg, og) = lstm_gates(a, &g, n, i);
                    let c = fg * x[n + i] + ig * gg;
                    x[n + i] = c;
                    x[i] = og * c.tanh();
                }
            }
        }
    }

    fn jacobian(&self, _t: usize, x: &[f64], mut jac: MatMut<'_, f64>) {
        let n = self.n;
        let g = self.hidden_drive(&x[..n]);
        let a = &self.a;
        let w = &self.w_hh;
        jac.fill(0.0);
        match self.kind {
            TorchKind::RnnTanh | TorchKind::RnnRelu => {
                for i in 0..n {
                    let p = a[i] + g[i];
                    let d = if self.kind == TorchKind::RnnTanh {
                        1.0 - p.tanh().powi(2)
                    } else if p > 0.0 {
                        1.0
                    } else {
                        0.0
                    };
                    for j in 0..n {
                        jac[(i, j)] = d * w[(i, j)];
                    }
                }
            }
            TorchKind::Gru => {
                for i in 0..n {
                    let r = sig(a[i] + g[i]);
                    let z = sig(a[n + i] + g[n + i]);
                    let nn = (a[2 * n + i] + r * g[2 * n + i]).tanh();
                    let dn = 1.0 - nn * nn;
                    let (dr, dz) = (r * (1.0 - r), z * (1.0 - z));
                    for j in 0..n {
                        let dnj = dn * (g[2 * n + i] * dr * w[(i, j)] + r * w[(2 * n + i, j)]);
                        let dzj = dz * w[(n + i, j)];
                        jac[(i, j)] = (1.0 - z) * dnj + (x[i] - nn) * dzj;
                    }
                    jac[(i, i)] += z;
                }
            }
            TorchKind::Lstm => {
                for i in 0..n {
                    let (ig, fg, gg, og) = lstm_gates(a, &g, n, i);
                    let c = fg * x[n + i] + ig * gg;
                    let tc = c.tanh();
                    let dc_h = og * (1.0 - tc * tc);
                    for j in 0..n {
                        let di = ig * (1.0 - ig) * w[(i, j)];
                        let df = fg * (1.0 - fg) * w[(n + i, j)];
                        let dg = (1.0 - gg * gg) * w[(2 * n + i, j)];
                        let do_ = og * (1.0 - og) * w[(3 * n + i, j)];
                        let dcj = x[n + i] * df + gg * di + ig * dg;
                        jac[(n + i, j)] = dcj;
                        jac[(i, j)] = tc * do_ + dc_h * dcj;
                    }
                    jac[(n + i, n + i)] = fg;
                    jac[(i, n + i)] = dc_h * fg;
                }
            }
        }
    }

    fn name(&self) -> String {
        format!("{} (N = {})", self.kind.name(), self.n)
    }
}

/// Unit `i`'s LSTM gates (input, forget, cell candidate, output) from the input part `a` and the
/// recurrent part `g` of the pre-activations (PyTorch's i, f, g, o row blocks of n each).
fn lstm_gates(a: &[f64], g: &[f64], n: usize, i: usize) -> (f64, f64, f64, f64) {
    (
        sig(a[i] + g[i]),
        sig(a[n + i] + g[n + i]),
        (a[2 * n + i] + g[2 * n + i]).tanh(),
        sig(a[3 * n + i] + g[3 * n + i]),
    )
}
