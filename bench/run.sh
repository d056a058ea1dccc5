#!/usr/bin/env bash
# Runs the benchmark and writes its report: results.csv, results.json, summary.md and PNG plots in OUT_DIR.
#   bench/run.sh OUT_DIR [--quick] [BUILD_DIR] [-- BENCH_GEMM_ARGS...]
# The full run measures M = 1..128 and the prefill points M = 256..4096 (the SIMT presets up to 128; the tensor-core
# presets, the prefill path DequantCublas and the dispatcher's `auto` at every M); its CSV is what
# bench/make_dispatch_table.py turns into a dispatch table.
# --quick: Llama-2-7B's layers, M in {1, 8, 32}, 20 repetitions (under a minute). The report needs python3 (and
# matplotlib for the plots). Builds BUILD_DIR (default build/bench) first when it has no bench_gemm.
# Everything after `--` goes to bench_gemm as it is, after `--out OUT_DIR [--quick]`, e.g. the bf16 rows beside the
# fp16 ones (report.py adds its bf16 section; make_dispatch_table.py reads the fp16 rows only):
#   bench/run.sh OUT_DIR -- --dtype both
#   bench/run.sh OUT_DIR build/bench -- --dtype both --shapes peers --m 1,16,256 --kernels auto,Bf16Auto
set -euo pipefail
usage="usage: bench/run.sh OUT_DIR [--quick] [BUILD_DIR] [-- BENCH_GEMM_ARGS...]"
out=${1:?$usage}
shift
quick=""
build=build/bench
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick="--quick" ;;
    --)
      shift
      extra=("$@")
      break
      ;;
    -*)
      echo "bench/run.sh: unknown option $1 (bench_gemm's options go after --)" >&2
      echo "$usage" >&2
      exit 2
      ;;
    *) build=$1 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
mkdir -p "$out"
if [ ! -x "$build/bench/bench_gemm" ]; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    cmake -S . -B "$build" -DOPT4GPTQ_GPU=CUDA -DCMAKE_BUILD_TYPE=Release -DOPT4GPTQ_BUILD_TESTS=OFF >/dev/null
  else
    cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=hipcc -DCMAKE_BUILD_TYPE=Release -DOPT4GPTQ_BUILD_TESTS=OFF >/dev/null
  fi
  cmake --build "$build" -j "$(nproc)" --target bench_gemm
fi
"$build/bench/bench_gemm" --out "$out" $quick ${extra[@]+"${extra[@]}"}
python3 bench/report.py "$out"
