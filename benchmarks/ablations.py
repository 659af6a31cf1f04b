"""The paper's ablations (sections 5.3, 5.4): AGIN vs GN only vs IN only; CAM pooling variants vs no CAM.

Every variant trains with the same steps, batch, image size, objective and seed; only the normalization
or the attention changes. Then each is evaluated with the DESIGN.md protocol on the validation folder.

    # train all variants (CPU or GPU; scripts/gpu_session.sh runs the same flags side by side on a GPU)
    python benchmarks/ablations.py train --data data/train128 --out runs/ablations --steps 1500
    # evaluate them: markdown table (PSNR, SSIM, colorfulness, final mean rho per layer) and a picture grid
    python benchmarks/ablations.py evaluate --runs runs/ablations --val ../shared/data/val/bsds500 \
        --grid docs/images/ablations.jpg
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VARIANTS: dict[str, list[str]] = {
    "abl_agin_avg_median": [],
    "abl_gn_only": ["--rho-init", "1", "--upsample-rho-init", "1", "--no-learn-rho"],
    "abl_in_only": ["--rho-init", "0", "--upsample-rho-init", "0", "--no-learn-rho"],
    "abl_avg_max": ["--pooling", "avg,max"],
    "abl_no_cam": ["--no-use-cam"],
}
LABELS = {
    "abl_agin_avg_median": "AGIN, CAM avg+median (paper)",
    "abl_gn_only": "GN only (rho = 1 fixed)",
    "abl_in_only": "IN only (rho = 0 fixed)",
    "abl_avg_max": "AGIN, CAM avg+max (U-GAT-IT)",
    "abl_no_cam": "AGIN, no CAM",
}
COMMON = [
    "--load-size", "144", "--crop-size", "128", "--base-channels", "32", "--num-groups", "8",
    "--d-max-channels", "256", "--d-global-layers", "6", "--cycle-weight", "0", "--paired-weight", "10",
    "--batch-size", "16", "--seed", "0", "--amp", "--no-progress",
]


def train(args: argparse.Namespace) -> None:
    script = Path(__file__).resolve().parent.parent / "examples" / "train_cyclegan.py"
    for name, extra in VARIANTS.items():
        cmd = [sys.executable, str(script), "--data", args.data, "--out", str(Path(args.out) / name),
               "--steps", str(args.steps), *COMMON, *extra]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def _final_rho(run: Path) -> dict[str, float]:
    last = json.loads((run / "log.jsonl").read_text().strip().splitlines()[-1])
    return {k[4:]: v for k, v in last.items() if k.startswith("rho/") and k not in ("rho/min", "rho/max")}


def evaluate_runs(args: argparse.Namespace) -> None:
    import torch
    from PIL import Image

    from agincolor import Colorizer
    from agincolor.evaluate import _load_256, evaluate, list_images

    torch.set_num_threads(args.threads)
    files = list_images(args.val)[: args.limit]
    runs = [Path(args.runs) / name for name in VARIANTS if (Path(args.runs) / name).is_dir()]
    print("| variant | steps | PSNR (dB) | SSIM | colorfulness | final mean rho per layer |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    models = {}
    gray_row = None
    for run in runs:
        model = Colorizer.from_pretrained(run / "colorizer")
        result = evaluate(lambda ims: model.colorize(ims), files)
        last = json.loads((run / "log.jsonl").read_text().strip().splitlines()[-1])
        m = result.rows["model"]
        rho = ", ".join(f"{k.replace('decoder_blocks.', 'ada').replace('upsample.', 'up')}={v:.2f}" for k, v in _final_rho(run).items())
        print(f"| {LABELS[run.name]} | {last['step']} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['colorfulness']:.1f} | {rho} |", flush=True)
        models[run.name] = model
        gray_row = result.rows
    if gray_row is not None:
        g = gray_row["gray baseline"]
        print(f"| gray baseline | - | {g['psnr']:.2f} | {g['ssim']:.4f} | 0.0 | - |")
        print(f"| ground truth | - | - | - | {gray_row['ground truth']['colorfulness']:.1f} | - |")
        print(f"\n{len(files)} images of {args.val}")
    if args.grid and models:
        picks = [files[i] for i in args.grid_images]
        tile = 160
        grid = Image.new("RGB", (tile * (len(models) + 2), tile * len(picks)), "white")
        for r, path in enumerate(picks):
            truth = _load_256(path)
            gray = truth.convert("L")
            cells = [gray.convert("RGB")] + [m.colorize(gray) for m in models.values()] + [truth]
            for c, im in enumerate(cells):
                grid.paste(im.resize((tile, tile), Image.LANCZOS), (c * tile, r * tile))
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        grid.save(args.grid, quality=88)
        print(f"grid columns: gray input, {', '.join(LABELS[n] for n in models)}, ground truth -> {args.grid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=1500)
    e = sub.add_parser("evaluate")
    e.add_argument("--runs", required=True)
    e.add_argument("--val", required=True)
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--grid", default=None)
    e.add_argument("--grid-images", type=int, nargs="+", default=[3, 17, 42, 101, 250])
    args = parser.parse_args()
    train(args) if args.command == "train" else evaluate_runs(args)


if __name__ == "__main__":
    main()
