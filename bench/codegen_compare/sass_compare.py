#!/usr/bin/env python3
"""Compares the SASS of the GEMM entry points in two directories of cubins (same file names), as compare.sh leaves
them (sm_90_<kernel>.cubin in base/ and current/). Needs cuobjdump (CUDA toolkit), no GPU.

    sass_compare.py BASE_DIR CURRENT_DIR

Prints, per cubin, whether every dequant_gemm_kernel function's SASS is identical up to symbol names, with the
instruction count of each; exit status 1 when one differs.
"""
import difflib
import os
import re
import subprocess
import sys

ENTRY = r"ELi(\d+)ELb([01])E"


def functions(path):
    text = subprocess.run(["cuobjdump", "-sass", path], check=True, capture_output=True, text=True).stdout
    out = {}
    for m in re.finditer(r"Function : (\S+)\n(.*?)(?=\n\s*Function : |\Z)", text, re.S):
        if "dequant_gemm_kernel" not in m.group(1):
            continue
        body = []
        for line in m.group(2).splitlines():
            ins = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(.*?);", line)
            if ins:
                body.append(re.sub(r"_Z\w+", "SYM", ins.group(1)))
        out[re.search(ENTRY, m.group(1)).groups()] = body
    return out


def main():
    base, current = sys.argv[1:3]
    differs = 0
    for name in sorted(os.listdir(base)):
        if not name.endswith(".cubin"):
            continue
        b = functions(os.path.join(base, name))
        c = functions(os.path.join(current, name))
        same = b == c and b
        counts = ", ".join(f"{k[0]}{'a' if k[1] == '1' else ''}:{len(v)}" for k, v in sorted(c.items()))
        print(f"{name}: {'identical' if same else 'DIFFERS'} ({len(c)} entry points; instructions {counts})")
        if not same:  # the first differences, per entry point
            for key in sorted(set(b) | set(c)):
                lines = list(difflib.unified_diff(b.get(key, []), c.get(key, []), lineterm="", n=2))
                if lines:
                    print(f"  entry point {key}: base {len(b.get(key, []))}, current {len(c.get(key, []))} instructions")
                    print("\n".join("    " + l for l in lines[2:40]))
        differs += not same
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
