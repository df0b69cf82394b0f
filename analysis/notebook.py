"""A notebook session with neurodyn, in Python alone: train a Dale rate network on Go/NoGo, find the
fixed points of its flow and their spectra, its Lyapunov spectrum, follow its fixed points through
the recurrent gain g, turn it into a spiking LIF network, and plot all of it with matplotlib.

    pip install ./python matplotlib
    python analysis/notebook.py                 # the full run (≈ 2 min on 2 cores): figures/notebook.png
    python analysis/notebook.py --small --out /tmp/nb --figures /tmp/nb   # seconds (the test suite)

The network (Kim, Li & Sejnowski 2019) is the flow tau ∘ dx/dt = -x + W sigmoid(x) + W_in u with
W = W_raw ⊙ M Dale-masked and tau per unit (in time steps of 5 ms); its spiking version is the LIF
network W_spk = λW of the same paper, λ = 1/s chosen by a grid search over s.
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import neurodyn as nd  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="small sizes (seconds), for the tests")
    p.add_argument("--out", default="out/notebook", help="the training run and the spiking grid")
    p.add_argument("--figures", default="figures", help="where notebook.png/.svg go")
    a = p.parse_args(argv)
    small = a.small

    # 1. Train (resumable: rerunning continues from out/run).
    run = nd.train(os.path.join(a.out, "run"), task="go-nogo", cell="rate",
                   epochs=3 if small else 16, steps=10 if small else 50, progress=not small)
    m = run.metrics
    print(f"trained {len(m)} epochs: accuracy {m['accuracy'].iloc[-1]:.2f}")
    ck = run.checkpoint
    net = nd.load_checkpoint(ck)
    W, tau = net["W"], net["tau"]

    # 2. Fixed points of the input-free flow and their Jacobian spectra.
    fp = nd.fixed_points(checkpoint=ck, starts=16 if small else 128, seed=1)
    print(f"{len(fp['x'])} fixed point(s):", fp["classes"])

    # 3. Lyapunov spectrum of the same flow (RK4, exponents per time step of the network).
    x0 = fp["x"][0] + 0.01
    lyap = nd.lyapunov(checkpoint=ck, h0=x0, warmup=100 if small else 1000,
                       steps=400 if small else 5000, k=6 if small else 12, dt=0.5)
    print("leading Lyapunov exponents:", np.round(lyap[:4], 4))

    # 4. The fixed point followed through the recurrent gain g (W → gW), from the trained g = 1.
    br = nd.continuation(W, fp["x"][0], param="g", start=1.0, stop=3.0 if small else 6.0,
                         activation="sigmoid", tau=tau, max_points=200 if small else 1000)
    kinds = [(b["kind"], round(b["param"], 4)) for b in br["bifurcations"]]
    print("bifurcations in g:", kinds or "none")

    # 5. The spiking network: the λ grid search, then one trial at the chosen s.
    g = nd.spiking_grid(ck, "go-nogo", os.path.join(a.out, "spiking"),
                        trials=4 if small else 50, scaling="20:40:10" if small else "5:75:5",
                        progress=not small)
    s_best = g["summary"]["scaling_factor"]
    trial = nd.spiking_simulate(ck, "go-nogo", s_best, trial=1)
    print(f"chosen s = {s_best}: LIF accuracy {g['summary']['accuracy']:.2f}, "
          f"{len(trial['spike_times'])} spikes in one trial")

    fig, ax = plt.subplots(2, 3, figsize=(14, 7.5))
    ax[0, 0].plot(m["epoch"], m["loss"], "o-", label="training loss")
    ax[0, 0].plot(m["epoch"], m["eval_loss"], "s-", label="held-out loss")
    ax[0, 0].set(xlabel="epoch", ylabel="loss", title="1. training (Go/NoGo)")
    ax[0, 0].legend()
    for j, ev in enumerate(fp["eigenvalues"]):
        ax[0, 1].scatter(ev.real, ev.imag, s=10, label=f"#{j} {fp['classes'][j]}")
    ax[0, 1].axvline(0, color="k", lw=0.6)
    ax[0, 1].set(xlabel="Re λ", ylabel="Im λ", title="2. spectra at the fixed points")
    ax[0, 1].legend(fontsize=7)
    ax[0, 2].plot(np.arange(1, len(lyap) + 1), lyap, "o-")
    ax[0, 2].axhline(0, color="k", lw=0.6)
    ax[0, 2].set(xlabel="i", ylabel="λ_i (per step)", title="3. Lyapunov spectrum of the flow")
    st = br["stable"]
    norm = np.linalg.norm(br["x"], axis=1)
    ax[1, 0].plot(br["param"][st], norm[st], ".", ms=3, color="C0", label="stable")
    ax[1, 0].plot(br["param"][~st], norm[~st], ".", ms=3, color="C3", label="unstable")
    for j, b in enumerate(br["bifurcations"]):
        ax[1, 0].plot(b["param"], np.linalg.norm(b["x"]), "k*", ms=11, zorder=5)
        ax[1, 0].annotate(f"{b['kind']} g = {b['param']:.3f}", (b["param"], np.linalg.norm(b["x"])),
                          fontsize=8, xytext=(-90, 10 - 16 * j), textcoords="offset points")
    ax[1, 0].set(xlabel="gain g", ylabel="‖x*‖", title="4. continuation in g")
    ax[1, 0].legend(fontsize=8)
    grid = g["grid"]
    ax[1, 1].plot(grid["scaling_factor"], grid["accuracy"], "o-")
    ax[1, 1].axvline(s_best, color="k", ls="--", lw=0.8)
    ax[1, 1].set(xlabel="s = 1/λ", ylabel="LIF accuracy", title="5. spiking: the λ grid")
    ax[1, 2].plot(trial["spike_times"], trial["spike_units"], "|", ms=3, color="k")
    ax[1, 2].set(xlabel="time (s)", ylabel="unit", title=f"5. LIF raster at s = {s_best:g}")
    fig.tight_layout()
    os.makedirs(a.figures, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(a.figures, f"notebook.{ext}"), dpi=110)
    print(f"wrote {a.figures}/notebook.png/.svg")
    return {"metrics": m, "fixed_points": fp, "lyapunov": lyap, "branch": br, "spiking": g}


if __name__ == "__main__":
    main()
