#!/usr/bin/env python3
"""Where a kernel's warps wait, per SASS instruction, from an Nsight Compute report.

    ncu -i REPORT.ncu-rep --page source --print-source sass --csv > SOURCE.csv
    bench/ncu_hotspots.py SOURCE.csv [TOP]

Prints the stall reasons summed over the kernel (warp-state samples), then the TOP instructions (default 40) with the
most samples, each with its leading stall reasons. Needs no package beyond Python's standard library.
"""
import csv
import sys


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    rows = list(csv.reader(open(path, newline="")))
    start = next((i for i, r in enumerate(rows) if r and r[0] == "Address"), None)
    if start is None:
        print("no per-instruction table in", path)
        return 1
    header = rows[start]
    data = [r for r in rows[start + 1:] if len(r) == len(header)]
    col = {h: i for i, h in enumerate(header)}
    samples = col.get("Warp Stall Sampling (All Samples)")
    stalls = [h for h in header if h.startswith("stall_") and "(Not Issued)" not in h]

    def value(r, h):
        try:
            return float(r[col[h]] or 0)
        except ValueError:
            return 0.0

    total = sum(value(r, header[samples]) for r in data)
    print(f"{len(data)} instructions, {total:.0f} warp-state samples")
    sums = sorted(((sum(value(r, h) for r in data), h) for h in stalls), reverse=True)
    print("stall reasons: " + ", ".join(f"{h[6:]} {100 * v / max(total, 1):.1f}%" for v, h in sums if v > 0))
    print()
    for r in sorted(data, key=lambda r: -value(r, header[samples]))[:top]:
        reasons = sorted(((value(r, h), h[6:]) for h in stalls), reverse=True)[:3]
        why = " ".join(f"{n}={v:.0f}" for v, n in reasons if v > 0)
        print(f"{value(r, header[samples]):6.0f}  {r[col['Address']][-5:]}  {r[col['Source']].strip()[:70]:70s}  {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
