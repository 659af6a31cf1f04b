#!/usr/bin/env bash
# Stage 2 of the default model (docs/model_card.md): two warm-started runs side by side on one GPU,
# continuing stage 1 (scripts/gpu_session.sh) with its generators in gpu/init/<run>/colorizer.
# Usage: OUT=/some/dir bash scripts/gpu_continue.sh
set -e
mkdir -p /tmp/agin/data; tar xf gpu/train128.tar -C /tmp/agin/data
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
C=(--data /tmp/agin/data/train128 --load-size 144 --crop-size 128 --base-channels 32 --num-groups 8 --d-max-channels 256 --d-global-layers 6 --cycle-weight 0 --amp --channels-last --workers 4 --log-every 50 --sample-every 100000 --checkpoint-every 100000 --no-progress --batch-size 32 --steps 1000000 --time-budget 290 --decay-start 0.3)
python3 examples/train_cyclegan.py "${C[@]}" --out /tmp/agin/runs/c_p10 --paired-weight 10 --init-from gpu/init/default_p10/colorizer > /tmp/agin/c_p10.out 2>&1 &
python3 examples/train_cyclegan.py "${C[@]}" --out /tmp/agin/runs/c_p30 --paired-weight 30 --init-from gpu/init/default_p30/colorizer --seed 1 > /tmp/agin/c_p30.out 2>&1 &
wait
cd /tmp/agin/runs; tail -n 2 ../*.out; tail -n1 */log.jsonl | cut -c1-200
tar cf $OUT/cont.tar c_*/colorizer c_*/log.jsonl
