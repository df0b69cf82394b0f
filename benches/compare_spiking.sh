#!/usr/bin/env bash
# Brian2 (numpy and cython targets, runtime mode) and neurodyn on the same LIF network in one run:
# a Go/NoGo rate network (N = 200) trained by `train`, converted at s = 30, one Go trial of
# 20,000 steps of 0.05 ms. Reports the wall time per trial (Brian2 without code generation) and
# the spike counts (noise off: deterministic; noise on: mean over trials).
# Needs: ../shared/peers/setup.sh --with-brian2   (BRIAN2_VENV, default ~/.cache/neurodyn-peers/brian2-venv)
source "$(dirname "$0")/peers/env.sh"
BV=${BRIAN2_VENV:-$HOME/.cache/neurodyn-peers/brian2-venv}
D=$PEERS_DATA
cargo build --release --bin train --bin spiking 2>/dev/null
if [ ! -f "$D/lif-gng/checkpoint.safetensors" ]; then
  target/release/train --task go-nogo --cell rate --hidden 200 --epochs 16 --out "$D/lif-gng" --quiet
fi
"$VENV/bin/python" - "$D" <<'PY'
import json, struct, sys
import numpy as np
d = sys.argv[1]
b = open(f"{d}/lif-gng/checkpoint.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
def t(k):
    s, e = h[k]["data_offsets"]
    return np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float64).reshape(h[k]["shape"])
s = 30.0
np.save(f"{d}/lif_W.npy", t("W") / s); np.save(f"{d}/lif_Win.npy", t("W_in"))
np.save(f"{d}/lif_taud.npy", t("tau") * 5e-3); np.save(f"{d}/lif_wout.npy", t("W_out")[0] / s)
u = np.zeros(201); u[50:75] = 1.0; np.save(f"{d}/lif_u.npy", u)
np.save(f"{d}/lif_v0.npy", -65 + 95 * np.random.default_rng(0).random(t("W").shape[0]))
PY
for target in numpy cython; do
  "$BV/bin/python" benches/peers/lif_brian2.py "$D" $target 3 | tee "$D/lif_brian2_$target.json"
done
NEURODYN_LIF_DATA="$D" cargo bench --bench spiking -- --noplot 'peer' 2>/dev/null | grep -E "neurodyn|time:" 
