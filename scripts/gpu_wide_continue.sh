#!/usr/bin/env bash
# Second, short GPU job after scripts/gpu_wide.sh: the 48-channel generator it trained (its final
# Colorizer folder copied to gpu/init/w48) continued alone on the whole GPU, same objective, lower lr.
# Needs, carried: gpu/train128.tar and gpu/init/w48. Usage on the device:
#     OUT=/some/dir BUDGET=180 bash scripts/gpu_wide_continue.sh
# Returns w48c.tar (final fp16 Colorizer folder and log.jsonl) and one tar per snapshot.
set -u
BUDGET=${BUDGET:-180}
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-/tmp/agin_wide}
SNAPSHOT=${SNAPSHOT:-$((BUDGET / 2 + 5))}
mkdir -p "$WORK/data" "$OUT"
tar xf "${DATA_TAR:-gpu/train128.tar}" -C "$WORK/data"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
timeout $((BUDGET + 60)) python3 -m agincolor train --data "$WORK/data/train128" --init-from gpu/init/w48 \
    --base-channels 48 --num-groups 8 --adv-weight 0 --cycle-weight 0 --content-weight 0 --cam-weight 0 \
    --paired-weight 1 --paired-loss chroma-l2 --rebalance 0.5 --load-size 144 --crop-size 128 --batch-size 64 \
    --beta1 0.9 --lr 1e-4 --decay-start 0.2 --amp --channels-last --device "$DEVICE" --workers 12 \
    --time-budget "$BUDGET" --steps 1000000 --snapshot-every "$SNAPSHOT" --log-every 50 --sample-every 1000000 \
    --checkpoint-every 1000000 --export-working-size 128 --no-progress --out "$WORK/w48c" 2>&1 | tail -n 3
tail -n 1 "$WORK/w48c/log.jsonl" | cut -c1-200
cd "$WORK" && tar cf "$OUT/w48c.tar" w48c/colorizer w48c/log.jsonl
for d in w48c/snapshots/*; do [ -d "$d" ] && tar cf "$OUT/w48c_$(basename "$d").tar" "$d"; done
ls -la "$OUT"
