"""Write a trained Colorizer folder into the package as the bundled default model (fp16 safetensors).

    python scripts/bundle_model.py runs/x/colorizer --working-size 128 --saturation 0.6 --card docs/model_card.md \
        --license other --license-terms "research use only (training photos' terms)"

A model that predicts ab bins keeps its bin grid; --temperature sets its annealed-mean temperature and
--decoding how its bin distribution becomes a colour (ab-mean or srgb-mean; both default to the source's).
--resample sets the filter that shrinks the gray input to the working size, --brightness what of the
input's brightness the output keeps (lightness or luma; both default to the source's).
"""

import argparse
import shutil

from agincolor import Colorizer
from agincolor.colorizer import DECODINGS, DEFAULT_MODEL_DIR
from agincolor.image_processor import BRIGHTNESSES, RESAMPLINGS

parser = argparse.ArgumentParser()
parser.add_argument("source")
parser.add_argument("--working-size", type=int, required=True)
parser.add_argument("--saturation", type=float, required=True)
parser.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature (ab-bins models)")
parser.add_argument("--decoding", choices=DECODINGS, default=None, help="ab-mean or srgb-mean (ab-bins models)")
parser.add_argument("--resample", choices=tuple(RESAMPLINGS), default=None, help="bilinear, bicubic or lanczos")
parser.add_argument("--brightness", choices=tuple(BRIGHTNESSES), default=None, help="lightness or luma")
parser.add_argument("--card", default=None, help="model card (markdown) to ship as README.md")
parser.add_argument("--license", required=True, help="the weights' licence: a Hub id or 'other' (they inherit the data's terms)")
parser.add_argument("--license-terms", default=None, help="with 'other': the terms in a few words")
args = parser.parse_args()

trained = Colorizer.from_pretrained(args.source)
if (args.temperature is not None or args.decoding is not None) and trained.ab_bins is None:
    parser.error("--temperature and --decoding apply only to a model that predicts ab bins")
bundled = Colorizer(
    generator=trained.generator_config,
    working_size=args.working_size,
    saturation=args.saturation,
    ab_bins=trained.ab_bins,
    temperature=trained.temperature if args.temperature is None else args.temperature,
    decoding=trained.decoding if args.decoding is None else args.decoding,
    resample=trained.resample if args.resample is None else args.resample,
    brightness=trained.brightness if args.brightness is None else args.brightness,
    license=args.license,
    license_terms=args.license_terms,
)
bundled.load_state_dict(trained.state_dict())
if DEFAULT_MODEL_DIR.exists():
    shutil.rmtree(DEFAULT_MODEL_DIR)
bundled.half().save_pretrained(DEFAULT_MODEL_DIR)
if args.card:
    shutil.copy(args.card, DEFAULT_MODEL_DIR / "README.md")
print(sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir()), (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size)
