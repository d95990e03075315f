#!/bin/sh
# The paper's Fig. 9 rerun on MNIST (60,000 / 10,000): every implemented row, one results row per
# (classifier, seed) appended to data/results/fig9.csv. Resumable: a run already in the CSV is
# skipped, a network killed mid-run continues from its last pass (data/fig9/<row>_seed<N>/).
# Cheapest first; randomised rows get seeds 0, 1, 2. `python -m lenet_utils fig9 --list` lists the rows.
# One process per call; on a machine of N cores run N workers, each takes every N-th run of the list:
#   WORKER=0/2 sh data/fig9/queue.sh &  WORKER=1/2 sh data/fig9/queue.sh &
# (the runs are disjoint; results go to the one CSV in turn).
# The fully connected nets, LeNet-1 and LeNet-4 run with their own damping (lenet_utils.fig9.nets,
# FC_SETTINGS and LENET_SETTINGS, chosen in data/fig9/fc_validation.csv and lenet_validation.csv):
# their run ids and folders carry it (e.g. fc-300_seed0_mu0.1), so results and checkpoints of the
# earlier mu = 1 settings are neither reused nor in the way.
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
WORKER=${WORKER:-0/1}
k=${WORKER%/*} n=${WORKER#*/} i=0
case "$k/$n" in *[!0-9/]*|/*|*/) echo "WORKER must be k/n, e.g. 0/2, not '$WORKER'" >&2; exit 2;; esac
[ "$n" -gt 0 ] && [ "$k" -lt "$n" ] || { echo "WORKER k/n needs 0 <= k < n, not '$WORKER'" >&2; exit 2; }
run() {  # this worker's share: every n-th run of the list, starting at the k-th
  i=$((i + 1))
  if [ $(((i - 1) % n)) -eq "$k" ]; then nice -n 5 "$PY" -m lenet_utils fig9 "$@"; fi
}
# deterministic classical rows: one run each (minutes in all; the virtual SVM, two SVMs of degree 9, the longest)
for row in linear linear-deslant pairwise-deslant pca40-quadratic knn knn-deslant knn-tangent svm-poly4-deslant \
    virtual-svm-poly9-dist; do
  run $row
done
# randomised rows, 3 seeds: the RBF network, then the networks of the 1998 recipe (20 passes)
for seed in 0 1 2; do
  for row in rbf1000 fc20-300-deslant fc-300 fc-300-100 fc-500-150 lenet1 fc-1000 lenet4 lenet5; do
    run $row --seed $seed
  done
done
# LeNet-4 with k-NN / local learning in place of its last layer: each reuses the lenet4 run of its seed
# (data/fig9/lenet4_seed<N>_mu0.1/, trained above; trained here if missing), minutes each
for seed in 0 1 2; do
  for row in lenet4-knn lenet4-local; do
    run $row --seed $seed
  done
done
# with distortions: the paper's 600,000 patterns per pass, ten times the cost of the plain runs.
# lenet5-huge-dist: every distortion range doubled; lenet5-dist-fixed: the paper's protocol (the
# original + 9 distorted copies of each image drawn once, the same in every pass).
# boosted LeNet-4: net 1 with distortions (600,000 patterns per pass), nets 2 and 3 on 60,000 filtered
# distorted digits each; three resumable run folders (data/fig9/boosted-lenet4-dist_seed<N>/net1..3).
# Seed by seed, so that every row gets its first seed before any row gets its third.
for seed in 0 1 2; do
  for row in lenet5-dist lenet5-dist-fixed boosted-lenet4-dist fc-300-dist fc-300-100-dist fc-500-150-dist \
      fc-1000-dist lenet5-huge-dist; do
    run $row --seed $seed
  done
done
# the fully connected nets under the fixed protocol too (last: the least needed)
for seed in 0 1 2; do
  for row in fc-300-dist-fixed fc-300-100-dist-fixed fc-500-150-dist-fixed fc-1000-dist-fixed; do
    run $row --seed $seed
  done
done
