#!/usr/bin/env python3
"""Work-precision peer (issue 35, row P1): the rate RNN dx/dt = -x + W tanh(x) + b of rnn_ode.py
(N = 500, g = 1.5: the rnn_N500_g1.5_{W,b,x0}.npy files it writes), t in [0, T1], integrated at
rtol = 1e-3 ... 1e-10 (atol = 1e-3 rtol) by scipy RK45 and DOP853 and diffrax Tsit5 (jit, PID
controller). Error: max |x(T1) - ref| against a DOP853 rtol = atol = 1e-13 reference, saved as
wp_N500_ref.npy in $PEERS_DATA so that benches/integrate.rs measures neurodyn against the same
one. T1 = 10 (not rnn_ode.py's 50: the flow is chaotic, and at t = 50 the reference itself is
uncertain at the 1e-9 level, which would flatten every curve). Prints one JSON object: per solver
and rtol the median seconds of 3 (after a warm-up/JIT), the error and the f-evaluations."""
import json, os, statistics, time
import numpy as np
from scipy.integrate import solve_ivp

DATA = os.environ.get("PEERS_DATA", "target/peers-data")
N, T1 = 500, 10.0
RTOLS = [10.0 ** -k for k in range(3, 11)]


def timed(f, reps=3):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        r = f()
        ts.append(time.perf_counter() - t)
    return r, statistics.median(ts)


def main():
    W = np.load(os.path.join(DATA, f"rnn_N{N}_g1.5_W.npy"))
    b = np.load(os.path.join(DATA, f"rnn_N{N}_g1.5_b.npy"))
    x0 = np.load(os.path.join(DATA, f"rnn_N{N}_g1.5_x0.npy"))
    rhs = lambda t, x: -x + W @ np.tanh(x) + b
    ref = solve_ivp(rhs, (0, T1), x0, method="DOP853", rtol=1e-13, atol=1e-13, t_eval=[T1]).y[:, -1]
    ref12 = solve_ivp(rhs, (0, T1), x0, method="DOP853", rtol=1e-12, atol=1e-12, t_eval=[T1]).y[:, -1]
    np.save(os.path.join(DATA, f"wp_N{N}_ref.npy"), ref)
    out = {"N": N, "t1": T1, "reference_uncertainty": float(np.max(np.abs(ref - ref12))), "rows": []}
    for method in ("RK45", "DOP853"):
        for rtol in RTOLS:
            sol, s = timed(lambda: solve_ivp(rhs, (0, T1), x0, method=method, rtol=rtol, atol=1e-3 * rtol,
                                             t_eval=[T1]))
            out["rows"].append({"solver": f"scipy_{method}", "rtol": rtol, "seconds": s, "nfev": int(sol.nfev),
                                "error": float(np.max(np.abs(sol.y[:, -1] - ref)))})
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import diffrax
        Wj, bj, x0j = jnp.asarray(W), jnp.asarray(b), jnp.asarray(x0)
        term = diffrax.ODETerm(lambda t, y, args: -y + Wj @ jnp.tanh(y) + bj)
        for rtol in RTOLS:
            ctrl = diffrax.PIDController(rtol=rtol, atol=1e-3 * rtol)
            solve = jax.jit(lambda y0, ctrl=ctrl: diffrax.diffeqsolve(
                term, diffrax.Tsit5(), 0.0, T1, None, y0, saveat=diffrax.SaveAt(t1=True),
                stepsize_controller=ctrl, max_steps=10_000_000))
            sol, s = timed(lambda: jax.block_until_ready(solve(x0j)))
            steps = int(sol.stats["num_steps"])
            out["rows"].append({"solver": "diffrax_Tsit5", "rtol": rtol, "seconds": s, "nfev": 6 * steps + 1,
                                "error": float(np.max(np.abs(np.asarray(sol.ys[-1]) - ref)))})
    except ImportError:
        pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
