#!/usr/bin/env bash
# Run any training recipe on a lent GPU machine, evaluate the result, and leave it compact in $OUT.
#
# Prepare here (both under the ignored gpu/ folder, carried to the machine):
#   python scripts/pack_photos.py ../shared/data/train gpu/photos.tar --max-mib 50
#   cp -r ../shared/data/val/bsds500 gpu/bsds500        # optional: evaluated at the end when present
# Run there:
#   OUT=$OUT bash scripts/gpu_recipe.sh recipes/lite0-ab.toml 420 [more agincolor train flags...]
# Settings: DATA_TAR (gpu/photos.tar), WORK (/tmp/agin), DEVICE (cuda). The recipe's data path is replaced
# by the unpacked archive; the budget is training seconds. Results in $OUT: colorizer/ (config + fp16
# safetensors), log.jsonl, the last sample grid, eval.json when gpu/bsds500 was carried, and run.txt.
set -euo pipefail
RECIPE=${1:?usage: OUT=DIR bash scripts/gpu_recipe.sh RECIPE BUDGET_SECONDS [train flags...]}
BUDGET=${2:?give the training budget in seconds}
shift 2
: "${OUT:?set OUT to the folder whose files come back}"
DATA_TAR=${DATA_TAR:-gpu/photos.tar}
WORK=${WORK:-/tmp/agin}
DEVICE=${DEVICE:-cuda}
mkdir -p "$WORK/data" "$OUT"
tar xf "$DATA_TAR" -C "$WORK/data"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
} | tee "$OUT/run.txt"
python3 -m agincolor train --config "$RECIPE" --data "$WORK/data/train" --out "$WORK/run" --device "$DEVICE" \
  --amp --channels-last --workers 8 --time-budget "$BUDGET" --no-progress "$@" 2>&1 | tail -n 20 | tee -a "$OUT/run.txt"
cp -r "$WORK/run/colorizer" "$OUT/colorizer"
cp "$WORK/run/log.jsonl" "$OUT/log.jsonl"
last=$(ls "$WORK/run/samples" | tail -n 1)
cp "$WORK/run/samples/$last" "$OUT/last-sample.png"
if [ -d gpu/bsds500 ]; then
  python3 -m agincolor evaluate gpu/bsds500 --model "$OUT/colorizer" --device "$DEVICE" --json --no-progress > "$OUT/eval.json"
  python3 -c "import json; m = json.load(open('$OUT/eval.json'))['metrics']; print({k: m[k] for k in m})" | tee -a "$OUT/run.txt"
fi
ls -la "$OUT"
