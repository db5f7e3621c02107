#!/bin/bash
# The fair protocol's combined report, beside the paper protocol's, made by this checkout's code:
#   bash reports/fair_parts/combine.sh [OUT]      (from the repository's root; OUT: reports/fair)
# reads every fair part's store (the fair protocol and its seed top-up, fair-seeds) and Table 1's
# (the paper protocol on the same two tasks), each protocol selected by its own rule (its plan's),
# and writes OUT/report.{md,tex,html}, OUT/figures/ (SVG only) and OUT/runs.csv (every run of the
# fair parts; the paper protocol's runs are reports/table1/runs.csv).
# The stores are unpacked into a temporary folder, removed on exit.
set -euo pipefail
out=${1:-reports/fair}
rllc=${RLLC:-.venv/bin/rllc}
stores=$(mktemp -d)
trap 'rm -rf "$stores"' EXIT
for f in reports/fair_parts/stores/*.tar.xz reports/table1_parts/stores/*.tar.xz; do
  tar xJf "$f" -C "$stores"
done
rm -f "$out/runs.csv"  # made again below; rllc report replaces only a report directory
"$rllc" report "$stores"/* --out "$out"
"$rllc" store export "$stores"/fair-* --out "$out/runs.csv"
.venv/bin/python -m eval.experiments.slim_reports "$out" --simplify-svg
