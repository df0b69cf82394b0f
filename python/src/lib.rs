//! The native half of the `neurodyn` Python package. Arrays cross as float64 bytes in row-major
//! (C) order with explicit shapes; `pysrc/neurodyn/__init__.py` converts numpy arrays to and from
//! them and gives the functions their documented signatures. Every call releases the GIL while it
//! computes; errors become `ValueError` (invalid input, exit code 2 in the binaries) or
//! `RuntimeError` (a run that failed), with the binaries' messages.

use neurodyn::continuation::{continue_branch, ContinuationOptions, RateKnob, RateParam};
use neurodyn::faer::Mat;
use neurodyn::fixed_points::{
    find_fixed_points, find_map_fixed_points, random_starts, FinderOptions,
};
use neurodyn::integrate::{integrate, integrate_ensemble, Method, Options, SaveAt};
use neurodyn::lyapunov::{InitialFrame, LyapunovOptions};
use neurodyn::model::{jacobian_mat, map_jacobian_mat, Activation, RateRnn, RnnMap};
use neurodyn::Error;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

fn err(e: Error) -> PyErr {
    match e.exit_code() {
        2 => PyValueError::new_err(e.to_string()),
        130 => PyKeyboardInterrupt::new_err(e.to_string()),
        _ => PyRuntimeError::new_err(e.to_string()),
    }
}

fn floats(field: &str, b: &[u8], len: usize) -> PyResult<Vec<f64>> {
    if b.len() != 8 * len {
        return Err(PyValueError::new_err(format!(
            "invalid `{field}`: {} bytes for {len} float64 values",
            b.len()
        )));
    }
    Ok(b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect())
}

fn bytes<'py>(py: Python<'py>, v: &[f64]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(8 * v.len());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    PyBytes::new(py, &out)
}

fn ones(n: usize) -> Vec<u8> {
    (0..n).flat_map(|_| 1.0f64.to_le_bytes()).collect()
}

/// A solution as (t bytes, states row-major bytes, number of times).
fn solution<'py>(
    py: Python<'py>,
    sol: &neurodyn::integrate::Solution,
) -> (Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize) {
    let k = sol.len();
    let x: Vec<f64> = (0..k).flat_map(|i| sol.state(i).to_vec()).collect();
    (bytes(py, &sol.t), bytes(py, &x), k)
}

/// Fixed points as the dict the Python layer unpacks (`n` the state dimension).
fn points<'py>(
    py: Python<'py>,
    pts: &[neurodyn::fixed_points::FixedPoint],
    n: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let x: Vec<f64> = pts.iter().flat_map(|p| p.x.clone()).collect();
    let ev = |f: fn(&neurodyn::faer::c64) -> f64| -> Vec<f64> {
        pts.iter()
            .flat_map(|p| p.stability.eigenvalues.iter().map(f).collect::<Vec<_>>())
            .collect()
    };
    d.set_item("n", n)?;
    d.set_item("count", pts.len())?;
    d.set_item("x", bytes(py, &x))?;
    d.set_item("q", pts.iter().map(|p| p.q).collect::<Vec<_>>())?;
    d.set_item(
        "residual",
        pts.iter().map(|p| p.residual).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "stable",
        pts.iter()
            .map(|p| p.stability.class.is_stable())
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "n_unstable",
        pts.iter()
            .map(|p| p.stability.n_unstable)
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "classes",
        pts.iter()
            .map(|p| p.stability.class.label())
            .collect::<Vec<_>>(),
    )?;
    d.set_item("eig_re", bytes(py, &ev(|l| l.re)))?;
    d.set_item("eig_im", bytes(py, &ev(|l| l.im)))?;
    Ok(d)
}

fn activation(name: &str) -> PyResult<Activation> {
    name.parse::<Activation>()
        .map_err(|e| PyValueError::new_err(format!("invalid `activation`: {e}")))
}

/// The rate RNN τ ⊙ dx/dt = −x + W φ(x) + b from row-major W (n×n) and one τ per unit.
fn rate(w: &[u8], n: usize, b: Option<&[u8]>, act: &str, tau: &[u8]) -> PyResult<RateRnn> {
    let wv = floats("W", w, n * n)?;
    let w = Mat::from_fn(n, n, |i, j| wv[i * n + j]);
    let mut m = RateRnn::new(w, activation(act)?).map_err(err)?;
    if let Some(b) = b {
        m = m.with_bias(floats("b", b, n)?).map_err(err)?;
    }
    let tau = floats("tau", tau, n)?;
    if tau.iter().any(|&t| t != 1.0) {
        m = m.with_tau(tau).map_err(err)?;
    }
    Ok(m)
}

