//! The adaptive nonlinearity recurrent unit (ANRU) of Geadah et al. (Geadah et al. 2024), as a
//! discrete-time map for analysis (Lyapunov spectra, fixed points of the map). Training comes
//! with the training engine.
//!
//! Each of the N neurons carries a controller state $g^i \in \mathbb{R}^M$ whose weights are shared:
//!
//! $$ a_t = W_{hh} h_{t-1} + d_t, \qquad
//!    g^i_t = \tanh(u_{ag} a^i_t + b_{ag} + W_{gg} g^i_{t-1}), $$
//! $$ n^i_t = w_{gn}\cdot g^i_t + b_{gn}, \quad s^i_t = w_{gs}\cdot g^i_t + b_{gs}, \quad
//!    h^i_t = \gamma(a^i_t; n^i_t, s^i_t), $$
//!
//! where the drive $d_t = U_{xh} x_t + b_{xh} + b_{hh} + \xi_t$ is given (a constant bias, or one
//! column per step) and $b_{ag}$ stands for $b_{ag} + b_{gg}$. No squashing of n, s (the code
//! version, which trained the published models).
//!
//! The state is $(h, g^0, \dots, g^{N-1})$, dimension N(1 + M). With $D^i = \mathrm{diag}(1 - (g^i_t)^2)$,
//! $P = W_{hh} Q_h$ and $R_i = W_{gg} Q_{g^i}$, the tangent map is
//! $Q_{g^i} \leftarrow D^i (u_{ag} P_{i,:} + R_i)$ and
//! $Q_{h,i} \leftarrow \gamma_x P_{i,:} + (\gamma_n w_{gn} + \gamma_s w_{gs})^\top Q_{g^i}$ (new),
//! O(N²k + N M² k) per step.

use super::gamma::{gamma, gamma_with_partials};
use super::map::Map;
use crate::error::{ensure_finite, Error, Result};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// ANRU parameters (see the module documentation).
#[derive(Debug, Clone)]
pub struct Anru {
    pub w_hh: Mat<f64>,
    pub w_gg: Mat<f64>,
    pub u_ag: Vec<f64>,
    pub b_ag: Vec<f64>,
    pub w_gn: Vec<f64>,
    pub b_gn: f64,
    pub w_gs: Vec<f64>,
    pub b_gs: f64,
    /// Constant drive (length N) used when `drive_seq` is absent or exhausted.
    pub bias: Vec<f64>,
    /// Optional drive per step, N × T (column t is d_t).
    pub drive_seq: Option<Mat<f64>>,
}

/// 'henaff' initialisation: block diagonal of 2×2 rotations by θ_k ~ U(−π, 0) (the last diagonal
/// entry is 1 for odd sizes).
pub fn henaff(n: usize, rng: &mut ChaCha8Rng) -> Mat<f64> {
    let mut w = Mat::<f64>::zeros(n, n);
    for k in 0..n / 2 {
        let th: f64 = rng.random_range(-std::f64::consts::PI..0.0);
        let (s, c) = th.sin_cos();
        let i = 2 * k;
        w[(i, i)] = c;
        w[(i, i + 1)] = s;
        w[(i + 1, i)] = -s;
        w[(i + 1, i + 1)] = c;
    }
    if n % 2 == 1 {
        w[(n - 1, n - 1)] = 1.0;
    }
    w
}

