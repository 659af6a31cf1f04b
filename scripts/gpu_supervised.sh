#!/usr/bin/env bash
# One lent GPU session of supervised training for the default model (docs/model_card.md, docs/training.md):
# warm start from the bundled model, the chroma-l2 paired objective, no discriminator, the whole GPU for
# one run, a snapshot every 2 minutes. Needs gpu/train128.tar (copy of ../shared/data/train128.tar) carried.
# Usage on the device: OUT=/some/dir BUDGET=480 bash scripts/gpu_supervised.sh
# Returns (at most 8 files): log.jsonl and one tar per snapshot (fp16 Colorizer folders, ~5 MB each).
set -e
BUDGET=${BUDGET:-480}
mkdir -p /tmp/agin/data && tar xf gpu/train128.tar -C /tmp/agin/data
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
python3 scripts/finetune_paired.py --init src/agincolor/pretrained --data /tmp/agin/data/train128 \
    --out /tmp/agin/sup --time-budget "$BUDGET" --device cuda --workers 12 --batch-size 64 --lr 1e-4 \
    --amp --export-every 120 --log-every 50 --decay-start 0.5 2>&1 | tail -n 5
cp /tmp/agin/sup/log.jsonl "$OUT/"
cd /tmp/agin/sup && for d in snapshot-* final; do tar cf "$OUT/$d.tar" "$d"; done
ls -la "$OUT"
