"""The Python package against independent numpy/scipy references on the same arrays."""
import os
import resource

import numpy as np
import pytest

import neurodyn as nd

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def net(n=8, g=1.5, seed=0):
    rng = np.random.default_rng(seed)
    return g * rng.standard_normal((n, n)) / np.sqrt(n), rng.standard_normal(n), 0.1 * rng.standard_normal(n)


def test_simulate_matches_scipy_dop853():
    scipy_integrate = pytest.importorskip("scipy.integrate")
    W, x0, b = net(10)
    t_eval = np.linspace(0.0, 20.0, 41)
    t, X = nd.simulate(W, x0, 20.0, b=b, method="dopri5", rtol=1e-11, atol=1e-13, t_eval=t_eval)
    ref = scipy_integrate.solve_ivp(lambda t, x: -x + W @ np.tanh(x) + b, (0, 20), x0,
                                    method="DOP853", rtol=1e-12, atol=1e-14, t_eval=t_eval)
    assert np.array_equal(t, t_eval)
    assert np.abs(X - ref.y.T).max() < 1e-7


def test_simulate_ensemble_members_equal_single_runs():
    W, x0, b = net(12, g=1.8)
    X0 = np.stack([x0 * s for s in (0.5, 1.0, 1.5, 2.0)])
    t_eval = np.linspace(0.0, 10.0, 6)
    X = nd.simulate_ensemble(W, X0, t_eval, b=b)
    assert X.shape == (4, 6, 12)
    for j in range(4):
        _, Xj = nd.simulate(W, X0[j], 10.0, b=b, t_eval=t_eval)
        assert np.array_equal(X[j], Xj)
    with pytest.raises(ValueError, match="X0"):
        nd.simulate_ensemble(W, X0[:, :5], t_eval)


def test_lyapunov_matches_a_numpy_qr_loop():
    W, h0, _ = net(8, g=2.0)
    warmup, steps = 100, 300
    h = h0.copy()
    for _ in range(warmup):
        h = np.tanh(W @ h)
    Q = np.eye(8)
    s = np.zeros(8)
    for _ in range(steps):
        a = W @ h
        h = np.tanh(a)
        Q, R = np.linalg.qr((1 - h ** 2)[:, None] * W @ Q)
        s += np.log(np.abs(np.diag(R)))
    ref = np.sort(s / steps)[::-1]
    got = nd.lyapunov(W, h0, warmup=warmup, steps=steps)
    assert np.abs(got - ref).max() < 1e-10
    # The k leading exponents are the head of the full spectrum.
    assert np.abs(nd.lyapunov(W, h0, warmup=warmup, steps=steps, k=3) - got[:3]).max() < 1e-10


def test_fracdiff_matches_the_direct_sum():
    rng = np.random.default_rng(3)
    f = np.cumsum(rng.standard_normal(400)) * 0.01
    alpha, h = 0.4, 0.01
    w = np.empty(400)
    w[0] = 1.0
    for j in range(1, 400):
        w[j] = w[j - 1] * (j - 1 - alpha) / j
    ref = np.array([np.dot(w[: k + 1], f[k::-1]) for k in range(400)]) / h ** alpha
    got = nd.fracdiff(f, alpha, h, method="gl")
    assert np.abs(got - ref).max() < 1e-12 * max(1.0, np.abs(ref).max())


def test_fixed_points_residuals_and_eigenvalues():
    W, _, b = net(12, g=0.8)
    fp = nd.fixed_points(W, b=b, starts=16)
    assert fp["x"].shape[1] == 12 and len(fp["x"]) >= 1
    for x, ev in zip(fp["x"], fp["eigenvalues"]):
        assert np.abs(-x + W @ np.tanh(x) + b).max() < 1e-9
        J = -np.eye(12) + W * (1 - np.tanh(x) ** 2)[None, :]
        assert np.allclose(np.sort_complex(ev), np.sort_complex(np.linalg.eigvals(J)), atol=1e-9)
        assert np.abs(nd.jacobian(W, x, b=b) - J).max() < 1e-12
    assert fp["stable"].all()  # g = 0.8: a contracting network


