"""The training loop for the paper's framework: G_g, G_c, D_c, D_g trained with eq. 9.

One iteration computes the generators' outputs once, updates the generators against frozen
discriminators, then updates the discriminators on the same outputs, detached. Nothing is recomputed,
and no discriminator step backpropagates into a generator (the two wastes of the reference U-GAT-IT code).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..color import ab_bin_centers, ab_bin_index, ab_from_bin_logits, lab_to_rgb, rgb_to_gray, rgb_to_lab
from ..colorizer import DEFAULT_TEMPERATURE
from ..discriminator import Discriminator
from ..encoders import load_pretrained_encoder
from ..generator import AB_SCALE, Generator
from ..norm import AGIN, GroupInstanceNorm, clip_rho_
from . import losses as L
from .config import ARCHITECTURE_FIELDS, TrainConfig
from .data import (
    ImageFolder,
    StepBatchSampler,
    collate,
    cut_mix,
    jitter_sharpness,
    jitter_tone,
    loader_generator,
    mix_generator,
    tone_generator,
)

__all__ = ["Trainer", "export_generator", "CHECKPOINT_NAME", "atomic_save"]

CHECKPOINT_NAME = "checkpoint.pt"
#: Widths (CIELAB units) tried for the Gaussian that starts an ab-bins layer at its parent's colours.
HEAD_SIGMAS = (4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0)


def atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` with torch.save to a temporary file beside ``path``, fsync it, then rename over ``path``.

    A crash at any moment leaves either the previous file or the new one, never a torn file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def to_gray(color: torch.Tensor) -> torch.Tensor:
    """Luminance of colour images in [-1, 1], as 3 equal channels in [-1, 1] (the X_g domain)."""
    return (rgb_to_gray((color + 1) / 2) * 2 - 1).expand_as(color).contiguous()


def export_generator(
    generator: Generator,
    directory: str | os.PathLike[str],
    generator_kwargs: dict[str, Any],
    working_size: int,
    half: bool = True,
    model_card: str | None = None,
    ab_bins: dict[str, float] | None = None,
) -> Path:
    """Write a gray-to-colour generator as a Colorizer folder (config.json + model.safetensors).

    ``half`` stores the weights in float16 (half the size; loading restores float32). ``ab_bins`` is the
    bin grid of a generator with ``head="logits"`` (see :class:`~agincolor.Colorizer`).
    """
    from ..colorizer import Colorizer

    colorizer = Colorizer(generator=dict(generator_kwargs), working_size=working_size, ab_bins=ab_bins)
    colorizer.generator.load_state_dict(generator.state_dict())
    if half:
        colorizer.half()
    directory = Path(directory)
    colorizer.save_pretrained(directory)
    if model_card is not None:
        (directory / "README.md").write_text(model_card)
    return directory


class _Distributed:
    """World facts, with every collective a no-op on a single process."""

    def __init__(self, device_hint: str) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world_size > 1
        if device_hint == "auto":
            device_hint = "cuda" if torch.cuda.is_available() else "cpu"
        if device_hint.startswith("cuda"):
            if not torch.cuda.is_available():
                raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
            if self.enabled or device_hint == "cuda":
                device_hint = f"cuda:{self.local_rank}"
            torch.cuda.set_device(torch.device(device_hint))
        self.device = torch.device(device_hint)
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        """Average gradients over processes with one flat all-reduce (data parallelism, as DDP does)."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        if not self.enabled or not values:
            return values
        t = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(values, t.tolist())}

    def sum_int(self, value: int) -> int:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.all_reduce(t)
        return int(t.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def _params(*modules: nn.Module | None) -> list[nn.Parameter]:
    return [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]


def _is_weight(p: nn.Parameter) -> bool:
    """A convolution's or linear layer's weight (more than one dimension longer than 1), which weight decay
    applies to, rather than one value per channel: a bias, a normalisation layer's scale or shift, a rho,
    or the one-output linear layer of CAM attention (its weight, shaped (1, C), weighs each channel)."""
    return sum(n > 1 for n in p.shape) > 1


class Trainer:
    """Trains G_g (gray to colour), G_c (colour to gray), D_c and D_g with the objective of eq. 9.

    ``Trainer(config).train()`` runs ``config.steps`` steps, writing to ``config.out``: a JSONL log of
    every loss term and rho statistics, sample grids, an atomic ``checkpoint.pt`` every
    ``checkpoint_every`` steps and at the end, and the exported Colorizer folder ``colorizer/``.
    ``resume=True`` continues from ``out/checkpoint.pt`` when it exists. With ``snapshot_every`` it also
    exports ``snapshots/<seconds>s-step<step>`` Colorizer folders as training time passes.

    Only the networks the objective uses are built: ``cycle_weight`` 0 drops G_c and D_g, and
    ``adv_weight`` 0 drops both discriminators (``D_c``, ``D_g`` and ``opt_d`` are then None).
    """

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.world = _Distributed(config.device)
        self.device = self.world.device
        self.out = Path(config.out)
        torch.manual_seed(config.seed)

        self.color_data = ImageFolder(
            config.data, config.load_size, config.crop_size, config.flip, config.scale_min, config.exclude
        )
        self.gray_data = (
            ImageFolder(config.gray_data, config.load_size, config.crop_size, config.flip, config.scale_min)
            if config.gray_data
            else self.color_data
        )
        self.paired = config.paired_weight > 0
        # Pixel counts per ab bin of some training photos: the colour prior behind the rarity weights and,
        # below, the starting scores of a fresh ab-bins output layer (counted once, only when needed).
        counts = self._colour_counts() if config.rebalance > 0 else None
        self.rebalance = None if counts is None else L.ChromaRebalance.from_histogram(counts, power=config.rebalance)

        gk = config.generator_kwargs()
        dk = config.discriminator_kwargs()
        self.G_g = Generator(**{"in_channels": 3, "out_channels": 3, **gk}).to(self.device)
        self.adversarial = config.adv_weight_enabled
        self.reverse = config.cycle_weight_enabled
        self.D_c = Discriminator(in_channels=3, **dk).to(self.device) if self.adversarial else None
        if self.D_c is not None:  # refused now rather than by D_c at the first step
            judged = config.crop_size // config.bins_stride
            if judged < self.D_c.min_size:
                seen = f"crop_size {config.crop_size}" + (
                    f" decimated by bins_stride {config.bins_stride}" if config.bins_stride > 1 else ""
                )
                raise ValueError(
                    f"D_c would judge {judged}x{judged} photos ({seen}), but with d_local_layers "
                    f"{config.d_local_layers} and d_global_layers {config.d_global_layers} it needs at least "
                    f"{self.D_c.min_size}: use fewer discriminator layers or larger crops"
                )
        reverse_kwargs = {**gk, "in_channels": 3, "out_channels": 3, "head": "image"}
        self.G_c = Generator(**reverse_kwargs).to(self.device) if self.reverse else None
        self.D_g = (
            Discriminator(in_channels=3, **dk).to(self.device) if self.reverse and self.adversarial else None
        )
        if config.channels_last:
            for m in self._networks().values():
                m.to(memory_format=torch.channels_last)

        self.g_params = _params(self.G_g, self.G_c)
        self.d_params = _params(self.D_c, self.D_g)
        betas = (config.beta1, config.beta2)
        # The fused kernel updates all parameters in one pass (CPU and CUDA), instead of a dozen
        # elementwise passes over 100M+ parameters in the paper configuration.
        adam = dict(lr=config.lr, betas=betas)  # no weight_decay: _decay_weights applies it before each step
        self.decayed = {id(p) for p in self.g_params + self.d_params if config.weight_decay_all or _is_weight(p)}
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        # A pretrained encoder learns more slowly than the fresh layers around it (its own group and rate).
        g_groups: list[dict[str, Any]] = [{"params": self.g_params, "base_lr": config.lr}]
        if config.encoder != "paper":
            encoder_ids = {id(p) for p in self.G_g.encoder.parameters()}
            encoder_lr = config.encoder_lr if config.encoder_lr is not None else config.lr / 10
            g_groups = [
                {"params": [p for p in self.g_params if id(p) not in encoder_ids], "base_lr": config.lr},
                {"params": list(self.G_g.encoder.parameters()), "base_lr": encoder_lr, "lr": encoder_lr},
            ]
        try:
            self.opt_g = torch.optim.Adam(g_groups, **adam, **fused)
            self.opt_d = torch.optim.Adam(self.d_params, **adam, **fused) if self.d_params else None
        except (RuntimeError, TypeError):  # a torch or device without the fused kernel
            self.opt_g = torch.optim.Adam(g_groups, **adam)
            self.opt_d = torch.optim.Adam(self.d_params, **adam) if self.d_params else None
        self.base_lr = config.lr
        self.step = 0
        self.skipped = 0
        self.elapsed = 0.0
        # The moving average of G_g's weights (``config.ema``), made once G_g holds its starting weights.
        self.G_ema: Generator | None = None
        self.ema_updates = 0

        parent = self._init_from(config.init_from) if config.init_from else None
        head_loaded = parent is not None and parent.head_kind == self.G_g.head_kind
        resumed = resume and (self.out / CHECKPOINT_NAME).exists()
        if resumed:
            self.load_checkpoint(self.out / CHECKPOINT_NAME)
        else:
            if config.encoder != "paper" and config.pretrained_encoder and parent is None:
                load_pretrained_encoder(self.G_g.encoder)
            if self.G_g.head_kind == "logits" and not head_loaded:
                if parent is not None and parent.head_kind in ("image", "ab"):
                    self._start_head_at_parent(parent)
                else:
                    self._start_head_at_prior(counts if counts is not None else self._colour_counts())
            if self.world.enabled:
                self._broadcast_parameters()
        if config.ema > 0 and self.G_ema is None:
            self.G_ema = self._average_of(self.G_g)
        # Frozen teachers for the distillation term (``config.distill_from``).
        self.teachers = [self._load_teacher(folder) for folder in config.distill_from]

    # ----------------------------------------------------------------------------------------- state
    def _networks(self) -> dict[str, nn.Module]:
        nets = {"G_g": self.G_g, "D_c": self.D_c, "G_c": self.G_c, "D_g": self.D_g}
        return {name: net for name, net in nets.items() if net is not None}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"G": self.opt_g, "D": self.opt_d}
        return {name: opt for name, opt in opts.items() if opt is not None}

    @staticmethod
    def _average_of(net: Generator) -> Generator:
        """A frozen copy of ``net`` to hold its weights' moving average."""
        average = copy.deepcopy(net).eval()
        average.requires_grad_(False)
        return average

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Move the average towards G_g's new weights; the decay ramps up as (1 + n) / (10 + n) over the
        first updates, so that the average soon forgets the starting weights of a run from scratch."""
        assert self.G_ema is not None
        self.ema_updates += 1
        n = self.ema_updates
        decay = min(self.config.ema, (1 + n) / (10 + n))
        for average, current in zip(self.G_ema.parameters(), self.G_g.parameters()):
            average.lerp_(current, 1.0 - decay)
        for average, current in zip(self.G_ema.buffers(), self.G_g.buffers()):
            average.copy_(current)

    @property
    def exported_generator(self) -> Generator:
        """The weights that exports, snapshots and samples use: the moving average with ``ema``, else G_g."""
        return self.G_ema if self.G_ema is not None else self.G_g

    def _broadcast_parameters(self) -> None:
        # Every rank starts from rank 0's weights (and spectral-norm vectors), as DDP does at wrap time.
        for net in self._networks().values():
            for t in list(net.parameters()) + list(net.buffers()):
                dist.broadcast(t.data, src=0)

    def _init_from(self, folder: str) -> Generator:
        """Warm start G_g from an exported Colorizer folder (safetensors only); returns that folder's generator.

        The body (everything but the output layer) must match this run's; the output layer is loaded too
        when it is of the same kind and size, and otherwise stays fresh (for instance when an image model
        starts a run that predicts ab bins).
        """
        from ..colorizer import Colorizer

        colorizer = Colorizer.from_pretrained(folder)
        head_keys = ("head", "out_channels")
        wanted = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in self.config.generator_kwargs().items()
            if k not in head_keys
        }
        if colorizer.generator_config != {**colorizer.generator_config, **wanted}:
            raise ValueError(
                f"--init-from {folder}: its generator config {colorizer.generator_config} differs from this "
                f"run's {self.config.generator_kwargs()}"
            )
        source = colorizer.generator
        if (source.head_kind, source.out_channels) == (self.G_g.head_kind, self.G_g.out_channels):
            self.G_g.load_state_dict(source.state_dict())
        else:
            body = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
            missing, unexpected = self.G_g.load_state_dict(body, strict=False)
            if unexpected or any(not k.startswith("head.") for k in missing):
                raise ValueError(f"--init-from {folder}: its weights do not fit this run's generator")
        disc = Path(folder) / "discriminator.safetensors"
        if disc.exists() and self.D_c is not None:
            from safetensors.torch import load_file

            state = load_file(str(disc))
            self.D_c.load_state_dict({k: v.float() for k, v in state.items()})
        return source

    def _load_teacher(self, folder: str) -> Generator:
        """A teacher's generator for ``distill_from``: an ab-bins Colorizer on this run's bin grid, frozen."""
        from ..colorizer import Colorizer

        teacher = Colorizer.from_pretrained(folder)
        if teacher.ab_bins != self.config.ab_bins:
            raise ValueError(
                f"--distill-from {folder}: a teacher must predict this run's ab bins {self.config.ab_bins}, "
                f"but it predicts {'an image' if teacher.ab_bins is None else teacher.ab_bins}"
            )
        G = teacher.generator.to(self.device).eval().requires_grad_(False)
        if self.config.channels_last:
            G.to(memory_format=torch.channels_last)
        return G

    @torch.no_grad()
    def _teacher_probs(self, gray: torch.Tensor, offset: tuple[int, int] | None) -> torch.Tensor:
        """The teachers' mean distribution over the ab bins for the gray batch ``gray`` (N, 3, H, W) in
        [-1, 1], at the pixels the paired term scores: every ``bins_stride``-th from ``offset`` (all when
        None). With ``distill_flip`` each teacher also sees the mirrored batch, its output mirrored back."""
        width = gray.shape[-1]
        total: torch.Tensor | float = 0.0
        views = (False, True) if self.config.distill_flip else (False,)
        for G in self.teachers:
            source = gray[:, :1] if G.in_channels == 1 else gray
            for mirrored in views:
                strided: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
                if offset is not None:
                    # Mirrored, original column c sits at width - 1 - c: the scored columns dx, dx + k, ...
                    # start there at (width - 1 - dx) mod k.
                    dy, dx = offset
                    col = (width - 1 - dx) % self.config.bins_stride if mirrored else dx
                    strided = self._strided_head(G, (dy, col))
                with strided, self._autocast():
                    scores = G(source.flip(-1) if mirrored else source).image
                probs = torch.softmax(scores.float(), dim=1)
                total = total + (probs.flip(-1) if mirrored else probs)
        return total / (len(self.teachers) * len(views))

    def _sample_photos(self, count: int) -> Iterator[torch.Tensor]:
        """Up to ``count`` training photos, (1, 3, H, W) each, picked by the run's seed (the same on every rank)."""
        picks = torch.randperm(len(self.color_data), generator=torch.Generator().manual_seed(self.config.seed))
        for i in picks[: min(count, len(self.color_data))].tolist():
            yield self.color_data[(i, 0)][0][None]

    def _colour_counts(self) -> torch.Tensor:
        """Pixel counts per ab bin of ``rebalance_images`` training photos (the same on every rank)."""
        return sum(L.ChromaRebalance.histogram(photo) for photo in self._sample_photos(self.config.rebalance_images))

    def _start_head_at_prior(self, counts: torch.Tensor) -> None:
        """A fresh ab-bins output layer starts by predicting the training photos' colour distribution.

        Its bias becomes the log of the (lightly smoothed) share of pixels in each bin and its weights are
        scaled down, so the first steps need not learn the prior before anything else (the usual prior
        initialisation of a classifier's bias).
        """
        share = (counts.flatten().double() + 1.0) / (counts.sum() + counts.numel())
        conv = self.G_g.head[0]
        with torch.no_grad():
            conv.bias.copy_(share.log().to(conv.bias))
            conv.weight.mul_(0.1)

    @torch.no_grad()
    def _start_head_at_parent(self, parent: Generator, images: int = 64) -> None:
        """A fresh ab-bins output layer of a run warm-started from an image or ab model starts at its colours.

        The layer is linear in the last features ``f``, and so is the Gaussian log-likelihood of bin centre
        ``c_k`` around a prediction ``m``: ``(c_k . m - |c_k|^2 / 2) / sigma^2`` plus a term that is the same
        for every bin. So with ``m = W f + b``, the least-squares fit of the parent's chroma (CIELAB ab of its
        output) on ``f`` over ``images`` training photos, the layer's scores are a Gaussian over the bins
        centred on (nearly) what the parent predicts, and the run starts as good as its parent instead of
        at the colour prior. ``sigma`` is the one of a few widths whose scores have the lowest cross-entropy
        against the photos' true bins. The annealed mean of a Gaussian is its centre at any temperature.
        An ab parent's output layer is itself linear in ``f``, so for it the fit is exact.
        """
        parent = parent.to(self.device)
        captured: list[torch.Tensor] = []
        hook = parent.head.register_forward_hook(lambda module, args, output: captured.append(args[0]))
        was_training = parent.training
        parent.eval()
        grid = self.config.ab_bins
        features, predicted, truth = [], [], []
        try:
            for photo in self._sample_photos(images):
                color = photo.to(self.device)
                captured.clear()
                out = parent(to_gray(color)[:, : parent.in_channels])
                f = captured[0].float()[0].flatten(1).T  # (pixels, C)
                features.append(f[::4])  # every 4th pixel is plenty for C + 1 unknowns
                if parent.head_kind == "ab":
                    ab = (out.image.float() * AB_SCALE)[0].flatten(1).T
                else:
                    ab = rgb_to_lab(((out.image.float() + 1) / 2).clamp(0, 1))[0, 1:].flatten(1).T
                predicted.append(ab[::4])
                truth.append(rgb_to_lab((color.float() + 1) / 2)[0, 1:].flatten(1).T[::4])
        finally:
            hook.remove()
            parent.train(was_training)
        f = torch.cat(features).double().cpu()
        x = torch.cat([f, torch.ones(len(f), 1, dtype=f.dtype)], dim=1)
        fit = torch.linalg.lstsq(x, torch.cat(predicted).double().cpu()).solution  # (C + 1, 2)
        centers = ab_bin_centers(**grid).double()  # (Q, 2)
        half_norm = centers.square().sum(dim=1) / 2
        target = ab_bin_index(torch.cat(truth).T.cpu()[:, :, None], **grid)[:, 0]
        mean = x @ fit
        best = min(
            HEAD_SIGMAS,
            key=lambda s: F.cross_entropy(((mean @ centers.T - half_norm) / s**2).float(), target).item(),
        )
        conv = self.G_g.head[0]
        conv.weight.copy_((centers @ fit[:-1].T / best**2).view_as(conv.weight).to(conv.weight))
        conv.bias.copy_(((centers @ fit[-1] - half_norm) / best**2).to(conv.bias))

    @contextlib.contextmanager
    def _strided_head(self, G: Generator, offset: tuple[int, int] | None = None) -> Iterator[tuple[int, int]]:
        """While open, ``G``'s output layer sees only every ``bins_stride``-th pixel each way, from ``offset``
        or else a random one (yielded as ``(dy, dx)``): a 1x1 layer on those pixels gives exactly their scores."""
        k = self.config.bins_stride
        dy, dx = offset if offset is not None else (int(v) for v in torch.randint(k, (2,)))
        handle = G.head.register_forward_pre_hook(lambda module, args: (args[0][:, :, dy::k, dx::k],))
        try:
            yield dy, dx
        finally:
            handle.remove()

    def _strided_target(self, target: torch.Tensor, offset: tuple[int, int], size: torch.Size) -> torch.Tensor:
        k = self.config.bins_stride
        picked = target[:, :, offset[0] :: k, offset[1] :: k]
        if picked.shape[-2:] != size:
            raise ValueError(
                f"bins_stride {k} needs crops the generator takes unpadded (multiples of "
                f"{self.G_g.size_multiple}); crop_size is {self.config.crop_size}"
            )
        return picked

    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": "agincolor-checkpoint-1",
            "step": self.step,
            "skipped": self.skipped,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            "networks": {k: v.state_dict() for k, v in self._networks().items()},
            "optimizers": {k: v.state_dict() for k, v in self._optimizers().items()},
            "rng": rng,
            **({"ema": self.G_ema.state_dict(), "ema_updates": self.ema_updates} if self.G_ema is not None else {}),
        }

    def save_checkpoint(self) -> Path | None:
        """Atomically write ``out/checkpoint.pt`` (rank 0 only)."""
        path = self.out / CHECKPOINT_NAME
        if self.world.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_save(self.state_dict(), path)
        self.world.barrier()
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore everything a checkpoint holds. Refuses one written for other network shapes."""
        # weights_only: a checkpoint holds tensors and plain containers; no code is unpickled.
        state = torch.load(path, map_location=self.device, weights_only=True)
        if not isinstance(state, dict) or state.get("format") != "agincolor-checkpoint-1":
            raise ValueError(f"{path} is not an agincolor training checkpoint")
        saved = TrainConfig.from_dict({**state["config"], "pooling": tuple(state["config"]["pooling"])})
        diffs = [
            f"{k}: checkpoint {getattr(saved, k)!r} vs now {getattr(self.config, k)!r}"
            for k in ARCHITECTURE_FIELDS
            if getattr(saved, k) != getattr(self.config, k)
        ]
        if diffs:
            raise ValueError(f"cannot resume from {path}: the architecture differs ({'; '.join(diffs)})")
        for name, net in self._networks().items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
            # load_state_dict brings back the checkpoint's hyperparameters; the betas are this run's, as the
            # learning rate is (set every step from the config), and so is the decay, which _decay_weights
            # applies (older checkpoints left it to Adam itself).
            for group in opt.param_groups:
                group["betas"] = (self.config.beta1, self.config.beta2)
                group["weight_decay"] = 0.0
                group["decoupled_weight_decay"] = False
        if self.config.ema > 0:
            # A checkpoint of a run without the average starts it at the weights it resumes from.
            self.G_ema = self._average_of(self.G_g)
            self.ema_updates = 0
            if "ema" in state:
                self.G_ema.load_state_dict(state["ema"])
                self.ema_updates = int(state["ema_updates"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.step = int(state["step"])
        self.skipped = int(state["skipped"])
        self.elapsed = float(state.get("elapsed", 0.0))

    # ------------------------------------------------------------------------------------- one step
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.config.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def progress_fraction(self) -> float:
        """How far the run is, in [0, 1]: by steps, or by wall time when ``time_budget`` is set and further."""
        frac = self.step / self.config.steps
        if self.config.time_budget:
            frac = max(frac, self.elapsed / self.config.time_budget)
        return min(1.0, frac)

    def _set_learning_rate(self) -> float:
        """Constant learning rate, then a linear decay to zero from ``decay_start`` (section 4.2's schedule),
        ramped up linearly over the first ``warmup_steps`` steps when those are set."""
        start = self.config.decay_start
        frac = self.progress_fraction()
        factor = 1.0 if frac < start or start >= 1.0 else max(0.0, (1.0 - frac) / (1.0 - start))
        if self.step < self.config.warmup_steps:
            factor *= (self.step + 1) / self.config.warmup_steps
        lr = self.base_lr * factor
        for opt in self._optimizers().values():
            for group in opt.param_groups:
                group["lr"] = group.get("base_lr", self.base_lr) * factor
        return lr

    def train_step(self, color: torch.Tensor, gray: torch.Tensor | None = None) -> dict[str, float]:
        """One iteration on a colour batch ``color`` and a gray batch ``gray`` (both (N, 3, H, W) in [-1, 1]).

        In paired mode (or when ``gray`` is None) the gray batch is the luminance of ``color``.
        Returns every loss term as a float.
        """
        cfg = self.config
        self._set_learning_rate()
        y = color.to(self.device, non_blocking=True)
        if cfg.cut_mix > 0:
            y, _ = cut_mix(y, cfg.cut_mix, mix_generator(cfg.seed, self.step, self.world.rank))
        x = to_gray(y) if (self.paired or gray is None) else gray.to(self.device, non_blocking=True)
        clean = x  # the teachers of distill_from see the photo as it is, the student its jittered copy
        if cfg.gray_jitter > 0 or cfg.gray_sharpness > 0:
            draws = tone_generator(cfg.seed, self.step, self.world.rank)
            x = jitter_tone(x, cfg.gray_jitter, draws)  # strength 0 draws nothing
            x = jitter_sharpness(x, cfg.gray_sharpness, draws)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
        G_g, G_c, D_c, D_g = self.G_g, self.G_c, self.D_c, self.D_g
        # G_g's input: one gray channel or the three equal ones of the X_g domain.
        x_g = x[:, :1] if G_g.in_channels == 1 else x
        reverse = G_c is not None
        terms = dict.fromkeys(("g_adv", "g_cycle", "g_content", "g_cam", "g_paired"), 0.0)
        if self.teachers:
            terms["g_distill"] = 0.0

        def backward(weighted: dict[str, tuple[float, torch.Tensor]]) -> None:
            # Each branch of eq. 9 is backpropagated as soon as it is formed, so only one branch's
            # activations are alive at a time; the gradients add up exactly as for the summed loss.
            total = sum(w * t for w, t in weighted.values() if w)
            for name, (_, t) in weighted.items():
                terms[name] += float(t.detach())
            if isinstance(total, torch.Tensor) and total.requires_grad:
                total.backward()

        # ---- generators: outputs computed once, discriminators frozen (no weight gradients wasted).
        for p in self.d_params:
            p.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        need_identity = cfg.content_weight > 0 or (cfg.cam_weight > 0 and G_g.use_cam)
        # Identity branches (eq. 6, and eq. 7's target-domain half): G_g(y) ~ y, G_c(x) ~ x.
        for G, source in ((G_g, y), (G_c, x)) if need_identity else ():
            if G is None:
                continue
            with self._autocast():
                ident = G(source)
                branch = {"g_cam": (cfg.cam_weight, L.cam_target_loss(ident.cam_logits))}
                if G is G_c or cfg.generator_head == "image":  # a colour head's output is no image to compare
                    branch["g_content"] = (cfg.content_weight, L.content_loss(ident.image, source))
            backward(branch)
            del ident, branch
        # Translation branches: gray -> colour (adversarial on D_c, cycle back through G_c, paired L1) and,
        # with the reverse direction, colour -> gray.
        fakes, reals = [], []
        for G, F_, D, source, target in ((G_g, G_c, D_c, x_g, y), (G_c, G_g, D_g, y, x)):
            if G is None:
                continue
            strided = self.paired and G is G_g and cfg.bins_stride > 1
            with self._autocast(), self._strided_head(G) if strided else contextlib.nullcontext() as offset:
                fake = G(source)
                if strided:
                    target = self._strided_target(target, offset, fake.image.shape[-2:])
                # The photo D judges: a colour head's ab on the photo's own lightness. With bins_stride k the
                # head scored every k-th pixel each way: D then judges that decimated photo against the real
                # photo decimated the same way (the paired term's target).
                shown = self._shown_photo(fake.image, target) if G is G_g and D is not None else fake.image
                branch = {"g_cam": (cfg.cam_weight, L.cam_source_loss(fake.cam_logits))}
                if D is not None:
                    branch["g_adv"] = (cfg.adv_weight, L.adversarial_loss(D(shown)))
                if reverse and F_ is not None:
                    branch["g_cycle"] = (cfg.cycle_weight, L.cycle_loss(F_(fake.image).image, source))
                if self.paired and G is G_g:
                    weights = self.rebalance(target) if self.rebalance is not None else None
                    paired = L.paired_loss(
                        fake.image,
                        target,
                        cfg.paired_loss,
                        pixel_weights=weights,
                        mean_weight=cfg.bins_mean_weight,
                        soft_sigma=cfg.bins_soft_sigma,
                        decibel_weight=cfg.bins_decibel_weight,
                    )
                    branch["g_paired"] = (cfg.paired_weight, paired)
                    if self.teachers:
                        soft = self._teacher_probs(clean, offset if strided else None)
                        branch["g_distill"] = (cfg.distill_weight, L.distill_loss(fake.image, soft))
            backward(branch)
            fakes.append(shown.detach())
            reals.append(target)
            del fake, shown, branch
        terms["g_total"] = (
            cfg.adv_weight * terms["g_adv"]
            + cfg.cycle_weight * terms["g_cycle"]
            + cfg.content_weight * terms["g_content"]
            + cfg.cam_weight * terms["g_cam"]
            + cfg.paired_weight * terms["g_paired"]
            + cfg.distill_weight * terms.get("g_distill", 0.0)
        )
        self.world.average_gradients(self.g_params)
        self._decay_weights(self.opt_g)
        self.opt_g.step()
        clip_rho_(G_g)
        if G_c is not None:
            clip_rho_(G_c)
        if self.G_ema is not None:
            self._update_ema()
        for p in self.d_params:
            p.requires_grad_(True)

        # ---- discriminators: the same fakes, detached, each against its branch's real photos (for D_c the
        # paired term's target, decimated with the head); real and fake judged in one batched pass. Without
        # the reverse direction there is one branch, so D_g is never reached.
        d_total = 0.0
        if self.opt_d is not None:
            self.opt_d.zero_grad(set_to_none=True)
            for D, real, fake_image in zip((D_c, D_g), reals, fakes):
                if D is None:
                    continue
                with self._autocast():
                    loss = cfg.adv_weight * self._discriminator_loss(D, real, fake_image)
                loss.backward()
                d_total += float(loss.detach())
            self.world.average_gradients(self.d_params)
            self._decay_weights(self.opt_d)
            self.opt_d.step()
        terms["d_total"] = d_total
        return terms

    def _shown_photo(self, output: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
        """The photo G_g's ``output`` shows, (N, 3, H, W) sRGB in [-1, 1]: for a colour head its ab (from
        bin scores, their annealed mean at the Colorizer's default temperature) on the lightness of
        ``color``, the photos it was made from; an image head's output as it is. Differentiable."""
        head = self.config.generator_head
        if head == "image":
            return output
        if head == "logits":
            ab = ab_from_bin_logits(output.float(), ab_bin_centers(**self.config.ab_bins), DEFAULT_TEMPERATURE)
        else:
            ab = output.float() * AB_SCALE
        lightness = rgb_to_lab(((color.float() + 1) / 2).clamp(0, 1))[:, :1]
        return lab_to_rgb(torch.cat([lightness, ab], dim=1)) * 2 - 1

    @torch.no_grad()
    def _decay_weights(self, opt: torch.optim.Optimizer) -> None:
        """``weight_decay`` on the parameters it applies to, just before ``opt``'s Adam step: added to the
        gradient as Adam's own ``weight_decay`` does (L2), or shrinking each weight by its group's learning
        rate times the decay, as AdamW does first thing (``decoupled_weight_decay``)."""
        decay = self.config.weight_decay
        if not decay:
            return
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is None or id(p) not in self.decayed:
                    continue
                if self.config.decoupled_weight_decay:
                    p.mul_(1 - group["lr"] * decay)
                else:
                    p.grad.add_(p, alpha=decay)

    @staticmethod
    def _discriminator_loss(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        n = real.shape[0]
        outs = D(torch.cat([real, fake.to(real.dtype)], dim=0))
        real_out = [type(o)(*(t[:n] for t in o)) for o in outs]
        fake_out = [type(o)(*(t[n:] for t in o)) for o in outs]
        return L.discriminator_loss(real_out, fake_out)

    # ---------------------------------------------------------------------------------- statistics
    def rho_stats(self) -> dict[str, float]:
        """Mean rho of each AGIN and GroupInstanceNorm layer of G_g, and their overall min and max."""
        stats: dict[str, float] = {}
        values = []
        for name, m in self.G_g.named_modules():
            if isinstance(m, (AGIN, GroupInstanceNorm)):
                stats[f"rho/{name}"] = float(m.rho.detach().mean())
                values.append(m.rho.detach().flatten())
        if values:
            allv = torch.cat(values)
            stats["rho/min"] = float(allv.min())
            stats["rho/max"] = float(allv.max())
        return stats

    # --------------------------------------------------------------------------------------- loop
    def _loader(self, dataset: ImageFolder, stream: int) -> Iterator[tuple[torch.Tensor, int]]:
        sampler = StepBatchSampler(
            len(dataset),
            self.config.batch_size,
            self.config.seed,
            start_step=self.step,
            total_steps=self.config.steps,
            rank=self.world.rank,
            world_size=self.world.world_size,
            stream=stream,
            sources=dataset.sources,
            source_power=self.config.source_power,
        )
        # Starting an iterator draws its workers' base seed from the generator given here, or else from the
        # global RNG, which the training step also draws from (the ab-bins stride offsets): a resumed run,
        # whose loaders start after the checkpoint's RNG state is restored, would then take other draws than
        # the uninterrupted run. The photos' own augmentation is seeded per item by the sampler.
        seeds = loader_generator(self.config.seed, stream, self.world.rank)
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if self.config.workers > 0 else None,
            generator=seeds,
        )
        return iter(loader)

    def train(self) -> dict[str, float]:
        """Run until ``config.steps``; returns the last step's loss terms."""
        cfg = self.config
        if self.world.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        colors = self._loader(self.color_data, stream=0)
        grays = None if self.paired else self._loader(self.gray_data, stream=1)
        bar = None
        if self.progress and self.world.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        log_path = self.out / "log.jsonl"
        if self.world.is_main and log_path.exists():
            # After a resume, records written past the checkpoint would be repeated: drop them.
            kept = [line for line in log_path.read_text().splitlines() if line and json.loads(line)["step"] <= self.step]
            log_path.write_text("".join(line + "\n" for line in kept))
        last: dict[str, float] = {}
        started = time.perf_counter() - self.elapsed
        while self.step < cfg.steps and not (cfg.time_budget and self._budget_spent()):
            color, skipped = next(colors)
            gray = None
            if grays is not None:
                gray, skipped_gray = next(grays)
                skipped += skipped_gray
            last = self.train_step(color, gray)
            self.step += 1
            self.skipped += self.world.sum_int(skipped)
            before = self.elapsed
            self.elapsed = time.perf_counter() - started
            every = cfg.snapshot_every
            if every and self.world.is_main and int(self.elapsed // every) > int(before // every):
                self.export(self.out / "snapshots" / f"{int(self.elapsed):06d}s-step{self.step:07d}")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(g=f"{last['g_total']:.3f}", d=f"{last['d_total']:.3f}", refresh=False)
            final = self.step == cfg.steps or bool(cfg.time_budget and self._budget_spent())
            if self.step % cfg.log_every == 0 or final:
                record = {"step": self.step, "time": round(self.elapsed, 3), "lr": self.opt_g.param_groups[0]["lr"]}
                record.update(self.world.mean(last))
                record.update(self.rho_stats())
                record["skipped_files"] = self.skipped
                if self.world.is_main:
                    with open(log_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                if not all(math.isfinite(v) for v in last.values()):
                    warnings.warn(f"non-finite loss at step {self.step}: {last}", stacklevel=2)
            if self.step % cfg.sample_every == 0 or final:
                self.save_samples()
            if self.step % cfg.checkpoint_every == 0 or final:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        if self.skipped and self.world.is_main:
            warnings.warn(f"{self.skipped} unreadable image(s) were skipped during training", stacklevel=2)
        if self.world.is_main:
            self.export(self.out / "colorizer")
        self.world.barrier()
        return last

    def _budget_spent(self) -> bool:
        # Every rank must stop at the same step: rank 0's clock decides.
        spent = torch.tensor([float(self.elapsed >= (self.config.time_budget or float("inf")))], device=self.device)
        if self.world.enabled:
            dist.broadcast(spent, src=0)
        return bool(spent.item())

    # ------------------------------------------------------------------------------------ outputs
    @torch.no_grad()
    def save_samples(self, count: int = 4) -> Path | None:
        """Save a grid of (gray input, output, ground truth, attention heatmap) rows as PNG (rank 0)."""
        if not self.world.is_main:
            return None
        from torchvision.utils import save_image

        n = min(count, len(self.color_data))
        # A fixed set: the first images of the folder with a fixed crop, so grids compare across steps.
        color = torch.stack([self.color_data[(i, 0)][0] for i in range(n)]).to(self.device)
        gray = to_gray(color)
        net = self.exported_generator
        was_training = net.training
        net.eval()
        out = net(gray[:, : net.in_channels])
        net.train(was_training)
        heat = out.heatmap.float()
        heat = heat - heat.amin(dim=(2, 3), keepdim=True)
        heat = heat / heat.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)
        heat = torch.nn.functional.interpolate(heat, size=color.shape[-2:], mode="bilinear", align_corners=False)
        heat = heat * 2 - 1
        image = self._shown_photo(out.image.float(), color)
        rows = torch.stack([gray, image, color, heat.expand_as(color)], dim=1).flatten(0, 1)
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image((rows + 1) / 2, path, nrow=4, padding=2)
        return path

    def export(self, directory: str | os.PathLike[str]) -> Path:
        """Write G_g (its moving average with ``ema``) as a Colorizer folder (config.json + model.safetensors)."""
        size = self.config.export_working_size or self.config.crop_size
        return export_generator(self.exported_generator, directory, self.config.generator_kwargs(), size, ab_bins=self.config.ab_bins)
