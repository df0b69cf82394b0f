"""neurodyn: fit and dissect recurrent neural circuit models, from Python.

The rate RNN of every function below is the flow

    tau dx/dt = -x + W phi(x) + b

(``tau`` a number or one value per unit) or, with ``map=True``, the discrete map ``h <- phi(W h + b)``; ``phi`` is ``"tanh"``, ``"relu"``,
``"sigmoid"``, ``"softplus"``, ``"linear"`` or ``"gamma:N:S"``. Arrays are numpy float64 in and
out (float32 and Fortran-ordered inputs are accepted and converted). Invalid input raises
``ValueError`` naming the field; a run that fails (a diverging trajectory, Newton not converging)
raises ``RuntimeError``. Long calls release the GIL.
"""

from __future__ import annotations

import os

import numpy as np

from . import _native

__version__ = _native.__version__

__all__ = [
    "simulate",
    "simulate_ensemble",
    "jacobian",
    "eigenvalues",
    "fixed_points",
    "cycle",
    "lyapunov",
    "covariant_vectors",
    "fracdiff",
    "estimate_order",
    "continuation",
    "load_checkpoint",
    "stability_sweep",
    "organics",
    "Organics",
    # Every binary, and the families beyond the rate RNN (training, spiking, CordsNet, CNNs).
    "command",
    "help",
    "Checkpoint",
    "Run",
    "read_table",
    "train",
    "train_cnn",
    "cnn_predict",
    "spiking_grid",
    "spiking_simulate",
    "cordsnet_train",
    "cordsnet_simulate",
    "cordsnet_steady_state",
    "cordsnet_spectrum",
    "cordsnet_analyze",
    "lyapunov_networks",
    "continuation_run",
    "sweep",
]


def _f64(a, name, ndim=None):
    try:
        arr = np.ascontiguousarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"invalid `{name}`: not a float array ({e})") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"invalid `{name}`: expected a {ndim}-D array, got {arr.ndim}-D")
    return arr


def _square(W):
    W = _f64(W, "W", 2)
    if W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"invalid `W`: must be square and non-empty, got {W.shape}")
    return W, W.shape[0]


def _vec(v, name, n):
    v = _f64(v, name, 1)
    if v.shape[0] != n:
        raise ValueError(f"invalid `{name}`: has length {v.shape[0]}, the network has {n} units")
    return v


def _opt(v, name, n):
    return None if v is None else _vec(v, name, n).tobytes()


def _tau(tau, n):
    t = np.full(n, float(tau)) if np.ndim(tau) == 0 else _vec(tau, "tau", n)
    return np.ascontiguousarray(t, dtype=np.float64).tobytes()


def _arr(b, shape):
    return np.frombuffer(b, dtype=np.float64).reshape(shape).copy()


def simulate(W=None, x0=None, t1=50.0, *, b=None, activation="tanh", tau=1.0, method="tsit5",
             rtol=1e-6, atol=1e-9, dt=0.01, t_eval=None, checkpoint=None):
    """Integrate ``tau dx/dt = -x + W phi(x) + b`` from x(0) = x0 to t1.

    ``method``: euler, rk4 (step ``dt``), dopri5, tsit5 (adaptive, ``rtol``/``atol``), bdf,
    esdirk34, tr-bdf2 (stiff). Returns ``(t, X)`` with one row of X per time: every accepted step,
    or the times ``t_eval`` (dense output, steps not forced).

    ``checkpoint=path`` instead of ``W``: a rate network trained by ``train`` (its effective W, its
    per-unit tau in steps and its nonlinearity; ``x0`` defaults to 0). Other cells are maps, not
    ODEs: analyse them with ``fixed_points`` / ``lyapunov``.
    """
    if checkpoint is not None:
        if W is not None:
            raise ValueError("invalid `checkpoint`: give W or checkpoint, not both")
        ck = load_checkpoint(checkpoint)
        if ck["__metadata__"].get("cell", "rate") != "rate" or "W" not in ck:
            raise ValueError("invalid `checkpoint`: this cell is a discrete-time map, not an ODE "
                             "(use fixed_points or lyapunov)")
        W, tau = ck["W"], ck["tau"]
        activation = ck["__metadata__"].get("phi", "sigmoid")
        if x0 is None:
            x0 = np.zeros(W.shape[0])
    if W is None or x0 is None:
        raise ValueError("invalid `W`: give the weights W and x0, or checkpoint=path")
    W, n = _square(W)
    x0 = _vec(x0, "x0", n)
    te = None if t_eval is None else _f64(t_eval, "t_eval", 1).tobytes()
    t, x, k = _native.simulate(W.tobytes(), n, x0.tobytes(), float(t1), _opt(b, "b", n),
                               activation, _tau(tau, n), method, float(rtol), float(atol), float(dt), te)
    return _arr(t, (k,)), _arr(x, (k, n))


