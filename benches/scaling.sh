#!/usr/bin/env bash
# How time and peak memory grow with N: every analysis as a whole process (wall time from the
# clock around it, maximum resident set size from GNU time), one run, four sizes each, and the
# local log–log slopes d ln(time)/d ln N and d ln(memory)/d ln N between neighbouring sizes.
# Problems: the rate RNN dx/dt = −x + W tanh(x) + b with W = g Z/√N (Z standard normal, numpy
# seed 0), b = 0.1 z; CordsNet's 3 × 3 convolution operator with C channels on a 10 × 10 grid.
#
#   integrate      Tsit5, rtol 1e-6, t ∈ [0, 50], g = 1.5
#   fixed points   Newton from 16 starts, full spectra, g = 1.5
#   lyap full      tanh map, full spectrum, 50 steps, g = 1.5, --reorth auto
#   lyap k=10      tanh map, 10 exponents, 200 steps, g = 1.5
#   continuation   in the gain from W = 0.5 Z/√N, 201 points, --spectrum auto
#   arnoldi        conv operator, m = 60 steps, N = 100 C
#
# Usage: ./benches/scaling.sh [PYTHON]   (a Python with numpy; default target/pyvenv, which
# ./scripts/test.sh makes, or the peers' venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-}
for c in target/pyvenv/bin/python "$HOME/.cache/neurodyn-peers/venv/bin/python"; do
  [ -z "$PY" ] && [ -x "$c" ] && PY=$c
done
[ -n "$PY" ] || { echo "need a Python with numpy (run ./scripts/test.sh once, or pass one)" >&2; exit 2; }
cargo build --release --bin simulate --bin fixed-points --bin lyapunov --bin continuation --bin cordsnet 2>/dev/null
D=target/scaling-data
mkdir -p "$D"
"$PY" - "$D" <<'PY'
import sys, numpy as np
d = sys.argv[1]
for n in (100, 200, 500, 1000, 2000):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, n)) / np.sqrt(n)
    np.save(f"{d}/W{n}.npy", 1.5 * z); np.save(f"{d}/Wc{n}.npy", 0.5 * z)
    np.save(f"{d}/b{n}.npy", 0.1 * rng.standard_normal(n)); np.save(f"{d}/x{n}.npy", rng.standard_normal(n))
    np.save(f"{d}/z{n}.npy", np.zeros(n))
for c in (10, 40, 160, 640):
    rng = np.random.default_rng(0)
    np.save(f"{d}/k{c}.npy", rng.uniform(-1, 1, (c, c, 3, 3)) / (3 * np.sqrt(c)))
PY
B=target/release
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rows=()
run() { # name N command...
  local name=$1 n=$2; shift 2
  local t0 t1 s kb
  t0=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$T/time" "$@" > /dev/null 2>&1 || { echo "$name N=$n failed" >&2; return 1; }
  t1=$(date +%s%N)
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  read -r kb < "$T/time"
  rows+=("$name $n $s $kb")
  echo "$name N=$n: $s s, $((kb / 1024)) MB" >&2
}
for n in 100 200 500 1000; do
  run integrate $n $B/simulate --W $D/W$n.npy --b $D/b$n.npy --x0 $D/x$n.npy --activation tanh \
    --method tsit5 --rtol 1e-6 --atol 1e-9 --t1 50 --samples 11 --out "$T/sim$n.parquet"
done
for n in 100 200 500 1000; do
  run "fixed points" $n $B/fixed-points --W $D/W$n.npy --b $D/b$n.npy --activation tanh --starts 16 \
    --seed 0 --out "$T/fp$n.csv"
done
for n in 100 200 500 1000; do
  run "lyap full" $n $B/lyapunov --map tanh --W $D/W$n.npy --x0 $D/x$n.npy --steps 50 --reorth auto \
    --out "$T/ly$n.csv"
done
for n in 200 500 1000 2000; do
  run "lyap k=10" $n $B/lyapunov --map tanh --W $D/W$n.npy --x0 $D/x$n.npy --steps 200 --k 10 \
    --out "$T/lk$n.csv"
done
for n in 100 200 500 1000; do
  run continuation $n $B/continuation --W $D/Wc$n.npy --b $D/b$n.npy --x0 $D/z$n.npy --activation tanh \
    --param g --from 1 --to 1000 --max-points 201 --ds 0.02 --ds-max 0.02 --quiet --out "$T/c$n"
done
for c in 10 40 160 640; do
  run arnoldi $((100 * c)) $B/cordsnet spectrum --kernel $D/k$c.npy --size 10 10 --m 60 --k 10 \
    --out "$T/ritz$c.csv"
done
printf '%s\n' "${rows[@]}" | "$PY" -c '
import sys, math
rows = [l.rsplit(" ", 3) for l in sys.stdin.read().splitlines()]
print("| analysis | N | wall s | peak MB | time slope | memory slope |")
print("|---|---|---|---|---|---|")
last = {}
for name, n, s, kb in rows:
    n, s, mb = int(n), float(s), int(kb) / 1024
    ts = ms = "—"
    if name in last:
        n0, s0, m0 = last[name]
        r = math.log(n / n0)
        ts = f"{math.log(s / s0) / r:.2f}"
        ms = f"{math.log(mb / m0) / r:.2f}"
    last[name] = (n, s, mb)
    print(f"| {name} | {n:,} | {s:.3f} | {mb:.0f} | {ts} | {ms} |")
'
