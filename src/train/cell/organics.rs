//! The ORGaNICs Euler RNN (Rawat, Heeger & Martiniani 2024; the `rnnCell` of their code), state
//! (y, a, b0, b1), one Euler step per time step:
//!
//! $$ z = \lfloor W_{zx} u \rfloor, \quad \hat y = \lfloor W_r y \rfloor, \quad
//!    B_k = \sigma(W_{bxk} u + W_{byk} y + W_{bak} a), \quad b_k' = b_k + \kappa_{b_k}(-b_k + B_k), $$
//! $$ y' = y + \kappa_y\big(-y + b_1 z + (1 - \sqrt{\lfloor a \rfloor})\,\hat y\big), \quad
//!    a' = a + \kappa_a\big(-a + \sigma^2 b_0^2 + W(\lfloor y \rfloor^2 \odot \lfloor a \rfloor)\big), $$
//!
//! with κ = κ_max σ(θ) and W = clamp(e^{log W}, 0, 1). Trained, it is analysed as the map of its
//! own update ([`CellMap`], the default of [`CellFamily::analysis`]).

use super::*;
use crate::tensor::real::{
    col, col_mut, disjoint_mut, quarters, quarters_mut, rm, rm_mut, sig, sig_fast, simd,
};
use crate::train::shader::{cell_slots, f32_slot, tensor_slots};
use faer::reborrow::ReborrowMut;
use rand::Rng;

/// ORGaNICs Euler RNN (Rawat, Heeger & Martiniani (2024); dynamic-divisive-norm's `rnnCell`). State (y, a, b0, b1).
/// Tensors: `W_zx` `[N, N_in]`, `W_r` `[N, N]`, `W_bx0` `[N, N_in]`, `W_by0`, `W_ba0` `[N, N]`, `W_bx1`
/// `[N, N_in]`, `W_by1`, `W_ba1` `[N, N]`, `log_W` `[N, N]`, `theta_y`, `theta_a`, `theta_b0`,
/// `theta_b1` `[N]` (trained if `learn_tau`), and the fixed initial states `y0`, `a0`, `b00`,
/// `b10` `[N]`. κ_max = (0.01, 0.01, 0.1) for (y, a, b) and σ = 1 as in the seed's cell (its
/// trained sMNIST/psMNIST networks were made with κ_max = (0.02, 0.005, 0.1): `train --kappa-max`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrganicsCell {
    pub n: usize,
    pub n_in: usize,
    /// κ_max for y, a and the gains b0, b1.
    pub kappa_max: (f64, f64, f64),
    pub sigma: f64,
    /// Keep the largest singular value of W_r at most this (projected after every optimiser
    /// step): Rawat, Heeger & Martiniani's (2024) stability guarantee holds for σ_max(W_r) ≤ 1.
    pub wr_max_sv: Option<f64>,
    layout: Layout,
}

/// W = clamp(e^{log W}, 0, 1) (row-major) and κ_y, κ_a, κ_b0, κ_b1.
pub struct OrganicsPrep<F> {
    wn: Vec<F>,
    k: [Vec<F>; 4],
}

// The elementwise parts of a step, one trial (column) at a time, inlined into the callers'
// SIMD-dispatched loops ([`simd`]). Each takes its blocks as separate slices, so the compiler
// knows the outputs alias nothing and vectorises; the arithmetic is written in the one order the
// results (and checkpoints) depend on.

/// y, a, b₀, b₁ of the next state from the current one (`st`), the pre-activations
/// `pre` = [W_zx u, W_r y, gain 0, gain 1, W q] and κ.
#[inline(always)]
fn step_kernel<F: Real>(
    [y, a, b0, b1]: [&[F]; 4],
    [pz, py, g0, g1, wq]: [&[F]; 5],
    [ky, ka, kb0, kb1]: [&[F]; 4],
    sig2: F,
    [oy, oa, ob0, ob1]: [&mut [F]; 4],
) {
    let n = oy.len();
    let (y, a, b0, b1) = (&y[..n], &a[..n], &b0[..n], &b1[..n]);
    let (pz, py, g0, g1, wq) = (&pz[..n], &py[..n], &g0[..n], &g1[..n], &wq[..n]);
    let (ky, ka, kb0, kb1) = (&ky[..n], &ka[..n], &kb0[..n], &kb1[..n]);
    let (oa, ob0, ob1) = (&mut oa[..n], &mut ob0[..n], &mut ob1[..n]);
    for i in 0..n {
        let (y, a, b0, b1) = (y[i], a[i], b0[i], b1[i]);
        let z = pz[i].max(F::zero());
        let yh = py[i].max(F::zero());
        let sa = a.max(F::zero()).sqrt();
        oy[i] = y + ky[i] * (-y + b1 * z + (F::one() - sa) * yh);
        oa[i] = a + ka[i] * (-a + sig2 * b0 * b0 + wq[i]);
        ob0[i] = b0 + kb0[i] * (-b0 + sig_fast(g0[i]));
        ob1[i] = b1 + kb1[i] * (-b1 + sig_fast(g1[i]));
    }
}