fn rnn_map(w: &[u8], n: usize, b: Option<&[u8]>, act: &str) -> PyResult<RnnMap> {
    let wv = floats("W", w, n * n)?;
    let w = Mat::from_fn(n, n, |i, j| wv[i * n + j]);
    let mut m = RnnMap::new(w, activation(act)?).map_err(err)?;
    if let Some(b) = b {
        m = m.with_bias(floats("b", b, n)?).map_err(err)?;
    }
    Ok(m)
}

/// The limit cycle of the rate RNN flow near x0 (single shooting, Floquet multipliers).
/// `period` ≤ 0: estimated from the trajectory's returns over `window` time units.
/// The tangent-dynamics options the rate RNN's Lyapunov calls share: warm-up, k leading
/// directions, and the RK4 step of a flow (maps step by 1).
fn tangent_options(warmup: usize, k: Option<usize>, flow: bool, dt: f64) -> LyapunovOptions {
    let mut opts = LyapunovOptions::new().warmup(warmup);
    if let Some(k) = k {
        opts = opts.k(k);
    }
    if flow {
        opts = opts.dt(dt);
    }
    opts
}

/// The rate RNN as its flow (`flow`) or as its map h ← φ(W h + b).
fn rate_system(
    w: &[u8],
    n: usize,
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    flow: bool,
) -> PyResult<neurodyn::model::System> {
    Ok(if flow {
        neurodyn::model::System::Flow(Box::new(rate(w, n, b, activation, tau)?))
    } else {
        neurodyn::model::System::Map(Box::new(rnn_map(w, n, b, activation)?))
    })
}

#[pyfunction]
#[pyo3(signature = (w, n, b, activation, tau, x0, period, window, steps, tol, max_iter))]
#[allow(clippy::too_many_arguments)]
fn find_cycle<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    x0: &[u8],
    period: f64,
    window: f64,
    steps: usize,
    tol: f64,
    max_iter: usize,
) -> PyResult<Bound<'py, PyDict>> {
    use neurodyn::cycles::{estimate_period, find_cycle, CycleOptions};
    let m = rate(w, n, b, activation, tau)?;
    let x0 = floats("x0", x0, n)?;
    let opts = CycleOptions {
        steps,
        tol,
        max_iter,
        ..Default::default()
    };
    let c = py
        .allow_threads(|| {
            let period = if period > 0.0 {
                period
            } else {
                let dt = window / (200.0 * steps as f64).max(1.0);
                estimate_period(&m, &x0, window, dt.max(window * 1e-6))?.ok_or_else(|| {
                    Error::failed(
                        "cycle",
                        "the trajectory does not return within `window`: no cycle seen",
                    )
                })?
            };
            find_cycle(&m, &x0, period, &opts)
        })
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("x0", bytes(py, &c.x0))?;
    d.set_item("period", c.period)?;
    d.set_item(
        "mult_re",
        c.multipliers.iter().map(|z| z.re).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "mult_im",
        c.multipliers.iter().map(|z| z.im).collect::<Vec<_>>(),
    )?;
    d.set_item("trivial", c.trivial)?;
    d.set_item("stable", c.is_stable())?;
    d.set_item("min", bytes(py, &c.min))?;
    d.set_item("max", bytes(py, &c.max))?;
    d.set_item("residual", c.residual)?;
    d.set_item("iterations", c.iterations)?;
    Ok(d)
}

/// Integrates the rate RNN; returns (t bytes, X bytes row per time, number of times).
#[pyfunction]
#[pyo3(signature = (w, n, x0, t1, b, activation, tau, method, rtol, atol, dt, t_eval))]
#[allow(clippy::too_many_arguments)]
fn simulate<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    x0: &[u8],
    t1: f64,
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    method: &str,
    rtol: f64,
    atol: f64,
    dt: f64,
    t_eval: Option<&[u8]>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize)> {
    let m = rate(w, n, b, activation, tau)?;
    let x0 = floats("x0", x0, n)?;
    let save = match t_eval {
        Some(t) => SaveAt::Times(floats("t_eval", t, t.len() / 8)?),
        None => SaveAt::Steps,
    };
    let method = Method::from_name(method, dt, rtol, atol).map_err(|e| err(e.into()))?;
    if !(t1 > 0.0) {
        return Err(PyValueError::new_err(format!(
            "invalid `t1`: {t1} (must be > 0)"
        )));
    }
    let sol = py
        .allow_threads(|| integrate(&m, &x0, (0.0, t1), &method, &Options::new().save(save)))
        .map_err(|e| err(e.into()))?;
    Ok(solution(py, &sol))
}

