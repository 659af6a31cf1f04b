#!/usr/bin/env bash
# One lent GPU session of supervised training for the default model (docs/model_card.md, docs/training.md):
# warm start from the bundled model, the chroma-l2 paired objective, no discriminator, the whole GPU for
# one run, a snapshot every 2 minutes. Needs gpu/train128.tar (copy of ../shared/data/train128.tar) carried.
# Usage on the device: OUT=/some/dir BUDGET=480 REBALANCE=0.5 bash scripts/gpu_supervised.sh
# Returns (at most 8 files): log.jsonl and one tar per snapshot (fp16 Colorizer folders, ~5 MB each).
set -e
BUDGET=${BUDGET:-480}
REBALANCE=${REBALANCE:-0}
mkdir -p /tmp/agin/data && tar xf gpu/train128.tar -C /tmp/agin/data
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
python3 -m agincolor train --data /tmp/agin/data/train128 --out /tmp/agin/sup \
    --init-from src/agincolor/pretrained --base-channels 32 --num-groups 8 \
    --adv-weight 0 --cycle-weight 0 --content-weight 0 --cam-weight 0 --paired-weight 1 \
    --paired-loss chroma-l2 --rebalance "$REBALANCE" --load-size 128 --crop-size 128 \
    --batch-size 64 --beta1 0.9 --lr 1e-4 --decay-start 0.5 --amp --device cuda --workers 12 \
    --time-budget "$BUDGET" --steps 1000000 --snapshot-every 120 --log-every 50 \
    --sample-every 1000000 --checkpoint-every 1000000 --export-working-size 128 --no-progress 2>&1 | tail -n 5
cp /tmp/agin/sup/log.jsonl "$OUT/"
cd /tmp/agin/sup && mv colorizer final && for d in snapshots/* final; do tar cf "$OUT/$(basename "$d").tar" -C "$(dirname "$d")" "$(basename "$d")"; done
ls -la "$OUT"
