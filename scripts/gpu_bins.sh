#!/usr/bin/env bash
# A lent GPU session (H100/H200, about 10 minutes of device time) for colour as classification
# (`--paired-loss ab-bins`, docs/training.md): two runs side by side on the one GPU, the bundled 32-channel
# model's body with a new 484-bin output layer that starts at the bundled model's own colours (so a gentle
# learning rate), and a 48-channel generator from scratch; rarity weights (--rebalance 0.5), whole 128 px
# photos with flips (the scale the Colorizer runs at), no discriminator.
# Then every snapshot and both final models are evaluated with `agincolor evaluate` on the validation
# photos at several annealed-mean temperatures.
#
# Needs, carried: gpu/train128.tar (copy of ../shared/data/train128.tar) and gpu/bsds500 (copy of
# ../shared/data/val/bsds500). Usage on the device:
#     OUT=/some/dir BUDGET=360 bash scripts/gpu_bins.sh
# Returns results.tar (training logs, one evaluation JSON per model and temperature) and the final fp16
# Colorizer folders b32.tar and b48.tar. DEVICE=cpu BUDGET=20 EVAL_LIMIT=4 WORKERS=1 is a CPU smoke test.
set -u
WORK=${WORK:-/tmp/agin_bins}
WORKERS=${WORKERS:-6}
source scripts/gpu_lib.sh  # BUDGET, DEVICE, SNAPSHOT, EVAL_LIMIT
gpu_setup gpu/train128.tar

supervised_args
C=("${SUPERVISED[@]}" --paired-loss ab-bins --load-size 128)
python3 -m agincolor train "${C[@]}" --base-channels 32 --init-from src/agincolor/pretrained --lr 2e-4 \
    --decay-start 0.3 --out "$WORK/b32" > "$WORK/b32.out" 2>&1 &
python3 -m agincolor train "${C[@]}" --base-channels 48 --lr 1e-3 --decay-start 0.4 --seed 1 \
    --out "$WORK/b48" > "$WORK/b48.out" 2>&1 &
sleep 60; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null || true
wait
for run in b32 b48; do tail -n 3 "$WORK/$run.out"; tail -n 1 "$WORK/$run/log.jsonl" | cut -c1-200; done

jobs_file=$WORK/eval/jobs.txt
: > "$jobs_file"
for run in b32 b48; do
  for t in 0.38 0.5 0.7 1.0; do echo "${run}_final_t$t $WORK/$run/colorizer --temperature $t" >> "$jobs_file"; done
  for d in "$WORK"/$run/snapshots/*; do
    [ -d "$d" ] && echo "${run}_$(basename "$d")_t0.5 $d --temperature 0.5" >> "$jobs_file"
  done
done
echo "bundled_v0.3_s0.95 src/agincolor/pretrained --saturation 0.95" >> "$jobs_file"
gpu_evaluate

cd "$WORK"
tar cf "$OUT/results.tar" eval ./*.out ./*/log.jsonl
tar cf "$OUT/b32.tar" b32/colorizer
tar cf "$OUT/b48.tar" b48/colorizer
ls -la "$OUT"
