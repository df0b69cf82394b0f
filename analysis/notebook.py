"""A Python session with neurodyn, as a notebook would run it (no training here):

    cargo run --release --bin train -- --task go-nogo --out run/      # makes run/checkpoint.safetensors
    pip install ./python matplotlib                                   # or: see README, "Python"
    python analysis/notebook.py run/checkpoint.safetensors           # writes figures/notebook_*.png

It loads the trained rate network's weights, finds the fixed points of its input-free flow
tau dx/dt = -x + W sigmoid(x), computes the Lyapunov spectrum of that flow, and plots both.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import neurodyn as nd

path = sys.argv[1] if len(sys.argv) > 1 else "run/checkpoint.safetensors"
ck = nd.load_checkpoint(path)
W, tau = ck["W"], ck["tau"]  # the effective (Dale) weights and time constants in steps
print("cell:", ck["__metadata__"].get("cell"), "N =", W.shape[0])

# The flow tau * dx/dt = -x + W sigmoid(x) with the network's own per-unit tau (time in steps).
fp = nd.fixed_points(W, activation="sigmoid", tau=tau, starts=64, box=(-5, 5))
print(f"{len(fp['x'])} fixed points:", fp["classes"])
spec = nd.lyapunov(W, fp["x"][0] + 0.01, map="sigmoid", tau=tau, flow=True, dt=0.5, warmup=500,
                   steps=5000, k=10)
print("largest Lyapunov exponents:", spec[:5])

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
for k, ev in enumerate(fp["eigenvalues"]):
    a.scatter(ev.real, ev.imag, s=12, label=f"#{k} {fp['classes'][k]}")
a.axvline(0, color="k", lw=0.5)
a.set(xlabel="Re λ", ylabel="Im λ", title="Jacobian spectra at the fixed points")
a.legend(fontsize=7)
b.plot(spec, "o-", ms=3)
b.axhline(0, color="k", lw=0.5)
b.set(xlabel="i", ylabel="λ_i (per unit time)", title="Lyapunov spectrum of the flow")
fig.tight_layout()
fig.savefig("figures/notebook_checkpoint.png", dpi=120)
print("wrote figures/notebook_checkpoint.png")
