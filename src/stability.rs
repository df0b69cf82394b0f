//! Linear stability of fixed points from the Jacobian's spectrum (faer's non-symmetric eigen
//! solver): classification, the largest real part, oscillation frequencies and time constants.
//! Flows are stable when every Re λ < 0; maps when every |λ| < 1 ([`TimeKind`]).

use crate::error::{Error, Result};
use faer::c64;
use faer::{Mat, MatRef};

/// Continuous flow (stability by Re λ) or discrete map (by |λ|).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeKind {
    #[default]
    Continuous,
    Discrete,
}

/// Classification of a fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// All eigenvalues contracting and real.
    StableNode,
    /// All contracting, some complex (damped oscillation).
    StableFocus,
    /// k expanding directions, others contracting.
    Saddle { unstable: usize },
    /// All expanding, real.
    UnstableNode,
    /// All expanding, some complex.
    UnstableFocus,
    /// The largest growth rate is zero within tolerance (no linear verdict).
    Marginal,
}

impl Class {
    /// A short lowercase label for tables.
    pub fn label(&self) -> String {
        match self {
            Class::StableNode => "stable node".into(),
            Class::StableFocus => "stable focus".into(),
            Class::Saddle { unstable } => format!("saddle ({unstable} unstable)"),
            Class::UnstableNode => "unstable node".into(),
            Class::UnstableFocus => "unstable focus".into(),
            Class::Marginal => "marginal".into(),
        }
    }
    pub fn is_stable(&self) -> bool {
        matches!(self, Class::StableNode | Class::StableFocus)
    }
}

/// The spectrum and its reading.
#[derive(Debug, Clone)]
pub struct Stability {
    /// Eigenvalues, sorted by growth rate (Re λ for flows, ln|λ| for maps), largest first.
    pub eigenvalues: Vec<c64>,
    /// max Re λ (flows) or max |λ| (maps).
    pub max_growth: f64,
    /// Number of expanding directions.
    pub n_unstable: usize,
    pub class: Class,
    pub kind: TimeKind,
}

impl Stability {
    /// Oscillation frequencies |Im λ| / 2π of the complex eigenvalues (flows; per unit time).
    pub fn frequencies(&self) -> Vec<f64> {
        self.eigenvalues
            .iter()
            .filter(|l| l.im > 0.0)
            .map(|l| l.im / (2.0 * std::f64::consts::PI))
            .collect()
    }
    /// Time constants 1/|Re λ| (flows) of every mode, in the order of `eigenvalues`.
    pub fn time_constants(&self) -> Vec<f64> {
        self.eigenvalues.iter().map(|l| 1.0 / l.re.abs()).collect()
    }
}

/// Eigenvalues of a real square matrix.
pub fn eigenvalues(m: MatRef<'_, f64>) -> Result<Vec<c64>> {
    if m.nrows() != m.ncols() {
        return Err(Error::invalid(
            "jacobian",
            format!("must be square, got {}×{}", m.nrows(), m.ncols()),
        ));
    }
    let owned: Mat<f64> = m.to_owned();
    owned.eigenvalues().map_err(|e| {
        Error::failed(
            "eigenvalues",
            format!("the eigenvalue solver failed: {e:?}"),
        )
    })
}

/// Stability from a Jacobian. `tol` is the margin around the stability boundary below which the
/// verdict is `Marginal` (relative to the spectral scale max|λ|, plus 1e-12).
///
/// ```
/// use neurodyn::prelude::*;
/// // A damped oscillator x'' + 0.2 x' + x = 0: a stable focus, Re λ = −0.1.
/// let j = Mat::from_fn(2, 2, |i, k| [[0.0, 1.0], [-1.0, -0.2]][i][k]);
/// let s = analyze_jacobian(j.as_ref(), TimeKind::Continuous, 1e-10).unwrap();
/// assert_eq!(s.class, Class::StableFocus);
/// assert!((s.max_growth + 0.1).abs() < 1e-12);
/// ```
pub fn analyze_jacobian(jac: MatRef<'_, f64>, kind: TimeKind, tol: f64) -> Result<Stability> {
    let ev = eigenvalues(jac)?;
    if ev.iter().any(|l| !l.re.is_finite() || !l.im.is_finite()) {
        return Err(Error::failed(
            "stability",
            "non-finite eigenvalues (a non-finite Jacobian at this state)",
        ));
    }
    Ok(classify(ev, kind, tol))
}

/// The stability of a fixed point from eigenvalues of its Jacobian (all of them, or the leading
/// ones by growth rate when the system is too large for a dense eigensolver; then `n_unstable`
/// counts the unstable ones among those given).
pub fn classify(mut ev: Vec<c64>, kind: TimeKind, tol: f64) -> Stability {
    let growth = |l: &c64| match kind {
        TimeKind::Continuous => l.re,
        TimeKind::Discrete => l.norm().ln(),
    };
    ev.sort_by(|a, b| growth(b).total_cmp(&growth(a)).then(b.im.total_cmp(&a.im)));
    let scale = ev.iter().map(|l| l.norm()).fold(0.0, f64::max);
    let margin = tol * scale + 1e-12;
    let g: Vec<f64> = ev.iter().map(growth).collect();
    let n_unstable = g.iter().filter(|&&v| v > margin).count();
    let complex = ev.iter().any(|l| l.im.abs() > 1e-12 * (1.0 + l.norm()));
    let top = g.first().copied().unwrap_or(f64::NEG_INFINITY);
    let class = if top.abs() <= margin {
        Class::Marginal
    } else if n_unstable == 0 {
        if complex {
            Class::StableFocus
        } else {
            Class::StableNode
        }
    } else if n_unstable == ev.len() {
        if complex {
            Class::UnstableFocus
        } else {
            Class::UnstableNode
        }
    } else {
        Class::Saddle {
            unstable: n_unstable,
        }
    };
    let max_growth = match kind {
        TimeKind::Continuous => top,
        TimeKind::Discrete => ev.first().map(|l| l.norm()).unwrap_or(0.0),
    };
    Stability {
        eigenvalues: ev,
        max_growth,
        n_unstable,
        class,
        kind,
    }
}

/// The stability of a fixed point of an `n`-dimensional system from some of its eigenvalues
/// (e.g. those nearest the stability boundary) that include every unstable one: `n_unstable`
/// and `max_growth` are exact then, and node or focus is read from the eigenvalues given.
pub fn classify_partial(ev: Vec<c64>, n: usize, kind: TimeKind, tol: f64) -> Stability {
    let given = ev.len();
    let mut s = classify(ev, kind, tol);
    if given < n && matches!(s.class, Class::UnstableNode | Class::UnstableFocus) {
        s.class = Class::Saddle {
            unstable: s.n_unstable,
        };
    }
    s
}

/// Stability of a flow's fixed point x.
pub fn analyze<M: crate::model::Model + ?Sized>(model: &M, x: &[f64]) -> Result<Stability> {
    let j = crate::model::jacobian_mat(model, 0.0, x);
    analyze_jacobian(j.as_ref(), TimeKind::Continuous, 1e-10)
}

/// Linear stability of a map's fixed point h* (eigenvalues of `D_t` at h*, stable when all
/// |λ| < 1).
pub fn analyze_map<F: crate::model::Map + ?Sized>(
    map: &F,
    t: usize,
    h: &[f64],
) -> Result<Stability> {
    crate::error::ensure_state("x", h, map.dim(), "map")?;
    let j = crate::model::map_jacobian_mat(map, t, h);
    analyze_jacobian(j.as_ref(), TimeKind::Discrete, 1e-10)
}