def simulate_ensemble(W, X0, t_eval, *, b=None, activation="tanh", tau=1.0, method="tsit5",
                      rtol=1e-6, atol=1e-9, dt=0.01):
    """Integrate every row of ``X0`` (M x N) as in :func:`simulate`, each with its own step-size
    control, saved at the shared times ``t_eval`` (t from 0 to ``t_eval[-1]``). Returns an array
    M x len(t_eval) x N; each member equals ``simulate(W, X0[j], t_eval=t_eval)`` bit for bit,
    while the members' right-hand sides are evaluated together and split over the cores."""
    W, n = _square(W)
    X0 = _f64(X0, "X0", 2)
    if X0.shape[1] != n:
        raise ValueError(f"invalid `X0`: rows of length {X0.shape[1]}, the network has {n} units")
    te = _f64(t_eval, "t_eval", 1)
    if te.shape[0] == 0:
        raise ValueError("invalid `t_eval`: no times")
    m = X0.shape[0]
    x = _native.simulate_ensemble(W.tobytes(), n, X0.tobytes(), m, float(te[-1]), _opt(b, "b", n),
                                  activation, _tau(tau, n), method, float(rtol), float(atol),
                                  float(dt), te.tobytes())
    return _arr(x, (m, te.shape[0], n))


def jacobian(W, x, *, b=None, activation="tanh", tau=1.0, map=False):
    """The Jacobian of the flow (``(-I + W diag(phi'(x))) / tau``) or of the map
    (``diag(phi'(a)) W``, ``a = W x + b``) at x."""
    W, n = _square(W)
    x = _vec(x, "x", n)
    return _arr(_native.jacobian(W.tobytes(), n, x.tobytes(), _opt(b, "b", n), activation,
                                 _tau(tau, n), bool(map)), (n, n))


def eigenvalues(J):
    """Eigenvalues of a square matrix (complex array, faer's non-symmetric solver)."""
    J = _f64(J, "J", 2)
    if J.shape[0] != J.shape[1]:
        raise ValueError(f"invalid `J`: must be square, got {J.shape}")
    n = J.shape[0]
    re, im = _native.eigenvalues(J.tobytes(), n)
    return _arr(re, (n,)) + 1j * _arr(im, (n,))


def fixed_points(W=None, *, b=None, activation="tanh", tau=1.0, map=False, starts=64, seed=0,
                 box=(-2.0, 2.0), x0=None, checkpoint=None):
    """Fixed points of the flow (f(x) = 0) or of the map (h = F(h)) by damped Newton /
    Levenberg-Marquardt from ``starts`` random states in ``box`` (plus the rows of ``x0``),
    deduplicated, with their linear stability.

    Returns a dict: ``x`` (K x N), ``q`` (1/2 |f|^2), ``residual``, ``eigenvalues`` (K x N complex,
    largest growth first), ``stable`` (bool), ``n_unstable``, ``classes`` (labels).

    ``checkpoint=path`` instead of ``W``: a network trained by ``train`` — the rate cell's flow
    (or its map with ``map=True``), any other cell as the map of its own update.
    """
    if checkpoint is not None:
        if W is not None:
            raise ValueError("invalid `checkpoint`: give W or checkpoint, not both")
        d = _native.checkpoint_fixed_points(os.fspath(checkpoint), bool(map), int(starts), int(seed),
                                            float(box[0]), float(box[1]))
        return _points(d, d["n"])
    if W is None:
        raise ValueError("invalid `W`: give the weights W or checkpoint=path")
    W, n = _square(W)
    extra = None
    if x0 is not None:
        x0 = _f64(x0, "x0")
        if x0.ndim == 1:
            x0 = x0[None, :]
        if x0.ndim != 2 or x0.shape[1] != n:
            raise ValueError(f"invalid `x0`: rows must have length {n}")
        extra = x0.tobytes()
    d = _native.fixed_points(W.tobytes(), n, _opt(b, "b", n), activation, _tau(tau, n), bool(map),
                             int(starts), int(seed), float(box[0]), float(box[1]), extra)
    return _points(d, n)


