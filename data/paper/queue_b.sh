#!/bin/sh
# mu = 1 with distortions; mu = 1 with one pattern per update (the paper's batch size).
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
$PY -m lenet_utils train-paper --passes 20 --threads 1 --init sqrt --mu 1.0 --distortions --out data/paper/distortions_mu1
$PY -m lenet_utils train-paper --passes 20 --threads 1 --init sqrt --mu 1.0 --batch-size 1 --out data/paper/online_mu1
