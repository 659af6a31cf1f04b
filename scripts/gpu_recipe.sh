#!/usr/bin/env bash
# Run any training recipe on a lent GPU machine, evaluate the result, and leave it compact in $OUT.
#
# Prepare here (both under the ignored gpu/ folder, carried to the machine):
#   python scripts/pack_photos.py ../shared/data/train gpu/photos.tar.gz --max-mib 44   # ~12,400 photos
#   cp -r ../shared/data/val/bsds500 gpu/bsds500        # optional: evaluated at the end when present
# Run there:
#   OUT=$OUT bash scripts/gpu_recipe.sh recipes/lite0-ab.toml 420 [more agincolor train flags...]
#   OUT=$OUT TWIN_FROM=gpu/v06 bash scripts/gpu_recipe.sh recipes/lite0-ab.toml 420 --init-from src/agincolor/pretrained ...
# Settings: DATA_TAR (gpu/photos.tar.gz), WORK (/tmp/agin), DEVICE (cuda), TWIN_FROM, HOLD_OUT. The recipe's
# data path is replaced by the unpacked archive; the budget is training seconds. Results in $OUT:
# colorizer/ (config + fp16 safetensors), log.jsonl, eval.json when gpu/bsds500 was carried, run.txt, and
# the last sample grid. With TWIN_FROM=DIR (a Colorizer folder, e.g. gpu/v06) a held-out twin trains side
# by side: the same flags, but --init-from DIR --exclude $HOLD_OUT (default portraits,urban,food), into
# $OUT/twin/ and $OUT/twin-log.jsonl, to be scored here on the held-out folders with
# scripts/evaluate_sources.py; the sample grid is then left out, so that at most 8 files come back.
set -euo pipefail
RECIPE=${1:?usage: OUT=DIR bash scripts/gpu_recipe.sh RECIPE BUDGET_SECONDS [train flags...]}
BUDGET=${2:?give the training budget in seconds}
shift 2
: "${OUT:?set OUT to the folder whose files come back}"
DATA_TAR=${DATA_TAR:-gpu/photos.tar.gz}
WORK=${WORK:-/tmp/agin}
DEVICE=${DEVICE:-cuda}
mkdir -p "$WORK/data" "$OUT"
tar xf "$DATA_TAR" -C "$WORK/data"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
} | tee "$OUT/run.txt"
train() {  # train NAME [extra flags]: one run into $WORK/NAME, its last lines into $WORK/NAME.txt
  local name=$1
  shift
  python3 -m agincolor train --config "$RECIPE" --data "$WORK/data/train" --out "$WORK/$name" --device "$DEVICE" \
    --amp --channels-last --workers "$WORKERS" --time-budget "$BUDGET" --no-progress "$@" > "$WORK/$name.txt" 2>&1
}
keep() {  # keep NAME DEST: the run's colorizer weights and config into $OUT/DEST
  mkdir -p "$OUT/$2"
  cp "$WORK/$1/colorizer/config.json" "$WORK/$1/colorizer/model.safetensors" "$OUT/$2/"
}
if [ -n "${TWIN_FROM:-}" ]; then
  WORKERS=6
  train run "$@" & main=$!
  train twin "$@" --init-from "$TWIN_FROM" --exclude "${HOLD_OUT:-portraits,urban,food}" & twin=$!
  status=0
  wait $main || status=$?
  wait $twin || status=$?
  for name in run twin; do echo "== $name"; tail -n 20 "$WORK/$name.txt"; done | tee -a "$OUT/run.txt"
  [ $status -eq 0 ] || exit $status
  keep twin twin
  cp "$WORK/twin/log.jsonl" "$OUT/twin-log.jsonl"
else
  WORKERS=8
  status=0
  train run "$@" || status=$?
  tail -n 20 "$WORK/run.txt" | tee -a "$OUT/run.txt"
  [ $status -eq 0 ] || exit $status
  last=$(ls "$WORK/run/samples" | tail -n 1)
  cp "$WORK/run/samples/$last" "$OUT/last-sample.png"
fi
keep run colorizer
cp "$WORK/run/log.jsonl" "$OUT/log.jsonl"
if [ -d gpu/bsds500 ]; then
  python3 -m agincolor evaluate gpu/bsds500 --model "$OUT/colorizer" --device "$DEVICE" --json --no-progress > "$OUT/eval.json"
  python3 -c "import json; m = json.load(open('$OUT/eval.json'))['metrics']; print({k: m[k] for k in m})" | tee -a "$OUT/run.txt"
fi
ls -la "$OUT"
