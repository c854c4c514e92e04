#!/usr/bin/env bash
# One run of a stainlib sweep per SLURM array task.
#
#   stainlib sweep --grid table3 --data-root data/mvtec_ad --categories bottle carpet --epochs 250 \
#       --out results --print-commands > sweep.txt
#   sbatch --array=0-$(( $(wc -l < sweep.txt) - 1 )) --gres=gpu:1 tools/slurm_array.sh sweep.txt
#
# Task K runs line K+1 of the file: a `python -m stainlib.cli sweep ... --task K` command (quoted by Python's
# shlex.join) that trains and evaluates the K-th run of the grid and skips it when it is already complete, so a
# re-submitted array only does what is missing. The lines name the Python of the environment that printed them.
# Outside SLURM, the same works by hand: SLURM_ARRAY_TASK_ID=3 bash tools/slurm_array.sh sweep.txt
#SBATCH --job-name=stainlib-sweep
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
file=${1:?usage: slurm_array.sh COMMANDS_FILE (from stainlib sweep ... --print-commands)}
task=${SLURM_ARRAY_TASK_ID:?SLURM_ARRAY_TASK_ID is not set: submit with sbatch --array, or set it by hand}
[[ $task =~ ^[0-9]+$ ]] || { echo "SLURM_ARRAY_TASK_ID must be a number, got '$task'" >&2; exit 2; }
line=$(sed -n "$((task + 1))p" "$file")
[[ -n $line ]] || { echo "no command for task $task in $file ($(wc -l < "$file") lines)" >&2; exit 2; }
[[ $line == *" -m stainlib.cli sweep "*" --task $task" ]] || { echo "line $((task + 1)) of $file is not a stainlib sweep task" >&2; exit 2; }
echo "task $task: $line"
eval "exec $line"
