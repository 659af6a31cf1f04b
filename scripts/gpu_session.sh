#!/usr/bin/env bash
# One GPU session's work (H100/H200, ~10 minutes): the default-model candidates and the paper's
# ablations (docs/ablations.md), trained side by side on one GPU from the 128 px training set.
# Usage: OUT=/some/dir DATA_TAR=gpu/train128.tar bash scripts/gpu_session.sh [budget_seconds]
# Results: $OUT/<name>.tar with colorizer/config.json, colorizer/model.safetensors (fp16) and log.jsonl.
set -euo pipefail
BUDGET=${1:-420}
DATA_TAR=${DATA_TAR:-gpu/train128.tar}
INIT=${INIT:-}
WORK=${WORK:-/tmp/agin}
mkdir -p "$WORK/data" "$OUT"
tar xf "$DATA_TAR" -C "$WORK/data"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"

COMMON=(--data "$WORK/data/train128" --load-size 144 --crop-size 128 --base-channels 32 --num-groups 8
        --d-max-channels 256 --d-global-layers 6 --cycle-weight 0 --amp --channels-last
        --workers 2 --log-every 50 --sample-every 100000 --checkpoint-every 100000 --no-progress)

run() {  # name, extra args...
  local name=$1; shift
  python3 examples/train_cyclegan.py "${COMMON[@]}" --out "$WORK/runs/$name" "$@" > "$WORK/$name.out" 2>&1 &
}
# Default-model candidates: time-limited, batch 32, paired L1 with two weights.
run default_p10 --batch-size 32 --steps 1000000 --time-budget "$BUDGET" --paired-weight 10 ${INIT:+--init-from $INIT}
run default_p30 --batch-size 32 --steps 1000000 --time-budget "$BUDGET" --paired-weight 30 ${INIT:+--init-from $INIT}
# Ablations: same steps, batch, size and seed for each; the time budget is only a safety stop.
ABL=(--batch-size 16 --steps "${ABL_STEPS:-1500}" --paired-weight 10 --seed 0 --time-budget "$BUDGET")
run abl_agin_avg_median "${ABL[@]}"
run abl_gn_only "${ABL[@]}" --rho-init 1 --upsample-rho-init 1 --no-learn-rho
run abl_in_only "${ABL[@]}" --rho-init 0 --upsample-rho-init 0 --no-learn-rho
run abl_avg_max "${ABL[@]}" --pooling avg,max
run abl_no_cam "${ABL[@]}" --no-use-cam
sleep 30; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
wait || true
for d in "$WORK"/runs/*; do
  name=$(basename "$d")
  tail -n 3 "$WORK/$name.out"
  tail -n 1 "$d/log.jsonl" | cut -c1-300 || true
done
# Pack two runs per file (the transfer returns at most 8 files of 16 MiB each).
cd "$WORK/runs"
tar cf "$OUT/defaults.tar" default_*/colorizer default_*/log.jsonl
tar cf "$OUT/abl_norm.tar" abl_agin_avg_median/colorizer abl_gn_only/colorizer abl_in_only/colorizer abl_*/log.jsonl
tar cf "$OUT/abl_cam.tar" abl_avg_max/colorizer abl_no_cam/colorizer
for name in default_p10 default_p30; do
  ls "$name"/samples | tail -n 1 | xargs -I{} cp "$name/samples/{}" "$OUT/$name-last.png" || true
done
tail -n 30 "$WORK"/*.out > "$OUT/logs.txt" 2>/dev/null || true
ls -la "$OUT"