/// The backward step through [`step_kernel`] for one trial: from ∂L/∂s_{t+1} (`dn`), the κ
/// gradients (accumulated into `gk`), the pre-activation gradients ∂L/∂(W_zx u, W_r y, W q,
/// gain 0, gain 1) and the direct part of ∂L/∂s_t (`ds`; the part through q follows in
/// [`q_back_kernel`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn back_kernel<F: Real>(
    [y, a, b0, b1]: [&[F]; 4],
    [dy1, da1, db01, db11]: [&[F]; 4],
    [pz, py, g0, g1, wq]: [&[F]; 5],
    [ky, ka, kb0, kb1]: [&[F]; 4],
    sig2: F,
    [gty, gta, gtb0, gtb1]: [&mut [F]; 4],
    [dpz, dpy, dwq, dg0, dg1]: [&mut [F]; 5],
    [dsy, dsa, dsb0, dsb1]: [&mut [F]; 4],
) {
    let n = dpz.len();
    let (y, a, b0, b1) = (&y[..n], &a[..n], &b0[..n], &b1[..n]);
    let (pz, py, g0, g1, wq) = (&pz[..n], &py[..n], &g0[..n], &g1[..n], &wq[..n]);
    let (dy1, da1, db01, db11) = (&dy1[..n], &da1[..n], &db01[..n], &db11[..n]);
    let (ky, ka, kb0, kb1) = (&ky[..n], &ka[..n], &kb0[..n], &kb1[..n]);
    let (gty, gta, gtb0, gtb1) = (&mut gty[..n], &mut gta[..n], &mut gtb0[..n], &mut gtb1[..n]);
    let (dpy, dwq, dg0, dg1) = (&mut dpy[..n], &mut dwq[..n], &mut dg0[..n], &mut dg1[..n]);
    let (dsy, dsa, dsb0, dsb1) = (&mut dsy[..n], &mut dsa[..n], &mut dsb0[..n], &mut dsb1[..n]);
    // Four loops, each writing at most four blocks: one loop over all thirteen outputs needs
    // more run-time alias checks than LLVM allows and stays scalar. Every output keeps its one
    // expression, so the bits do not depend on the split.
    for i in 0..n {
        let (y, a, b1) = (y[i], a[i], b1[i]);
        let (dy1, da1) = (dy1[i], da1[i]);
        let z = pz[i].max(F::zero());
        let yh = py[i].max(F::zero());
        let sa = a.max(F::zero()).sqrt();
        // κ gradients (accumulated as ∂L/∂κ; mapped to θ in finish_grad).
        gty[i] += dy1 * (-y + b1 * z + (F::one() - sa) * yh);
        gta[i] += da1 * (-a + sig2 * b0[i] * b0[i] + wq[i]);
        dwq[i] = ka[i] * da1;
        dsy[i] = (F::one() - ky[i]) * dy1;
    }
    for i in 0..n {
        let (a, b1) = (a[i], b1[i]);
        let (gy, da) = (ky[i] * dy1[i], (F::one() - ka[i]) * da1[i]);
        let yh = py[i].max(F::zero());
        let sa = a.max(F::zero()).sqrt();
        dpz[i] = if pz[i] > F::zero() {
            gy * b1
        } else {
            F::zero()
        };
        dpy[i] = if py[i] > F::zero() {
            gy * (F::one() - sa)
        } else {
            F::zero()
        };
        // ∂√⌊a⌋/∂a where a > 0 (a select: both sides are computed).
        dsa[i] = if a > F::zero() {
            da + -gy * yh / (F::c(2.0) * sa)
        } else {
            da
        };
    }
    for i in 0..n {
        let (b0, b1) = (b0[i], b1[i]);
        let (db01, db11) = (db01[i], db11[i]);
        let (s0, s1) = (sig_fast(g0[i]), sig_fast(g1[i]));
        gtb0[i] += db01 * (-b0 + s0);
        gtb1[i] += db11 * (-b1 + s1);
        dg0[i] = kb0[i] * db01 * s0 * (F::one() - s0);
        dg1[i] = kb1[i] * db11 * s1 * (F::one() - s1);
    }
    for i in 0..n {
        let (gy, ga) = (ky[i] * dy1[i], ka[i] * da1[i]);
        let z = pz[i].max(F::zero());
        dsb0[i] = (F::one() - kb0[i]) * db01[i] + ga * F::c(2.0) * sig2 * b0[i];
        dsb1[i] = (F::one() - kb1[i]) * db11[i] + gy * z;
    }
}