def cycle(W, x0, *, period=None, b=None, activation="tanh", tau=1.0, window=200.0, steps=1000,
          tol=1e-10, max_iter=40):
    """The limit cycle of the rate RNN flow ``tau dx/dt = -x + W phi(x) + b`` near ``x0``, by single
    shooting: Newton's method on (x0, T) for phi_T(x0) = x0 with the phase condition
    f(x0)·dx = 0, the monodromy matrix M = d phi_T / d x0 from the variational equation
    (classical Runge-Kutta, ``steps`` per period), and the Floquet multipliers eig(M).

    Start from a point on or near the cycle (the end of a long simulation). ``period``: a guess;
    None estimates it from the trajectory's returns to its section over ``window`` time units.

    Returns a dict: ``x0`` (a point of the orbit), ``period``, ``multipliers`` (complex, largest
    modulus first), ``trivial`` (index of the multiplier at 1), ``stable`` (every other inside
    the unit circle), ``min``/``max``/``amplitude`` per unit along the orbit, ``residual``,
    ``iterations``. No cycle near the start raises RuntimeError.
    """
    W, n = _square(W)
    x0 = _f64(x0, "x0")
    if x0.shape != (n,):
        raise ValueError(f"invalid `x0`: needs shape ({n},)")
    p = 0.0 if period is None else float(period)
    if period is not None and not (p > 0 and np.isfinite(p)):
        raise ValueError(f"invalid `period`: {period} (must be positive)")
    d = _native.find_cycle(W.tobytes(), n, _opt(b, "b", n), activation, _tau(tau, n), x0.tobytes(),
                           p, float(window), int(steps), float(tol), int(max_iter))
    lo, hi = _arr(d["min"], (n,)), _arr(d["max"], (n,))
    return {
        "x0": _arr(d["x0"], (n,)),
        "period": d["period"],
        "multipliers": np.array(d["mult_re"]) + 1j * np.array(d["mult_im"]),
        "trivial": d["trivial"],
        "stable": bool(d["stable"]),
        "min": lo,
        "max": hi,
        "amplitude": hi - lo,
        "residual": d["residual"],
        "iterations": d["iterations"],
    }


def _points(d, n):
    k = d["count"]
    return {
        "x": _arr(d["x"], (k, n)),
        "q": np.array(d["q"]),
        "residual": np.array(d["residual"]),
        "eigenvalues": _arr(d["eig_re"], (k, n)) + 1j * _arr(d["eig_im"], (k, n)),
        "stable": np.array(d["stable"], dtype=bool),
        "n_unstable": np.array(d["n_unstable"], dtype=np.int64),
        "classes": list(d["classes"]),
    }


def lyapunov(W=None, h0=None, *, b=None, map="tanh", warmup=100, steps=1000, k=None, flow=False,
             dt=None, seed=None, tau=1.0, checkpoint=None, euler=False):
    """Lyapunov spectrum (largest first) by the Benettin/QR method.

    Default: the map ``h <- phi(W h + b)`` with ``phi = map``, exponents per step. ``flow=True``:
    the flow ``tau dx/dt = -x + W phi(x) + b`` with RK4 at step ``dt`` (default 0.05), exponents per unit
    time; ``warmup`` and ``steps`` count steps. ``k``: only the k leading exponents. ``seed``: a
    random initial frame (default: the identity's first k columns).

    ``checkpoint=path`` instead of ``W``: a trained network as the analyses see it (the rate cell's
    flow with RK4 at ``dt`` — or its Euler map with ``euler=True`` —, the other cells as maps);
    ``h0`` defaults to the cell's own initial state.
    """
    if checkpoint is not None:
        if W is not None:
            raise ValueError("invalid `checkpoint`: give W or checkpoint, not both")
        h = None if h0 is None else _f64(h0, "h0", 1).tobytes()
        e = _native.checkpoint_lyapunov(os.fspath(checkpoint), h, int(warmup), int(steps),
                                        None if k is None else int(k), bool(euler),
                                        0.05 if dt is None else float(dt),
                                        None if seed is None else int(seed))
        return np.frombuffer(e, dtype=np.float64).copy()
    if W is None or h0 is None:
        raise ValueError("invalid `W`: give the weights W and h0, or checkpoint=path")
    W, n = _square(W)
    h0 = _vec(h0, "h0", n)
    return _arr(_native.lyapunov(W.tobytes(), n, h0.tobytes(), _opt(b, "b", n), str(map),
                                 _tau(tau, n), int(warmup), int(steps), None if k is None else int(k),
                                 bool(flow), 0.05 if dt is None else float(dt),
                                 None if seed is None else int(seed)),
                (n if k is None else int(k),))


