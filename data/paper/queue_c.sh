#!/bin/sh
# Seed spread of the plain recipe: the same command with seeds 1 and 2, for mu = 1 and mu = 0.2
# (seed 0 of each is data/paper/plain_mu1 and data/paper/plain).
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
for run in "1.0 1" "1.0 2" "0.2 1" "0.2 2"; do
  set -- $run
  $PY -m lenet_utils train-paper --passes 20 --threads 1 --init sqrt --mu $1 --seed $2 --out data/paper/seeds/mu$1_seed$2
done