/// ∂L/∂y and ∂L/∂a through q = ⌊y⌋² ⌊a⌋, given ∂L/∂q (`dq`).
#[inline(always)]
fn q_back_kernel<F: Real>(y: &[F], a: &[F], dq: &[F], dsy: &mut [F], dsa: &mut [F]) {
    let n = dq.len();
    let (y, a, dsy, dsa) = (&y[..n], &a[..n], &mut dsy[..n], &mut dsa[..n]);
    for i in 0..n {
        let (y, a) = (y[i].max(F::zero()), a[i]);
        let ap = a.max(F::zero());
        dsy[i] += dq[i] * F::c(2.0) * y * ap;
        dsa[i] = if a > F::zero() {
            dsa[i] + dq[i] * y * y
        } else {
            dsa[i]
        };
    }
}

const ORG_W: [&str; 8] = [
    "W_zx", "W_r", "W_bx0", "W_by0", "W_ba0", "W_bx1", "W_by1", "W_ba1",
];
const ORG_THETA: [&str; 4] = ["theta_y", "theta_a", "theta_b0", "theta_b1"];

impl OrganicsCell {
    pub fn new(n: usize, n_in: usize, learn_tau: bool) -> Result<Self> {
        check_sizes(n, n_in)?;
        let mut layout = Layout::default();
        for name in ORG_W {
            let cols = if name.contains('x') { n_in } else { n };
            layout.push(name, &[n, cols], true);
        }
        layout.push("log_W", &[n, n], true);
        for name in ORG_THETA {
            layout.push(name, &[n], learn_tau);
        }
        for name in ["y0", "a0", "b00", "b10"] {
            layout.push(name, &[n], false);
        }
        Ok(OrganicsCell {
            n,
            n_in,
            kappa_max: (0.01, 0.01, 0.1),
            sigma: 1.0,
            wr_max_sv: None,
            layout,
        })
    }

    fn kmax(&self, which: usize) -> f64 {
        match which {
            0 => self.kappa_max.0,
            1 => self.kappa_max.1,
            _ => self.kappa_max.2,
        }
    }

    /// Gain pre-activations W_bxk u + W_byk y + W_bak a for k = 0, 1 (N × B each).
    fn gain_pre<F: Real>(&self, p: &[F], s: MatRef<F>, u: MatRef<F>, k: usize, mut out: MatMut<F>) {
        let n = self.n;
        let l = &self.layout;
        let (x, y, a) = (
            l.off(["W_bx0", "W_bx1"][k]),
            l.off(["W_by0", "W_by1"][k]),
            l.off(["W_ba0", "W_ba1"][k]),
        );
        F::matmul(out.rb_mut(), false, rm(&p[x..], n, self.n_in), u);
        F::matmul(out.rb_mut(), true, rm(&p[y..], n, n), s.subrows(0, n));
        F::matmul(out.rb_mut(), true, rm(&p[a..], n, n), s.subrows(n, n));
    }