def covariant_vectors(W, h0, *, b=None, map="tanh", warmup=100, forward=500, window=1000,
                      backward=500, k=None, flow=False, dt=0.05, tau=1.0):
    """Covariant Lyapunov vectors (Ginelli et al. 2007) of the map ``h <- phi(W h + b)`` (or, with
    ``flow=True``, the flow ``tau dx/dt = -x + W phi(x) + b`` by RK4 at step ``dt``): ``forward`` QR
    steps for the Gram–Schmidt frame to converge, ``window`` steps kept, ``backward`` steps for the
    backward iteration. Returns a dict: ``vectors`` (window × N × k, unit columns, carried onto
    each other by the tangent dynamics), ``states`` (window × N: the state at each time, where the
    next step's Jacobian is taken), ``exponents`` (their growth rates, largest first),
    ``qr_exponents`` (the QR method's on the same window), ``times``, ``angles`` (the smallest
    angle between the expanding and contracting subspaces at each time; empty when one is empty),
    ``unstable``/``neutral``/``stable`` (column indices)."""
    W, n = _square(W)
    h0 = _vec(h0, "h0", n)
    d = _native.covariant_vectors(W.tobytes(), n, h0.tobytes(), _opt(b, "b", n), str(map),
                                  _tau(tau, n), int(warmup), int(forward), int(window),
                                  int(backward), None if k is None else int(k), bool(flow),
                                  float(dt))
    kk = d["k"]
    return {
        "vectors": _arr(d["vectors"], (int(window), n, kk)),
        "states": _arr(d["states"], (int(window), n)),
        "exponents": np.array(d["exponents"]),
        "qr_exponents": np.array(d["qr_exponents"]),
        "times": np.array(d["times"]),
        "angles": np.array(d["angles"]),
        "unstable": list(d["unstable"]),
        "neutral": list(d["neutral"]),
        "stable": list(d["stable"]),
    }


def fracdiff(f, alpha, dt, *, method="gl"):
    """The fractional derivative D^alpha f of samples f on a uniform grid of step dt from t = 0:
    ``gl`` (Grunwald-Letnikov, O(h)), ``rl`` (Riemann-Liouville trapezoid) or ``l1`` (Caputo L1,
    O(h^(2-alpha))), by zero-padded FFT convolution."""
    f = _f64(f, "f", 1)
    return _arr(_native.fracdiff(f.tobytes(), float(alpha), float(dt), method), f.shape)


def estimate_order(signals, targets, alphas, dt, *, anchor=0, window=None):
    """The fractional order that best maps responses to targets (Geadah et al. 2024): for each
    candidate alpha, y = Re D^alpha r (the periodic spectral operator) minus y[anchor], and the error
    sum over signals of mean over ``window`` (a (start, end) pair, default all) of (y - s)^2.
    ``signals`` and ``targets``: one signal per row. Returns ``(alpha, alphas, errors)``."""
    S = _f64(signals, "signals")
    T = _f64(targets, "targets")
    if S.ndim == 1:
        S, T = S[None, :], T[None, :] if T.ndim == 1 else T
    if S.shape != T.shape or S.ndim != 2:
        raise ValueError(f"invalid `targets`: shape {T.shape} does not match the signals' {S.shape}")
    a = [float(v) for v in np.atleast_1d(alphas)]
    w0, w1 = (0, S.shape[1]) if window is None else (int(window[0]), int(window[1]))
    alpha, al, err = _native.estimate_order(S.tobytes(), T.tobytes(), S.shape[0], S.shape[1], a,
                                            float(dt), int(anchor), w0, w1)
    return alpha, np.array(al), np.array(err)