/// An ensemble: every row of `x0s` (m × n) integrated with its own step control, saved at the
/// shared times `t_eval`; returns the states as m × len(t_eval) × n.
#[pyfunction]
#[pyo3(signature = (w, n, x0s, m, t1, b, activation, tau, method, rtol, atol, dt, t_eval))]
#[allow(clippy::too_many_arguments)]
fn simulate_ensemble<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    x0s: &[u8],
    m: usize,
    t1: f64,
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    method: &str,
    rtol: f64,
    atol: f64,
    dt: f64,
    t_eval: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let model = rate(w, n, b, activation, tau)?;
    let flat = floats("x0", x0s, n * m)?;
    let starts: Vec<Vec<f64>> = flat.chunks_exact(n.max(1)).map(|c| c.to_vec()).collect();
    let times = floats("t_eval", t_eval, t_eval.len() / 8)?;
    let method = Method::from_name(method, dt, rtol, atol).map_err(|e| err(e.into()))?;
    if !(t1 > 0.0) {
        return Err(PyValueError::new_err(format!(
            "invalid `t1`: {t1} (must be > 0)"
        )));
    }
    let k = times.len();
    let sols = py
        .allow_threads(|| {
            integrate_ensemble(
                &model,
                &starts,
                (0.0, t1),
                &method,
                &Options::new().save(SaveAt::Times(times)),
            )
        })
        .map_err(|e| err(e.into()))?;
    let mut out = Vec::with_capacity(m * k * n);
    for (j, sol) in sols.into_iter().enumerate() {
        let sol = sol.map_err(|e| {
            PyRuntimeError::new_err(format!("ensemble member {j} (row {j} of x0): {e}"))
        })?;
        out.extend_from_slice(&sol.x);
    }
    Ok(bytes(py, &out))
}

/// The Jacobian of the flow (or of the map) at x, row-major.
#[pyfunction]
#[pyo3(signature = (w, n, x, b, activation, tau, map))]
#[allow(clippy::too_many_arguments)]
fn jacobian<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    x: &[u8],
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    map: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let x = floats("x", x, n)?;
    let j = if map {
        map_jacobian_mat(&rnn_map(w, n, b, activation)?, 0, &x)
    } else {
        jacobian_mat(&rate(w, n, b, activation, tau)?, 0.0, &x)
    };
    let v: Vec<f64> = (0..n * n).map(|k| j[(k / n, k % n)]).collect();
    Ok(bytes(py, &v))
}

/// Eigenvalues of a row-major n×n matrix: (re bytes, im bytes).
#[pyfunction]
fn eigenvalues<'py>(
    py: Python<'py>,
    m: &[u8],
    n: usize,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let v = floats("J", m, n * n)?;
    let a = Mat::from_fn(n, n, |i, j| v[i * n + j]);
    let ev = py
        .allow_threads(|| neurodyn::stability::eigenvalues(a.as_ref()))
        .map_err(err)?;
    let re: Vec<f64> = ev.iter().map(|l| l.re).collect();
    let im: Vec<f64> = ev.iter().map(|l| l.im).collect();
    Ok((bytes(py, &re), bytes(py, &im)))
}

/// Fixed points: a dict with x (K·n bytes), q, residual, stable, n_unstable, eigenvalue parts.
#[pyfunction]
#[pyo3(signature = (w, n, b, activation, tau, map, starts, seed, lo, hi, extra))]
#[allow(clippy::too_many_arguments)]
fn fixed_points<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    map: bool,
    starts: usize,
    seed: u64,
    lo: f64,
    hi: f64,
    extra: Option<&[u8]>,
) -> PyResult<Bound<'py, PyDict>> {
    if starts == 0 && extra.is_none() {
        return Err(PyValueError::new_err(
            "invalid `starts`: need at least one initial state",
        ));
    }
    let mut s = random_starts(n, starts, lo, hi, seed);
    if let Some(e) = extra {
        let v = floats("x0", e, e.len() / 8)?;
        if v.len() % n != 0 {
            return Err(PyValueError::new_err(
                "invalid `x0`: rows must have length N",
            ));
        }
        s.extend(v.chunks(n).map(|c| c.to_vec()));
    }
    let opts = FinderOptions::default();
    let pts = if map {
        let m = rnn_map(w, n, b, activation)?;
        py.allow_threads(|| find_map_fixed_points(&m, 0, &s, &opts))
    } else {
        let m = rate(w, n, b, activation, tau)?;
        py.allow_threads(|| find_fixed_points(&m, &s, &opts))
    }
    .map_err(err)?;
    points(py, &pts, n)
}