    /// Shared forward quantities into `m` = [pre_z = W_zx u, pre_ŷ = W_r y, the two gain
    /// pre-activations, q = ⌊y⌋² ⌊a⌋, W q].
    fn fwd<F: Real>(
        &self,
        p: &[F],
        pr: &OrganicsPrep<F>,
        s: MatRef<F>,
        u: MatRef<F>,
        m: &mut [MatMut<F>; 6],
    ) {
        let (n, b) = (self.n, s.ncols());
        let l = &self.layout;
        let [pz, py, g0, g1, q, wq] = m;
        F::matmul(pz.rb_mut(), false, rm(&p[l.off("W_zx")..], n, self.n_in), u);
        F::matmul(
            py.rb_mut(),
            false,
            rm(&p[l.off("W_r")..], n, n),
            s.subrows(0, n),
        );
        self.gain_pre(p, s, u, 0, g0.rb_mut());
        self.gain_pre(p, s, u, 1, g1.rb_mut());
        simd(
            #[inline(always)]
            || {
                for j in 0..b {
                    let [y, a, _, _] = quarters(col(s, j), n);
                    let q = &mut col_mut(q.rb_mut(), j)[..n];
                    for ((q, &y), &a) in q.iter_mut().zip(y).zip(a) {
                        let (y, a) = (y.max(F::zero()), a.max(F::zero()));
                        *q = y * y * a;
                    }
                }
            },
        );
        F::matmul(wq.rb_mut(), false, rm(&pr.wn, n, n), q.as_ref());
    }
}

