#!/bin/bash
# One part of the fair protocol, trained in the pinned worktree (README.md beside this file):
#   bash reports/fair_parts/part.sh NAME TASK OPTIMIZERS      (FAIR_WORKTREE: default /work/fair)
#   bash reports/fair_parts/part.sh NAME TASK "" FILE.toml   (a TOML profile over fair, its optimizers)
# writes reports/fair_parts/NAME/ (its report, SVG figures only), NAME_runs.csv and stores/NAME.tar.xz.
set -euo pipefail
name=$1; task=$2; opts=$3; profile=${4:-fair}
dest=$(cd "$(dirname "$0")" && pwd)
[[ $profile == *.toml ]] && profile=$(realpath "$profile")
cd "${FAIR_WORKTREE:-/work/fair}"
export RLLC_DATA_DIR=${RLLC_DATA_DIR:-../shared/datasets}
.venv/bin/rllc bench "$task" --profile "$profile" ${opts:+--optimizers "$opts"} --out "runs/$name" --quiet
.venv/bin/rllc report "runs/$name" --out "$dest/$name"
.venv/bin/rllc store export "runs/$name" --out "$dest/${name}_runs.csv"
(cd "$dest/../.." && .venv/bin/python -m eval.experiments.slim_reports "$dest/$name" --simplify-svg)
tar -cJf "$dest/stores/$name.tar.xz" -C runs "$name/records" "$name/plan.json" "$name/log.jsonl"
echo "part $name done $(date -u)"