impl Anru {
    /// The seed's initialisation (Geadah et al. 2024): henaff W_hh and W_gg, u_ag ~ N(0, 2),
    /// w_gn ~ N(0, 0.1²·2/(M+1)), w_gs ~ N(0, 0.01²·2/(M+1)), b_gn = 5 + 2 U(0, 1), zero biases.
    pub fn seed_init(n: usize, m: usize, seed: u64) -> Result<Self> {
        if n == 0 || m == 0 {
            return Err(Error::invalid("hidden", "N and M must be at least 1"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w_hh = henaff(n, &mut rng);
        let w_gg = henaff(m, &mut rng);
        let mut normal = |s: f64| -> f64 {
            let z: f64 = StandardNormal.sample(&mut rng);
            s * z
        };
        let u_ag = (0..m).map(|_| normal(2f64.sqrt())).collect();
        let sn = 0.1 * (2.0 / (m as f64 + 1.0)).sqrt();
        let ss = 0.01 * (2.0 / (m as f64 + 1.0)).sqrt();
        let w_gn = (0..m).map(|_| normal(sn)).collect();
        let w_gs = (0..m).map(|_| normal(ss)).collect();
        let b_gn = 5.0 + 2.0 * rng.random::<f64>();
        Anru::new(
            w_hh,
            w_gg,
            u_ag,
            vec![0.0; m],
            w_gn,
            b_gn,
            w_gs,
            0.0,
            vec![0.0; n],
        )
    }

    /// Builds and validates an ANRU.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w_hh: Mat<f64>,
        w_gg: Mat<f64>,
        u_ag: Vec<f64>,
        b_ag: Vec<f64>,
        w_gn: Vec<f64>,
        b_gn: f64,
        w_gs: Vec<f64>,
        b_gs: f64,
        bias: Vec<f64>,
    ) -> Result<Self> {
        let (n, m) = (w_hh.nrows(), w_gg.nrows());
        if n == 0 || w_hh.ncols() != n {
            return Err(Error::invalid(
                "W_hh",
                format!(
                    "must be square and non-empty, got {}×{}",
                    w_hh.nrows(),
                    w_hh.ncols()
                ),
            ));
        }
        if m == 0 || w_gg.ncols() != m {
            return Err(Error::invalid(
                "W_gg",
                format!(
                    "must be square and non-empty, got {}×{}",
                    w_gg.nrows(),
                    w_gg.ncols()
                ),
            ));
        }
        for (name, v, len) in [
            ("u_ag", &u_ag, m),
            ("b_ag", &b_ag, m),
            ("w_gn", &w_gn, m),
            ("w_gs", &w_gs, m),
            ("bias", &bias, n),
        ] {
            if v.len() != len {
                return Err(Error::invalid(
                    name,
                    format!("has length {}, expected {len}", v.len()),
                ));
            }
            ensure_finite(name, v)?;
        }
        ensure_finite("b_gn", &[b_gn, b_gs])?;
        for (name, w) in [("W_hh", &w_hh), ("W_gg", &w_gg)] {
            for j in 0..w.ncols() {
                for i in 0..w.nrows() {
                    if !w[(i, j)].is_finite() {
                        return Err(Error::invalid(
                            name,
                            format!("entry ({i}, {j}) is not finite"),
                        ));
                    }
                }
            }
        }
        Ok(Anru {
            w_hh,
            w_gg,
            u_ag,
            b_ag,
            w_gn,
            b_gn,
            w_gs,
            b_gs,
            bias,
            drive_seq: None,
        })
    }

    /// Neurons N.
    pub fn n(&self) -> usize {
        self.w_hh.nrows()
    }
    /// Controller size M.
    pub fn m(&self) -> usize {
        self.w_gg.nrows()
    }

    fn drive(&self, t: usize, i: usize) -> f64 {
        match &self.drive_seq {
            Some(d) if t < d.ncols() => d[(i, t)],
            _ => self.bias[i],
        }
    }

    /// One step: computes a, the new g (into `g_new`, N·M) and the new h; returns (a, n, s) per neuron.
    fn forward(
        &self,
        t: usize,
        x: &[f64],
        h_new: &mut [f64],
        g_new: &mut [f64],
        ans: &mut [(f64, f64, f64)],
    ) {
        let (n, m) = (self.n(), self.m());
        let (h, g) = x.split_at(n);
        let mut a = self.bias.clone();
        for (i, ai) in a.iter_mut().enumerate() {
            *ai = self.drive(t, i);
        }
        crate::model::kernels::gemv_add(self.w_hh.as_ref(), h, &mut a);
        for i in 0..n {
            let gi = &g[i * m..(i + 1) * m];
            let out = &mut g_new[i * m..(i + 1) * m];
            for r in 0..m {
                out[r] = self.u_ag[r] * a[i] + self.b_ag[r];
            }
            crate::model::kernels::gemv_add(self.w_gg.as_ref(), gi, out);
            let (mut nn, mut ss) = (self.b_gn, self.b_gs);
            for r in 0..m {
                out[r] = out[r].tanh();
                nn += self.w_gn[r] * out[r];
                ss += self.w_gs[r] * out[r];
            }
            h_new[i] = gamma(a[i], nn, ss);
            ans[i] = (a[i], nn, ss);
        }
    }
}

impl Map for Anru {
    fn dim(&self) -> usize {
        self.n() * (1 + self.m())
    }

    fn step(&self, t: usize, x: &mut [f64]) {
        let n = self.n();
        let mut h_new = vec![0.0; n];
        let mut g_new = vec![0.0; n * self.m()];
        let mut ans = vec![(0.0, 0.0, 0.0); n];
        self.forward(t, x, &mut h_new, &mut g_new, &mut ans);
        x[..n].copy_from_slice(&h_new);
        x[n..].copy_from_slice(&g_new);
    }

    fn step_tangent(
        &self,
        t: usize,
        x: &mut [f64],
        q: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) -> Option<f64> {
        let (n, m, k) = (self.n(), self.m(), q.ncols());
        let mut h_new = vec![0.0; n];
        let mut g_new = vec![0.0; n * m];
        let mut ans = vec![(0.0, 0.0, 0.0); n];
        self.forward(t, x, &mut h_new, &mut g_new, &mut ans);
        // P = W_hh Q_h.
        let mut p = Mat::<f64>::zeros(n, k);
        matmul(
            p.as_mut(),
            Accum::Replace,
            self.w_hh.as_ref(),
            q.subrows(0, n),
            1.0,
            Par::Seq,
        );
        let mut blk = Mat::<f64>::zeros(m, k);
        for i in 0..n {
            // R_i = W_gg Q_{g^i}, then Q_{g^i} ← D^i (u_ag P_i + R_i).
            matmul(
                blk.as_mut(),
                Accum::Replace,
                self.w_gg.as_ref(),
                q.subrows(n + i * m, m),
                1.0,
                Par::Seq,
            );
            let gi = &g_new[i * m..(i + 1) * m];
            let (a, nn, ss) = ans[i];
            let (_, gx, gn, gs) = gamma_with_partials(a, nn, ss);
            for c in 0..k {
                let mut hsum = gx * p[(i, c)];
                for r in 0..m {
                    let v = (1.0 - gi[r] * gi[r]) * (self.u_ag[r] * p[(i, c)] + blk[(r, c)]);
                    out[(n + i * m + r, c)] = v;
                    hsum += (gn * self.w_gn[r] + gs * self.w_gs[r]) * v;
                }
                out[(i, c)] = hsum;
            }
        }
        x[..n].copy_from_slice(&h_new);
        x[n..].copy_from_slice(&g_new);
        None
    }

    /// The tangent step works block by block (W_hh on the h-rows, W_gg per neuron): far below a
    /// dense product of the full N(1 + M) dimension.
    fn structured_tangent(&self) -> bool {
        true
    }

    fn jacobian(&self, t: usize, x: &[f64], mut jac: MatMut<'_, f64>) {
        let d = self.dim();
        let id = Mat::<f64>::identity(d, d);
        let mut xx = x.to_vec();
        self.step_tangent(t, &mut xx, id.as_ref(), jac.as_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobian_matches_finite_differences() {
        let mut a = Anru::seed_init(5, 4, 3).unwrap();
        // Make it less trivial than the init: a drive sequence and some bias on the controllers.
        a.drive_seq = Some(Mat::from_fn(5, 10, |i, t| 0.3 * ((i + 2 * t) as f64).sin()));
        a.b_ag = vec![0.1, -0.2, 0.05, 0.3];
        a.w_gs = vec![0.2, -0.1, 0.3, 0.1];
        let d = a.dim();
        let x: Vec<f64> = (0..d).map(|i| 0.5 * ((i as f64) * 0.77).sin()).collect();
        let t = 4;
        let mut jac = Mat::<f64>::zeros(d, d);
        a.jacobian(t, &x, jac.as_mut());
        for j in 0..d {
            let e = 1e-6;
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[j] += e;
            xm[j] -= e;
            a.step(t, &mut xp);
            a.step(t, &mut xm);
            for i in 0..d {
                let fd = (xp[i] - xm[i]) / (2.0 * e);
                assert!(
                    (fd - jac[(i, j)]).abs() < 1e-8,
                    "({i}, {j}): {fd} vs {}",
                    jac[(i, j)]
                );
            }
        }
        // The tangent step and the state step agree.
        let mut x1 = x.clone();
        a.step(t, &mut x1);
        let mut x2 = x.clone();
        let q = Mat::<f64>::from_fn(d, 2, |i, c| ((i + c) as f64).cos());
        let mut out = Mat::<f64>::zeros(d, 2);
        a.step_tangent(t, &mut x2, q.as_ref(), out.as_mut());
        assert_eq!(x1, x2);
        let want = &jac * &q;
        for c in 0..2 {
            for i in 0..d {
                assert!((out[(i, c)] - want[(i, c)]).abs() < 1e-13);
            }
        }
    }

    #[test]
    fn henaff_is_orthogonal() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in [4, 5] {
            let w = henaff(n, &mut rng);
            let p = w.transpose() * &w;
            for i in 0..n {
                for j in 0..n {
                    assert!((p[(i, j)] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-15);
                }
            }
        }
    }
}