def test_cycle_of_a_two_unit_oscillator_against_scipy():
    # x' = -x + g R(θ) tanh(x): past the Hopf point (g cos θ > 1) a stable limit cycle.
    from scipy.integrate import solve_ivp
    g, th = 2.0, 1.0
    W = g * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    f = lambda t, x: -x + W @ np.tanh(x)
    x = solve_ivp(f, (0, 100), [0.1, 0.0], rtol=1e-10, atol=1e-12).y[:, -1]
    c = nd.cycle(W, x)
    assert c["residual"] < 1e-9 and c["stable"]
    # scipy (DOP853) from the orbit's point returns to it after one period.
    back = solve_ivp(f, (0, c["period"]), c["x0"], method="DOP853", rtol=1e-12, atol=1e-13).y[:, -1]
    assert np.abs(back - c["x0"]).max() < 1e-8
    mu = c["multipliers"]
    assert abs(mu[c["trivial"]] - 1) < 1e-8 and abs(np.delete(mu, c["trivial"])).max() < 1
    # Liouville: the product of the multipliers is exp(∮ tr J dt).
    ts = np.linspace(0, c["period"], 4001)
    xs = solve_ivp(f, (0, c["period"]), c["x0"], t_eval=ts, rtol=1e-12, atol=1e-13).y
    tr = np.array([-2 + np.trace(W * (1 - np.tanh(xs[:, k]) ** 2)[None, :]) for k in range(len(ts))])
    integral = np.sum((tr[1:] + tr[:-1]) / 2 * np.diff(ts))
    assert abs(np.prod(mu).real - np.exp(integral)) < 1e-6
    assert np.allclose(c["amplitude"], c["max"] - c["min"])
    with pytest.raises(ValueError, match="x0"):
        nd.cycle(W, [0.1])
    with pytest.raises(RuntimeError):
        nd.cycle(0.5 * np.eye(2), [0.1, 0.0])


def test_continuation_follows_the_cycle_born_at_a_hopf_point():
    # x' = -x + g R(θ) tanh(x): the origin loses stability at g cos θ = 1 through a Hopf point
    # with ω = g sin θ; the cycle branch starts there and grows with g.
    th = 1.0
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    br = nd.continuation(R, np.zeros(2), param="g", start=1.0, stop=3.0, cycles=True)
    hopf = [z for z in br["bifurcations"] if z["kind"] == "hopf"]
    g_h = 1 / np.cos(th)
    assert len(hopf) == 1 and abs(hopf[0]["param"] - g_h) < 1e-8
    c = br["cycles"]
    assert c is not None and len(c["param"]) > 5 and c["stable"].all()
    assert abs(c["param"][0] - g_h) < 0.01 and c["param"].max() > 2.9
    assert abs(c["period"][0] - 2 * np.pi / (g_h * np.sin(th))) < 1e-2 * c["period"][0]
    assert np.all(np.diff(c["amplitude"]) > 0)
    # A cycle of the branch is a cycle of the flow (scipy).
    from scipy.integrate import solve_ivp
    k = len(c["param"]) // 2
    g = c["param"][k]
    one = nd.cycle(g * R, np.array([c["amplitude"][k] / 2, 0.0]), period=c["period"][k])
    assert abs(one["period"] - c["period"][k]) < 1e-6 * c["period"][k]
    assert nd.continuation(R, np.zeros(2), param="g", start=0.5, stop=0.9, cycles=True)["cycles"] is None


def test_eigenvalues_match_numpy():
    A = np.random.default_rng(5).standard_normal((30, 30))
    got = np.sort_complex(nd.eigenvalues(A))
    assert np.allclose(got, np.sort_complex(np.linalg.eigvals(A)), atol=1e-10)
    # float32 and Fortran order are accepted.
    got32 = np.sort_complex(nd.eigenvalues(np.asfortranarray(A.astype(np.float32))))
    assert np.allclose(got32, np.sort_complex(np.linalg.eigvals(A.astype(np.float32).astype(float))), atol=1e-10)


def test_continuation_folds_in_closed_form():
    br = nd.continuation(np.array([[2.0]]), np.array([-2.96]), param="bias", start=-1.0, stop=1.0)
    folds = sorted(z["param"] for z in br["bifurcations"] if z["kind"] == "fold")
    bf = np.sqrt(2) - np.arccosh(np.sqrt(2))
    assert len(folds) == 2 and abs(folds[0] + bf) < 1e-10 and abs(folds[1] - bf) < 1e-10
    assert br["x"].shape == (len(br["param"]), 1)


def test_load_checkpoint_reads_a_torch_export():
    d = nd.load_checkpoint(os.path.join(ROOT, "tests", "fixtures", "torch_gamma.safetensors"))
    assert {"U", "V", "b", "n", "s", "W_out", "b_out"} <= set(d)
    assert d["V"].shape[0] == d["V"].shape[1] == d["n"].shape[0]


