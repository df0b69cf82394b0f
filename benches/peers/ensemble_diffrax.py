#!/usr/bin/env python3
"""Peer for ensembles (issue 18, item 2): diffrax Tsit5 under jax.vmap over M initial states of
the rate RNN dx/dt = -x + W tanh(x) + b (the rnn_ode.py problem: g = 1.5, the same W and b files),
rtol 1e-6, atol 1e-9, t in [0, 20], saving x(20). Under vmap diffrax's while loop runs until every
member is done, each member with its own step size (finished members are masked).
Writes ens_N{N}_x0s.npy (the M starts) and ens_N{N}_diffrax_x1.npy (its final states) to
$PEERS_DATA; prints one JSON line: seconds per ensemble and per single trajectory (median of 5
after a JIT warm-up)."""
import json, os, sys, time, statistics
import numpy as np

DATA = os.environ.get("PEERS_DATA", "target/peers-data")
M = int(os.environ.get("ENS_M", "64"))
T1, RTOL, ATOL = 20.0, 1e-6, 1e-9


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import diffrax
    out = {"M": M, "t1": T1, "rtol": RTOL, "atol": ATOL, "cases": []}
    for n in (100, 500):
        W = np.load(os.path.join(DATA, f"rnn_N{n}_g1.5_W.npy"))
        b = np.load(os.path.join(DATA, f"rnn_N{n}_g1.5_b.npy"))
        x0s = 0.5 * np.random.default_rng(7).standard_normal((M, n))
        np.save(os.path.join(DATA, f"ens_N{n}_x0s.npy"), x0s)
        Wj, bj = jnp.asarray(W), jnp.asarray(b)
        term = diffrax.ODETerm(lambda t, x, args: -x + Wj @ jnp.tanh(x) + bj)

        def solve(x0):
            return diffrax.diffeqsolve(
                term, diffrax.Tsit5(), 0.0, T1, None, x0,
                stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
                saveat=diffrax.SaveAt(t1=True), max_steps=100000,
            ).ys[-1]

        one = jax.jit(solve)
        many = jax.jit(jax.vmap(solve))
        xs = jnp.asarray(x0s)

        def timed(f, arg):
            f(arg).block_until_ready()
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                f(arg).block_until_ready()
                ts.append(time.perf_counter() - t)
            return statistics.median(ts)

        t_one = timed(one, xs[0])
        t_many = timed(many, xs)
        np.save(os.path.join(DATA, f"ens_N{n}_diffrax_x1.npy"), np.asarray(many(xs)))
        out["cases"].append({"N": n, "single_s": t_one, "ensemble_s": t_many})
        print(f"diffrax N={n}: one {t_one*1e3:.1f} ms, vmap x{M} {t_many*1e3:.1f} ms", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
