#!/bin/sh
# Every ablation of chapter 6 (chapters/06_ablations.ipynb), in priority order, one process.
# Phase 1 brings every table to 5 seeds per point, phase 2 to the specs' 10.
# Re-running this script resumes: finished (config, seed) runs are skipped, and identical runs
# already in another results file (e.g. the d2l-defaults point) are copied, not trained again.
#
#   nohup nice -n 15 data/sweeps/run_all.sh > data/results/run_all.log 2>&1 &
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
for seeds in 5 10; do
  for name in lr activation pooling kernel pool_size optimizer batch scaling epochs best best_range; do
    echo "== $(date -u +%FT%TZ) $name, $seeds seeds"
    $PY -m lenet_utils sweep "data/sweeps/$name.json" --out "data/results/$name.csv" \
      --seeds "$seeds" --threads 1 --reuse data/results/*.csv
  done
done
echo "== $(date -u +%FT%TZ) all sweeps complete"
