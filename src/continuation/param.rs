//! Parametrised systems: a flow `dx/dt = f(x; p)` or a map `x ← F(x; p)` with one named scalar
//! parameter p, its Jacobian in x and its derivative in p.
//!
//! * [`RateParam`]: the rate RNN `τ ⊙ dx/dt = −x + W φ(x) + b` (or its map `x ← φ(W x + b)`) with
//!   p a gain on W (`g`, `W(p) = (p / g0) W`), a scalar added to every bias (`bias`) or the level
//!   of an input pattern u (`input`, `+ p u`); Jacobian and ∂/∂p analytic.
//! * [`Rebuild`]: any system rebuilt for each p by a closure (ORGaNICs parameters, trained cells with
//!   their input held at p); the Jacobian is the rebuilt system's own (analytic), ∂/∂p a central
//!   difference.
//! * [`ParamFn`]: closures, for normal forms and hand-written models.

use crate::error::Result;
use crate::model::{closure::fd_jacobian, Activation, RateRnn, System};
use crate::stability::TimeKind;
use faer::{Mat, MatMut};
use std::sync::{Arc, Mutex};

/// A system with one scalar parameter (see the module documentation).
pub trait Parametrised: Send + Sync {
    /// State dimension n.
    fn dim(&self) -> usize;
    /// Flow (`Continuous`) or map (`Discrete`).
    fn kind(&self) -> TimeKind;
    /// `f(x; p)` (flows) or `F(x; p)` (maps).
    fn eval(&self, x: &[f64], p: f64, out: &mut [f64]);
    /// `∂f/∂x` or `∂F/∂x` at (x, p), n×n (every entry set).
    fn jacobian(&self, x: &[f64], p: f64, jac: MatMut<'_, f64>);
    /// `∂f/∂p` or `∂F/∂p`. Default: central difference with step `1e-6 max(1, |p|)`.
    fn dp(&self, x: &[f64], p: f64, out: &mut [f64]) {
        let h = 1e-6 * p.abs().max(1.0);
        let n = self.dim();
        let mut fm = vec![0.0; n];
        self.eval(x, p + h, out);
        self.eval(x, p - h, &mut fm);
        for (o, m) in out.iter_mut().zip(&fm) {
            *o = (*o - m) / (2.0 * h);
        }
    }
    /// The parameter's name.
    fn param_name(&self) -> String;
    /// The system's name.
    fn name(&self) -> String {
        "system".into()
    }
}

/// Which parameter of a rate RNN.
#[derive(Debug, Clone, PartialEq)]
pub enum RateKnob {
    /// A gain on W: `W(p) = (p / g0) W` (so p is the preset's g when g0 is).
    Gain { g0: f64 },
    /// A scalar added to every entry of b.
    Bias,
    /// The level of an input pattern u: `+ p u`.
    Input(Vec<f64>),
}

/// The rate RNN with one parameter, as a flow or as its discrete map (see [`RateKnob`]).
pub struct RateParam {
    base: RateRnn,
    inv_tau: Vec<f64>,
    knob: RateKnob,
    map: bool,
    /// Other knobs held at fixed values (a second parameter's slice, [`super::two::Family`]).
    fixed: Vec<(RateKnob, f64)>,
}

impl RateParam {
    pub fn new(base: RateRnn, knob: RateKnob, map: bool) -> Result<Self> {
        let n = base.w().nrows();
        if let RateKnob::Input(u) = &knob {
            crate::error::ensure_state("input", u, n, "network")?;
        }
        if let RateKnob::Gain { g0 } = knob {
            if !(g0 > 0.0 && g0.is_finite()) {
                return Err(crate::Error::invalid(
                    "g0",
                    format!("{g0} (must be positive)"),
                ));
            }
        }
        let inv_tau = base.tau().iter().map(|t| 1.0 / t).collect();
        let p = RateParam {
            base,
            inv_tau,
            knob,
            map,
            fixed: vec![],
        };
        // At the base parameter the flow must be the network's own right-hand side: this catches
        // what the parametrisation does not model (per-neuron nonlinearities, time-dependent input).
        if !map {
            use crate::model::Model;
            let x: Vec<f64> = (0..n)
                .map(|i| 0.3 * ((i as f64) * 0.7 + 0.1).sin())
                .collect();
            let p0 = match p.knob {
                RateKnob::Gain { g0 } => g0,
                _ => 0.0,
            };
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            p.eval(&x, p0, &mut a);
            p.base.rhs(0.0, &x, &mut b);
            let err = a
                .iter()
                .zip(&b)
                .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
            if !(err <= 1e-12 * (1.0 + b.iter().fold(0.0f64, |m, v| m.max(v.abs())))) {
                return Err(crate::Error::invalid(
                    "param",
                    "this rate network has per-neuron nonlinearities or a time-dependent input, \
                     which the rate-RNN parameters do not model",
                ));
            }
        }
        Ok(p)
    }

