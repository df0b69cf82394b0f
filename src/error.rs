//! Typed errors. Every variant that comes from user input names the offending field.

use std::path::PathBuf;

/// Errors of the integrators ([`crate::integrate`](mod@crate::integrate)).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum IntegrateError {
    /// An option of the solve is out of range (`field` names it).
    #[error("invalid integrator option `{field}`: {problem}")]
    InvalidOption { field: String, problem: String },
    /// The state left the ball ‖x‖∞ ≤ `limit`: the trajectory diverges.
    #[error("state blew up at t = {t}: ‖x‖∞ = {norm:e} exceeds the limit {limit:e}")]
    Blowup { t: f64, norm: f64, limit: f64 },
    /// A NaN or infinity appeared in the state or the right-hand side.
    #[error("non-finite value in the state or right-hand side at t = {t}")]
    NonFinite { t: f64 },
    /// The adaptive step size fell below what the floating-point time grid can resolve.
    #[error("step size underflow at t = {t}: h = {h:e} (the problem is too stiff for this method, or the solution is singular here)")]
    StepSizeTooSmall { t: f64, h: f64 },
    /// More than `max_steps` steps were needed.
    #[error("maximum number of steps ({steps}) reached at t = {t}")]
    MaxSteps { t: f64, steps: usize },
    /// The stiff solver library (diffsol) reported a failure.
    #[error("stiff solver failed near t = {t}: {problem}")]
    Solver { t: f64, problem: String },
}

/// The crate-wide error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value supplied by the user is invalid; `field` names it (a TOML key, a flag, an array).
    #[error("invalid `{field}`: {problem}")]
    Invalid { field: String, problem: String },
    /// A file could not be read or written.
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    /// An integration failed.
    #[error(transparent)]
    Integrate(#[from] IntegrateError),
    /// A run failed on valid input: a trajectory diverged, a loss became non-finite, the GPU
    /// reported an error. `what` names the stage ("lyapunov", "training", "device", …).
    #[error("{what} failed: {problem}")]
    Failed { what: String, problem: String },
    /// The run was interrupted ([`crate::io::interrupt`]: Ctrl-C in Python) at a safe point:
    /// what it finished is kept (journals, completed epochs) and rerunning resumes from there.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
    /// Shorthand for [`Error::Failed`].
    pub fn failed(what: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Failed {
            what: what.into(),
            problem: problem.into(),
        }
    }
    /// The process exit code for this error: 2 for invalid input, 1 for a run that failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid { .. } | Error::Integrate(IntegrateError::InvalidOption { .. }) => 2,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
    /// The same error with its field named `field` when it is invalid input: where a
    /// library call validates a value it knows by its own name (`n`, `checkpoint`), the caller
    /// that knows the user's flag (`W`, `weights`) relabels it.
    pub fn in_field(self, field: &str) -> Self {
        match self {
            Error::Invalid { problem, .. } => Error::invalid(field, problem),
            e => e,
        }
    }
    /// Shorthand for [`Error::File`].
    pub fn file(path: impl Into<PathBuf>, problem: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            problem: problem.to_string(),
        }
    }
}

/// Crate result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `value` must be finite and > 0 (an error naming `field` otherwise).
pub fn ensure_positive(field: &str, value: f64) -> Result<()> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{value} (must be positive)")))
    }
}

/// Checks that every entry of the matrix `m` is finite, naming `field` and the first bad entry
/// (row, column) otherwise.
pub fn ensure_finite_mat(field: &str, m: faer::MatRef<'_, f64>) -> Result<()> {
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            if !m[(i, j)].is_finite() {
                return Err(Error::invalid(
                    field,
                    format!("entry ({i}, {j}) is {} (must be finite)", m[(i, j)]),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that every entry of `values` is finite, naming `field` and the first bad index otherwise.
pub fn ensure_finite(field: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::invalid(
            field,
            format!("entry {i} is {} (must be finite)", values[i]),
        )),
    }
}

/// Checks that a state vector has length `n` and finite entries, naming `field` (`what` names the
/// system in the message: "model", "map").
pub fn ensure_state(field: &str, x: &[f64], n: usize, what: &str) -> Result<()> {
    if x.len() != n {
        return Err(Error::invalid(
            field,
            format!("has length {}, the {what} has dimension {n}", x.len()),
        ));
    }
    ensure_finite(field, x)
}