/// Lyapunov spectrum, largest first.
#[pyfunction]
#[pyo3(signature = (w, n, h0, b, activation, tau, warmup, steps, k, flow, dt, seed))]
#[allow(clippy::too_many_arguments)]
fn lyapunov<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    h0: &[u8],
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    warmup: usize,
    steps: usize,
    k: Option<usize>,
    flow: bool,
    dt: f64,
    seed: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let h0 = floats("h0", h0, n)?;
    let mut opts = tangent_options(warmup, k, flow, dt).steps(steps);
    if let Some(s) = seed {
        opts = opts.frame(InitialFrame::Random(s));
    }
    let sys = rate_system(w, n, b, activation, tau, flow)?;
    let s = py
        .allow_threads(|| neurodyn::lyapunov::lyapunov_system(&sys, &h0, &opts))
        .map_err(err)?;
    Ok(bytes(py, &s.exponents))
}

/// D^α f on a uniform grid (one signal).
#[pyfunction]
fn fracdiff<'py>(
    py: Python<'py>,
    f: &[u8],
    alpha: f64,
    dt: f64,
    method: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let f = floats("f", f, f.len() / 8)?;
    let scheme: neurodyn::fracdiff::Scheme = method.parse().map_err(err)?;
    let d = py
        .allow_threads(|| neurodyn::fracdiff::fracdiff(&f, alpha, dt, scheme))
        .map_err(err)?;
    Ok(bytes(py, &d))
}

/// The fractional-order estimate of Geadah et al. (2024): (alpha, alphas, errors).
#[pyfunction]
#[pyo3(signature = (signals, targets, rows, cols, alphas, d, anchor, start, end))]
#[allow(clippy::too_many_arguments)]
fn estimate_order<'py>(
    py: Python<'py>,
    signals: &[u8],
    targets: &[u8],
    rows: usize,
    cols: usize,
    alphas: Vec<f64>,
    d: f64,
    anchor: usize,
    start: usize,
    end: usize,
) -> PyResult<(f64, Vec<f64>, Vec<f64>)> {
    let s = floats("signals", signals, rows * cols)?;
    let t = floats("targets", targets, rows * cols)?;
    let split = |v: &[f64]| -> Vec<Vec<f64>> { v.chunks(cols).map(|c| c.to_vec()).collect() };
    let (s, t) = (split(&s), split(&t));
    let r = py
        .allow_threads(|| {
            neurodyn::fracdiff::estimate_order(&s, &t, &alphas, d, anchor, start..end)
        })
        .map_err(err)?;
    Ok((r.alpha, r.alphas, r.errors))
}

/// Continuation of the rate RNN's fixed points in `param` (g, bias or input).
#[pyfunction]
#[pyo3(signature = (w, n, x0, b, activation, param, start, stop, map, ds, max_points, pattern, cycles=false, tau=None, spectrum="auto"))]
#[allow(clippy::too_many_arguments)]
fn continuation<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    x0: &[u8],
    b: Option<&[u8]>,
    activation: &str,
    param: &str,
    start: f64,
    stop: f64,
    map: bool,
    ds: Option<f64>,
    max_points: usize,
    pattern: Option<&[u8]>,
    cycles: bool,
    tau: Option<&[u8]>,
    spectrum: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let m = rate(w, n, b, activation, tau.unwrap_or(&ones(n)))?;
    let spectrum: neurodyn::continuation::Spectrum = spectrum.parse().map_err(err)?;
    let x0 = floats("x0", x0, n)?;
    let knob = match param {
        "g" => RateKnob::Gain { g0: 1.0 },
        "bias" => RateKnob::Bias,
        "input" => RateKnob::Input(match pattern {
            Some(u) => floats("input_pattern", u, n)?,
            None => vec![1.0; n],
        }),
        other => {
            return Err(PyValueError::new_err(format!(
                "invalid `param`: `{other}` (g, bias or input)"
            )))
        }
    };
    let sys = RateParam::new(m, knob, map).map_err(err)?;
    let mut opts = ContinuationOptions::new(start, stop)
        .max_points(max_points)
        .spectrum(spectrum);
    if let Some(ds) = ds {
        opts = opts.ds(ds);
    }
    let br = py
        .allow_threads(|| continue_branch(&sys, &x0, &opts))
        .map_err(err)?;
    let cyc = if cycles && !map {
        use neurodyn::continuation::cycles::{cycles_from_hopf, CycleContinuationOptions};
        let span = (start.min(stop), start.max(stop));
        py.allow_threads(|| cycles_from_hopf(&sys, &br, span, &CycleContinuationOptions::default()))
            .map_err(err)?
    } else {
        None
    };
    let d = PyDict::new(py);
    match &cyc {
        Some(c) => {
            let e = table_dict(py, c.table())?;
            e.set_item(
                "events",
                c.events
                    .iter()
                    .map(|v| (v.kind.name(), v.p, v.period))
                    .collect::<Vec<_>>(),
            )?;
            e.set_item("stop", c.stop.clone())?;
            d.set_item("cycles", e)?;
        }
        None => d.set_item("cycles", py.None())?,
    }
    d.set_item("param", br.points.iter().map(|p| p.p).collect::<Vec<_>>())?;
    let x: Vec<f64> = br.points.iter().flat_map(|p| p.x.clone()).collect();
    d.set_item("x", bytes(py, &x))?;
    d.set_item(
        "stable",
        br.points
            .iter()
            .map(|p| p.stability.class.is_stable())
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "n_unstable",
        br.points
            .iter()
            .map(|p| p.stability.n_unstable)
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "max_growth",
        br.points
            .iter()
            .map(|p| p.stability.max_growth)
            .collect::<Vec<_>>(),
    )?;
    let bifs = PyList::empty(py);
    for z in &br.bifurcations {
        let e = PyDict::new(py);
        e.set_item("kind", z.kind.label())?;
        e.set_item("param", z.p)?;
        e.set_item("x", bytes(py, &z.x))?;
        e.set_item("omega", z.omega)?;
        e.set_item("l1", z.l1)?;
        bifs.append(e)?;
    }
    d.set_item("bifurcations", bifs)?;
    Ok(d)
}

