//! The adaptive nonlinearity recurrent unit (Geadah et al. 2024; the code version): every unit i
//! carries a controller gⁱ ∈ Rᴹ whose weights are shared,
//!
//! $$ a = U_{xh} u + W_{hh} h + b_h, \quad g^{i\prime} = \tanh(u_{ag} a^i + b_g + W_{gg} g^i), \quad
//!    n^i = w_{gn}\cdot g^{i\prime} + b_{gn}, \; s^i = w_{gs}\cdot g^{i\prime} + b_{gs}, \quad
//!    h' = \gamma(a; n, s). $$
//!
//! Trained, it is analysed as the ANRU map [`Anru`](crate::model::Anru).
use super::gamma::gamma_all;
use super::*;
use crate::tensor::real::{col_mut, rm, rm_mut, simd};
use crate::train::shader::{cell_slots, tensor_slots};
use faer::reborrow::{Reborrow, ReborrowMut};
use rand::Rng;

/// ANRU (Geadah et al. (2024), the code version): every unit i carries a controller gⁱ ∈ Rᴹ,
/// stored after h in the state (S = N + N·M, unit i's controller at N + iM).
/// Tensors: `U_xh` `[N, N_in]`, `b_h` `[N]` (b_xh + b_hh), `W_hh` `[N, N]`, `u_ag` `[M]`, `b_g` `[M]`
/// (b_ag + b_gg), `W_gg` `[M, M]`, `w_gn` `[M]`, `b_gn` `[1]`, `w_gs` `[M]`, `b_gs` `[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnruCell {
    pub n: usize,
    pub m: usize,
    pub n_in: usize,
    layout: Layout,
    /// Offsets of w_gn, b_gn, w_gs, b_gs (read for every unit of every trial at every step).
    gain_off: [usize; 4],
}

impl AnruCell {
    pub fn new(n: usize, m: usize, n_in: usize) -> Result<Self> {
        check_sizes(n, n_in)?;
        if m == 0 {
            return Err(Error::invalid("controller", "M must be at least 1"));
        }
        let mut layout = Layout::default();
        layout.push("U_xh", &[n, n_in], true);
        layout.push("b_h", &[n], true);
        layout.push("W_hh", &[n, n], true);
        layout.push("u_ag", &[m], true);
        layout.push("b_g", &[m], true);
        layout.push("W_gg", &[m, m], true);
        layout.push("w_gn", &[m], true);
        layout.push("b_gn", &[1], true);
        layout.push("w_gs", &[m], true);
        layout.push("b_gs", &[1], true);
        let gain_off = ["w_gn", "b_gn", "w_gs", "b_gs"].map(|t| layout.off(t));
        Ok(AnruCell {
            n,
            m,
            n_in,
            layout,
            gain_off,
        })
    }

    /// a = W_hh h + U_xh u + b_h, into `a`.
    fn pre<F: Real>(&self, p: &[F], s: MatRef<F>, u: MatRef<F>, mut a: MatMut<F>) {
        let (n, b) = (self.n, s.ncols());
        let l = &self.layout;
        F::matmul(
            a.rb_mut(),
            false,
            rm(&p[l.off("W_hh")..], n, n),
            s.subrows(0, n),
        );
        F::matmul(a.rb_mut(), true, rm(&p[l.off("U_xh")..], n, self.n_in), u);
        let bo = l.off("b_h");
        for j in 0..b {
            for i in 0..n {
                a[(i, j)] += p[bo + i];
            }
        }
    }

    /// Controller update of one trial: G' = tanh(W_gg G + u_ag aᵀ + b_g) (M × N).
    fn controller<F: Real>(&self, p: &[F], g_old: MatRef<F>, a: MatRef<F>, mut out: MatMut<F>) {
        let (n, m) = (self.n, self.m);
        let l = &self.layout;
        F::matmul(out.rb_mut(), false, rm(&p[l.off("W_gg")..], m, m), g_old);
        let (ua, bg) = (&p[l.off("u_ag")..][..m], &p[l.off("b_g")..][..m]);
        simd(
            #[inline(always)]
            || {
                for i in 0..n {
                    let ai = a[(i, 0)];
                    let g = &mut col_mut(out.rb_mut(), i)[..m];
                    for ((g, &ua), &bg) in g.iter_mut().zip(ua).zip(bg) {
                        *g = (*g + ua * ai + bg).tanh_fast();
                    }
                }
            },
        );
    }

    fn gains<F: Real>(&self, p: &[F], gnew: MatRef<F>, i: usize) -> (F, F) {
        let [wn, bn, ws, bs] = self.gain_off;
        let mut nv = p[bn];
        let mut sv = p[bs];
        for k in 0..self.m {
            nv += p[wn + k] * gnew[(k, i)];
            sv += p[ws + k] * gnew[(k, i)];
        }
        (nv, sv)
    }
}