    fn act(&self) -> Activation {
        self.base.activation()
    }

    /// The same system with another knob held at `value` (e.g. the input level while p is the
    /// gain): the slice at q of a two-parameter family.
    pub fn with_fixed(mut self, knob: RateKnob, value: f64) -> Result<Self> {
        let n = self.dim();
        match &knob {
            RateKnob::Input(u) => crate::error::ensure_state("input", u, n, "network")?,
            RateKnob::Gain { g0 } if !(*g0 > 0.0 && g0.is_finite()) => {
                return Err(crate::Error::invalid(
                    "g0",
                    format!("{g0} (must be positive)"),
                ))
            }
            _ => {}
        }
        self.fixed.push((knob, value));
        Ok(self)
    }

    /// The fixed knobs' gain factor and additive term (added to `add`).
    fn fixed_parts(&self, add: &mut [f64]) -> f64 {
        let mut s = 1.0;
        for (k, v) in &self.fixed {
            match k {
                RateKnob::Gain { g0 } => s *= v / g0,
                RateKnob::Bias => add.iter_mut().for_each(|a| *a += v),
                RateKnob::Input(u) => add.iter_mut().zip(u).for_each(|(a, ui)| *a += v * ui),
            }
        }
        s
    }

    /// (W x or W φ(x), the gain factor, the additive term at p).
    fn parts(&self, x: &[f64], p: f64, wv: &mut [f64]) -> (f64, Vec<f64>) {
        let n = x.len();
        let w = self.base.w();
        let act = self.act();
        let v: Vec<f64> = if self.map {
            x.to_vec()
        } else {
            x.iter().map(|&xi| act.eval(xi)).collect()
        };
        wv.iter_mut().for_each(|o| *o = 0.0);
        crate::model::kernels::gemv_add(w.as_ref(), &v, wv);
        let b = self.base.bias();
        let (s, mut add) = match &self.knob {
            RateKnob::Gain { g0 } => (p / g0, b.to_vec()),
            RateKnob::Bias => (1.0, b.iter().map(|bi| bi + p).collect()),
            RateKnob::Input(u) => (1.0, (0..n).map(|i| b[i] + p * u[i]).collect::<Vec<f64>>()),
        };
        let fs = self.fixed_parts(&mut add);
        (s * fs, add)
    }
}

impl Parametrised for RateParam {
    fn dim(&self) -> usize {
        self.base.w().nrows()
    }
    fn kind(&self) -> TimeKind {
        if self.map {
            TimeKind::Discrete
        } else {
            TimeKind::Continuous
        }
    }
    fn eval(&self, x: &[f64], p: f64, out: &mut [f64]) {
        let (s, add) = self.parts(x, p, out);
        let act = self.act();
        for i in 0..x.len() {
            let a = s * out[i] + add[i];
            out[i] = if self.map {
                act.eval(a)
            } else {
                (-x[i] + a) * self.inv_tau[i]
            };
        }
    }
    fn jacobian(&self, x: &[f64], p: f64, mut jac: MatMut<'_, f64>) {
        let n = x.len();
        let mut wv = vec![0.0; n];
        let (s, add) = self.parts(x, p, &mut wv);
        let act = self.act();
        let w = self.base.w();
        if self.map {
            // D = diag(φ'(a)) s W.
            for i in 0..n {
                let d = act.deriv(s * wv[i] + add[i]) * s;
                for j in 0..n {
                    jac[(i, j)] = d * w[(i, j)];
                }
            }
        } else {
            // J = (−I + s W diag(φ'(x))) / τ.
            let dphi: Vec<f64> = x.iter().map(|&xi| act.deriv(xi)).collect();
            for j in 0..n {
                for i in 0..n {
                    jac[(i, j)] = (s * w[(i, j)] * dphi[j] - if i == j { 1.0 } else { 0.0 })
                        * self.inv_tau[i];
                }
            }
        }
    }
    fn dp(&self, x: &[f64], p: f64, out: &mut [f64]) {
        let n = x.len();
        let mut wv = vec![0.0; n];
        let (s, add) = self.parts(x, p, &mut wv);
        let act = self.act();
        for i in 0..n {
            let da_dp = match &self.knob {
                // s = (p / g0) · (the fixed gains): ∂(s Wv)/∂p = s Wv / p, written without 1/p.
                RateKnob::Gain { g0 } => {
                    wv[i] / g0
                        * self
                            .fixed
                            .iter()
                            .map(|(k, v)| match k {
                                RateKnob::Gain { g0 } => v / g0,
                                _ => 1.0,
                            })
                            .product::<f64>()
                }
                RateKnob::Bias => 1.0,
                RateKnob::Input(u) => u[i],
            };
            out[i] = if self.map {
                act.deriv(s * wv[i] + add[i]) * da_dp
            } else {
                da_dp * self.inv_tau[i]
            };
        }
    }
    fn param_name(&self) -> String {
        match self.knob {
            RateKnob::Gain { .. } => "g".into(),
            RateKnob::Bias => "bias".into(),
            RateKnob::Input(_) => "input".into(),
        }
    }
    fn name(&self) -> String {
        format!(
            "rate RNN {} (N = {})",
            if self.map { "map" } else { "flow" },
            self.dim()
        )
    }
}

type Make = dyn Fn(f64) -> Result<System> + Send + Sync;

/// A system rebuilt by a closure for each parameter value (the last few kept), with ∂/∂p by
/// central differences. A value the closure rejects gives non-finite values, which stop the
/// continuation there.
pub struct Rebuild {
    make: Box<Make>,
    dim: usize,
    kind: TimeKind,
    param: String,
    name: String,
    cache: Mutex<Vec<(f64, Arc<System>)>>,
}

impl Rebuild {
    /// `make(p)` builds the system at p; `p0` is used to learn its dimension and kind.
    pub fn new(
        param: impl Into<String>,
        p0: f64,
        make: impl Fn(f64) -> Result<System> + Send + Sync + 'static,
    ) -> Result<Self> {
        let s = make(p0)?;
        let (dim, kind, name) = (
            s.dim(),
            if s.is_map() {
                TimeKind::Discrete
            } else {
                TimeKind::Continuous
            },
            s.name(),
        );
        Ok(Rebuild {
            make: Box::new(make),
            dim,
            kind,
            param: param.into(),
            name,
            cache: Mutex::new(vec![(p0, Arc::new(s))]),
        })
    }

