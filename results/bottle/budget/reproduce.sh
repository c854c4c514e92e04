#!/usr/bin/env bash
# The budget study (results/bottle/budget/README.md): AESc + stain, AESc + none and AE + none on real bottle with the
# paper's decoder and the authors' 2,000-sample epochs, weights kept at 125, 250, 500, 1,000 and 2,000 steps, each
# snapshot scored by the residual and the uncertainty; seeds 1 and 2 of AESc + stain for the seed spread.  One
# training at a time; the same command resumes.
# Usage: reproduce.sh DATA_ROOT OUT
set -euo pipefail
data=$1; out=$2
runs=()
for run in "aesc stain 0" "aesc none 0" "ae none 0" "aesc stain 1" "aesc stain 2"; do
  set -- $run
  OMP_NUM_THREADS=1 stainlib train --data-root "$data" --category bottle --model "$1" --corruption "$2" --seed "$3" \
    --image-size 256 --color gray --decoder paper --batch-size 16 \
    --samples-per-epoch 2000 --val-samples 500 --epochs 16 \
    --keep-steps 125 250 500 1000 2000 --device cpu --out "$out"
  runs+=("$out/bottle/$1-$2-s$3")
done
for run in "${runs[@]}"; do
  for step in 125 250 500 1000 2000; do
    for map in residual uncertainty; do
      stainlib evaluate "$run" --at-step "$step" --map "$map" --n-samples 30 --device cpu
    done
  done
done
python tools/budget_table.py "${runs[@]}" --out results/bottle/budget/budget.csv
python tools/budget_readme.py results/bottle/budget
