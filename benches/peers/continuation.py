"""pycont-lite (matrix-free pseudo-arclength continuation) on the problems of neurodyn's
`continuation` tests and benchmark, for benches/compare_continuation.sh. Prints one JSON line.

Problems:
  fold1d   dx/dt = -x + 2 tanh(x) + b, continued in b from -1 (folds at b = +-(sqrt2 - acosh sqrt2))
  hopf2d   dx/dt = -x + g [[1,-1],[1,1]] tanh(x), continued in g from 0.5 (Hopf at g = 1, omega = 1)
  rnnN     dx/dt = -x + p W tanh(x) + b, W, b = the peers' rnn_N{N}_g0.5_{W,b}.npy (W = 0.5 Z / sqrt N),
           continued in p from 1 for 200 steps (N = 100, 500): time per point.
"""
import json, os, sys, time
import numpy as np
import scipy.optimize as opt
import pycont

data = os.environ.get("PEERS_DATA", "data")
out = {}

def run(G, u0, p0, ds, n_steps, **sp):
    params = {"tolerance": 1e-10, "initial_directions": "increase_p"}
    params.update(sp)
    t = time.perf_counter()
    r = pycont.arclengthContinuation(G, np.asarray(u0, float), p0, ds_min=1e-8, ds_max=ds,
                                           ds_0=ds, n_steps=n_steps, solver_parameters=params,
                                           verbosity=pycont.Verbosity.OFF)
    return r, time.perf_counter() - t

# fold1d
G = lambda u, b: -u + 2 * np.tanh(u) + b
u0 = opt.brentq(lambda x: G(np.array([x]), -1.0)[0], -5, 0)
# pycont-lite 0.6.0 cannot analyse the stability of a 1-D state (float() of a 1-element array).
r, t = run(G, [u0], -1.0, 0.05, 200, param_max=1.0, analyze_stability=False)
bf = np.sqrt(2) - np.arccosh(np.sqrt(2))
folds = sorted(e.p for e in r.events if e.kind == "LP")
out["fold1d"] = {"folds": folds, "exact": [-bf, bf], "seconds": t,
                 "max_error": max(abs(f - s * bf) for f, s in zip(folds, (-1, 1))) if len(folds) == 2 else None}

# hopf2d
A = np.array([[1.0, -1.0], [1.0, 1.0]])
G = lambda u, g: -u + g * A @ np.tanh(u)
r, t = run(G, [0.0, 0.0], 0.5, 0.02, 200, param_max=1.5, hopf_detection=True,
           limit_cycle_continuation=False, n_hopf_eigenvalues=2)
hopf = [e.p for e in r.events if e.kind == "HB"]
out["hopf2d"] = {"hopf": hopf, "exact": 1.0, "seconds": t,
                 "error": abs(hopf[0] - 1.0) if hopf else None}

# rnnN timing
for N in (100, 500):
    W = np.load(f"{data}/rnn_N{N}_g0.5_W.npy"); b = np.load(f"{data}/rnn_N{N}_g0.5_b.npy")
    G = lambda u, p, W=W, b=b: -u + p * (W @ np.tanh(u)) + b
    J = lambda u: -np.eye(N) + W * (1 - np.tanh(u) ** 2)[None, :]
    x0 = opt.root(lambda u: G(u, 1.0), np.zeros(N), jac=J, method="hybr", tol=1e-13).x
    np.save(f"{data}/cont_N{N}_x0.npy", x0)
    ds = 0.02
    res = {}
    for label, sp in (("default", {}), ("no_detection", {"bifurcation_detection": False, "analyze_stability": False})):
        r, t = run(G, x0, 1.0, ds, 200, **sp)
        br = r.branches[0]
        pts = len(br.p_path)
        res[label] = {"seconds": t, "points": pts, "s_per_point": t / max(pts - 1, 1),
                      "p_end": float(br.p_path[-1]),
                      "max_residual": float(max(np.abs(G(u, p)).max() for u, p in zip(br.u_path, br.p_path)))}
    out[f"rnn{N}"] = res
print(json.dumps(out))