impl<F: Real> Cell<F> for OrganicsCell {
    type Prep = OrganicsPrep<F>;
    cell_basics!("organics", |c| 4 * c.n);
    fn prepare(&self, p: &[F]) -> OrganicsPrep<F> {
        let n = self.n;
        let lw = self.layout.off("log_W");
        let wn = (0..n * n)
            .map(|k| p[lw + k].exp().min(F::one()).max(F::zero()))
            .collect();
        let k = std::array::from_fn(|w| {
            let t = self.layout.off(ORG_THETA[w]);
            (0..n).map(|i| F::c(self.kmax(w)) * sig(p[t + i])).collect()
        });
        OrganicsPrep { wn, k }
    }
    fn init_state(&self, p: &[F], s0: &mut [F]) {
        let n = self.n;
        for (w, name) in ["y0", "a0", "b00", "b10"].iter().enumerate() {
            let o = self.layout.off(name);
            s0[w * n..(w + 1) * n].copy_from_slice(&p[o..o + n]);
        }
    }
    fn step(&self, x: StepIn<F, Self::Prep>, mut out: MatMut<F>, ws: &mut Scratch<F>) {
        let StepIn { p, prep: pr, s, u } = x;
        let n = self.n;
        let mut m = ws.take(0, [(n, s.ncols()); 6]);
        self.fwd(p, pr, s, u, &mut m);
        let [pz, py, g0, g1, _, wq] = m;
        let sig2 = F::c(self.sigma * self.sigma);
        let [ky, ka, kb0, kb1] = &pr.k;
        let k = [&ky[..n], &ka[..n], &kb0[..n], &kb1[..n]];
        simd(
            #[inline(always)]
            || {
                for j in 0..s.ncols() {
                    let st = quarters(col(s, j), n);
                    let pre = [&pz, &py, &g0, &g1, &wq].map(|m| &col(m.as_ref(), j)[..n]);
                    step_kernel(st, pre, k, sig2, quarters_mut(col_mut(out.rb_mut(), j), n));
                }
            },
        );
    }
    fn step_back(&self, x: StepIn<F, Self::Prep>, back: StepBack<F>, ws: &mut Scratch<F>) {
        let StepIn { p, prep: pr, s, u } = x;
        let StepBack { dn, mut ds, g } = back;
        let (n, b) = (self.n, s.ncols());
        let l = &self.layout;
        let [pz, py, g0, g1, q, wq, mut dpz, mut dpy, mut dg0, mut dg1, mut dwq, mut dq] =
            ws.take(0, [(n, b); 12]);
        let mut m = [pz, py, g0, g1, q, wq];
        self.fwd(p, pr, s, u, &mut m);
        let [pz, py, g0, g1, q, wq] = m;
        let sig2 = F::c(self.sigma * self.sigma);
        let [ky, ka, kb0, kb1] = &pr.k;
        let (ty, ta, tb0, tb1) = (
            l.off("theta_y"),
            l.off("theta_a"),
            l.off("theta_b0"),
            l.off("theta_b1"),
        );
        // Pre-activation gradients of the matrix products (dpz ... dwq, all overwritten below).
        let k = [&ky[..n], &ka[..n], &kb0[..n], &kb1[..n]];
        simd(
            #[inline(always)]
            || {
                // The four κ-gradient blocks, split out of g once for all trials.
                let mut gk = disjoint_mut(g, [ty, ta, tb0, tb1], n);
                for j in 0..b {
                    let pre = [&pz, &py, &g0, &g1, &wq].map(|m| &col(m.as_ref(), j)[..n]);
                    let [dpz, dpy, dwq, dg0, dg1] =
                        [&mut dpz, &mut dpy, &mut dwq, &mut dg0, &mut dg1]
                            .map(|m| &mut col_mut(m.rb_mut(), j)[..n]);
                    back_kernel(
                        quarters(col(s, j), n),
                        quarters(col(dn, j), n),
                        pre,
                        k,
                        sig2,
                        gk.each_mut().map(|b| &mut **b),
                        [dpz, dpy, dwq, dg0, dg1],
                        quarters_mut(col_mut(ds.rb_mut(), j), n),
                    );
                }
            },
        );
        // W q: dW += dwq qᵀ, dq = Wᵀ dwq.
        let lw = l.off("log_W");
        F::matmul(
            rm_mut(&mut g[lw..], n, n),
            true,
            dwq.as_ref(),
            q.transpose(),
        );
        F::matmul(
            dq.rb_mut(),
            false,
            rm(&pr.wn, n, n).transpose(),
            dwq.as_ref(),
        );
        simd(
            #[inline(always)]
            || {
                for j in 0..b {
                    let [y, a, _, _] = quarters(col(s, j), n);
                    let [dsy, dsa, _, _] = quarters_mut(col_mut(ds.rb_mut(), j), n);
                    q_back_kernel(y, a, &col(dq.as_ref(), j)[..n], dsy, dsa);
                }
            },
        );
        // Matrix products: z = ⌊W_zx u⌋, ŷ = ⌊W_r y⌋, gains.
        let k = self.n_in;
        F::matmul(
            rm_mut(&mut g[l.off("W_zx")..], n, k),
            true,
            dpz.as_ref(),
            u.transpose(),
        );
        let wr = l.off("W_r");
        F::matmul(
            rm_mut(&mut g[wr..], n, n),
            true,
            dpy.as_ref(),
            s.subrows(0, n).transpose(),
        );
        F::matmul(
            ds.rb_mut().subrows_mut(0, n),
            true,
            rm(&p[wr..], n, n).transpose(),
            dpy.as_ref(),
        );
        for (w, dgk) in [dg0, dg1].iter().enumerate() {
            let (x, y, a) = (
                l.off(["W_bx0", "W_bx1"][w]),
                l.off(["W_by0", "W_by1"][w]),
                l.off(["W_ba0", "W_ba1"][w]),
            );
            F::matmul(rm_mut(&mut g[x..], n, k), true, dgk.as_ref(), u.transpose());
            F::matmul(
                rm_mut(&mut g[y..], n, n),
                true,
                dgk.as_ref(),
                s.subrows(0, n).transpose(),
            );
            F::matmul(
                rm_mut(&mut g[a..], n, n),
                true,
                dgk.as_ref(),
                s.subrows(n, n).transpose(),
            );
            F::matmul(
                ds.rb_mut().subrows_mut(0, n),
                true,
                rm(&p[y..], n, n).transpose(),
                dgk.as_ref(),
            );
            F::matmul(
                ds.rb_mut().subrows_mut(n, n),
                true,
                rm(&p[a..], n, n).transpose(),
                dgk.as_ref(),
            );
        }
    }
    fn project(&self, p: &mut [F]) {
        let Some(c) = self.wr_max_sv else { return };
        let n = self.n;
        let o = self.layout.off("W_r");
        let w = faer::Mat::<f64>::from_fn(n, n, |i, j| p[o + i * n + j].f());
        let smax = w
            .singular_values()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(0.0);
        if smax > c {
            let k = F::c(c / smax);
            for v in &mut p[o..o + n * n] {
                *v *= k;
            }
        }
    }
    fn finish_grad(&self, p: &[F], g: &mut [F]) {
        let n = self.n;
        let lw = self.layout.off("log_W");
        for k in 0..n * n {
            // W = clamp(e^{log W}, 0, 1): dW/dlog W = e^{log W} below the clamp, 0 above.
            let e = p[lw + k].exp();
            g[lw + k] = if e <= F::one() {
                g[lw + k] * e
            } else {
                F::zero()
            };
        }
        for (w, name) in ORG_THETA.iter().enumerate() {
            let t = self.layout.off(name);
            for i in 0..n {
                let sg = sig(p[t + i]);
                g[t + i] = g[t + i] * F::c(self.kmax(w)) * sg * (F::one() - sg);
            }
        }
    }
}

