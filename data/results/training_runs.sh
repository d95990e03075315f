#!/usr/bin/env bash
# The training runs of chapter 4 ("Training LeNet the d2l way"). Each line is one run of
# `python -m lenet_utils train`; the per-epoch metrics go to data/results/*.csv (committed),
# checkpoints and the resumable training state to runs/NAME/ (not committed).
# Resumable: a killed run restarts from its last finished epoch when the script is rerun;
# finished runs return at once. Usage (from the repository root), GROUP = mnist | optim | theano | all:
#   nohup nice -n 5 bash data/results/training_runs.sh GROUP > runs/logs/training_runs_GROUP.log 2>&1 &
set -euo pipefail
GROUP=${1:-all}
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
T="$PY -m lenet_utils train --no-progress"
R=data/results

if [[ $GROUP == mnist || $GROUP == all ]]; then
# d2l's LeNet on MNIST, d2l's defaults (seed 002: "MNIST reaches 98%+")
$T --model d2l --dataset mnist --epochs 10 --lr 0.9 --batch-size 256 --out runs/mnist_d2l --metrics $R/mnist_d2l.csv

# seed 003: 32x32 resized, Normalize(0.1307, 0.3081), ReLU, max-pool, Adam 1e-3, batch 64, 10 epochs,
# PyTorch's default initialisation, with its RandomHorizontalFlip (p = 0.5) ...
$T --model modern --dataset mnist --epochs 10 --optimizer adam --lr 0.001 --batch-size 64 --init default \
   --hflip 0.5 --test-hflip --out runs/mnist_seed003_hflip --metrics $R/mnist_seed003_hflip.csv
# ... and without it
$T --model modern --dataset mnist --epochs 10 --optimizer adam --lr 0.001 --batch-size 64 --init default \
   --test-hflip --out runs/mnist_seed003_noflip --metrics $R/mnist_seed003_noflip.csv

# seed 000: the d2l-style net (sigmoid, avg-pool, padding 2), MNIST batch 64, Adam (lr 1e-3), 10 epochs,
# cross-entropy on one-hot targets, PyTorch's default initialisation; the loss of every batch kept
$T --model d2l --dataset mnist --epochs 10 --optimizer adam --lr 0.001 --batch-size 64 --init default \
   --loss one_hot --out runs/mnist_seed000 --metrics $R/mnist_seed000.csv --batch-loss $R/mnist_seed000_batch_loss.csv

fi

if [[ $GROUP == optim || $GROUP == all ]]; then
# optimisers on the d2l net, d2l's setting otherwise (Fashion-MNIST, batch 256, 10 epochs)
$T --model d2l --dataset fashion --epochs 10 --optimizer sgd --lr 0.9 --out runs/opt_sgd --metrics $R/opt_sgd.csv
$T --model d2l --dataset fashion --epochs 10 --optimizer momentum --lr 0.1 --out runs/opt_momentum --metrics $R/opt_momentum.csv
$T --model d2l --dataset fashion --epochs 10 --optimizer adagrad --lr 0.1 --out runs/opt_adagrad --metrics $R/opt_adagrad.csv
$T --model d2l --dataset fashion --epochs 10 --optimizer adam --lr 0.001 --out runs/opt_adam --metrics $R/opt_adam.csv

fi

if [[ $GROUP == theano || $GROUP == all ]]; then
# seed 001: the Theano-era network (20 and 50 kernels, tanh, max-pool, 500 hidden), SGD lr 0.1, batch 500,
# 50k/10k/10k split, the tutorial's patience scheme scaled from 100 to 10 epochs, at most 60 epochs
$T --model theano --dataset mnist --epochs 60 --optimizer sgd --lr 0.1 --batch-size 500 --val-size 10000 \
   --patience 10 --out runs/mnist_seed001_theano --metrics $R/mnist_seed001_theano.csv
fi
echo "training runs ($GROUP) done"

# added after the first Adagrad run (lr 0.1) stayed at chance for all ten epochs: Adagrad at 0.01
if [[ $GROUP == optim || $GROUP == all ]]; then
$T --model d2l --dataset fashion --epochs 10 --optimizer adagrad --lr 0.01 --out runs/opt_adagrad_0.01 --metrics $R/opt_adagrad_0.01.csv
fi