def test_bad_input_and_run_failures():
    W, x0, _ = net(4)
    with pytest.raises(ValueError, match="`x0`"):
        nd.simulate(W, np.ones(3), 1.0)
    with pytest.raises(ValueError, match="`W`"):
        nd.lyapunov(np.ones((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match="`activation`"):
        nd.jacobian(W, x0, activation="swish")
    with pytest.raises(ValueError, match="`k`"):
        nd.lyapunov(W, x0, k=10)
    with pytest.raises(ValueError, match="`param`"):
        nd.continuation(W, x0, param="nope", start=0, stop=1)
    with pytest.raises(ValueError, match="checkpoint"):
        nd.load_checkpoint("/nonexistent.safetensors")
    # A diverging flow is a run failure naming the step.
    with pytest.raises(RuntimeError, match="dt = 10"):
        nd.lyapunov(W * 3, x0, flow=True, dt=10.0, steps=200)


def test_no_memory_growth_over_many_small_calls():
    import tracemalloc
    f = np.linspace(0.0, 1.0, 10)
    for _ in range(200):
        nd.fracdiff(f, 0.5, 0.1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(10_000):
        nd.fracdiff(f, 0.5, 0.1)
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    assert grown < 200_000, grown
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 20_000  # kB


def sweep_config(**over):
    """The built-in default configuration with some keys replaced."""
    import re
    text = nd._native.sweep_config("default")
    for k, v in over.items():
        text = re.sub(rf"(?m)^{k} = .*$", f"{k} = {v}", text)
    return text


SMALL_SWEEP = sweep_config(n=10, delta_num=3, input_num=2, trials=2, seed=4)


def test_stability_sweep_equals_the_binary(tmp_path):
    import subprocess
    exe = os.path.join(ROOT, "target", "release", "stability-sweep")
    if not os.path.exists(exe):
        pytest.skip("build the binaries first (cargo build --release)")
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(SMALL_SWEEP)
    subprocess.run([exe, "--config", str(cfg), "--out", str(tmp_path / "bin"), "--quiet"], check=True)
    got = nd.stability_sweep(str(cfg), out=tmp_path / "py", threads=1)
    cols = got if isinstance(got, dict) else {c: got[c].to_numpy() for c in got.columns}
    # The binary's CSV, column by column, exactly (same seeds, same code).
    with open(tmp_path / "bin" / "results.csv") as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f]
    assert header == list(cols)
    for k, name in enumerate(header):
        col = cols[name]
        for r, v in zip(rows, col):
            if isinstance(v, str) or getattr(v, "dtype", None) is not None and v.dtype.kind in "US":
                assert r[k] == str(v)
            elif r[k] in ("NaN", "nan"):
                assert np.isnan(v)
            else:
                assert float(r[k]) == float(v), (name, r[k], v)
    # The same config again into the same folder: resumed from the journal, same table.
    again = nd.stability_sweep(str(cfg), out=tmp_path / "py", threads=2)
    again = again if isinstance(again, dict) else {c: again[c].to_numpy() for c in again.columns}
    for name in header:
        a, b = np.asarray(cols[name]), np.asarray(again[name])
        assert (a == b).all() or (a.dtype.kind == "f" and np.array_equal(a, b, equal_nan=True))


def test_keyboard_interrupt_stops_a_long_sweep(tmp_path):
    import _thread
    import threading
    import time
    big = sweep_config(n=100, delta_num=40, trials=50)
    threading.Timer(0.5, _thread.interrupt_main).start()
    t = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        nd.stability_sweep(big, out=tmp_path / "big")
    assert time.perf_counter() - t < 0.5 + 1.0
    # The finished trials are in the journal; the run can resume from them.
    assert any(p.name.startswith("rows.") for p in (tmp_path / "big").iterdir())


def test_sweep_bad_config():
    with pytest.raises(ValueError, match="nope"):
        nd.stability_sweep("nope = 1\n")


def test_organics_closed_form_and_simulation():
    # The two-unit cross-check of Rawat, Heeger & Martiniani (2024): with W_r = I the closed form
    # y* = b1 z / sqrt(a*), a* = (sigma b0)^2 + W (b1 z)^2; the flow settles there.
    c = nd.organics(2, W=np.array([[0.5, 0.5], [0.5, 0.5]]), z=np.array([1.0, 0.5]), b0=0.5, b1=0.5)
    x = c.fixed_point()
    a = (0.1 * 0.5) ** 2 + 0.5 * ((0.5 * 1.0) ** 2 + (0.5 * 0.5) ** 2)
    assert np.allclose(x[2:], [a, a], atol=1e-14)
    assert np.allclose(x[:2], 0.5 * np.array([1.0, 0.5]) / np.sqrt(a), atol=1e-12)
    assert np.abs(c.rhs(x)).max() < 1e-10
    J = c.jacobian(x)
    h = 1e-6
    fd = np.column_stack([(c.rhs(x + h * e) - c.rhs(x - h * e)) / (2 * h) for e in np.eye(4)])
    assert np.abs(J - fd).max() < 1e-5 * np.abs(J).max()
    t, X = c.simulate(x + 0.01, 0.2, rtol=1e-10, atol=1e-12, t_eval=[0.0, 0.2])
    assert np.abs(X[-1] - x).max() < 1e-6
    with pytest.raises(ValueError, match="`tau_y`"):
        nd.organics(2, tau_y=-1.0)


def test_analyses_take_a_checkpoint():
    ck = os.path.join(ROOT, "tests", "fixtures", "torch_gamma.safetensors")
    fp = nd.fixed_points(checkpoint=ck, starts=8)
    n = fp["x"].shape[1]
    d = nd.load_checkpoint(ck)
    assert n == d["V"].shape[0]
    # The gamma cell is the map h <- gamma(V h + b; n, s) (Geadah et al. 2024): each point found
    # is fixed by it, computed here in numpy.
    V, b, nn, ss = d["V"], d["b"], d["n"], d["s"]
    gam = lambda a: (1 - ss) * np.logaddexp(0, nn * a) / nn + ss / (1 + np.exp(-nn * a))
    assert len(fp["x"]) >= 1
    for h in fp["x"]:
        assert np.abs(gam(V @ h + b) - h).max() < 1e-9
    lam = nd.lyapunov(checkpoint=ck, warmup=50, steps=200, k=3)
    assert lam.shape == (3,) and np.all(np.diff(lam) <= 0)
    with pytest.raises(ValueError, match="`checkpoint`"):
        nd.fixed_points(np.eye(2), checkpoint=ck)


def test_estimate_order_recovers_a_known_order():
    # Targets made with the spectral operator at alpha = 0.3 from periodic responses: the scan
    # over a grid containing 0.3 returns 0.3 with (near) zero error there.
    t = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    R = np.vstack([np.sin(t), np.cos(2 * t) + 0.5 * np.sin(3 * t)])
    F = np.fft.fftfreq(256, d=t[1] - t[0])
    H = (2j * np.pi * F) ** 0.3
    H[0] = 0
    Y = np.real(np.fft.ifft(H * np.fft.fft(R, axis=1), axis=1))
    Y -= Y[:, :1]
    alphas = np.round(np.linspace(0.0, 0.6, 13), 10)
    alpha, al, err = nd.estimate_order(R, Y, alphas, t[1] - t[0])
    assert abs(alpha - 0.3) < 1e-12 and err.min() < 1e-20


def test_simulate_a_trained_rate_checkpoint(tmp_path):
    import subprocess
    exe = os.path.join(ROOT, "target", "release", "train")
    if not os.path.exists(exe):
        pytest.skip("build the binaries first (cargo build --release)")
    subprocess.run([exe, "--task", "go-nogo", "--epochs", "1", "--steps", "5", "--eval", "20",
                    "--quiet", "--out", str(tmp_path / "run")], check=True)
    ck = tmp_path / "run" / "checkpoint.safetensors"
    t, X = nd.simulate(checkpoint=ck, t1=50.0, t_eval=[0.0, 50.0])
    d = nd.load_checkpoint(ck)
    W, tau = d["W"], d["tau"]
    sig = lambda x: 1 / (1 + np.exp(-x))
    # Independent check: scipy on tau dx/dt = -x + W sigmoid(x) from 0.
    si = pytest.importorskip("scipy.integrate")
    ref = si.solve_ivp(lambda _, x: (-x + W @ sig(x)) / tau, (0, 50), np.zeros(len(tau)),
                       method="DOP853", rtol=1e-11, atol=1e-13, t_eval=[50.0])
    assert np.abs(X[-1] - ref.y[:, 0]).max() < 1e-5


def test_covariant_vectors_are_carried_by_the_tangent_map_and_reproduce_the_exponents():
    rng = np.random.default_rng(2)  # a chaotic draw: exponents +0.15, +0.06, −0.04, …
    n = 16
    W = 3.0 * rng.standard_normal((n, n)) / np.sqrt(n)
    h0 = 0.3 * np.ones(n)
    c = nd.covariant_vectors(W, h0, warmup=300, forward=300, window=400, backward=300)
    V = c["vectors"]
    assert V.shape == (400, n, n)
    assert np.allclose(np.linalg.norm(V, axis=1), 1.0)
    # Push each vector through the map's Jacobian at the recorded state, D = diag(1 - tanh²(W h)) W.
    worst = 0.0
    for m in range(len(V) - 1):
        D = (1 - np.tanh(W @ c["states"][m]) ** 2)[:, None] * W
        pushed = D @ V[m]
        cos = np.abs(np.sum(pushed * V[m + 1], axis=0)) / np.linalg.norm(pushed, axis=0)
        worst = max(worst, np.max(1 - cos))
    assert worst < 1e-8
    lam = nd.lyapunov(W, h0, warmup=300, steps=3000)
    assert np.allclose(c["exponents"], c["qr_exponents"], atol=0.03)
    assert abs(c["exponents"][0] - lam[0]) < 0.05 and c["unstable"] == [0, 1]
    assert len(c["angles"]) == 400 and np.all((c["angles"] > 0) & (c["angles"] <= np.pi / 2))
