#!/usr/bin/env bash
# The GPU check: one prepared script for a machine with one CUDA GPU, whose python3 already has torch, numpy, scipy,
# matplotlib, pillow, tqdm, scikit-learn and pytest, without network or pip.  From the repository root:
#
#   bash tools/gpu_check.sh DATA_ROOT [--steps N] [--out results/gpu]   # DATA_ROOT holds bottle/ (MVTec AD layout)
#   bash tools/gpu_check.sh --smoke [--out DIR]                         # on the CPU, tiny settings, under a minute
#
# Four stages, each timed and printed (the whole in about 9 minutes on one H200, see tools/gpu_check.py):
#   1. the CUDA tests;  2. the GPU lines of the benchmarks (training images/s at 256^2 eager, channels_last and
#      torch.compile; stain images/s at 256^2);
#   3. bottle AESc + stain, AESc + none and AE + none trained at the authors' budget (31,250 steps of 16 each;
#      --steps N trains N steps of the same 2,000-sample epochs instead);
#   4. residual and uncertainty evaluated, Tables I and II written with their provenance under OUT (results/gpu).
# Everything printed also goes to OUT/gpu_check.log.  --smoke generates a small synthetic dataset into a temporary
# folder, trains 2 steps per run on the CPU, skips the benchmarks (it prints their command lines) and
# writes to a temporary folder unless --out is given.  PYTHON chooses the interpreter (default python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH=.
PY=${PYTHON:-python3}

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

smoke=0
data=""
steps=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --steps) steps=${2:?--steps needs a number}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) data=$1 ;;
  esac
  shift
done
if [ "$smoke" = 1 ]; then
  out=${out:-$(mktemp -d)/gpu}
  data=$out/data
elif [ -z "$data" ]; then
  echo "gpu_check.sh: give the data folder (it holds bottle/), or --smoke" >&2
  usage >&2
  exit 2
fi
mkdir -p "$out"
log=$out/gpu_check.log
: >"$log"
driver=(tools/gpu_check.py --data "$data" --out "$out" ${steps:+--steps "$steps"})
[ "$smoke" = 1 ] && driver+=(--smoke)

stage() {  # stage NAME COMMAND...: run it, print its time
  local name=$1 t0 t1
  shift
  echo "== stage $name: started $(date '+%H:%M:%S')"
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  echo "== stage $name: done in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
}

benchmarks() {
  local bench flags
  for bench in bench_train bench_noise; do
    flags=()
    grep -q -- "--quick" "benchmarks/$bench.py" && flags=(--quick)
    grep -q -- "--device" "benchmarks/$bench.py" && flags+=(--device cuda)
    # eager, channels_last and torch.compile, each printed with its images/s: the trainer's compile="auto" stays off
    # on CUDA until these lines show compile faster (stainlib.train.pick_compile).  The compilation takes a minute.
    grep -q -- "--variants" "benchmarks/$bench.py" && flags+=(--variants eager channels_last compile)
    if [ "$smoke" = 1 ]; then
      echo "$bench: skipped in --smoke; on a GPU: $PY benchmarks/$bench.py ${flags[*]}"
      continue
    fi
    "$PY" "benchmarks/$bench.py" "${flags[@]}"
  done
}

main() {
  echo "gpu_check.sh $([ "$smoke" = 1 ] && echo --smoke) data=$data out=$out steps=${steps:-paper budget}"
  stage environment "$PY" "${driver[@]}" environment
  # -k: the tests that need CUDA (skipped without it) and the precision choice; -rs prints why any were skipped.
  stage cuda-tests "$PY" -m pytest tests/test_noise.py tests/test_metrics.py tests/test_train.py -q -rs \
    -p no:cacheprovider -k "cuda or precision or fp16"
  stage benchmarks benchmarks
  stage train "$PY" "${driver[@]}" train
  stage evaluate "$PY" "${driver[@]}" evaluate
  stage tables "$PY" "${driver[@]}" tables
  echo "gpu_check.sh: done; results in $out"
}

main 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
