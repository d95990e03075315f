#!/bin/sh
# Choosing mu without the test set: 50,000 training images, 10,000 held out (fixed draw).
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
for mu in 1.0 0.2; do
  $PY -m lenet_utils train-paper --passes 20 --threads 1 --init sqrt --mu $mu --validation 10000 --out data/paper/mu_val/mu$mu
done
