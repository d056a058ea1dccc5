#!/usr/bin/env bash
# Every check of the Python package on a GPU machine, in one run, from the repository root:
#
#   bash python/tools/run_gpu_checks.sh OUT_DIR [--model-table | --model-table-only] [--model-table-args "..."]
#
# One device call has 600 s: the checks (steps 1-4) fit in it; the model table is a second call with
# --model-table-only (it installs the package first if `import opt4gptq` fails, with $OPT4GPTQ_BUILD_SETTING or the
# default setting).
#
#   1. the exception build probe (tools/exception_build_probe.py): which build setting survives a number-holding
#      exception here; its recommendation is used for step 2 (unless OPT4GPTQ_BUILD_SETTING is set already);
#   2. builds and installs the package: pip install --no-build-isolation ./python (falls back to an in-place build,
#      used through PYTHONPATH, if pip cannot install: the tests still run);
#   3. the pytest suite (junit XML);
#   4. the bad-input cases and valid calls of every path under compute-sanitizer --tool memcheck;
#   5. with --model-table: python/bench/model_table.py into OUT_DIR/model_table.
# Writes only under OUT_DIR, few files (the device tool brings back at most 8): summary.txt (environment, each step's
# outcome and time, the probe's table, the tails of the failures), pytest.log, junit.xml, logs.tar.gz (full logs of
# the probe, the build and memcheck), and model_table/ (table.md, table.csv, gains.png, run.log). Budget without the
# model table: about 5-8 minutes on an H200 machine (16 cores). Exit status 0 when every step passed.
set -u -o pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 OUT_DIR [--model-table] [--model-table-args \"...\"]" >&2
  exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
shift
MODEL_TABLE=0
CHECKS=1
MODEL_TABLE_ARGS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model-table) MODEL_TABLE=1 ;;
    --model-table-only) MODEL_TABLE=1; CHECKS=0 ;;
    --model-table-args) MODEL_TABLE_ARGS="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
PY=${PYTHON:-python3}
LOGS="$OUT/logs"
mkdir -p "$LOGS"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export PYTHONUNBUFFERED=1
export TMPDIR_PROBE=$(mktemp -d)
FAILED=0

say() { echo "$*" | tee -a "$SUMMARY"; }
# The device tool gives one command 600 s: every step's limit is cut to what is left of DEADLINE, so that the summary
# is complete even when a step runs long (set OPT4GPTQ_CHECKS_DEADLINE for a longer budget, e.g. with the model table).
DEADLINE=${OPT4GPTQ_CHECKS_DEADLINE:-$([ $MODEL_TABLE -eq 1 ] && [ $CHECKS -eq 1 ] && echo 2400 || echo 570)}
step() {  # step NAME TIMEOUT_S LOGFILE COMMAND...: runs, records outcome and time
  local name=$1 limit=$2 log=$3
  shift 3
  local left=$((DEADLINE - SECONDS - 15))
  [ $left -lt $limit ] && limit=$left
  if [ $limit -lt 20 ]; then
    FAILED=1
    say "== $name: SKIPPED (the ${DEADLINE}s budget is spent)"
    return 1
  fi
  local start=$SECONDS
  say "== $name (limit ${limit}s) ..."
  timeout --kill-after=20 "$limit" "$@" > "$log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  if [ $rc -eq 0 ]; then
    say "   $name: PASSED in ${took}s"
  else
    FAILED=1
    [ $rc -eq 124 ] && say "   $name: TIMED OUT after ${took}s" || say "   $name: FAILED (exit $rc) in ${took}s"
    { echo "   --- last lines of $(basename "$log"):"; tail -n 40 "$log" | sed 's/^/   /'; } >> "$SUMMARY"
  fi
  return $rc
}

say "opt4gptq Python package checks, $(date -u +%Y-%m-%dT%H:%M:%SZ), repository $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  "$PY" -c "import sys, torch, setuptools; print('python', sys.version.split()[0], sys.executable); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'ABI', torch._C._GLIBCXX_USE_CXX11_ABI); print('setuptools', setuptools.__version__)" 2>&1
  "$PY" -c "import triton; print('triton', triton.__version__)" 2>&1 | tail -1
  echo "nvcc: $(command -v nvcc || echo /usr/local/cuda/bin/nvcc) $( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | tail -1)"
  echo "c++: $(c++ --version 2>/dev/null | head -1); ninja $(ninja --version 2>/dev/null || echo missing); compute-sanitizer: $(command -v compute-sanitizer || echo missing)"
  echo "cores: $(nproc), MAX_JOBS=$MAX_JOBS"
} 2>&1 | tee -a "$SUMMARY"
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export OPT4GPTQ_INCLUDE_DIR=${OPT4GPTQ_INCLUDE_DIR:-$REPO/include}  # in case pip builds in a copy of python/

# 1. The exception build probe.
if [ $CHECKS -eq 1 ]; then
step "exception build probe" 150 "$LOGS/probe.log" \
  "$PY" python/tools/exception_build_probe.py --out "$TMPDIR_PROBE" --json "$LOGS/probe.json" --jobs "$MAX_JOBS"
