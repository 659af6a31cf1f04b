# Shared steps of the lent-GPU scripts (sourced by scripts/gpu_wide.sh and scripts/gpu_bins.sh).
# Expects OUT and WORK set (and WORKERS, data-loader processes per run, for supervised_args). Settings, from the environment or these defaults: BUDGET (training seconds
# per run, 360), DEVICE (cuda), SNAPSHOT (seconds between snapshots, a quarter of BUDGET plus 10),
# EVAL_LIMIT (evaluate only the first N validation photos; empty: all).
BUDGET=${BUDGET:-360}
DEVICE=${DEVICE:-cuda}
SNAPSHOT=${SNAPSHOT:-$((BUDGET / 4 + 10))}
EVAL_LIMIT=${EVAL_LIMIT:-}

gpu_setup() {  # unpack the training photos (arg: tar path), print the machine
  mkdir -p "$WORK/data" "$WORK/eval" "$OUT"
  tar xf "$1" -C "$WORK/data"
  export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
}

supervised_args() {  # SUPERVISED: the options every supervised GPU run shares (add --paired-loss, sizes, lr)
  SUPERVISED=(--data "$WORK/data/train128" --num-groups 8 --adv-weight 0 --cycle-weight 0 --content-weight 0
    --cam-weight 0 --paired-weight 1 --rebalance 0.5 --crop-size 128 --batch-size 64 --beta1 0.9 --amp
    --channels-last --device "$DEVICE" --workers "$WORKERS" --time-budget "$BUDGET" --steps 1000000
    --snapshot-every "$SNAPSHOT" --log-every 50 --sample-every 1000000 --checkpoint-every 1000000
    --export-working-size 128 --no-progress)
}

evaluate_one() {  # name, model folder, extra agincolor evaluate options...
  local name=$1 model=$2
  shift 2
  python3 -m agincolor evaluate gpu/bsds500 --model "$model" "$@" --device "$DEVICE" --json --no-progress \
      ${EVAL_LIMIT:+--limit $EVAL_LIMIT} > "$WORK/eval/$name.json" 2> "$WORK/eval/$name.err"
}

gpu_evaluate() {  # run every line "name model-folder options..." of $WORK/eval/jobs.txt, 15 at a time
  export -f evaluate_one
  export WORK DEVICE EVAL_LIMIT
  xargs -P 15 -L 1 bash -c 'evaluate_one "$@"' _ < "$WORK/eval/jobs.txt"
  python3 - "$WORK/eval" <<'PY'
import json, sys, pathlib
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    try:
        m = json.loads(p.read_text())["metrics"]["model"]
        hues = " ".join("-" if m.get(h) is None else f"{m[h]:.3f}" for h in ("green", "blue"))
        print(f"{p.stem:40s} {m['psnr']:.3f} {m['ssim']:.4f} {m['colorfulness']:.2f} {hues}")
    except Exception as err:
        print(p.stem, "failed:", err)
PY
}
