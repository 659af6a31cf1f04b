#!/usr/bin/env bash
# One lent GPU session (H100/H200, about 10 minutes of device time), three runs side by side on the one
# GPU with the supervised objective of the default model's stages 3 and 4 (chroma-l2 paired term with
# colour-rarity weights, --rebalance 0.5, no discriminator): two wider generators (48 and 64 base
# channels) trained from scratch, and the bundled 32-channel model continued (warm start, lower lr).
# Then every snapshot and every final model is evaluated with `agincolor evaluate` on the validation
# photos, on the GPU machine's CPUs and GPU.
#
# Needs, carried: gpu/train128.tar (copy of ../shared/data/train128.tar) and gpu/bsds500 (copy of
# ../shared/data/val/bsds500). Usage on the device:
#     OUT=/some/dir BUDGET=360 bash scripts/gpu_wide.sh
# Returns at most 8 files: results.tar (training logs, one evaluation JSON per model and saturation) and
# the final fp16 Colorizer folders (w48.tar, c32.tar; w64.tar split in 15 MB parts: `cat w64.tar.* | tar x`).
# DEVICE=cpu BUDGET=20 EVAL_LIMIT=8 runs the same steps on a CPU, as a smoke test.
set -u
WORK=${WORK:-/tmp/agin_wide}
WORKERS=${WORKERS:-4}
source scripts/gpu_lib.sh  # BUDGET, DEVICE, SNAPSHOT, EVAL_LIMIT
gpu_setup gpu/train128.tar

supervised_args
C=("${SUPERVISED[@]}" --paired-loss chroma-l2 --load-size 144 --lr 2e-4 --decay-start 0.4)
for width in 48 64; do
  python3 -m agincolor train "${C[@]}" --base-channels "$width" --out "$WORK/w$width" \
      > "$WORK/w$width.out" 2>&1 &
done
python3 -m agincolor train "${C[@]}" --base-channels 32 --init-from src/agincolor/pretrained --lr 5e-5 \
    --decay-start 0.3 --seed 1 --out "$WORK/c32" > "$WORK/c32.out" 2>&1 &
sleep 60; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null || true
wait
for run in w48 w64 c32; do tail -n 3 "$WORK/$run.out"; tail -n 1 "$WORK/$run/log.jsonl" | cut -c1-200; done

# Evaluation: all jobs at once (each is one process; the metrics are CPU-bound, the network runs on the GPU).
jobs_file=$WORK/eval/jobs.txt
: > "$jobs_file"
for width in 48 64; do
  for s in 0.9 1.0 1.1 1.2; do echo "w${width}_final_s$s $WORK/w$width/colorizer --saturation $s" >> "$jobs_file"; done
  for d in "$WORK"/w$width/snapshots/*; do
    [ -d "$d" ] && echo "w${width}_$(basename "$d")_s1.0 $d --saturation 1.0" >> "$jobs_file"
  done
done
for s in 0.9 1.0 1.1; do echo "c32_final_s$s $WORK/c32/colorizer --saturation $s" >> "$jobs_file"; done
for d in "$WORK"/c32/snapshots/*; do [ -d "$d" ] && echo "c32_$(basename "$d")_s1.0 $d --saturation 1.0" >> "$jobs_file"; done
echo "bundled_v0.3_s0.95 src/agincolor/pretrained --saturation 0.95" >> "$jobs_file"
gpu_evaluate

cd "$WORK"
tar cf "$OUT/results.tar" eval ./*.out ./*/log.jsonl
tar cf "$OUT/w48.tar" w48/colorizer
tar cf "$OUT/c32.tar" c32/colorizer
tar cf - w64/colorizer | split -b 15m - "$OUT/w64.tar."
ls -la "$OUT"