impl<F: Real> Cell<F> for AnruCell {
    type Prep = ();
    cell_basics!("anru", |c| c.n * (1 + c.m));
    fn prepare(&self, _p: &[F]) {}
    fn step(&self, x: StepIn<F, Self::Prep>, mut out: MatMut<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let (n, m, b) = (self.n, self.m, s.ncols());
        let [mut a, mut g_old, mut gnew] = ws.take(0, [(n, b), (m, n), (m, n)]);
        self.pre(p, s, u, a.rb_mut());
        for j in 0..b {
            for i in 0..n {
                for k in 0..m {
                    g_old[(k, i)] = s[(n + i * m + k, j)];
                }
            }
            self.controller(p, g_old.rb(), a.rb().subcols(j, 1), gnew.rb_mut());
            for i in 0..n {
                let (nv, sv) = self.gains(p, gnew.rb(), i);
                out[(i, j)] = F::c(crate::model::gamma::gamma(a[(i, j)].f(), nv.f(), sv.f()));
                for k in 0..m {
                    out[(n + i * m + k, j)] = gnew[(k, i)];
                }
            }
        }
    }
    fn step_back(&self, x: StepIn<F, Self::Prep>, back: StepBack<F>, ws: &mut Scratch<F>) {
        let StepIn { p, s, u, .. } = x;
        let StepBack { dn, mut ds, g } = back;
        let (n, m, b) = (self.n, self.m, s.ncols());
        let l = &self.layout;
        // da holds a, then ∂L/∂a column by column (a's column is copied to acol first).
        let [mut da, mut acol, mut g_old, mut gnew, mut dpre, mut dg] =
            ws.take(0, [(n, b), (n, 1), (m, n), (m, n), (m, n), (m, n)]);
        self.pre(p, s, u, da.rb_mut());
        let (wn, wsn, bgn, bgs) = (l.off("w_gn"), l.off("w_gs"), l.off("b_gn"), l.off("b_gs"));
        let (ua, bg, wgg) = (l.off("u_ag"), l.off("b_g"), l.off("W_gg"));
        for j in 0..b {
            for i in 0..n {
                acol[(i, 0)] = da[(i, j)];
                for k in 0..m {
                    g_old[(k, i)] = s[(n + i * m + k, j)];
                }
            }
            self.controller(p, g_old.rb(), acol.rb(), gnew.rb_mut());
            // dpre = (dG' + w_gn dnᵀ + w_gs dsᵀ) ⊙ (1 − G'²)
            for i in 0..n {
                let ai = acol[(i, 0)];
                let (nv, sv) = self.gains(p, gnew.rb(), i);
                let (_, gx, gn, gs) = gamma_all(ai, nv, sv);
                let dh = dn[(i, j)];
                let (dnv, dsv) = (dh * gn, dh * gs);
                g[bgn] += dnv;
                g[bgs] += dsv;
                let mut dai = dh * gx;
                for k in 0..m {
                    let gk = gnew[(k, i)];
                    g[wn + k] += dnv * gk;
                    g[wsn + k] += dsv * gk;
                    let d = (dn[(n + i * m + k, j)] + p[wn + k] * dnv + p[wsn + k] * dsv)
                        * (F::one() - gk * gk);
                    dpre[(k, i)] = d;
                    g[bg + k] += d;
                    g[ua + k] += d * ai;
                    dai += p[ua + k] * d;
                }
                da[(i, j)] = dai;
            }
            F::matmul(
                rm_mut(&mut g[wgg..], m, m),
                true,
                dpre.rb(),
                g_old.rb().transpose(),
            );
            F::matmul(
                dg.rb_mut(),
                false,
                rm(&p[wgg..], m, m).transpose(),
                dpre.rb(),
            );
            for i in 0..n {
                for k in 0..m {
                    ds[(n + i * m + k, j)] = dg[(k, i)];
                }
            }
        }
        let (wh, ux, bh) = (l.off("W_hh"), l.off("U_xh"), l.off("b_h"));
        F::matmul(
            ds.rb_mut().subrows_mut(0, n),
            false,
            rm(&p[wh..], n, n).transpose(),
            da.rb(),
        );
        F::matmul(
            rm_mut(&mut g[wh..], n, n),
            true,
            da.rb(),
            s.subrows(0, n).transpose(),
        );
        F::matmul(
            rm_mut(&mut g[ux..], n, self.n_in),
            true,
            da.rb(),
            u.transpose(),
        );
        add_row_sums(da.rb(), &mut g[bh..bh + n]);
    }
}

impl CellFamily for AnruCell {
    const SIGNATURE: &'static str = "W_gg";

