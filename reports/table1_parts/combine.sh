#!/bin/bash
# The combined Table 1 report over every committed part's store, made by this checkout's code:
#   bash reports/table1_parts/combine.sh [OUT]      (from the repository's root; OUT: reports/table1)
# writes OUT/report.{md,tex,html} (a table per selection rule: the protocol's valid_accuracy,
# then valid_loss), OUT/figures/ and OUT/runs.csv (every run of every part).
# The stores are unpacked into a temporary folder, removed on exit.
set -euo pipefail
out=${1:-reports/table1}
rllc=${RLLC:-.venv/bin/rllc}
stores=$(mktemp -d)
trap 'rm -rf "$stores"' EXIT
for f in reports/table1_parts/stores/*.tar.xz; do tar xJf "$f" -C "$stores"; done
rm -f "$out/runs.csv"  # made again below; rllc report replaces only a report directory
"$rllc" report "$stores"/* --select valid_accuracy,valid_loss --out "$out"  # its rule, then the other
"$rllc" store export "$stores"/* --out "$out/runs.csv"
