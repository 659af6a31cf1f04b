"""Train agincolor's colorization framework (Gao et al. 2020) on a folder of colour photos.

    python examples/train_cyclegan.py --data ../shared/data/train --out runs/landscape
    torchrun --nproc_per_node 2 examples/train_cyclegan.py --data ../shared/data/train --out runs/ddp

Every option is listed by --help; the defaults reproduce the paper's section 4.2. Needs the training
extra: pip install "agincolor[train]".
"""

import sys

from agincolor.train.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="train_cyclegan.py"))