/// A checkpoint's tensors: name → (shape, float64 bytes), plus its metadata; the file is first
/// loaded as a recurrent cell's checkpoint (which validates it).
#[pyfunction]
fn load_checkpoint<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyDict>> {
    neurodyn::train::checkpoint::load::<f64>(std::path::Path::new(path)).map_err(err)?;
    read_tensors(py, path)
}

/// Any safetensors file's tensors (name → (shape, float64 bytes)) and metadata.
#[pyfunction]
fn read_tensors<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyDict>> {
    let p = std::path::Path::new(path);
    let meta = neurodyn::tensor::safetensors::read_metadata(p).map_err(err)?;
    let d = PyDict::new(py);
    for (name, shape, v) in neurodyn::tensor::safetensors::read_tensors(p).map_err(err)? {
        d.set_item(name, (shape, bytes(py, &v)))?;
    }
    let m = PyDict::new(py);
    for (k, v) in meta {
        m.set_item(k, v)?;
    }
    let out = PyDict::new(py);
    out.set_item("tensors", d)?;
    out.set_item("metadata", m)?;
    Ok(out)
}

/// Runs the binary called `name` on `argv` (its flags, without the program name) in this process:
/// the binary's parsing, defaults, checks and files ([`neurodyn::cli::run_named`]), on `threads`
/// threads, in a worker thread while this one waits with the GIL released. Ctrl-C asks the run to
/// stop at its next safe point ([`neurodyn::io::interrupt`]: what it finished is kept, rerunning
/// resumes) and raises KeyboardInterrupt. `progress(position, length or None, message)` is called
/// about ten times a second while it runs.
#[pyfunction]
#[pyo3(signature = (name, argv, threads=None, progress=None))]
fn command(
    py: Python<'_>,
    name: &str,
    argv: Vec<String>,
    threads: Option<usize>,
    progress: Option<PyObject>,
) -> PyResult<()> {
    use std::sync::mpsc::RecvTimeoutError;
    let pool = rayon_pool(threads)?;
    neurodyn::io::clear_interrupt();
    neurodyn::io::observe_progress(progress.is_some());
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = {
        let name = name.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(pool.install(|| neurodyn::cli::run_named(&name, &argv)));
        })
    };
    let rx = std::sync::Mutex::new(rx);
    let result = loop {
        let got = py.allow_threads(|| match rx.lock() {
            Ok(r) => r.recv_timeout(std::time::Duration::from_millis(100)),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        });
        match got {
            Ok(r) => break r.map_err(err),
            Err(RecvTimeoutError::Timeout) => {
                let poll = || -> PyResult<()> {
                    py.check_signals()?;
                    if let (Some(cb), Some((pos, len, msg))) =
                        (&progress, neurodyn::io::observed_progress())
                    {
                        cb.call1(py, (pos, len, msg))?;
                    }
                    Ok(())
                };
                if let Err(e) = poll() {
                    // Ctrl-C (or a failing progress callback): stop the run at its next safe
                    // point, wait for it, raise.
                    neurodyn::io::interrupt();
                    py.allow_threads(|| {
                        let _ = worker.join();
                    });
                    neurodyn::io::observe_progress(false);
                    return Err(e);
                }
            }
            Err(_) => {
                break Err(PyRuntimeError::new_err(format!(
                    "`{name}` stopped unexpectedly"
                )))
            }
        }
    };
    let _ = worker.join();
    if let (Some(cb), Some((pos, len, msg))) = (&progress, neurodyn::io::observed_progress()) {
        cb.call1(py, (pos, len, msg))?;
    }
    neurodyn::io::observe_progress(false);
    result
}

