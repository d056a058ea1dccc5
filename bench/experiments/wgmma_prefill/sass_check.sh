#!/usr/bin/env bash
# Counts HGMMA instructions in the built binary. Uses cuobjdump from $CUDA_HOME/bin or PATH.
# (On the build machine only an 11.8 nvdisasm was available; see README "SASS check" for the
#  header-patch method that was used there.)
set -uo pipefail
cd "$(dirname "$0")"
CUO="${CUOBJDUMP:-$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)}"
"$CUO" --dump-sass proto > proto.sass || { echo "cuobjdump failed"; exit 1; }
echo "HGMMA lines: $(grep -c HGMMA proto.sass)"
grep -o "HGMMA[^;]*" proto.sass | sort | uniq -c
grep -c "LDL\|STL" proto.sass | sed 's/^/local-memory (spill) instructions: /'