sed -n '/^setting /,/^recommended build setting/p' "$LOGS/probe.log" | sed 's/^/   /' >> "$SUMMARY"
RECOMMENDED=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get('recommended') or '')" "$LOGS/probe.json" 2>/dev/null)
if [ -z "${OPT4GPTQ_BUILD_SETTING:-}" ] && [ -n "$RECOMMENDED" ]; then export OPT4GPTQ_BUILD_SETTING=$RECOMMENDED; fi
fi
say "   package build setting: ${OPT4GPTQ_BUILD_SETTING:-(build_settings.DEFAULT)}"

# 2. Build and install. pip first (the supported route); if pip cannot (an old setuptools without bdist_wheel, say),
# build in place and use the tree through PYTHONPATH so that the tests still tell something.
# A venv made by uv may have no pip: then uv installs (the same PEP 517 build), else the in-place fallback.
if "$PY" -m pip --version >/dev/null 2>&1; then
  INSTALL=("$PY" -m pip install --no-build-isolation --no-index --no-deps -v ./python)
elif command -v uv >/dev/null 2>&1; then
  INSTALL=(uv pip install --python "$PY" --no-build-isolation --no-index --no-deps -v ./python)
else
  INSTALL=(false)
  say "   neither pip nor uv for $PY: building in place"
fi
if [ $CHECKS -eq 0 ] && "$PY" -c "import opt4gptq" >/dev/null 2>&1; then
  say "   opt4gptq is installed already: not rebuilt"
elif step "install: ${INSTALL[*]}" 300 "$LOGS/build.log" "${INSTALL[@]}"; then
  :
elif grep -qE "ninja: build stopped|error: command .*(nvcc|c\+\+|g\+\+|gcc)' failed|: error:" "$LOGS/build.log" 2>/dev/null; then
  say "   the build has compile errors: no in-place fallback (it would fail the same way)"
  grep -E ": error:|error: command" "$LOGS/build.log" | head -20 | sed 's/^/   /' >> "$SUMMARY"
else
  rm -rf python/build
  if step "fallback: setup.py build_ext --inplace" 300 "$LOGS/build_inplace.log" \
       bash -c "cd python && '$PY' setup.py build_ext --inplace"; then
    export PYTHONPATH="$REPO/python${PYTHONPATH:+:$PYTHONPATH}"
    say "   (tests use the in-place build through PYTHONPATH)"
  fi
fi
grep -E "opt4gptq: build setting|error:|Error" "$LOGS/build.log" 2>/dev/null | head -5 | sed 's/^/   build: /' >> "$SUMMARY"
"$PY" -c "import opt4gptq, torch; print('   import opt4gptq:', opt4gptq.__file__); print('   ops:', sorted(n for n in dir(torch.ops.opt4gptq) if not n.startswith('_') and n not in ('name',)))" >> "$SUMMARY" 2>&1 || { FAILED=1; say "   import opt4gptq FAILED"; }

# 3. The test suite, from the repository root (so `opt4gptq` is the installed package, not python/opt4gptq).
if [ $CHECKS -eq 1 ]; then
step "pytest python/tests" 300 "$OUT/pytest.log" \
  "$PY" -m pytest python/tests -v -rfEs --durations=15 --junitxml="$OUT/junit.xml" -p no:cacheprovider
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest.log" | tail -n 25 | sed 's/^/   /' >> "$SUMMARY"

# 4. The bad-input cases and the valid calls under memcheck.
if command -v compute-sanitizer >/dev/null 2>&1; then
  # Without the caching allocator every tensor is its own cudaMalloc, so memcheck sees each tensor's bounds (inside a
  # cached segment a read past a tensor's end would go unnoticed).
  step "compute-sanitizer memcheck: bad_input_cases.py --all" 240 "$LOGS/memcheck.log" \
    env PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
      "$PY" python/tests/bad_input_cases.py --all
  grep -E "ERROR SUMMARY|passed, |^FAIL" "$LOGS/memcheck.log" | tail -n 10 | sed 's/^/   /' >> "$SUMMARY"
else
  FAILED=1
  say "   compute-sanitizer not found: memcheck step skipped"
fi
fi

# 5. The model table (optional).
if [ $MODEL_TABLE -eq 1 ]; then
  mkdir -p "$OUT/model_table"
  # shellcheck disable=SC2086
  step "model table" 1500 "$OUT/model_table/run.log" \
    "$PY" python/bench/model_table.py --out "$OUT/model_table" $MODEL_TABLE_ARGS
  tail -n 30 "$OUT/model_table/run.log" | sed 's/^/   /' >> "$SUMMARY"
fi

rm -rf "$TMPDIR_PROBE"
tar -C "$OUT" -czf "$OUT/logs.tar.gz" logs && rm -rf "$LOGS"
say "== done in ${SECONDS}s: $([ $FAILED -eq 0 ] && echo ALL PASSED || echo SOME STEPS FAILED)"
exit $FAILED
