"""Brian2 peer for neurodyn's LIF network (Kim, Li & Sejnowski 2019), per-step algorithm as in
neurodyn::spiking::lif (the original's order): voltage update with the integer refractory gate and
N(0, 0.1²) noise, threshold −40 mV, event-driven recurrent input J_D, double-exponential filters
updated with the old h, hr, reset to −65 mV; read-out o = w_out · r every step.

Usage: lif_brian2.py DATA_DIR TARGET(numpy|cython) [TRIALS]
Reads DATA_DIR/lif_{W,Win,taud,wout,u,v0}.npy (W = λW already scaled, tau_d in seconds).
Prints one JSON line: per-trial wall time (excluding code generation: the first run compiles and
is not timed), spike counts with noise off (v0 given) and with noise on."""
import json, sys, time
import numpy as np
import brian2 as b2

d, target = sys.argv[1], sys.argv[2]
trials = int(sys.argv[3]) if len(sys.argv) > 3 else 3
b2.prefs.codegen.target = target
b2.prefs.core.default_float_dtype = np.float64
W = np.load(f"{d}/lif_W.npy"); Win = np.load(f"{d}/lif_Win.npy"); taud = np.load(f"{d}/lif_taud.npy")
wout = np.load(f"{d}/lif_wout.npy"); u = np.load(f"{d}/lif_u.npy"); v0 = np.load(f"{d}/lif_v0.npy")
N = W.shape[0]
dt = 5e-5
nt = (u.shape[0] - 1) * 100
# External current per step i = 1..nt: column round(i/100) (half away from zero, as MATLAB).
cols = np.floor(np.arange(1, nt + 1) / 100.0 + 0.5).astype(int)
ext = (Win @ u.reshape(1, -1) if u.ndim == 1 else Win @ u.T)  # N × columns
ext_steps = b2.TimedArray(ext[:, cols].T.copy(), dt=dt * b2.second)
b2.defaultclock.dt = dt * b2.second
tau_r, tau_m, nref = 0.002, 0.010, 40

def make(noise, seed):
    b2.start_scope()
    b2.seed(seed)
    G, S = build_with_istep(noise)
    mon = b2.StateMonitor(G, "r", record=True, when="end", order=20)
    net = b2.Network(G, S, mon)
    return net, G, mon

def build_with_istep(noise):
    eqs = """
    v : 1
    ipsc : 1
    h : 1
    r : 1
    hr : 1
    jd : 1
    spiked : 1
    ilast : 1
    istep : 1
    ed : 1
    inv_rd : 1
    """
    G = b2.NeuronGroup(N, eqs, threshold="v >= -40", reset="v = -65\nspiked = 1\nilast = istep",
                       method="euler", namespace={"ext_steps": ext_steps})
    noise_term = " + 0.1*randn()" if noise else ""
    G.run_regularly(
        "istep = int(t/dt + 0.5) + 1\n"
        f"v = v + int(istep > ilast + {nref}) * {dt!r} * (-v + ipsc - 40 + ext_steps(t, i)) / {tau_m!r}{noise_term}",
        when="groups", name="vupdate")
    er = repr(float(np.exp(-dt / tau_r)))
    G.run_regularly(
        f"ipsc = ipsc*ed + h*{dt!r}\n"
        f"h = h*{er} + jd*inv_rd\n"
        f"r = r*ed + hr*{dt!r}\n"
        f"hr = hr*{er} + spiked*inv_rd\n"
        "jd = 0\nspiked = 0",
        when="end", order=10, name="filters")
    G.v = v0
    G.ilast = 0
    G.ed = np.exp(-dt / taud)
    G.inv_rd = 1.0 / (tau_r * taud)
    S = b2.Synapses(G, G, "w : 1", on_pre="jd_post += w")
    src, dst = np.nonzero(W.T != 0)
    S.connect(i=src, j=dst)
    S.w = W.T[src, dst]
    return G, S

def run_trial(noise, seed, counter):
    net, G, mon = make(noise, seed)
    sp = b2.SpikeMonitor(G)
    net.add(sp)
    t0 = time.perf_counter()
    net.run(nt * dt * b2.second)
    el = time.perf_counter() - t0
    out = wout @ mon.r
    return el, int(sp.num_spikes), out

# First run: code generation and compilation (not timed).
run_trial(True, 0, 0)
times, counts = [], []
for k in range(trials):
    el, c, _ = run_trial(True, 1 + k, k)
    times.append(el); counts.append(c)
_, quiet_count, quiet_out = run_trial(False, 0, 0)
print(json.dumps({
    "target": target, "N": N, "steps": nt, "synapses": int(np.count_nonzero(W)),
    "seconds_per_trial": float(np.median(times)), "all_seconds": times,
    "spikes_noise_on_mean": float(np.mean(counts)), "spikes_noise_off": quiet_count,
    "output_noise_off_end": float(quiet_out[-1]),
}))
