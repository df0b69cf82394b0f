"""Every family from Python against its binary on the same inputs (same files, bit for bit), plus
resume, Ctrl-C, progress and bad input."""

import gzip
import os
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import neurodyn as nd

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release"
RATE_XOR = ROOT / "models" / "spiking" / "xor-rate-n100.safetensors"


def binary(name, *args, cwd=None):
    exe = BIN / name
    if not exe.exists():
        pytest.skip(f"{exe} not built (cargo build --release)")
    r = subprocess.run([str(exe), *map(str, args), "-q"], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def same_bytes(a, b):
    assert Path(a).read_bytes() == Path(b).read_bytes(), f"{a} and {b} differ"


def same_tensors(a, b):
    ta, tb = nd.Checkpoint(a).tensors, nd.Checkpoint(b).tensors
    assert ta.keys() == tb.keys()
    for k in ta:
        assert np.array_equal(ta[k], tb[k]), k


def mnist_test_slice():
    d = ROOT / "models" / "mnist-slice"
    with gzip.open(d / "t10k-images-idx3-ubyte.gz") as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz") as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)
    return img, lab


def test_train_equals_the_binary_and_its_checkpoint_feeds_the_analyses(tmp_path):
    opts = dict(task="xor", epochs=2, steps=4, hidden=20)
    binary("train", "--task", "xor", "--epochs", 2, "--steps", 4, "--hidden", 20,
           "--out", tmp_path / "bin")
    run = nd.train(tmp_path / "py", progress=False, **opts)
    for f in ("checkpoint.safetensors", "metrics.csv", "config.toml"):
        same_bytes(tmp_path / "bin" / f, tmp_path / "py" / f)
    m = run.metrics
    assert list(m["epoch"]) == [1, 2] and np.all(np.isfinite(m["loss"]))
    assert run.config["hidden"] == 20
    ck = run.checkpoint
    assert isinstance(ck, os.PathLike) and ck.tensors["W"].shape == (20, 20)
    assert ck.metadata["run.epoch"] == "2"
    # The checkpoint object goes wherever a path does: the trained flow's fixed points.
    fp = nd.fixed_points(checkpoint=ck, starts=8)
    J = nd.jacobian(ck.tensors["W"], fp["x"][0], activation="sigmoid",
                    tau=nd.load_checkpoint(ck)["tau"])
    assert np.allclose(np.sort_complex(np.linalg.eigvals(J)), np.sort_complex(fp["eigenvalues"][0]),
                       atol=1e-8)


def test_custom_task_from_arrays_resumes_bit_for_bit(tmp_path):
    rng = np.random.default_rng(3)
    u = rng.normal(size=(40, 30, 2))
    z = np.tanh(u.cumsum(axis=1)[..., :1] / 5)
    # Three epochs at once, and two then one more: the same network, bit for bit.
    nd.train(tmp_path / "once", task="custom", inputs=u, targets=z, epochs=3, steps=3,
             hidden=12, progress=False)
    nd.train(tmp_path / "twice", task="custom", inputs=u, targets=z, epochs=2, steps=3,
             hidden=12, progress=False)
    r = nd.train(tmp_path / "twice", task="custom", inputs=u, targets=z, epochs=3, steps=3,
                 hidden=12, progress=False)
    same_tensors(tmp_path / "once" / "checkpoint.safetensors", r.checkpoint)
    assert len(r.metrics) == 3
    # Other data under the same folder is refused, naming what changed.
    with pytest.raises(ValueError, match="inputs|config"):
        nd.train(tmp_path / "twice", task="custom", inputs=u + 1, targets=z, epochs=4, steps=3,
                 hidden=12, progress=False)


def test_a_branch_continues_a_run_under_a_new_schedule(tmp_path):
    opts = dict(task="go-nogo", hidden=8, steps=2, batch=4, eval=8, progress=False)
    src = nd.train(tmp_path / "src", epochs=1, **opts)
    b = nd.train(tmp_path / "branch", epochs=3, from_=tmp_path / "src", schedule="step:1:0.5",
                 weight_decay=1e-4, **opts)
    assert list(b.metrics["lr"]) == [0.01, 0.005, 0.0025]
    assert b.metrics["loss"][0] == src.metrics["loss"][0]
    assert b.config["weight_decay"] == 1e-4 and b.config["from"] == str(tmp_path / "src")
    with pytest.raises(ValueError, match="from"):
        nd.train(tmp_path / "other", epochs=3, from_=tmp_path / "src", **dict(opts, hidden=9))


def test_organics_rates_from_a_tuple_reach_the_checkpoint(tmp_path):
    r = nd.train(tmp_path / "org", task="seq-digits", cell="organics", hidden=6, pool=4,
                 epochs=1, steps=2, batch=4, eval=8, kappa_max=(0.02, 0.005, 0.1), progress=False)
    assert r.config["kappa_max"] == [0.02, 0.005, 0.1]
    # Pooled by 4: one step spans 16 pixels, so the stored rates are 16 times the asked ones.
    meta = r.checkpoint.metadata
    assert [float(meta[k]) for k in ("kappa_y", "kappa_a", "kappa_b")] == pytest.approx(
        [0.32, 0.08, 1.0], rel=1e-12)
    with pytest.raises(ValueError, match="kappa-max"):
        nd.train(tmp_path / "bad", task="seq-digits", cell="gamma", epochs=1,
                 kappa_max=(0.02, 0.005, 0.1), progress=False)


def test_ctrl_c_stops_training_cleanly_and_the_rerun_resumes(tmp_path):
    opts = dict(task="go-nogo", epochs=6, steps=40, hidden=40, progress=False)
    full = nd.train(tmp_path / "full", **opts)
    seen, sent = [], []

    def progress(pos, length, msg):
        seen.append((pos, length))
        if pos >= 70 and not sent:  # Ctrl-C during the second epoch
            sent.append(pos)
            threading.Timer(0.0, os.kill, (os.getpid(), signal.SIGINT)).start()

    with pytest.raises(KeyboardInterrupt):
        nd.train(tmp_path / "cut", **dict(opts, progress=progress))
    cut = nd.Run(tmp_path / "cut")
    done = len(cut.metrics)
    assert 1 <= done < 6, done  # stopped mid-run, completed epochs kept
    r = nd.train(tmp_path / "cut", **opts)
    assert len(r.metrics) == 6
    same_bytes(full.checkpoint, r.checkpoint)
    # The progress callback saw the minibatches counted against the whole run's.
    assert {length for _, length in seen} == {240}
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)


