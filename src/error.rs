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
            _ => 1,
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

/// The process exit for a binary's result: success, 2 for invalid input (the message names the
/// field), 1 for a failure while running. Prints `error: …` on stderr.
pub fn exit(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// [`exit`], and with `json` a machine-readable summary on stdout (the human messages stay on
/// stderr): `{"status": "ok", "exit_code": 0, "outputs": [files written]}` or
/// `{"status": "error", "exit_code": 2, "field": "…", "error": "…", "outputs": […]}`.
pub fn exit_with(result: Result<()>, json: bool) -> std::process::ExitCode {
    // A staged run's files appear now, all together, or not at all.
    let result = match result {
        Ok(()) => crate::io::commit_outputs(),
        Err(e) => {
            crate::io::discard_outputs();
            Err(e)
        }
    };
    if json {
        let outputs: Vec<String> = crate::io::written()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let v = match &result {
            Ok(()) => serde_json::json!({"status": "ok", "exit_code": 0, "outputs": outputs}),
            Err(e) => {
                let field = match e {
                    Error::Invalid { field, .. } => Some(field.clone()),
                    Error::Integrate(IntegrateError::InvalidOption { field, .. }) => {
                        Some(field.clone())
                    }
                    _ => None,
                };
                serde_json::json!({
                    "status": "error",
                    "exit_code": e.exit_code(),
                    "field": field,
                    "error": e.to_string(),
                    "outputs": outputs,
                })
            }
        };
        println!("{v}");
    }
    exit(result)
}

/// Parses `start:stop:count` (count ≥ `min_count`) into evenly spaced values; `field` names the
/// flag in errors.
pub fn parse_range(s: &str, field: &str, min_count: usize) -> Result<Vec<f64>> {
    let bad = || {
        Error::invalid(
            field,
            format!("`{s}`: expected start:stop:count with count ≥ {min_count}"),
        )
    };
    let p: Vec<&str> = s.split(':').collect();
    if p.len() != 3 {
        return Err(bad());
    }
    let (a, b): (f64, f64) = (
        p[0].trim().parse().map_err(|_| bad())?,
        p[1].trim().parse().map_err(|_| bad())?,
    );
    let c: usize = p[2].trim().parse().map_err(|_| bad())?;
    if c < min_count.max(1) || !a.is_finite() || !b.is_finite() {
        return Err(bad());
    }
    // Every grid value becomes at least a result row: refuse grids whose rows alone exceed memory.
    crate::memory::check(field, c as u128 * 256, None)?;
    Ok((0..c)
        .map(|i| {
            if c == 1 {
                a
            } else {
                a + (b - a) * i as f64 / (c - 1) as f64
            }
        })
        .collect())
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
