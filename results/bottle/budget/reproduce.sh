#!/usr/bin/env bash
# The budget study of issue 24 (results/bottle/budget/README.md): AESc + stain on real bottle with the paper's
# decoder and the authors' 2,000-sample epochs, weights kept at 125, 250, 500, 1,000 and 2,000 steps, each scored.
# Usage: reproduce.sh DATA_ROOT OUT   (the same command resumes an interrupted run)
set -euo pipefail
data=$1; out=$2
run=$out/bottle/aesc-stain-s0
OMP_NUM_THREADS=1 stainlib train --data-root "$data" --category bottle --model aesc --corruption stain --seed 0 \
  --image-size 256 --color gray --decoder paper --batch-size 16 \
  --samples-per-epoch 2000 --val-samples 500 --epochs 16 \
  --keep-steps 125 250 500 1000 2000 --device cpu --out "$out"
for step in 125 250 500 1000 2000; do
  for method in residual uncertainty; do
    stainlib evaluate "$run" --at-step "$step" --map "$method" --n-samples 30 --device cpu
  done
done
python tools/budget_table.py "$run" --out results/bottle/budget/budget.csv