    fn at(&self, p: f64) -> Option<Arc<System>> {
        if let Ok(c) = self.cache.lock() {
            if let Some((_, s)) = c.iter().find(|(q, _)| *q == p) {
                return Some(s.clone());
            }
        }
        let s = Arc::new((self.make)(p).ok()?);
        if s.dim() != self.dim {
            return None;
        }
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= 4 {
                c.remove(0);
            }
            c.push((p, s.clone()));
        }
        Some(s)
    }
}

impl Parametrised for Rebuild {
    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> TimeKind {
        self.kind
    }
    fn eval(&self, x: &[f64], p: f64, out: &mut [f64]) {
        match self.at(p) {
            Some(s) => s.eval(x, out),
            None => out.iter_mut().for_each(|v| *v = f64::NAN),
        }
    }
    fn jacobian(&self, x: &[f64], p: f64, mut jac: MatMut<'_, f64>) {
        match self.at(p) {
            Some(s) => s.jacobian_into(x, jac),
            None => jac.fill(f64::NAN),
        }
    }
    fn param_name(&self) -> String {
        self.param.clone()
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

type EvalFn = dyn Fn(&[f64], f64, &mut [f64]) + Send + Sync;
type JacFn = dyn Fn(&[f64], f64, MatMut<'_, f64>) + Send + Sync;

/// A parametrised system from closures (Jacobian by central differences when not given).
///
/// ```
/// use neurodyn::continuation::{ParamFn, Parametrised};
/// use neurodyn::stability::TimeKind;
/// // The fold normal form dx/dt = p − x².
/// let f = ParamFn::new("p", 1, TimeKind::Continuous, |x, p, out| out[0] = p - x[0] * x[0]);
/// let mut d = [0.0];
/// f.dp(&[0.3], 0.1, &mut d);
/// assert!((d[0] - 1.0).abs() < 1e-8);
/// ```
pub struct ParamFn {
    param: String,
    dim: usize,
    kind: TimeKind,
    eval: Box<EvalFn>,
    jac: Option<Box<JacFn>>,
}

impl ParamFn {
    pub fn new(
        param: impl Into<String>,
        dim: usize,
        kind: TimeKind,
        eval: impl Fn(&[f64], f64, &mut [f64]) + Send + Sync + 'static,
    ) -> Self {
        ParamFn {
            param: param.into(),
            dim,
            kind,
            eval: Box::new(eval),
            jac: None,
        }
    }
    /// The analytic Jacobian in x.
    pub fn with_jacobian(
        mut self,
        jac: impl Fn(&[f64], f64, MatMut<'_, f64>) + Send + Sync + 'static,
    ) -> Self {
        self.jac = Some(Box::new(jac));
        self
    }
}

impl Parametrised for ParamFn {
    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> TimeKind {
        self.kind
    }
    fn eval(&self, x: &[f64], p: f64, out: &mut [f64]) {
        (self.eval)(x, p, out)
    }
    fn jacobian(&self, x: &[f64], p: f64, jac: MatMut<'_, f64>) {
        match &self.jac {
            Some(j) => j(x, p, jac),
            None => fd_jacobian(self.dim, |x, o| (self.eval)(x, p, o), x, jac),
        }
    }
    fn param_name(&self) -> String {
        self.param.clone()
    }
}

/// The residual `G(x) = f(x; p)` (flows) or `F(x; p) − x` (maps) at a fixed parameter, as a
/// [`Model`](crate::model::Model): its zeros are the fixed points at p (for the fixed-point finder,
/// and the x part of the continuation's extended system).
pub struct Residual<'a, P: Parametrised + ?Sized> {
    pub sys: &'a P,
    pub p: f64,
}

impl<P: Parametrised + ?Sized> crate::model::Model for Residual<'_, P> {
    fn dim(&self) -> usize {
        self.sys.dim()
    }
    fn rhs(&self, _t: f64, x: &[f64], dx: &mut [f64]) {
        self.sys.eval(x, self.p, dx);
        if self.sys.kind() == TimeKind::Discrete {
            for (d, xi) in dx.iter_mut().zip(x) {
                *d -= xi;
            }
        }
    }
    fn jacobian(&self, _t: f64, x: &[f64], mut jac: MatMut<'_, f64>) {
        self.sys.jacobian(x, self.p, jac.as_mut());
        if self.sys.kind() == TimeKind::Discrete {
            for i in 0..x.len() {
                jac[(i, i)] -= 1.0;
            }
        }
    }
}

/// The dense Jacobian at (x, p) as a new matrix.
pub fn jacobian_at<P: Parametrised + ?Sized>(sys: &P, x: &[f64], p: f64) -> Mat<f64> {
    let n = sys.dim();
    let mut j = Mat::zeros(n, n);
    sys.jacobian(x, p, j.as_mut());
    j
}

/// The system `f(·; p)` at a fixed parameter value, as a flow or a map with its analytic
/// Jacobian: what `fixed-points --input-scalar` analyses (a network held at a constant input).
pub fn frozen(sys: Arc<dyn Parametrised>, p: f64) -> System {
    let n = sys.dim();
    match sys.kind() {
        TimeKind::Continuous => {
            let (s1, s2) = (sys.clone(), sys);
            System::Flow(Box::new(
                crate::model::FlowFn::new(n, move |_t, x, dx| s1.eval(x, p, dx))
                    .with_jacobian(move |_t, x, j| s2.jacobian(x, p, j)),
            ))
        }
        TimeKind::Discrete => {
            let (s1, s2) = (sys.clone(), sys);
            System::Map(Box::new(
                crate::model::MapFn::new(n, move |_t, h| {
                    let x = h.to_vec();
                    s1.eval(&x, p, h)
                })
                .with_jacobian(move |_t, h, j| s2.jacobian(h, p, j)),
            ))
        }
    }
}
