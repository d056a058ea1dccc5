#!/usr/bin/env bash
# Sets up, builds and runs the quickstart GEMM on this machine's GPU: an NVIDIA GPU through CUDA (nvcc at
# /usr/local/cuda), else an AMD GPU through HIP. Without a GPU it builds what it can and says so.
#   scripts/quickstart.sh [BUILD_DIR] [-- quickstart arguments, e.g. --m 8 --k 4096 --n 11008]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/quickstart}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
scripts/install_deps.sh
jobs=$(nproc)
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || { [ -x /usr/local/cuda/bin/nvcc ] && [ ! -e /dev/kfd ]; }; then
  cmake -S . -B "$build" -DOPT4GPTQ_GPU=CUDA -DCMAKE_BUILD_TYPE=Release -DOPT4GPTQ_BUILD_TESTS=OFF \
        -DOPT4GPTQ_BUILD_BENCH=OFF -DOPT4GPTQ_BUILD_DOCS=OFF >/dev/null
else
  cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=hipcc -DCMAKE_BUILD_TYPE=Release -DOPT4GPTQ_BUILD_TESTS=OFF \
        -DOPT4GPTQ_BUILD_BENCH=OFF -DOPT4GPTQ_BUILD_DOCS=OFF >/dev/null
fi
cmake --build "$build" -j "$jobs" --target quickstart
set +e
"$build/examples/quickstart" "$@"
rc=$?
set -e
if [ $rc -eq 77 ]; then
  echo "quickstart: built in $build, but this machine has no GPU, so nothing ran. Run the same command on a machine"
  echo "with an NVIDIA GPU (CUDA toolkit at /usr/local/cuda) or an AMD GPU (gfx906/gfx90a/gfx940)."
  exit 0
fi
exit $rc
