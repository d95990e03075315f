#!/bin/sh
# Every result of chapter 6 (chapters/06_ablations.ipynb), in priority order, one process.
# Each sweep runs its spec's own seeds (five: 0-4), so this reproduces exactly the committed rows;
# re-running resumes: finished (config, seed) runs are skipped, and identical runs already in
# another results file (e.g. the d2l-defaults point, shared by seven tables) are copied, not
# trained again. With the committed CSVs in place there is nothing left to run: add --dry-run to
# any sweep line to see its plan.
#
#   nohup nice -n 15 data/sweeps/run_all.sh > data/results/run_all.log 2>&1 &
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
for name in lr activation pooling kernel pool_size optimizer batch scaling epochs best best_range scaled_relu; do
  echo "== $(date -u +%FT%TZ) $name"
  $PY -m lenet_utils sweep "data/sweeps/$name.json" --out "data/results/$name.csv" \
    --threads 1 --reuse data/results/*.csv
done
# d2l's own loader at the d2l defaults, seeds 1-2 (seed 0 is data/results/bench.txt): each report
# trains d2l.train_ch6 on d2l's loader and lenet_utils' fit on ours from the same initial weights.
for seed in 1 2; do
  out="data/results/d2l_loader_seed$seed.txt"
  test -f "$out" && continue
  echo "== $(date -u +%FT%TZ) d2l loader, seed $seed"
  $PY -m lenet_utils bench --seed "$seed" --out "$out"
done
echo "== $(date -u +%FT%TZ) all sweeps complete"
