#!/usr/bin/env bash
# Installs the Debian 12 packages opt4gptq builds with, when any is missing: CMake, a C++ compiler, Catch2, Doxygen,
# clang-format (the tests check the formatting), nlohmann-json and CLI11 (the checkpoint loader example and its tests),
# and ROCm's HIP compiler, runtime headers and rocPRIM (Debian's hipcc targets gfx906 = HYGON DCU Z100, gfx90a,
# gfx940). The CUDA toolkit is not a Debian package: NVIDIA builds use the one at /usr/local/cuda when present.
set -euo pipefail
packages=(cmake make g++ catch2 doxygen clang-format hipcc libamdhip64-dev librocprim-dev nlohmann-json3-dev libcli11-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install_deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
