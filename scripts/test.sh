#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
# Installs the system packages the tests need when they are missing (Debian/Ubuntu, apt), then runs
# every test in release mode (numeric code is ~300x slower in debug; tests and binaries share the
# release profile, so nothing is compiled twice).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
# Software Vulkan (lavapipe) for the wgpu compute-shader tests (tests/train_gpu.rs).
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
