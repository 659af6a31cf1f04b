"""Training data: a folder of colour photos, the gray domain made from their luminance on the fly.

Sampling is a pure function of (seed, step), so a resumed run draws exactly the batches an uninterrupted
run would have drawn, on any number of processes and data-loader workers.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageFile
from torch.utils.data import Dataset, Sampler

from ..colorizer import open_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "find_images",
    "ImageFolder",
    "StepBatchSampler",
    "cut_mix",
    "jitter_sharpness",
    "jitter_tone",
    "load_rgb",
    "mix_generator",
    "tone_generator",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

# A truncated JPEG must fail loudly here rather than decode into a half-gray training image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def find_images(root: str | os.PathLike[str], exclude: Sequence[str] = ()) -> list[Path]:
    """All image files (by extension) under ``root``, recursively, in a stable sorted order.

    ``exclude`` names sub-folders of ``root`` (relative paths, e.g. ``"portraits"``) whose images are left
    out, for holding whole sources out of training; each must exist, so that a typo cannot hold out nothing.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"data path {str(root)!r} is not a folder")
    skipped = []
    for name in exclude:
        folder = root / name
        if not folder.is_dir():
            raise ValueError(f"excluded folder {name!r} is not a sub-folder of {str(root)!r}")
        skipped.append(folder.resolve())
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(p.resolve().is_relative_to(folder) for folder in skipped)
    )
    if not files:
        raise ValueError(
            f"data folder {str(root)!r} holds no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return files


def source_name(path: Path, root: str | os.PathLike[str]) -> str:
    """The source of a photo under ``root``: its top-level sub-folder, or "" for a photo straight under it."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""


def load_rgb(path: Path) -> Image.Image:
    """Decode ``path`` fully as an RGB image; raises ImageReadError on unreadable or truncated files."""
    return open_image(path).convert("RGB")


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed & 0x7FFF_FFFF_FFFF_FFFF)


def tone_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator of the gray-input draws at ``step`` of a run seeded ``seed``, on process ``rank``.

    :func:`jitter_tone` draws from it first, then :func:`jitter_sharpness` (each nothing at strength 0).
    """
    return _seeded((seed * 1_000_003 + step) * 4099 + rank)


def mix_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator of :func:`cut_mix`'s draws at ``step`` of a run seeded ``seed``, on process ``rank``:
    separate from :func:`tone_generator`, so that mixing leaves the gray jitters' draws as they were."""
    return _seeded(((seed * 1_000_003 + step) * 4099 + rank) * 31 + 17)


def loader_generator(seed: int, stream: int, rank: int = 0) -> torch.Generator:
    """The generator a data loader of sampler ``stream`` draws its workers' base seed from, on process ``rank``:
    given to the loader so that starting it leaves the global RNG (restored on resume) untouched."""
    return _seeded(((seed * 1_000_003 + stream) * 4099 + rank) * 37 + 29)


def cut_mix(
    color: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste into some photos of a batch a rectangle of another photo of the same batch (CutMix for colour).

    ``color`` is (N, C, H, W). Each photo, with probability ``probability``, receives the rectangle at the
    same place of its donor, photo ``(i + d) % N`` for one shift ``d`` in [1, N - 1] drawn per batch (never
    itself). The rectangle covers a share of the photo's area uniform in [0.1, 0.5] (up to rounding to
    whole pixels), its share of the photo's height over its share of the width log-uniform in [1/2, 2] (a
    square photo's rectangle is from twice as wide as tall to twice as tall as wide), at a uniform
    position. Colour targets and gray inputs are both made from the mixed photo, so the network must colour
    each region by what it shows and not only by the scene around it; the pasted region keeps its own
    colours. Returns the mixed batch (a new tensor; the input is untouched, or returned itself when nothing
    is mixed) and a (N,) bool tensor of the photos that received a rectangle. A batch of one photo is
    returned as it is.
    """
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
        raise ValueError(f"probability must be a number in [0, 1], got {probability!r}")
    if color.dim() != 4:
        raise ValueError(f"expected a photo batch (N, C, H, W), got shape {tuple(color.shape)}")
    n, _, h, w = color.shape
    if probability == 0 or n < 2:
        return color, torch.zeros(n, dtype=torch.bool)
    shift = int(torch.randint(1, n, (1,), generator=generator))
    draws = torch.rand(n, 5, generator=generator, dtype=torch.float64)
    mixed_rows = draws[:, 0] < probability
    if not bool(mixed_rows.any()):
        return color, mixed_rows
    out = color.clone()
    for i in torch.nonzero(mixed_rows).flatten().tolist():
        share = 0.1 + 0.4 * float(draws[i, 1])
        aspect = math.exp(math.log(2.0) * (2 * float(draws[i, 2]) - 1))
        bh = min(h, max(1, round(h * math.sqrt(share * aspect))))
        bw = min(w, max(1, round(w * math.sqrt(share / aspect))))
        top = min(h - bh, int(float(draws[i, 3]) * (h - bh + 1)))
        left = min(w - bw, int(float(draws[i, 4]) * (w - bw + 1)))
        donor = (i + shift) % n
        out[i, :, top : top + bh, left : left + bw] = color[donor, :, top : top + bh, left : left + bw]
    return out, mixed_rows


def _jitter_is_off(gray: torch.Tensor, strength: float) -> bool:
    """Check a jitter's arguments (a gray batch (N, C, H, W), a strength in [0, 1]); True at strength 0."""
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    if gray.dim() != 4:
        raise ValueError(f"expected a gray batch (N, C, H, W), got shape {tuple(gray.shape)}")
    return strength == 0


def jitter_tone(gray: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Give each photo of a gray batch its own random tone curve, the same on every channel.

    ``gray`` is (N, C, H, W) in [-1, 1]. Each photo's brightness ``g`` in [0, 1] is raised to a gamma
    ``e^(s u)``, then its contrast about its own mean is scaled by ``e^(s v / 2)`` and the result clipped
    to [0, 1]; ``u`` and ``v`` are uniform in [-1, 1], drawn from ``generator``, and ``s`` is ``strength``.
    Gamma moves the mid-tones (a dull overcast photo, a bright print) and leaves black and white where
    they are; contrast then spreads or flattens the whole range. Both curves rise, so a darker pixel
    never ends up lighter than a brighter one. Strength 0 returns ``gray`` itself.
    """
    if _jitter_is_off(gray, strength):
        return gray
    n = gray.shape[0]
    draws = torch.rand(2, n, 1, 1, 1, generator=generator).mul_(2).sub_(1).to(gray.device)
    gamma = torch.exp(strength * draws[0])
    contrast = torch.exp(strength / 2 * draws[1])
    g = ((gray.float() + 1) / 2).clamp(0, 1).pow(gamma)
    mean = g.mean(dim=(1, 2, 3), keepdim=True)
    g = (mean + contrast * (g - mean)).clamp(0, 1)
    return (g * 2 - 1).to(gray.dtype)


def jitter_sharpness(gray: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Give each photo of a gray batch its own random sharpness: softer or crisper by up to ``strength``.

    ``gray`` is (N, C, H, W) in [-1, 1]. With ``b`` the photo blurred by a Gaussian of 1 pixel (5 taps each
    way, edges reflected), each photo becomes ``g + k (g - b)`` clipped to [-1, 1], with ``k`` uniform in
    [-``strength``, ``strength``] from ``generator``: ``k`` -1 is the blurred photo itself, 0 the photo,
    +1 an unsharp mask at full amount. Every frequency is scaled by ``1 + k (1 - H)``, with ``H`` the
    Gaussian's response, so edges keep their place and a flat region stays as it was; the mean brightness
    is unchanged but where clipping cuts an overshoot. Strength 0 returns ``gray`` itself.
    """
    if _jitter_is_off(gray, strength):
        return gray
    n, c = gray.shape[:2]
    amount = torch.rand(n, 1, 1, 1, generator=generator).mul_(2).sub_(1).mul_(strength).to(gray.device)
    g = gray.float()
    taps = torch.exp(-0.5 * torch.arange(-2, 3, dtype=torch.float32, device=g.device) ** 2)
    taps = taps / taps.sum()
    flat = g.reshape(n * c, 1, *g.shape[2:])
    blurred = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="reflect"), taps.view(1, 1, 1, 5))
    blurred = F.conv2d(F.pad(blurred, (0, 0, 2, 2), mode="reflect"), taps.view(1, 1, 5, 1))
    blurred = blurred.reshape(g.shape)
    return (g + amount * (g - blurred)).clamp(-1, 1).to(gray.dtype)