/// Covariant Lyapunov vectors of the rate RNN's map or flow: exponents, QR exponents, times,
/// angles, vectors (window × n × k, row-major bytes), k, and the index lists.
#[pyfunction]
#[pyo3(signature = (w, n, h0, b, activation, tau, warmup, forward, window, backward, k, flow, dt))]
#[allow(clippy::too_many_arguments)]
fn covariant_vectors<'py>(
    py: Python<'py>,
    w: &[u8],
    n: usize,
    h0: &[u8],
    b: Option<&[u8]>,
    activation: &str,
    tau: &[u8],
    warmup: usize,
    forward: usize,
    window: usize,
    backward: usize,
    k: Option<usize>,
    flow: bool,
    dt: f64,
) -> PyResult<Bound<'py, PyDict>> {
    use neurodyn::lyapunov::{clv::covariant_vectors, ClvOptions};
    let h0 = floats("h0", h0, n)?;
    let opts = tangent_options(warmup, k, flow, dt);
    let clv = ClvOptions {
        forward,
        window,
        backward,
    };
    let sys = rate_system(w, n, b, activation, tau, flow)?;
    let c = py
        .allow_threads(|| covariant_vectors(&sys, &h0, &opts, &clv))
        .map_err(err)?;
    let kk = c.exponents.len();
    let flat: Vec<f64> = c
        .vectors
        .iter()
        .flat_map(|v| (0..n).flat_map(move |i| (0..kk).map(move |j| v[(i, j)])))
        .collect();
    let d = PyDict::new(py);
    d.set_item("exponents", c.exponents.clone())?;
    d.set_item("qr_exponents", c.qr_exponents.clone())?;
    d.set_item("times", c.times.clone())?;
    d.set_item("angles", c.angles.clone())?;
    d.set_item("vectors", bytes(py, &flat))?;
    let states: Vec<f64> = c.states.iter().flatten().copied().collect();
    d.set_item("states", bytes(py, &states))?;
    d.set_item("k", kk)?;
    d.set_item("unstable", c.unstable.clone())?;
    d.set_item("neutral", c.neutral.clone())?;
    d.set_item("stable", c.stable.clone())?;
    Ok(d)
}

/// Logits of a `train-cnn` checkpoint on `b` 28 × 28 images (grey levels in [0, 1]).
#[pyfunction]
fn cnn_predict<'py>(
    py: Python<'py>,
    path: &str,
    images: &[u8],
    b: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let x = floats("images", images, b * 28 * 28)?;
    let p = std::path::PathBuf::from(path);
    let logits = py
        .allow_threads(|| neurodyn::nn::fit::predict(&p, &x, b))
        .map_err(err)?;
    Ok(bytes(py, &logits))
}

/// The `--help` text of the binary called `name` (the Python functions' docstrings).
#[pyfunction]
fn command_help(name: &str) -> PyResult<String> {
    neurodyn::cli::help(name).map_err(err)
}

/// A table as a dict of column name → list (what pandas' DataFrame takes).
fn table_dict<'py>(py: Python<'py>, t: neurodyn::io::Table) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, col) in t.columns {
        match col {
            neurodyn::io::Column::F64(v) => d.set_item(name, v)?,
            neurodyn::io::Column::I64(v) => d.set_item(name, v)?,
            neurodyn::io::Column::Str(v) => d.set_item(name, v)?,
        }
    }
    Ok(d)
}

fn rayon_pool(threads: Option<usize>) -> PyResult<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(PyValueError::new_err(
                "invalid `threads`: must be at least 1",
            ));
        }
        b = b.num_threads(t);
    }
    b.build()
        .map_err(|e| PyRuntimeError::new_err(format!("thread pool: {e}")))
}

/// An ORGaNICs circuit (Heeger & Mackey 2019; Rawat, Heeger & Martiniani 2024):
/// τ_y ẏ = −y + b1 z + (1 − √⌊a⌋) W_r ŷ, τ_a ȧ = −a + (σ b0)² + W(⌊a⌋ ⊙ y²) (unrectified form),
/// state (y, a) of length 2N.
#[pyclass(name = "Organics", module = "neurodyn")]
struct PyOrganics {
    m: neurodyn::model::organics::Organics,
}

