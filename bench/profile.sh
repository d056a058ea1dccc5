#!/usr/bin/env bash
# Nsight Compute profiles of the M = 1 kernels of the quick benchmark (Llama-2-7B qkv, 4096 x 12288, group 128), one
# kernel launch each, with the full section set, beside the read-only reference: where the time of a decode call goes.
#   bench/profile.sh OUT_DIR [BUILD_DIR]     (BUILD_DIR holds bench/bench_gemm; default build/bench)
# Writes OUT_DIR/<kernel>.ncu-rep (open with ncu-ui), OUT_DIR/<kernel>.txt (the details page) and OUT_DIR/summary.txt.
# Needs ncu (CUDA toolkit) and an NVIDIA GPU; clocks are left alone (--clock-control none), as in the benchmark.
set -uo pipefail
out=${1:?usage: bench/profile.sh OUT_DIR [BUILD_DIR]}
build=${2:-build/bench}
bench="$build/bench/bench_gemm"
[ -x "$bench" ] || { echo "no $bench: build the bench_gemm target first" >&2; exit 2; }
command -v ncu > /dev/null || { echo "ncu not found (CUDA toolkit's Nsight Compute)" >&2; exit 2; }
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Kernels by their mangled names: the first launch of each at M = 1 (1 row per block, no act-order) is the qkv
# layer's correctness launch, which the benchmark makes before it times anything.
kernels=(
  "read_reference:read_reference_kernel"
  "Baseline:LoadScalarENS0_11MathBuiltinENS0_9TileShapeILi128ELi128ELi128ELi1ELi4ELi1EEENS0_9CodecInt4EEENS0_18ReduceGlobalAtomic.*ELi1ELb0E"
  "Opt4GPTQ:LoadHalf2ENS0_13MathInlineAsm.*ReduceSharedBuffered.*ELi1ELb0E"
  "Deterministic:LoadVec8ENS0_13MathInlineAsm.*ReduceSharedSerial.*ELi1ELb0E"
)
: > "$out/summary.txt"
for entry in "${kernels[@]}"; do
  name=${entry%%:*}
  regex=${entry#*:}
  ncu --clock-control none --kernel-name-base mangled -k "regex:$regex" --launch-count 1 --set full -f \
    -o "$out/$name" "$bench" --out "$scratch" --quick --m 1 --reps 1 > "$out/$name.log" 2>&1
  if [ -f "$out/$name.ncu-rep" ]; then
    ncu --import "$out/$name.ncu-rep" --page details > "$out/$name.txt" 2>&1
    {
      echo "== $name"
      grep -E "^  \S.*\(|Duration|DRAM Throughput|Compute \(SM\) Throughput|Registers Per Thread|Achieved Occupancy|Theoretical Occupancy|Executed Ipc Active|Issue Slots Busy|L2 Hit Rate|Mem Busy|Max Bandwidth|One or More Eligible|Warp Cycles Per Issued" "$out/$name.txt"
    } >> "$out/summary.txt"
  else
    echo "== $name: no launch matched (see $name.log)" >> "$out/summary.txt"
  fi
done
cat "$out/summary.txt"