class ImageFolder(Dataset):
    """Images under a folder, resized to ``load_size``, randomly cropped to ``crop_size`` and flipped.

    With ``scale_min`` < 1 the crop is random-resized: a square whose area is a uniform random share in
    [``scale_min``, 1] of the resized image's, at a random place, resized to ``crop_size`` (bicubic,
    antialiased). ``scale_min`` 1 keeps the plain ``crop_size`` crop, with no second resize.

    Items are addressed by ``(index, seed)``: the seed fixes the crop and flip. An unreadable file is
    skipped with one warning naming it, and the next file is used in its place; the item reports how
    many files it skipped so the trainer can count them. Returns a float tensor (3, crop, crop) in [-1, 1].
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        scale_min: float = 1.0,
        exclude: Sequence[str] = (),
    ) -> None:
        if crop_size > load_size:
            raise ValueError(f"crop_size ({crop_size}) must not exceed load_size ({load_size})")
        if not 0 < scale_min <= 1:
            raise ValueError(f"scale_min must be in (0, 1], got {scale_min}")
        self.files = find_images(root, exclude)
        names = [source_name(path, root) for path in self.files]
        self.source_names = sorted(set(names))
        index = {name: k for k, name in enumerate(self.source_names)}
        self.sources = [index[name] for name in names]  # each file's position in source_names
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.scale_min = float(scale_min)
        self._warned: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def _transform(self, image: Image.Image, seed: int) -> torch.Tensor:
        rng = _seeded(seed)
        image = image.resize((self.load_size, self.load_size), Image.BICUBIC)
        side = self.crop_size
        if self.scale_min < 1:
            share = self.scale_min + (1 - self.scale_min) * float(torch.rand((), generator=rng))
            side = min(self.load_size, max(1, round(self.load_size * math.sqrt(share))))
        top, left = (int(v) for v in torch.randint(0, self.load_size - side + 1, (2,), generator=rng))
        image = image.crop((left, top, left + side, top + side))
        if side != self.crop_size:
            image = image.resize((self.crop_size, self.crop_size), Image.BICUBIC)
        if self.flip and bool(torch.rand((), generator=rng) < 0.5):
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        t = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        t = t.view(self.crop_size, self.crop_size, 3).permute(2, 0, 1)
        return t.float().div_(127.5).sub_(1.0)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        for skipped in range(len(self.files)):
            i = (index + skipped) % len(self.files)
            try:
                image = load_rgb(self.files[i])
            except Exception as err:  # any decoder failure means "unusable file", never a crash
                if i not in self._warned:
                    self._warned.add(i)
                    warnings.warn(f"skipping unreadable image {self.files[i]}: {err}", stacklevel=2)
                continue
            return self._transform(image, seed), skipped
        raise RuntimeError(f"no readable image among the {len(self.files)} files of the data folder")


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields, for each training step from ``start_step`` on, this rank's share of the global batch.

    Step s of epoch e = s // steps_per_epoch reads positions of a permutation seeded by (seed, e);
    every item also gets an augmentation seed derived from (seed, step, slot). ``stream`` separates
    independent draws from the same dataset (colour domain 0, gray domain 1).

    With ``sources`` (each item's source, as :attr:`ImageFolder.sources`) and ``source_power`` p other
    than 1, the epoch's sequence is drawn source by source instead: each position's source at random with
    probability proportional to its item count to the power p (0: every source alike; 1 would be the
    plain permutation's shares), then that source's next item in its own permutation of the epoch,
    starting that permutation again when a small source runs out. Still a function of (seed, e) only.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int,
        start_step: int = 0,
        total_steps: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        stream: int = 0,
        sources: Sequence[int] | None = None,
        source_power: float = 1.0,
    ) -> None:
        self.n = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.total_steps = total_steps
        self.rank = rank
        self.world_size = world_size
        self.stream = stream
        self.global_batch = batch_size * world_size
        self.steps_per_epoch = max(1, self.n // self.global_batch) if self.n >= self.global_batch else 1
        # Item indices of each source and each source's share of the draws, when drawn source by source
        # (at a power other than 1, and with at least two sources to choose between).
        self.members: list[torch.Tensor] = []
        self.source_shares: torch.Tensor | None = None
        if sources is not None and source_power != 1:
            if len(sources) != dataset_size:
                raise ValueError(f"sources has {len(sources)} entries for a dataset of {dataset_size} items")
            which = torch.as_tensor(list(sources), dtype=torch.long)
            groups = (torch.nonzero(which == k).flatten() for k in range(int(which.max()) + 1))
            members = [m for m in groups if len(m)]
            if len(members) > 1:
                sizes = torch.tensor([len(m) for m in members], dtype=torch.float64)
                self.members, self.source_shares = members, sizes**source_power / (sizes**source_power).sum()
        self._cached: tuple[int, torch.Tensor] | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        g = _seeded(self.seed * 1_000_003 + epoch * 7919 + self.stream * 104_729)
        if self.source_shares is None:
            order = torch.randperm(self.n, generator=g)
        else:
            pick = torch.multinomial(self.source_shares, self.n, replacement=True, generator=g)
            order = torch.empty(self.n, dtype=torch.long)
            for k, members in enumerate(self.members):
                where = torch.nonzero(pick == k).flatten()
                own = members[torch.randperm(len(members), generator=g)]
                order[where] = own[torch.arange(len(where)) % len(own)]
        self._cached = (epoch, order)
        return order

    def batch_for_step(self, step: int) -> list[tuple[int, int]]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        perm = self._permutation(epoch)
        out = []
        for j in range(self.batch_size):
            slot = pos * self.global_batch + self.rank * self.batch_size + j
            index = int(perm[slot % self.n])
            aug_seed = (self.seed * 2_654_435_761 + step * 40_503 + slot * 97 + self.stream * 7) & 0x7FFF_FFFF
            out.append((index, aug_seed))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while self.total_steps is None or step < self.total_steps:
            yield self.batch_for_step(step)
            step += 1

    def __len__(self) -> int:
        if self.total_steps is None:
            raise TypeError("an endless StepBatchSampler has no length")
        return max(0, self.total_steps - self.start_step)


def collate(items: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, int]:
    """Stack images; sum the skipped-file counts."""
    return torch.stack([im for im, _ in items]), sum(s for _, s in items)