#[pymethods]
impl PyOrganics {
    /// Units N.
    #[getter]
    fn n(&self) -> usize {
        self.m.n()
    }
    /// The fixed point (y, a) concatenated: closed form when W_r = I, else the iterative scheme
    /// polished by Newton.
    fn fixed_point<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let x = match self.m.fixed_point_identity() {
            Ok((y, a)) => y.into_iter().chain(a).collect::<Vec<f64>>(),
            Err(_) => neurodyn::fixed_points::organics_iterative(&self.m, 50).map_err(err)?,
        };
        Ok(bytes(py, &x))
    }
    /// The right-hand side at x (length 2N).
    fn rhs<'py>(&self, py: Python<'py>, x: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        use neurodyn::model::Model;
        let x = floats("x", x, 2 * self.m.n())?;
        let mut dx = vec![0.0; x.len()];
        self.m.rhs(0.0, &x, &mut dx);
        Ok(bytes(py, &dx))
    }
    /// The Jacobian at x, row-major 2N × 2N.
    fn jacobian<'py>(&self, py: Python<'py>, x: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let n2 = 2 * self.m.n();
        let x = floats("x", x, n2)?;
        let j = jacobian_mat(&self.m, 0.0, &x);
        let v: Vec<f64> = (0..n2 * n2).map(|k| j[(k / n2, k % n2)]).collect();
        Ok(bytes(py, &v))
    }
    /// Integrates from x0 to t1: (t bytes, X bytes, number of times).
    #[pyo3(signature = (x0, t1, method, rtol, atol, dt, t_eval))]
    #[allow(clippy::too_many_arguments)]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        x0: &[u8],
        t1: f64,
        method: &str,
        rtol: f64,
        atol: f64,
        dt: f64,
        t_eval: Option<&[u8]>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize)> {
        let n2 = 2 * self.m.n();
        let x0 = floats("x0", x0, n2)?;
        let save = match t_eval {
            Some(t) => SaveAt::Times(floats("t_eval", t, t.len() / 8)?),
            None => SaveAt::Steps,
        };
        let method = Method::from_name(method, dt, rtol, atol).map_err(|e| err(e.into()))?;
        let m = &self.m;
        let sol = py
            .allow_threads(|| integrate(m, &x0, (0.0, t1), &method, &Options::new().save(save)))
            .map_err(|e| err(e.into()))?;
        Ok(solution(py, &sol))
    }
}

/// Builds an ORGaNICs circuit (matrices row-major N×N, vectors of length N).
#[pyfunction]
#[pyo3(signature = (n, w_r, w, b0, b1, sigma, tau_y, tau_a, z, variant))]
#[allow(clippy::too_many_arguments)]
fn organics(
    n: usize,
    w_r: &[u8],
    w: &[u8],
    b0: &[u8],
    b1: &[u8],
    sigma: &[u8],
    tau_y: &[u8],
    tau_a: &[u8],
    z: &[u8],
    variant: &str,
) -> PyResult<PyOrganics> {
    use neurodyn::model::organics::{Organics, Variant};
    let mat = |name: &str, b: &[u8]| -> PyResult<Mat<f64>> {
        let v = floats(name, b, n * n)?;
        Ok(Mat::from_fn(n, n, |i, j| v[i * n + j]))
    };
    let variant = match variant {
        "unrectified" => Variant::Unrectified,
        "rectified" => Variant::Rectified,
        "rectified-recurrence" => Variant::RectifiedRecurrence,
        v => {
            return Err(PyValueError::new_err(format!(
                "invalid `variant`: `{v}` (unrectified, rectified or rectified-recurrence)"
            )))
        }
    };
    let m = Organics::new(
        variant,
        mat("W_r", w_r)?,
        mat("W", w)?,
        floats("b0", b0, n)?,
        floats("b1", b1, n)?,
        floats("sigma", sigma, n)?,
        floats("tau_y", tau_y, n)?,
        floats("tau_a", tau_a, n)?,
        floats("z", z, n)?,
    )
    .map_err(err)?;
    Ok(PyOrganics { m })
}