def test_spiking_grid_and_trial_equal_the_binary(tmp_path):
    binary("spiking", "--checkpoint", RATE_XOR, "--task", "xor", "--trials", 4, "--scaling",
           "20:30:10", "--out", tmp_path / "bin")
    g = nd.spiking_grid(RATE_XOR, "xor", tmp_path / "py", trials=4, scaling="20:30:10",
                        progress=False)
    same_bytes(tmp_path / "bin" / "grid.csv", tmp_path / "py" / "grid.csv")
    assert list(g["grid"]["scaling_factor"]) == [20.0, 30.0]
    assert g["summary"]["scaling_factor"] in (20.0, 30.0) and g["summary"]["trials"] == 4

    binary("spiking", "--checkpoint", RATE_XOR, "--task", "xor", "--simulate", 30,
           "--out", tmp_path / "bin1")
    s = nd.spiking_simulate(RATE_XOR, "xor", 30, voltage=[0, 5])
    spikes = np.loadtxt(tmp_path / "bin1" / "spikes.csv", delimiter=",", skiprows=1)
    assert np.array_equal(spikes[:, 0], s["spike_units"])
    assert np.array_equal(spikes[:, 1], s["spike_steps"])
    out = np.loadtxt(tmp_path / "bin1" / "output.csv", delimiter=",", skiprows=1)
    assert np.array_equal(out[:, 1], s["output"])
    # Membrane traces: −65 mV rest range, the 30 mV marker exactly at each recorded unit's spikes.
    v = s["voltage"]
    assert v.shape == (len(s["t"]), 2)
    for j, unit in enumerate([0, 5]):
        steps = s["spike_steps"][s["spike_units"] == unit]
        marked = np.flatnonzero(v[:, j] == 30.0) + 1
        assert np.array_equal(marked, steps)
        assert v[:, j][v[:, j] != 30.0].max() < -40.0


def test_cordsnet_calls_equal_the_binary(tmp_path):
    binary("cordsnet", "simulate", "--mnist", 0, "--spont", 5, "--stim", 5,
           "--out", tmp_path / "traj.csv")
    t = nd.cordsnet_simulate(mnist=0, spont=5, stim=5)
    ref = np.loadtxt(tmp_path / "traj.csv", delimiter=",", skiprows=1)
    assert np.array_equal(ref, t.to_numpy())
    binary("cordsnet", "steady-state", "--mnist", 0, "--out", tmp_path / "ss.csv")
    ss = nd.cordsnet_steady_state(mnist=0)
    assert np.array_equal(np.loadtxt(tmp_path / "ss.csv", delimiter=",", skiprows=1),
                          ss.to_numpy())
    # An image array: the same as the binary given the same image as .npy.
    img, _ = mnist_test_slice()
    x = ((img[3] / 255.0 - 0.1307) / 0.3081).astype(np.float64)
    np.save(tmp_path / "img.npy", x)
    binary("cordsnet", "simulate", "--image", tmp_path / "img.npy", "--spont", 3, "--stim", 4,
           "--out", tmp_path / "traj2.csv")
    t2 = nd.cordsnet_simulate(image=x, spont=3, stim=4)
    assert np.array_equal(np.loadtxt(tmp_path / "traj2.csv", delimiter=",", skiprows=1),
                          t2.to_numpy())
    # The Ritz values of a convolution: its eigenvalues are those of the dense matrix.
    k = np.random.default_rng(0).normal(size=(2, 2, 3, 3)) * 0.2
    r = nd.cordsnet_spectrum(k, (4, 4), m=32, k=4)
    dense = np.zeros((32, 32))
    for c in range(2):
        for i in range(4):
            for j in range(4):
                e = np.zeros((2, 4, 4))
                e[c, i, j] = 1
                pad = np.pad(e, ((0, 0), (1, 1), (1, 1)))
                y = np.zeros((2, 4, 4))
                for o in range(2):
                    for a in range(4):
                        for b in range(4):
                            y[o, a, b] = np.sum(k[o] * pad[:, a:a + 3, b:b + 3])
                dense[:, c * 16 + i * 4 + j] = y.ravel()
    lead = np.sort(np.abs(np.linalg.eigvals(dense)))[::-1][:2]
    assert np.allclose(np.sort(np.hypot(r["re"], r["im"]))[::-1][:2], lead, rtol=1e-8)


