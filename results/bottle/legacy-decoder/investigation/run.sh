#!/usr/bin/env bash
# The investigation of results/bottle/README.md: do the gaps to the paper shrink with more epochs?
# Copies of two committed 20-epoch runs, resumed to 60 epochs (same seed, same settings otherwise).
# Written for the command line before RunSpec (commit a4a7933: --data, --size, --out RUN_FOLDER); the committed
# results it made use that layout of config.json, which stainlib.tables still reads.
set -euo pipefail
here=results/bottle/legacy-decoder/investigation
for run in ae-none-s0 aesc-stain-s0; do
  model=${run%%-*}; rest=${run#*-}; corruption=${rest%-s0}
  stainlib train --data "$1" --category bottle --model "$model" --corruption "$corruption" --epochs 60 --size 256 \
    --out "$here/$run-e60"
  stainlib evaluate "$here/$run-e60" --method residual
  stainlib evaluate "$here/$run-e60" --method uncertainty
done