impl CellFamily for OrganicsCell {
    const SIGNATURE: &'static str = "W_zx";

    fn build(spec: &CellSpec, n_in: usize, _rng: &mut ChaCha8Rng) -> Result<Self> {
        let mut c = OrganicsCell::new(spec.hidden, n_in, !spec.fixed_tau)?;
        if let Some(k) = spec.kappa_max {
            c.kappa_max = k;
        }
        // Digits pooled by p: one step covers p² pixels' time, so the rates scale by p² (≤ 1).
        let s = (spec.pool * spec.pool) as f64;
        let (y, a, b) = c.kappa_max;
        c.kappa_max = ((y * s).min(1.0), (a * s).min(1.0), (b * s).min(1.0));
        if let Some(m) = spec.wr_max_sv {
            if !(m > 0.0 && m.is_finite()) {
                return Err(Error::invalid(
                    "wr-max-sv",
                    format!("{m} (must be positive)"),
                ));
            }
        }
        c.wr_max_sv = spec.wr_max_sv;
        Ok(c)
    }

    /// The seed's initialisation: kaiming-uniform (a = √5, i.e. U(±1/√fan_in)) gain weights and
    /// W_zx (then scaled to spectral norm 1), orthogonal W_r, W = e^{log W} ~ U(0, 1) off the
    /// diagonal and 1 on it (log W = 0 there), θ ~ N(0, 1) (learned τ) or 1 (fixed), b0(0) = 1
    /// and y0, a0, b1(0) ~ U(0, 1) with y0 normalised.
    fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        let (n, k) = (self.n, self.n_in);
        let l = self.layout.clone();
        for name in ORG_W {
            let t = l.get(name).expect("own tensor");
            let fan_in = t.shape[1] as f64;
            let bound = 1.0 / fan_in.sqrt();
            for v in &mut p[t.range()] {
                *v = F::c(rng.random_range(-bound..bound));
            }
        }
        // W_zx / its largest singular value.
        let wzx = l.off("W_zx");
        let m = faer::Mat::<f64>::from_fn(n, k, |i, j| p[wzx + i * k + j].f());
        if let Ok(sv) = m.singular_values() {
            let s0 = sv.first().copied().unwrap_or(1.0);
            if s0 > 0.0 {
                for v in &mut p[wzx..wzx + n * k] {
                    *v = F::c(v.f() / s0);
                }
            }
        }
        // Orthogonal W_r: Q of a Gaussian matrix (sign-corrected).
        let g = faer::Mat::<f64>::from_fn(n, n, |_, _| normal(rng));
        let qr = g.qr();
        let q = qr.compute_Q();
        let r = qr.R();
        let wr = l.off("W_r");
        for i in 0..n {
            for j in 0..n {
                let sgn = if r[(j, j)] < 0.0 { -1.0 } else { 1.0 };
                p[wr + i * n + j] = F::c(q[(i, j)] * sgn);
            }
        }
        // log W = log U(0, 1) (floored at log 1e-8) off the diagonal, 0 on it: W_ij ~ U(0, 1),
        // W_ii = 1, as the seed draws it.
        let lw = l.off("log_W");
        for i in 0..n {
            for j in 0..n {
                p[lw + i * n + j] = if i == j {
                    F::zero()
                } else {
                    F::c(rng.random::<f64>().max(1e-8).ln())
                };
            }
        }
        let learn = l.get("theta_y").map(|t| t.train).unwrap_or(true);
        for name in ORG_THETA {
            for v in &mut p[l.get(name).expect("own tensor").range()] {
                *v = if learn { F::c(normal(rng)) } else { F::one() };
            }
        }
        // b0 starts fully open (1, as the seed's buffer); y0, a0, b1 U(0, 1).
        for name in ["y0", "a0", "b00", "b10"] {
            for v in &mut p[l.get(name).expect("own tensor").range()] {
                *v = if name == "b00" {
                    F::one()
                } else {
                    F::c(rng.random::<f64>())
                };
            }
        }
        let y0 = l.off("y0");
        let norm = p[y0..y0 + n]
            .iter()
            .map(|v| v.f() * v.f())
            .sum::<f64>()
            .sqrt();
        for v in &mut p[y0..y0 + n] {
            *v = F::c(v.f() / norm.max(1e-300));
        }
    }

    fn save<F: Real>(&self, layout: &Layout, _p: &[F], out: &mut CheckpointWriter) {
        out.meta_f64("kappa_y", self.kappa_max.0);
        out.meta_f64("kappa_a", self.kappa_max.1);
        out.meta_f64("kappa_b", self.kappa_max.2);
        out.meta_f64("sigma", self.sigma);
        if let Some(m) = self.wr_max_sv {
            out.meta_f64("wr_max_sv", m);
        }
        let train = layout.get("theta_y").map(|t| t.train).unwrap_or(true);
        out.meta("learn_tau", train);
    }

    fn load(ck: &CheckpointReader) -> Result<Self> {
        let mut o = OrganicsCell::new(
            ck.dim("W_zx", 0)?,
            ck.dim("W_zx", 1)?,
            ck.meta_bool("learn_tau", true),
        )?;
        o.kappa_max = (
            ck.meta_f64("kappa_y", 0.01)?,
            ck.meta_f64("kappa_a", 0.01)?,
            ck.meta_f64("kappa_b", 0.1)?,
        );
        o.sigma = ck.meta_f64("sigma", 1.0)?;
        o.wr_max_sv = match ck.meta("wr_max_sv") {
            Some(_) => Some(ck.meta_f64("wr_max_sv", 1.0)?),
            None => None,
        };
        Ok(o)
    }

    fn gpu(&self, layout: &Layout) -> Result<GpuCell> {
        if self.wr_max_sv.is_some() {
            return Err(Error::invalid(
                "wr-max-sv",
                "the singular-value constraint on W_r is applied by the CPU trainer only",
            ));
        }
        const NAMES: [&str; 17] = [
            "W_zx", "W_r", "W_bx0", "W_by0", "W_ba0", "W_bx1", "W_by1", "W_ba1", "log_W",
            "theta_y", "theta_a", "theta_b0", "theta_b1", "y0", "a0", "b00", "b10",
        ];
        let mut cfg = tensor_slots(layout, TENSORS, &NAMES);
        let train = layout.get("theta_y").is_some_and(|t| t.train);
        cfg.extend([
            (LEARN_TAU, u32::from(train)),
            (KAPPA_Y, f32_slot(self.kappa_max.0)),
            (KAPPA_A, f32_slot(self.kappa_max.1)),
            (KAPPA_B, f32_slot(self.kappa_max.2)),
            (SIGMA, f32_slot(self.sigma)),
        ]);
        Ok(GpuCell {
            shader: include_str!("../organics.wgsl"),
            wg_arrays: 4,
            slots: SLOTS,
            cfg,
            prep: vec![],
            work: organics_work,
        })
    }
}

// The uniform slots of `organics.wgsl`, by name (TENSORS + k: the offsets of the 17 tensors).
cell_slots! {
    S = 17,
    PRE = 18,
    D = 19,
    LEARN_TAU = 29,
    E = 36,
    TENSORS = 37,
    KAPPA_Y = 54,
    KAPPA_A = 55,
    KAPPA_B = 56,
    SIGMA = 57,
}

/// Work buffer of `organics.wgsl`: S [(T+1)][B][4N] | P [T][B][5N] | D [T][B][4N] | E [T][B][5N]
/// | ∂L/∂o [T][B][C] | losses [B] | hits [B].
fn organics_work(t: usize, b: usize, n: usize, _c: usize, _cfg: &[u32]) -> Vec<(usize, usize)> {
    vec![
        (S, (t + 1) * b * n * 4),
        (PRE, t * b * n * 5),
        (D, t * b * n * 4),
        (E, t * b * n * 5),
    ]
}
