#!/bin/sh
# Part IV, "From LeNet to ResNet": the zoo on Fashion-MNIST and on MNIST, and the plain-vs-residual
# depth series (data/sweeps/zoo_fashion.json, zoo_mnist.json, residual.json -> data/results/NAME.csv;
# the networks are lenet_utils/zoo.py), every point with the spec's seeds. Resumable: run the same
# command again; finished (config, seed) runs are skipped, a torn last line left by a kill is
# dropped, and a second copy writing the same CSV stops with "another sweep (pid N) is writing to
# ...". Arguments: the sweeps to run, in order
# (default: all three). On the 2-core machine, two queues at the lowest priority:
#
#   nohup nice -n 19 data/sweeps/run_zoo.sh zoo_fashion zoo_mnist > /tmp/run_zoo_zoo.log 2>&1 &
#   nohup nice -n 19 data/sweeps/run_zoo.sh residual > /tmp/run_zoo_residual.log 2>&1 &
#
# A plan and a CPU-time estimate without training: .venv/bin/python -m lenet_utils sweep
# data/sweeps/NAME.json --out data/results/NAME.csv --threads 1 --dry-run
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export LENET_DATA_MIRROR=${LENET_DATA_MIRROR:-/work/shared/data}
names=${*:-"zoo_fashion residual zoo_mnist"}
for name in $names; do
  echo "== $(date -u +%FT%TZ) $name"
  $PY -m lenet_utils sweep "data/sweeps/$name.json" --out "data/results/$name.csv" \
    --threads 1 --reuse data/results/*.csv
done
echo "== $(date -u +%FT%TZ) done: $names"
