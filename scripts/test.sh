#!/usr/bin/env bash
# Sets up, builds and runs every test: the CUDA backend (when nvcc is at /usr/local/cuda) and the HIP backend, each
# with host tests, codegen tests (AMD assembly from hipcc, PTX from nvcc), compile-fail tests, and the GPU tests,
# which run when a GPU of that backend is present and are reported as skipped otherwise; and the formatting of every
# C++ source (clang-format).
#   scripts/test.sh [BUILD_ROOT]        (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-build}
scripts/install_deps.sh
jobs=$(nproc)
status=0
# Formatting: every C++ source must be as .clang-format says (clang-format 14, Debian 12).
echo "== clang-format =="
unformatted=$(git ls-files -co --exclude-standard 'include/*' 'tests/*' 'examples/*' 'bench/*' |
  grep -E '\.(hpp|cpp|cu|cuh|inl|h)$' | while read -r f; do
    clang-format --dry-run -Werror "$f" > /dev/null 2>&1 || echo "$f"
  done)
if [ -n "$unformatted" ]; then
  echo "clang-format: these files differ from .clang-format (run clang-format -i on them):"
  echo "$unformatted"
  status=1
else
  echo "clang-format: all files formatted"
fi
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