    fn build(spec: &CellSpec, n_in: usize, _rng: &mut ChaCha8Rng) -> Result<Self> {
        AnruCell::new(spec.hidden, spec.controller, n_in)
    }

    /// The seed's initialisation (§A.3): kaiming U_xh and u_ag, henaff W_hh and W_gg, zero biases,
    /// w_gn ~ N(0, 0.1²·2/(M+1)), w_gs ~ N(0, 0.01²·2/(M+1)), b_gn = 5 + 2 U(0, 1), b_gs = 0.
    fn init<F: Real>(&self, p: &mut [F], rng: &mut ChaCha8Rng) {
        let (n, m, k) = (self.n, self.m, self.n_in);
        let l = &self.layout;
        for i in 0..n * k {
            p[l.off("U_xh") + i] = F::c(normal(rng) * (2.0 / k as f64).sqrt());
        }
        henaff_into(&mut p[l.off("W_hh")..], n, rng);
        for i in 0..m {
            p[l.off("u_ag") + i] = F::c(normal(rng) * 2f64.sqrt());
        }
        henaff_into(&mut p[l.off("W_gg")..], m, rng);
        let sd = (2.0 / (m as f64 + 1.0)).sqrt();
        for i in 0..m {
            p[l.off("w_gn") + i] = F::c(0.1 * sd * normal(rng));
            p[l.off("w_gs") + i] = F::c(0.01 * sd * normal(rng));
        }
        p[l.off("b_gn")] = F::c(5.0 + 2.0 * rng.random::<f64>());
        for name in ["b_h", "b_g", "b_gs"] {
            let t = l.get(name).expect("own tensor");
            p[t.range()].fill(F::zero());
        }
    }

    fn save<F: Real>(&self, _layout: &Layout, _p: &[F], _out: &mut CheckpointWriter) {}

    fn load(ck: &CheckpointReader) -> Result<Self> {
        AnruCell::new(ck.dim("U_xh", 0)?, ck.dim("W_gg", 0)?, ck.dim("U_xh", 1)?)
    }

    fn analysis(&self, net: &SeqNet<f64, AnyCell>) -> Result<Analysis> {
        let (l, p) = (&net.layout, &net.params);
        let v = |name: &str| -> Vec<f64> {
            l.get(name)
                .map(|t| p[t.range()].to_vec())
                .unwrap_or_default()
        };
        let mat = |name: &str| -> Result<faer::Mat<f64>> {
            let t = l
                .get(name)
                .ok_or_else(|| Error::invalid("checkpoint", format!("no tensor `{name}`")))?;
            let (r, c) = (t.shape[0], t.shape[1]);
            Ok(faer::Mat::from_fn(r, c, |i, j| p[t.offset + i * c + j]))
        };
        Ok(Analysis::Anru(crate::model::Anru::new(
            mat("W_hh")?,
            mat("W_gg")?,
            v("u_ag"),
            v("b_g"),
            v("w_gn"),
            v("b_gn")[0],
            v("w_gs"),
            v("b_gs")[0],
            v("b_h"),
        )?))
    }

    fn gpu(&self, layout: &Layout) -> Result<GpuCell> {
        const NAMES: [&str; 10] = [
            "U_xh", "b_h", "W_hh", "u_ag", "b_g", "W_gg", "w_gn", "b_gn", "w_gs", "b_gs",
        ];
        let mut cfg = tensor_slots(layout, TENSORS, &NAMES);
        cfg.push((M, self.m as u32));
        Ok(GpuCell {
            shader: include_str!("../anru.wgsl"),
            wg_arrays: 1,
            slots: SLOTS,
            cfg,
            prep: vec![],
            work: anru_work,
        })
    }
}

// The uniform slots of `anru.wgsl`, by name (TENSORS + k: the offsets of the ten tensors above).
cell_slots! {
    H = 17,
    A = 18,
    DH = 19,
    G = 31,
    EA = 36,
    TENSORS = 37,
    DN = 47,
    DS = 48,
    DP = 49,
    CARRY = 50,
    M = 58,
}

/// Work buffer of `anru.wgsl`: H | G (controllers) | A | DH | EA | DN | DS | DP | carry | ∂L/∂o |
/// losses | hits (M, the controller size, from the cell's slot).
fn anru_work(t: usize, b: usize, n: usize, _c: usize, cfg: &[u32]) -> Vec<(usize, usize)> {
    let m = cfg[M] as usize;
    let (state, step) = ((t + 1) * b * n, t * b * n);
    vec![
        (H, state),
        (G, state * m),
        (A, step),
        (DH, step),
        (EA, step),
        (DN, step),
        (DS, step),
        (DP, step * m),
        (CARRY, b * n * m),
    ]
}