def continuation(W, x0, *, param="g", start, stop, b=None, activation="tanh", map=False, ds=None,
                 max_points=1000, input_pattern=None, cycles=False, tau=1.0, spectrum="auto"):
    """Follow the fixed point near ``x0`` at ``param = start`` towards ``stop`` by pseudo-arclength
    continuation, through folds; detect and locate folds, branch points, Hopf points (with omega and
    the first Lyapunov coefficient l1), flips and Neimark-Sacker points.

    The flow is ``tau dx/dt = -x + W phi(x) + b`` (``tau`` a number or one value per unit, e.g. a
    trained network's) or, with ``map=True``, the map ``h <- phi(W h + b)``.
    ``param``: ``g`` (W scaled by g), ``bias`` (added to every b_i) or ``input`` (times
    ``input_pattern``, default all ones). Returns a dict: ``param``, ``x`` (points x N), ``stable``,
    ``n_unstable``, ``max_growth``, ``bifurcations`` (list of dicts: kind, param, x, omega, l1).

    ``cycles=True`` (flows): also the limit cycle born at the first Hopf point, followed across
    the interval by shooting and pseudo-arclength continuation — ``cycles``: a dict of arrays
    ``param``, ``period``, ``amplitude``, ``stable``, ``max_abs_multiplier`` (nontrivial Floquet
    multipliers), ``residual``, ``min_i``/``max_i`` (unit i's range along the orbit), ``events`` (list of (kind, param, period): cycle_fold, period_doubling,
    neimark_sacker, infinite_period) and ``stop``; None without a Hopf point.

    ``spectrum``: ``"full"`` (every eigenvalue at every point), ``"nearest:K"`` (flows: the K
    eigenvalues nearest a shift right of the last point's rightmost one, by shift-invert Arnoldi,
    and any converged Ritz value right of them; stability and bifurcations are checked against
    full spectra at the ends and around every change of stability, ``max_growth`` is the
    rightmost tracked eigenvalue's real part) or ``"auto"`` (nearest:8 above 64 states, full
    below).
    """
    W, n = _square(W)
    x0 = _vec(x0, "x0", n)
    d = _native.continuation(W.tobytes(), n, x0.tobytes(), _opt(b, "b", n), activation, str(param),
                             float(start), float(stop), bool(map),
                             None if ds is None else float(ds), int(max_points),
                             _opt(input_pattern, "input_pattern", n), bool(cycles), _tau(tau, n),
                             str(spectrum))
    m = len(d["param"])
    cyc = d["cycles"]
    if cyc is not None:
        cyc = {k: (np.array(v, dtype=bool) if k == "stable" else np.array(v))
               if k not in ("events", "stop") else v for k, v in cyc.items()}
    for z in d["bifurcations"]:
        z["x"] = _arr(z["x"], (n,))
    return {
        "param": np.array(d["param"]),
        "x": _arr(d["x"], (m, n)),
        "stable": np.array(d["stable"], dtype=bool),
        "n_unstable": np.array(d["n_unstable"], dtype=np.int64),
        "max_growth": np.array(d["max_growth"]),
        "bifurcations": d["bifurcations"],
        "cycles": cyc,
    }


def load_checkpoint(path):
    """A checkpoint written by ``train`` (or PyTorch's ``safetensors`` under the same names):
    ``{name: array}`` for every tensor of the network, plus ``"__metadata__"`` (the cell's
    configuration and the run state)."""
    d = _native.load_checkpoint(os.fspath(path))
    out = {name: _arr(b, tuple(shape)) for name, (shape, b) in d["tensors"].items()}
    out["__metadata__"] = dict(d["metadata"])
    return out


def stability_sweep(config, out=None, threads=None, *, progress=True, **options):
    """The ORGaNICs stability sweep (Rawat, Heeger & Martiniani 2024) of a configuration: TOML text,
    a path to a TOML file, or ``"default"``/``"full"`` for the built-in grids. Runs into ``out``
    (a folder; resumable from its journal, as ``stability-sweep`` is) or a temporary folder, on
    ``threads`` threads, with ``stability-sweep``'s other flags as options (``seed``, ``store``,
    ``device``). Returns the results table (one row per trial) as a pandas DataFrame when pandas
    is installed, else a dict of numpy arrays. Ctrl-C stops it (KeyboardInterrupt) with the
    finished trials kept in ``out``'s journal. To spread it over machines: :mod:`neurodyn.sweep`.
    """
    import tempfile

    from . import sweep

    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="neurodyn-sweep-")
        out = tmp.name
    try:
        return sweep.run(config, out, threads=threads, progress=progress, **options)
    finally:
        if tmp is not None:
            tmp.cleanup()


