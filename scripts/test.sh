#!/usr/bin/env bash
# Sets up, builds and runs every test: the CUDA backend (when nvcc is at /usr/local/cuda) and the HIP backend, each
# with host tests, codegen tests (AMD assembly from hipcc, PTX from nvcc), compile-fail tests, and the GPU tests,
# which run when a GPU of that backend is present and are reported as skipped otherwise.
#   scripts/test.sh [BUILD_ROOT]        (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-build}
scripts/install_deps.sh
jobs=$(nproc)
status=0
run() {  # run NAME CMAKE_ARGS...
  local name=$1
  shift
  echo "== $name backend =="
  cmake -S . -B "$root/$name" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$root/$name" -j "$jobs"
  (cd "$root/$name" && ctest --output-on-failure -j "$jobs") || status=1
}
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then
  run cuda -DOPT4GPTQ_GPU=CUDA
else
  echo "== CUDA backend skipped: no nvcc (install the CUDA toolkit at /usr/local/cuda) =="
fi
run hip -DCMAKE_CXX_COMPILER=hipcc
exit $status
