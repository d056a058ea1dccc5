#!/usr/bin/env bash
# Compares the generated code of every test kernel between a git revision and the working tree: sm_90 (ptxas
# registers, barriers, shared memory; the PTX itself, up to symbol and virtual-register names) and gfx906 (the
# assembly, up to symbol names; VGPR, SGPR, LDS, scratch). For refactors that must not change the kernels.
#
#   bench/codegen_compare/compare.sh BASE_REVISION OUT_DIR
#
# Needs nvcc (/usr/local/cuda/bin) and hipcc; no GPU. Writes OUT_DIR/report.md; exit status 0 when all is identical.
set -euo pipefail
base=${1:?usage: compare.sh BASE_REVISION OUT_DIR}
out=${2:?usage: compare.sh BASE_REVISION OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
rm -rf "$out/base-src"
git -C "$repo" worktree add --detach --force "$out/base-src" "$base" > /dev/null
trap 'git -C "$repo" worktree remove --force "$out/base-src" > /dev/null 2>&1 || true' EXIT

generate() {  # generate TREE DIR
  local tree=$1 dir=$2
  mkdir -p "$dir"
  for kernel in $(seq 0 10); do
    "$nvcc" -std=c++17 -O3 -arch=sm_90 -cubin -Xptxas -v -x cu -diag-suppress 177 -I"$tree/include" \
      -I"$tree/examples" -DOPT4GPTQ_COMPARE_KERNEL=$kernel -o "$dir/sm_90_$kernel.cubin" "$here/entry_points.cpp" \
      2> "$dir/sm_90_$kernel.ptxas" &
    "$nvcc" -std=c++17 -O3 -arch=sm_90 -ptx -x cu -diag-suppress 177 -I"$tree/include" -I"$tree/examples" \
      -DOPT4GPTQ_COMPARE_KERNEL=$kernel -o "$dir/sm_90_$kernel.ptx" "$here/entry_points.cpp" &
    hipcc -std=c++17 -O3 --offload-arch=gfx906 --cuda-device-only -S -Wno-unused-command-line-argument \
      -I"$tree/include" -I"$tree/examples" -DOPT4GPTQ_COMPARE_KERNEL=$kernel -o "$dir/gfx906_$kernel.s" \
      "$here/entry_points.cpp" &
    wait
  done
}
generate "$out/base-src" "$out/base"
generate "$repo" "$out/current"
python3 "$here/compare.py" "$out/base" "$out/current" "$base" > "$out/report.md"
if command -v cuobjdump > /dev/null 2>&1; then  # the SASS as well, where the CUDA toolkit has cuobjdump
  { echo; echo '```'; python3 "$here/sass_compare.py" "$out/base" "$out/current" || true; echo '```'; } >> "$out/report.md"
fi
cat "$out/report.md"
! grep -q "DIFFERS" "$out/report.md"