class Organics:
    """An ORGaNICs circuit (Heeger & Mackey 2019; Rawat, Heeger & Martiniani 2024), state
    x = (y, a) of length 2N:

        tau_y dy/dt = -y + b1 z + (1 - sqrt(a)) W_r y
        tau_a da/dt = -a + (sigma b0)^2 + W (a * y^2)

    Build it with :func:`organics`.
    """

    def __init__(self, native):
        self._m = native

    @property
    def n(self):
        return self._m.n

    def fixed_point(self):
        """The fixed point (y, a) concatenated: closed form when W_r = I, else the iterative scheme
        polished by Newton."""
        return _arr(self._m.fixed_point(), (2 * self.n,))

    def rhs(self, x):
        return _arr(self._m.rhs(_vec(x, "x", 2 * self.n).tobytes()), (2 * self.n,))

    def jacobian(self, x):
        n2 = 2 * self.n
        return _arr(self._m.jacobian(_vec(x, "x", n2).tobytes()), (n2, n2))

    def simulate(self, x0, t1, *, method="tsit5", rtol=1e-6, atol=1e-9, dt=1e-5, t_eval=None):
        """Integrates from x0 to t1 (seconds); returns ``(t, X)`` with one row per time."""
        n2 = 2 * self.n
        te = None if t_eval is None else _f64(t_eval, "t_eval", 1).tobytes()
        t, x, k = self._m.simulate(_vec(x0, "x0", n2).tobytes(), float(t1), method, float(rtol),
                                   float(atol), float(dt), te)
        return _arr(t, (k,)), _arr(x, (k, n2))


def organics(n=None, *, W_r=None, W=None, b0=0.5, b1=0.5, sigma=0.1, tau_y=0.002, tau_a=0.001,
             z=None, variant="unrectified"):
    """An ORGaNICs circuit with the papers' defaults: W_r = I, W = ones, z one-hot at N/2,
    b0 = b1 = 0.5, sigma = 0.1, tau_y = 2 ms, tau_a = 1 ms. Scalars apply to every unit; N comes
    from ``n`` or from the matrices."""
    if n is None:
        for m in (W_r, W, z):
            if m is not None:
                n = np.shape(m)[0]
                break
    if n is None or int(n) < 1:
        raise ValueError("invalid `n`: give n or a matrix")
    n = int(n)
    mat = lambda m, name, dflt: _f64(dflt if m is None else (np.eye(n) * m if np.ndim(m) == 0 else m), name, 2)
    vec = lambda v, name: np.full(n, float(v)) if np.ndim(v) == 0 else _vec(v, name, n)
    if z is None:
        z = np.zeros(n)
        z[n // 2] = 1.0
    Wr = mat(W_r, "W_r", np.eye(n))
    Wn = _f64(np.full((n, n), float(W)) if (W is not None and np.ndim(W) == 0) else (np.ones((n, n)) if W is None else W), "W", 2)
    for name, m in (("W_r", Wr), ("W", Wn)):
        if m.shape != (n, n):
            raise ValueError(f"invalid `{name}`: expected {n}x{n}, got {m.shape}")
    native = _native.organics(n, Wr.tobytes(), Wn.tobytes(), vec(b0, "b0").tobytes(),
                              vec(b1, "b1").tobytes(), vec(sigma, "sigma").tobytes(),
                              vec(tau_y, "tau_y").tobytes(), vec(tau_a, "tau_a").tobytes(),
                              vec(z, "z").tobytes(), str(variant))
    return Organics(native)


from ._commands import Checkpoint, Run, command, help, read_table  # noqa: E402
from ._families import (  # noqa: E402
    cnn_predict,
    cordsnet_analyze,
    cordsnet_simulate,
    cordsnet_spectrum,
    cordsnet_steady_state,
    continuation_run,
    cordsnet_train,
    lyapunov_networks,
    spiking_grid,
    spiking_simulate,
    train,
    train_cnn,
)
from . import sweep  # noqa: E402
