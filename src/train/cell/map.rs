//! Any trained cell as a discrete-time map `s ← f(s, u)` for the f64 analyses (fixed points,
//! stability, Lyapunov spectra), its Jacobian from the cell's own backward pass. It lives with
//! the cells because it is made from one: the default system of
//! [`CellFamily::analysis`](super::CellFamily::analysis).

use super::{AnyCell, AnyPrep, Cell, StepBack, StepIn};
use crate::error::{Error, Result};
use crate::tensor::real::Scratch;
use crate::train::net::SeqNet;

/// Any trained cell as a discrete-time map for the analyses, `s ← f(s, u)` with the input held at
/// `u` (zero by default). Its Jacobian comes from the cell's own backward pass: one batched
/// `step_back` over the identity gives Jᵀ, so every cell — the ORGaNICs Euler RNN included — gets
/// fixed points and Lyapunov spectra with no extra code (O(S³) per Jacobian for S state entries).
pub struct CellMap {
    net: SeqNet<f64, AnyCell>,
    prep: AnyPrep<f64>,
    u: Vec<f64>,
    /// A time-varying input: T rows of N_in, step t reads row t mod T.
    seq: Vec<f64>,
}

impl CellMap {
    pub fn new(net: SeqNet<f64, AnyCell>) -> Self {
        let prep = Cell::<f64>::prepare(&net.cell, &net.params);
        let k = Cell::<f64>::n_in(&net.cell);
        CellMap {
            net,
            prep,
            u: vec![0.0; k],
            seq: vec![],
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

    /// Drives the map with an input sequence (`seq`: T rows of N_in, row-major, e.g. one digit's
    /// pixels for the sequential-MNIST cells): step t reads row t mod T, so the Lyapunov
    /// exponents of T steps from the initial state are those of the network while it reads the
    /// sequence.
    pub fn with_input_sequence(mut self, seq: Vec<f64>) -> Result<Self> {
        let k = self.u.len();
        if seq.is_empty() || k == 0 || seq.len() % k != 0 {
            return Err(Error::invalid(
                "inputs",
                format!("need T rows of {k} values, got {} values", seq.len()),
            ));
        }
        crate::error::ensure_finite("inputs", &seq)?;
        self.seq = seq;
        Ok(self)
    }

    /// The input at step t.
    fn input(&self, t: usize) -> &[f64] {
        let k = self.u.len();
        if self.seq.is_empty() {
            &self.u
        } else {
            let row = t % (self.seq.len() / k);
            &self.seq[row * k..(row + 1) * k]
        }
    }

    /// The cell's initial state s₀ (a natural start for the analyses).
    pub fn initial_state(&self) -> Vec<f64> {
        let mut s0 = vec![0.0; Cell::<f64>::state_dim(&self.net.cell)];
        self.net.cell.init_state(&self.net.params, &mut s0);
        s0
    }
}

impl crate::model::Map for CellMap {
    fn name(&self) -> String {
        format!("{} cell map", Cell::<f64>::name(&self.net.cell))
    }

    fn dim(&self) -> usize {
        Cell::<f64>::state_dim(&self.net.cell)
    }

    fn step(&self, t: usize, h: &mut [f64]) {
        let s = self.dim();
        let mut out = vec![0.0; s];
        let u = self.input(t);
        let x = StepIn {
            p: &self.net.params,
            prep: &self.prep,
            s: faer::MatRef::from_column_major_slice(h, s, 1),
            u: faer::MatRef::from_column_major_slice(u, u.len(), 1),
        };
        let out_mat = faer::MatMut::from_column_major_slice_mut(&mut out, s, 1);
        self.net.cell.step(x, out_mat, &mut Scratch::new());
        h.copy_from_slice(&out);
    }

    // `step_tangent`: the `Map` default (the Jacobian below, assembled in per-thread scratch,
    // times the frame).

    fn jacobian(&self, t: usize, h: &[f64], mut jac: faer::MatMut<'_, f64>) {
        let s = self.dim();
        let states = faer::Mat::<f64>::from_fn(s, s, |i, _| h[i]);
        let u = self.input(t);
        let inputs = faer::Mat::<f64>::from_fn(u.len(), s, |k, _| u[k]);
        let eye = faer::Mat::<f64>::identity(s, s);
        let mut jt = faer::Mat::<f64>::zeros(s, s);
        let mut scratch = vec![0.0; self.net.layout.len];
        let x = StepIn {
            p: &self.net.params,
            prep: &self.prep,
            s: states.as_ref(),
            u: inputs.as_ref(),
        };
        let back = StepBack {
            dn: eye.as_ref(),
            ds: jt.as_mut(),
            g: &mut scratch,
        };
        self.net.cell.step_back(x, back, &mut Scratch::new());
        // Column j of the result is Jᵀ e_j, i.e. row j of J.
        for i in 0..s {
            for j in 0..s {
                jac[(i, j)] = jt[(j, i)];
            }
        }
    }
}
