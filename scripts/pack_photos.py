"""Pack training photos into one tar archive small enough to carry to a lent GPU machine.

Every photo is centre-cropped to a square, resized to ``--size`` pixels and stored as WebP, keeping its
source folder (``train/<folder>/<name>.webp``), so ``agincolor train --exclude`` works on the unpacked
tree. Folders are sampled round-robin in a fixed shuffled order until ``--max-mib`` is reached, so a cap
keeps every source represented. An archive named ``*.tar.gz`` is gzip-compressed: the photos themselves
do not shrink, but each tar header and its padding (about 0.7 KiB a photo, a fifth of a 128 px WebP) does,
so the same cap holds about a fifth more photos; ``tar xf`` unpacks either kind. Example::

    python scripts/pack_photos.py ../shared/data/train gpu/photos.tar.gz --size 128 --max-mib 44
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tarfile
from pathlib import Path

from PIL import Image

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder with one sub-folder per source")
    parser.add_argument("archive", type=Path, help="tar file to write (refused if it exists)")
    parser.add_argument("--size", type=int, default=128, help="side of the stored squares")
    parser.add_argument("--quality", type=int, default=82, help="WebP quality")
    parser.add_argument("--max-mib", type=float, default=56.0, help="stop before the archive exceeds this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.archive.exists():
        parser.error(f"{args.archive} exists; remove it first")
    folders = sorted(p for p in args.source.iterdir() if p.is_dir())
    if not folders:
        parser.error(f"{args.source} has no sub-folders")
    rng = random.Random(args.seed)
    queues = []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS)
        rng.shuffle(files)
        queues.append((folder.name, files))
    budget = int(args.max_mib * 2**20)
    gzipped = args.archive.name.endswith(".tar.gz")
    # A plain tar's size is counted exactly (a 512-byte header per photo, data padded to 512 bytes) and
    # the margin covers its closing blocks (1 KiB, then padding to a 10 KiB record). Compressed, the
    # headers' zeros all but vanish: the file's own size is read after each photo, and the margin also
    # covers what gzip still holds in its buffer.
    margin = 2**18 if gzipped else 2**14
    written = 0
    counts = {name: 0 for name, _ in queues}
    args.archive.parent.mkdir(parents=True, exist_ok=True)
    with open(args.archive, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz" if gzipped else "w") as tar:
        full = False
        while not full and any(files for _, files in queues):
            for name, files in queues:
                if not files:
                    continue
                path = files.pop()
                try:
                    with Image.open(path) as im:
                        im = im.convert("RGB")
                        side = min(im.size)
                        left, top = (im.width - side) // 2, (im.height - side) // 2
                        im = im.crop((left, top, left + side, top + side)).resize((args.size, args.size), Image.BICUBIC)
                        buf = io.BytesIO()
                        im.save(buf, "WEBP", quality=args.quality)
                except OSError as err:
                    print(f"skipped {path}: {err}", file=sys.stderr)
                    continue
                data = buf.getvalue()
                size = 512 + -(-len(data) // 512) * 512  # its header, then the data padded to whole blocks
                if written + size + margin > budget:
                    full = True
                    break
                info = tarfile.TarInfo(f"train/{name}/{path.stem}.webp")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                written = raw.tell() if gzipped else written + size
                counts[name] += 1
    print(f"{args.archive}: {sum(counts.values())} photos, {args.archive.stat().st_size / 2**20:.1f} MiB")
    for name, n in counts.items():
        print(f"  {name}: {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