def test_cnn_training_and_prediction_on_arrays(tmp_path):
    run = nd.train_cnn(tmp_path / "cnn", epochs=1, train_limit=300, test_limit=100,
                       progress=False)
    img, lab = mnist_test_slice()
    logits = nd.cnn_predict(run.checkpoint, img[:100])
    assert logits.shape == (100, 10)
    acc = np.mean(logits.argmax(1) == lab[:100])
    assert acc == pytest.approx(float(run.metrics["test_accuracy"].iloc[-1]), abs=1e-12)
    # Floats in [0, 1] are the same images; another batch size changes only f32 rounding.
    assert np.array_equal(nd.cnn_predict(run.checkpoint, img[:100] / 255.0), logits)
    assert np.allclose(nd.cnn_predict(run.checkpoint, img[:3]), logits[:3], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="images"):
        nd.cnn_predict(run.checkpoint, img[:2].astype(float))  # 0–255 as floats


def test_bad_input_names_the_flag(tmp_path):
    with pytest.raises(ValueError, match="`epochs`"):
        nd.train(tmp_path / "a", epochs="many")
    with pytest.raises(ValueError, match="`bogus`"):
        nd.train(tmp_path / "a", bogus=1)
    with pytest.raises(ValueError, match="`task`"):
        nd.spiking_grid(RATE_XOR, "go-nogo", progress=False)
    with pytest.raises(ValueError, match="`command`"):
        nd.command("no-such-binary")
    assert not (tmp_path / "a").exists()
    assert "--epochs" in nd.help("train") and "--epochs" in nd.train.__doc__


def test_continuation_run_gives_the_binary_tables_and_two_parameter_curves(tmp_path):
    preset = ROOT / "models" / "organics-2d-bistable.toml"
    opts = {"model": preset, "param": "W_r", "from": 3, "to": 0.5, "param2": "b0", "from2": 1,
            "to2": 0}
    binary("continuation", *[a for k, v in opts.items() for a in (f"--{k}", v)],
           "--out", tmp_path / "bin")
    r = nd.continuation_run(tmp_path / "py", progress=False, **opts)
    for f in ("branch.csv", "bifurcations.csv", "curves.csv", "codim2.csv"):
        same_bytes(tmp_path / "bin" / f, tmp_path / "py" / f)
    assert set(r["bifurcations"]["kind"]) == {"fold", "hopf"}
    assert list(r["codim2"]["kind"]) == ["bogdanov_takens"]
    assert set(r["curves"]["kind"]) == {"fold", "hopf"}


def test_continuation_run_switches_branches_at_a_pitchfork(tmp_path):
    # dx/dt = -x + g W tanh x, W = [[0, 1], [1, 0]]: the pitchfork at g = 1 onto x0 = x1 = s,
    # s = g tanh s, both halves followed to g = 2 (the `--switch` flag, through the binary).
    np.save(tmp_path / "W.npy", np.array([[0.0, 1.0], [1.0, 0.0]]))
    np.save(tmp_path / "x0.npy", np.zeros(2))
    r = nd.continuation_run(tmp_path / "out", progress=False, W=tmp_path / "W.npy",
                            x0=tmp_path / "x0.npy", activation="tanh", param="g",
                            switch=True, **{"from": 0.5, "to": 2})
    assert list(r["bifurcations"]["kind"]) == ["branch_point"]
    s = r["switched"]
    assert set(s["half"]) == {0, 1}
    np.testing.assert_allclose(s["x0"], s["x1"], atol=1e-10)
    np.testing.assert_allclose(s["x0"], s["param"] * np.tanh(s["x0"]), atol=1e-10)
    end = np.sort(s["x0"][np.isclose(s["param"], 2.0, atol=1e-12)])
    np.testing.assert_allclose(end, [-1.91500804815454, 1.91500804815454], atol=1e-9)
