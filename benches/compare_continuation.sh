#!/usr/bin/env bash
# pycont-lite and neurodyn's `continuation` on the same problems in one run: the closed-form fold
# and Hopf problems (accuracy of the located points) and 200-point branches of the rate RNN
# dx/dt = −x + p W tanh(x) + b at N = 100 and 500 (the peers' rnn_N*_g0.5 files, W = 0.5 Z/√N),
# continued in p from 1 with ds = 0.02, with full spectra at every point and with the tracked
# `--spectrum nearest` ones. Needs: ../shared/peers/setup.sh --with-pycont
source "$(dirname "$0")/peers/env.sh"
"$VENV/bin/python" - <<'PY'
import numpy as np, os
d = os.environ["PEERS_DATA"]
for N in (100, 500):
    if not os.path.exists(f"{d}/rnn_N{N}_g0.5_W.npy"):
        rng = np.random.default_rng(0)
        W = 0.5 * rng.standard_normal((N, N)) / np.sqrt(N); x0 = rng.standard_normal(N); b = 0.1 * rng.standard_normal(N)
        for k, v in (("W", W), ("x0", x0), ("b", b)): np.save(f"{d}/rnn_N{N}_g0.5_{k}.npy", v)
PY
"$VENV/bin/python" benches/peers/continuation.py > "$PEERS_DATA/continuation.json"
"$VENV/bin/python" - "$PEERS_DATA/continuation.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"pycont fold1d: folds {r['fold1d']['folds']} (exact ±{r['fold1d']['exact'][1]:.12f}), max error {r['fold1d']['max_error']:.2e}, {r['fold1d']['seconds']:.3f} s")
print(f"pycont hopf2d: {r['hopf2d']['hopf']} (exact 1), {r['hopf2d']['seconds']:.3f} s")
for N in (100, 500):
    for k, v in r[f"rnn{N}"].items():
        print(f"pycont rnn N={N} {k}: {v['points']} points in {v['seconds']:.3f} s ({1e3*v['s_per_point']:.2f} ms/point), p_end {v['p_end']:.6f}, max residual {v['max_residual']:.1e}")
PY
cargo build --release --bin continuation 2>/dev/null
BIN=target/release/continuation
D=$PEERS_DATA
T=$(mktemp -d)
python3 - "$D" "$T" <<'PY'
import struct, sys
d, t = sys.argv[1], sys.argv[2]
def save(name, v):
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % len(v)
    pad = (64 - (10 + len(hdr) + 1) % 64) % 64
    hdr += ' ' * pad + '\n'
    open(name, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + struct.pack('<%dd' % len(v), *v))
save(f"{t}/W1.npy", [2.0]); save(f"{t}/x1.npy", [-2.96])
PY
# 1-D W as a 1×1 matrix:
python3 - "$T" <<'PY'
import struct, sys
t = sys.argv[1]
hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }"
pad = (64 - (10 + len(hdr) + 1) % 64) % 64
hdr += ' ' * pad + '\n'
open(f"{t}/W1.npy", 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + struct.pack('<d', 2.0))
PY
s=$(date +%s.%N); $BIN --W "$T/W1.npy" --x0 "$T/x1.npy" --activation tanh --param bias --from -1 --to 1 --quiet --out "$T/f"; e=$(date +%s.%N)
echo "neurodyn fold1d: $(grep fold "$T/f/bifurcations.csv" | cut -d, -f2 | tr '\n' ' ')(exact ±0.532839975353552), $(echo "$e - $s" | bc) s"
for N in 100 500; do
  for SPEC in full nearest; do
    s=$(date +%s.%N)
    $BIN --W "$D/rnn_N${N}_g0.5_W.npy" --b "$D/rnn_N${N}_g0.5_b.npy" --x0 "$D/cont_N${N}_x0.npy" --activation tanh \
      --param g --from 1 --to 1000 --max-points 201 --ds 0.02 --ds-max 0.02 --spectrum $SPEC --quiet --out "$T/r$N$SPEC"
    e=$(date +%s.%N)
    pts=$(($(wc -l < "$T/r$N$SPEC/branch.csv") - 1))
    echo "neurodyn rnn N=$N --spectrum $SPEC: $pts points in $(echo "$e - $s" | bc) s, p_end $(tail -1 "$T/r$N$SPEC/branch.csv" | cut -d, -f1)"
  done
  "$VENV/bin/python" - "$T/r${N}full/branch.csv" "$T/r${N}nearest/branch.csv" <<'PY'
import csv, sys
a, b = ([r for r in csv.DictReader(open(f))] for f in sys.argv[1:])
du = sum(x["n_unstable"] != y["n_unstable"] for x, y in zip(a, b))
dm = max(abs(float(x["max_re_eig"]) - float(y["max_re_eig"])) for x, y in zip(a, b))
print(f"  nearest vs full: {du} rows with another n_unstable, max |Δ max_re_eig| {dm:.1e}")
PY
done
rm -rf "$T"
