#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
# Installs the system packages the tests need when they are missing (Debian/Ubuntu, apt), then runs
# every test in release mode (numeric code is ~300x slower in debug; tests and binaries share the
# release profile, so nothing is compiled twice).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
# Software Vulkan (lavapipe) for the wgpu compute-shader tests (tests/suite/train_gpu.rs).
if grep -q '^wgpu' Cargo.toml 2>/dev/null; then
  [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || [ -e /usr/share/vulkan/icd.d/lvp_icd.json ] || need_pkgs+=(mesa-vulkan-drivers libvulkan1)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing system packages: ${need_pkgs[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_pkgs[@]}"
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo test --release "$@"
cargo test --release --benches "$@"

# The Python package (python/): its wheel built by maturin against the release build above (only
# pyo3 and the extension compile), installed into a fresh venv, tested with pytest against numpy
# and scipy references, the binaries' own outputs, and pandas (pyarrow) reading the Parquet tables;
# the sharded sweep on a real Dask LocalCluster and through submitit's local executor, and the
# notebook example with matplotlib. Skipped with NEURODYN_SKIP_PYTHON=1.
if [ -z "${NEURODYN_SKIP_PYTHON:-}" ]; then
  PYVENV=target/pyvenv
  [ -x "$PYVENV/bin/python" ] || python3 -m venv "$PYVENV"
  "$PYVENV/bin/pip" install -q --upgrade pip
  "$PYVENV/bin/pip" install -q "maturin>=1.5,<2" numpy scipy pytest pandas pyarrow matplotlib tqdm dask distributed submitit
  rm -rf target/wheels
  "$PYVENV/bin/maturin" build --release -m python/Cargo.toml -i "$PYVENV/bin/python" --out target/wheels
  "$PYVENV/bin/pip" install -q --force-reinstall --no-deps target/wheels/neurodyn-*.whl
  "$PYVENV/bin/python" -m pytest -q python/tests
fi
