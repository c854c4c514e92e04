#!/usr/bin/env bash
# Reproduces results/bottle/ from the real MVTec AD bottle category (not part of the project; CC BY-NC-SA 4.0).
# Usage: bash results/bottle/reproduce.sh DATA_ROOT EPOCHS
#   DATA_ROOT holds bottle/ in the MVTec AD layout; EPOCHS is 250 for the paper's setting.
# The committed results were made on a 2-CPU machine without GPU, with EPOCHS=20 (see results/bottle/README.md).
set -euo pipefail
data=${1:?DATA_ROOT}
epochs=${2:?EPOCHS}
out=results
common=(--data-root "$data" --categories bottle --epochs "$epochs" --image-size 256 --color gray --out "$out")
# Tables I and II: AE and AESc, trained with none and stain, scored by residual and uncertainty.
stainlib sweep --grid table1 "${common[@]}"
# Beyond the paper: the combined map, on AESc + stain.
stainlib evaluate "$out/bottle/aesc-stain-s0" --method combined
# Seed study: AESc + stain with two more seeds (seed 0 is in the grid).
for seed in 1 2; do
  run="$out/bottle/aesc-stain-s$seed"
  stainlib train --data-root "$data" --category bottle --model aesc --corruption stain --epochs "$epochs" \
    --image-size 256 --seed "$seed" --out "$out"
  stainlib evaluate "$run" --method residual
  stainlib evaluate "$run" --method uncertainty
done
# Table III: AESc with each of the 10 corruptions, scored by residual.
stainlib sweep --grid table3 "${common[@]}"
for t in I II III; do stainlib table "$out" --table "$t" > /dev/null; done