/// Fixed points of a trained network (any cell, through the resolver): like `fixed_points`.
#[pyfunction]
#[pyo3(signature = (path, map, starts, seed, lo, hi))]
fn checkpoint_fixed_points<'py>(
    py: Python<'py>,
    path: &str,
    map: bool,
    starts: usize,
    seed: u64,
    lo: f64,
    hi: f64,
) -> PyResult<Bound<'py, PyDict>> {
    use neurodyn::fixed_points::find_system_fixed_points;
    use neurodyn::source::{Source, View};
    let src = Source::Checkpoint {
        path: path.into(),
        x0: None,
    };
    let r = src
        .resolve(if map { View::Map } else { View::Natural }, 1.0)
        .map_err(err)?;
    let n = r.system.dim();
    // The same starts as `fixed-points` (the box, the folded coordinates, the source's own start).
    let plan = neurodyn::fixed_points::search::Starts {
        count: starts,
        lo,
        hi,
        seed,
        trajectory: 0,
    };
    let s = plan
        .states(
            &r.system,
            &r.x0,
            r.nonnegative.clone(),
            r.extra_start.clone(),
        )
        .map_err(err)?;
    let pts = py
        .allow_threads(|| find_system_fixed_points(&r.system, &s, &FinderOptions::default()))
        .map_err(err)?;
    points(py, &pts, n)
}

/// The Lyapunov spectrum of a trained network (any cell, through the resolver).
#[pyfunction]
#[pyo3(signature = (path, h0, warmup, steps, k, euler, dt, seed))]
#[allow(clippy::too_many_arguments)]
fn checkpoint_lyapunov<'py>(
    py: Python<'py>,
    path: &str,
    h0: Option<&[u8]>,
    warmup: usize,
    steps: usize,
    k: Option<usize>,
    euler: bool,
    dt: f64,
    seed: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    use neurodyn::source::{Source, View};
    let src = Source::Checkpoint {
        path: path.into(),
        x0: None,
    };
    let r = src
        .resolve(
            if euler {
                View::Euler(dt)
            } else {
                View::Natural
            },
            1.0,
        )
        .map_err(err)?;
    let n = r.system.dim();
    let x0 = match h0 {
        Some(h) => floats("h0", h, n)?,
        None => r.x0.clone(),
    };
    let mut opts = LyapunovOptions::new()
        .warmup(warmup)
        .steps(steps)
        .dt(r.map_dt.unwrap_or(dt));
    if let Some(k) = k {
        opts = opts.k(k);
    }
    if let Some(s) = seed {
        opts = opts.frame(InitialFrame::Random(s));
    }
    let s = py
        .allow_threads(|| neurodyn::lyapunov::lyapunov_system(&r.system, &x0, &opts))
        .map_err(err)?;
    Ok(bytes(py, &s.exponents))
}

/// The built-in sweep configurations (`default`, `full`) as TOML text.
#[pyfunction]
fn sweep_config(name: &str) -> PyResult<&'static str> {
    match name {
        "default" => Ok(neurodyn::sweep::DEFAULT_CONFIG),
        "full" => Ok(neurodyn::sweep::FULL_CONFIG),
        _ => Err(PyValueError::new_err(format!("invalid `config`: `{name}`"))),
    }
}

/// The number of trials of a sweep configuration (TOML text), validated.
#[pyfunction]
fn sweep_trials(config: &str) -> PyResult<usize> {
    let cfg = neurodyn::sweep::SweepConfig::from_toml(config, "config").map_err(err)?;
    cfg.validate().map_err(err)?;
    Ok(cfg.jobs())
}

/// Raises KeyboardInterrupt if Ctrl-C arrived (for long Python-side loops).
#[pyfunction]
fn check_signals(py: Python<'_>) -> PyResult<()> {
    py.check_signals()
        .map_err(|_| PyKeyboardInterrupt::new_err("interrupted"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_ensemble, m)?)?;
    m.add_function(wrap_pyfunction!(jacobian, m)?)?;
    m.add_function(wrap_pyfunction!(eigenvalues, m)?)?;
    m.add_function(wrap_pyfunction!(fixed_points, m)?)?;
    m.add_function(wrap_pyfunction!(find_cycle, m)?)?;
    m.add_function(wrap_pyfunction!(lyapunov, m)?)?;
    m.add_function(wrap_pyfunction!(fracdiff, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_order, m)?)?;
    m.add_function(wrap_pyfunction!(continuation, m)?)?;
    m.add_function(wrap_pyfunction!(load_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(read_tensors, m)?)?;
    m.add_function(wrap_pyfunction!(check_signals, m)?)?;
    m.add_function(wrap_pyfunction!(command, m)?)?;
    m.add_function(wrap_pyfunction!(command_help, m)?)?;
    m.add_function(wrap_pyfunction!(cnn_predict, m)?)?;
    m.add_function(wrap_pyfunction!(covariant_vectors, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_config, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_trials, m)?)?;
    m.add_function(wrap_pyfunction!(organics, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint_fixed_points, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint_lyapunov, m)?)?;
    m.add_class::<PyOrganics>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
