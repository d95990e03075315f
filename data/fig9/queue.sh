#!/bin/sh
# The paper's Fig. 9 rerun on MNIST (60,000 / 10,000): every implemented row, one results row per
# (classifier, seed) appended to data/results/fig9.csv. Resumable: a run already in the CSV is
# skipped, a network killed mid-run continues from its last pass (data/fig9/<row>_seed<N>/).
# Cheapest first; randomised rows get seeds 0, 1, 2. `python -m lenet_utils fig9 --list` lists the rows.
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
RUN="nice -n 5 $PY -m lenet_utils fig9"
# deterministic classical rows: one run each (minutes in all)
for row in linear linear-deslant pairwise-deslant pca40-quadratic knn knn-deslant knn-tangent svm-poly4-deslant; do
  $RUN $row
done
# randomised rows, 3 seeds: the RBF network, then the networks of the 1998 recipe (20 passes)
for seed in 0 1 2; do
  for row in rbf1000 fc20-300-deslant fc-300 fc-300-100 fc-500-150 lenet1 fc-1000 lenet4 lenet5; do
    $RUN $row --seed $seed
  done
done
# with distortions: the paper's 600,000 patterns per pass, ten times the cost of the plain runs
for seed in 0 1 2; do
  for row in fc-300-dist fc-300-100-dist fc-500-150-dist fc-1000-dist lenet5-dist; do
    $RUN $row --seed $seed
  done
done
