#!/usr/bin/env bash
# Runs the device checks on a machine with a GPU: the GPU test suite, the examples, and (NVIDIA) the test suite under
# compute-sanitizer memcheck and racecheck. Logs and a summary go to OUT_DIR.
#
#   scripts/gpu_checks.sh BUILD_DIR OUT_DIR [--sanitize[=TOOLS]] [--no-suite] [--filter CATCH2_FILTER]
#
# --sanitize runs memcheck and racecheck; --sanitize=racecheck (or =memcheck) one of them. --no-suite skips the plain
# run of the suite and the examples (e.g. a second call that only runs racecheck).
# BUILD_DIR is a configured and built tree (cmake -S . -B BUILD_DIR && cmake --build BUILD_DIR).
# Exit status: 0 when everything that ran passed.
set -uo pipefail
build=${1:?usage: gpu_checks.sh BUILD_DIR OUT_DIR [--sanitize] [--filter FILTER]}
out=${2:?usage: gpu_checks.sh BUILD_DIR OUT_DIR [--sanitize] [--filter FILTER]}
shift 2
sanitize=0
tools="memcheck racecheck"
suite=1
filter=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --sanitize=*) sanitize=1; tools="${1#--sanitize=}" ;;
    --no-suite) suite=0 ;;
    --filter) filter="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
status=0
summary="$out/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/device.txt" 2>&1
  note "device: $(cat "$out/device.txt")"
fi

tests="$build/tests/opt4gptq_gpu_tests"
if [ $suite -eq 1 ]; then
  start=$(date +%s)
  "$tests" $filter > "$out/gpu_tests.log" 2>&1
  rc=$?
  note "gpu tests: exit $rc, $(tail -n 2 "$out/gpu_tests.log" | tr -s ' \n' ' ') ($(( $(date +%s) - start )) s)"
  [ $rc -eq 0 ] || status=1

  for example in quickstart custom_policies checkpoint_layer; do
    "$build/examples/$example" > "$out/$example.log" 2>&1
    rc=$?
    note "example $example: exit $rc: $(tail -n 1 "$out/$example.log")"
    [ $rc -eq 0 ] || status=1
  done
fi

if [ $sanitize -eq 1 ]; then
  if ! command -v compute-sanitizer >/dev/null; then
    note "compute-sanitizer not found: sanitizer runs skipped"
  else
    for tool in $tools; do
      start=$(date +%s)
      compute-sanitizer --tool $tool --error-exitcode 3 "$tests" $filter > "$out/sanitizer_$tool.log" 2>&1
      rc=$?
      note "compute-sanitizer --tool $tool $(basename "$tests") $filter: exit $rc, $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitizer_$tool.log" | tail -n 1) ($(( $(date +%s) - start )) s)"
      [ $rc -eq 0 ] || status=1
    done
  fi
fi
note "overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
