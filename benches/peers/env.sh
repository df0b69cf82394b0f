# Sourced by benches/compare_*.sh: the repository root as working folder, the peers' scripts
# (PEERS_DIR, default ../shared/peers), their venv (PEERS_VENV; ../shared/peers/setup.sh makes it)
# and the folder for the shared .npy problems and results (PEERS_DATA, default target/peers-data).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PEERS=${PEERS_DIR:-../shared/peers}
VENV=${PEERS_VENV:-$HOME/.cache/neurodyn-peers/venv}
export PEERS_DATA=${PEERS_DATA:-$PWD/target/peers-data}
mkdir -p "$PEERS_DATA"
if [ ! -x "$VENV/bin/python" ]; then
  echo "no peers venv at $VENV: run ../shared/peers/setup.sh (or set PEERS_VENV)" >&2
  exit 2
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
