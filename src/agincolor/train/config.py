"""Training configuration: one typed dataclass whose defaults reproduce section 4.2 of the paper."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..attention import POOLINGS
from ..color import AB_BIN_SIZE, AB_LIMIT, ab_bin_count
from ..encoders import ENCODERS
from ..generator import ENCODER_NORMS
from ..norm import AGIN_RHO_INIT, GIN_RHO_INIT
from .losses import AB_LOSSES, BIN_LOSSES, PAIRED_LOSSES

__all__ = ["TrainConfig", "ARCHITECTURE_FIELDS"]

#: Fields that shape the networks; a checkpoint resumed with other values is refused.
ARCHITECTURE_FIELDS = (
    "base_channels",
    "num_blocks",
    "num_groups",
    "pooling",
    "use_cam",
    "rho_init",
    "upsample_rho_init",
    "learn_rho",
    "d_base_channels",
    "d_local_layers",
    "d_global_layers",
    "d_max_channels",
    "cycle_weight_enabled",
    "adv_weight_enabled",
    "generator_head",
    "encoder_norm",
    "encoder",
    "in_channels",
    "decoder_channels",
)


@dataclass
class TrainConfig:
    """Everything a training run needs. Defaults follow the paper (section 4.2 and eq. 9).

    Data: ``data`` is a folder tree of colour photos, less the sub-folders named in ``exclude`` (sources
    held out of training); the gray domain is their luminance, drawn
    independently (unpaired) unless ``paired_weight`` > 0, when each gray image is the luminance of the
    colour image beside it; ``gray_data`` takes gray images from a second folder instead (unpaired only).
    Images are resized to ``load_size`` and randomly cropped to ``crop_size`` with horizontal flips.
    ``scale_min`` < 1 makes the crops random-resized instead: a square covering a random share in
    [``scale_min``, 1] of the resized image's area, resized to ``crop_size``, so the network sees its
    photos at several scales (``load_size`` 256, ``crop_size`` 128, ``scale_min`` 0.25: from the whole photo
    at half size to a quarter of it at full size). ``gray_jitter`` s > 0 redraws each gray input's tone
    curve every step (:func:`agincolor.train.data.jitter_tone`: gamma and contrast up to a factor e^s and
    e^(s/2) either way), so the network cannot lean on one camera's or one source's tones; the colours it
    is scored against are left as they are. ``gray_sharpness`` s > 0 likewise makes each gray input softer
    or crisper every step (:func:`agincolor.train.data.jitter_sharpness`: from a 1-pixel Gaussian blur at
    s 1 to an unsharp mask of amount s), as cameras, compression and resizing differ from source to source.
    ``cut_mix`` p > 0 pastes into each photo, with probability p, a rectangle of another photo of its batch
    (:func:`agincolor.train.data.cut_mix`: 10 to 50% of the area, at the same place), before its gray input
    is made, so input and target stay one photo: things then appear out of their usual scenes.
    ``source_power`` p != 1 draws each photo's source (top-level sub-folder of ``data``) with probability
    proportional to its photo count to the power p, then a photo of it: 0 samples every source alike, 0.5
    halfway on a log scale; 1 (the default) is uniform over photos.

    Objective (eq. 9): ``adv_weight`` * (eqs. 4, 8) + ``cycle_weight`` * eq. 5 + ``content_weight`` * eq. 6
    + ``cam_weight`` * eq. 7, plus ``paired_weight`` * the paired error of G_g(gray(y)) against y (ours,
    off by default; ``paired_loss`` picks its form, see :func:`agincolor.train.losses.paired_loss`).
    ``rebalance`` > 0 weights each pixel of the paired term by the rarity of its true colour, raised to
    that power (:class:`agincolor.train.losses.ChromaRebalance`, estimated from ``rebalance_images``
    training photos), to counter the drift of a regression towards brown. ``bins_stride`` k > 1 (ab-bins
    only) scores every k-th pixel each way, at a random offset each step: the 484-bin output layer and its
    cross-entropy, most of a step's cost at full resolution, then take k² times less work.
    ``bins_mean_weight`` > 0 (ab-bins only) adds that many times the squared error of the predicted
    distribution's mean, the colour a temperature-1 Colorizer shows (see ``mean_weight`` of
    :func:`agincolor.train.losses.paired_loss`). ``bins_soft_sigma`` > 0 (ab-bins only) trains on soft
    targets, the 3x3 bins around each pixel's colour weighted by a Gaussian of that many CIELAB units
    (``soft_sigma`` of the same function), instead of its one bin. ``bins_decibel_weight`` > 0 (ab-bins
    only) adds that many times the photos' mean chroma error in decibels, the log-scale error PSNR
    averages (``decibel_weight`` of the same function).
    ``distill_from`` names one or more exported ab-bins Colorizer folders, teachers: the paired run then
    adds ``distill_weight`` times the KL divergence from the teachers' mean bin distribution to G_g's, on
    the pixels the paired term scores (:func:`agincolor.train.losses.distill_loss`); with
    ``distill_flip`` each teacher also sees the mirrored photo, its distribution mirrored back and
    averaged in (test-time augmentation of the teacher). Teachers are frozen and run without gradients,
    on the gray photo as it is: ``gray_jitter`` and ``gray_sharpness`` alter the student's input only, so
    the student learns to give the teachers' colours from a retoned or resharpened copy.
    With ``cycle_weight`` = 0 the reverse generator G_c and its discriminator D_g serve no term, so they
    are not built (a pix2pix-like setting that trains three times faster). The colour heads of the
    ab-bins and ab losses take ``adv_weight`` too: D_c then judges the photo such a head shows, its ab
    (for ab-bins the annealed mean at the Colorizer's default temperature) on the photo's own lightness,
    as the sample grids draw it; their eqs. 5 and 6 stay off. With ``bins_stride`` k > 1, D_c judges the
    photo decimated as the paired term scores it (every k-th pixel each way, from the step's offset)
    against the real photo decimated the same way: k^2 times fewer pixels to decode and judge. With
    ``adv_weight`` = 0 no discriminator is built at all: with the paired term this is plain supervised
    regression, one generator pass per step.

    Encoder: ``encoder`` "paper" (the paper's generator), "efficientnet_lite0" or "efficientnet_lite1" (our
    pretrained-encoder generator, see :class:`~agincolor.Generator`), which starts from its ImageNet weights unless
    ``pretrained_encoder`` is False or ``init_from`` gives other weights, and learns at ``encoder_lr``
    (default ``lr`` / 10) while the rest learns at ``lr``. ``in_channels`` 1 feeds G_g one gray channel
    instead of three equal ones; eqs. 6 and 7 need a colour input to G_g, so ``content_weight`` and
    ``cam_weight`` must then be 0 (the CAM classifier still attends; its ablation is ``use_cam``).

    Optimisation: Adam(lr, betas), batch ``batch_size`` per process, ``steps`` steps, learning rate
    constant, then linearly decayed to zero from ``decay_start`` (a fraction of ``steps``). With
    ``time_budget`` (seconds) the run also ends when that much training time has passed, and the decay
    follows whichever of steps or time is further along (for fixed-length GPU sessions).
    ``warmup_steps`` n > 0 ramps the learning rate linearly over the first n steps (step k at (k + 1) / n of
    it): a run warm-started from trained weights starts Adam with empty moment estimates, whose first
    updates move every weight by about the full learning rate whatever its gradient's size.
    ``weight_decay`` applies to the weights of convolutions and linear layers, as an L2 term added to the
    gradient before Adam normalises it, so a weight whose gradient is tiny is pulled to zero at about the
    full learning rate; ``decoupled_weight_decay`` instead shrinks each weight by ``lr * weight_decay`` of
    itself every step, outside the normalisation (AdamW). Parameters with one value per channel (biases,
    the scales and shifts of normalisation layers, AGIN's and GroupInstanceNorm's rho, the (1, C) weights
    of CAM attention's one-output classifiers) are left alone:
    decay would pull rho towards 0, and with it the mix of group and instance statistics towards instance
    norm. ``weight_decay_all`` decays them too (every trained parameter, as ``weight_decay`` did before).
    A resumed run uses its own decay and betas, not the checkpoint's.
    ``snapshot_every`` (seconds of training) also exports G_g as a Colorizer folder
    ``snapshots/<seconds>s-step<step>`` that often, for a learning curve against time.
    ``ema`` > 0 keeps an exponential moving average of G_g's weights with that decay per step (0.999
    averages over about the last thousand steps); exports, snapshots and sample grids then use the average
    instead of the last step's weights, which smooths out the step-to-step noise of the optimiser.
    """

    data: str = ""
    out: str = "runs/agincolor"
    gray_data: str | None = None
    exclude: tuple[str, ...] = ()
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    scale_min: float = 1.0
    gray_jitter: float = 0.0
    gray_sharpness: float = 0.0
    cut_mix: float = 0.0
    source_power: float = 1.0
    batch_size: int = 1
    steps: int = 100_000
    decay_start: float = 0.5
    warmup_steps: int = 0
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    weight_decay_all: bool = False
    ema: float = 0.0
    adv_weight: float = 1.0
    cycle_weight: float = 9.0
    content_weight: float = 9.0
    cam_weight: float = 999.0
    paired_weight: float = 0.0
    paired_loss: str = "rgb-l1"
    rebalance: float = 0.0
    rebalance_images: int = 2000
    bins_stride: int = 1
    bins_mean_weight: float = 0.0
    bins_soft_sigma: float = 0.0
    bins_decibel_weight: float = 0.0
    distill_from: tuple[str, ...] = ()
    distill_weight: float = 1.0
    distill_flip: bool = False
    # Generator (both directions share the architecture).
    base_channels: int = 64
    num_blocks: int = 4
    num_groups: int = 32
    pooling: tuple[str, ...] = ("avg", "median")
    use_cam: bool = True
    rho_init: float = AGIN_RHO_INIT
    upsample_rho_init: float = GIN_RHO_INIT
    learn_rho: bool = True
    encoder_norm: str = "in"
    encoder: str = "paper"
    pretrained_encoder: bool = True
    encoder_lr: float | None = None
    in_channels: int = 3
    decoder_channels: tuple[int, ...] | None = None
    # Discriminators.
    d_base_channels: int = 64
    d_local_layers: int = 5
    d_global_layers: int = 7
    d_max_channels: int | None = None
    # Runtime.
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    channels_last: bool = False
    workers: int = 2
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    time_budget: float | None = None
    snapshot_every: float | None = None
    init_from: str | None = None
    export_working_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pooling = tuple(self.pooling)
        self.exclude = tuple(self.exclude)
        self.distill_from = tuple(self.distill_from)
        if self.decoder_channels is not None:
            self.decoder_channels = tuple(self.decoder_channels)
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels!r}")
        if self.in_channels == 1:
            on = [n for n in ("content_weight", "cam_weight", "cycle_weight") if getattr(self, n) > 0]
            if on:
                raise ValueError(
                    "in_channels 1 gives G_g no colour input, which eqs. 5-7 need: set "
                    + ", ".join(f"{n} (now {getattr(self, n)})" for n in on)
                    + " to 0"
                )
        if self.encoder_lr is not None and not self.encoder_lr > 0:
            raise ValueError(f"encoder_lr must be > 0 when given, got {self.encoder_lr!r}")
        for name in (
            "load_size", "crop_size", "batch_size", "steps", "log_every", "sample_every", "checkpoint_every",
            "rebalance_images", "bins_stride",
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.crop_size > self.load_size:
            raise ValueError(f"crop_size ({self.crop_size}) must not exceed load_size ({self.load_size})")
        if self.crop_size < 32:
            raise ValueError(f"crop_size must be at least 32, got {self.crop_size}")
        scale_min = self.scale_min
        if isinstance(scale_min, bool) or not isinstance(scale_min, (int, float)) or not 0 < scale_min <= 1:
            raise ValueError(f"scale_min must be a share of the image's area in (0, 1], got {scale_min!r}")
        for name, meaning in (
            ("gray_jitter", "a number in [0, 1] (0: off)"),
            ("gray_sharpness", "a number in [0, 1] (0: off)"),
            ("cut_mix", "a probability in [0, 1] (0: off)"),
            ("source_power", "a number in [0, 1] (1: every photo alike, 0: every source alike)"),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be {meaning}, got {value!r}")
        warmup = self.warmup_steps
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup_steps must be an int >= 0 (0: no warmup), got {warmup!r}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ValueError(f"decay_start must be a fraction in [0, 1], got {self.decay_start}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("adv_weight", "cycle_weight", "content_weight", "cam_weight", "paired_weight", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name, change in (("decoupled_weight_decay", "how"), ("weight_decay_all", "where")):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
            if getattr(self, name) and not self.weight_decay > 0:
                raise ValueError(f"{name} changes {change} weight_decay is applied; it needs weight_decay > 0")
        bad = [p for p in self.pooling if p not in POOLINGS]
        if bad or not self.pooling:
            raise ValueError(f"pooling must be a non-empty tuple of {POOLINGS}, got {self.pooling}")
        if self.encoder_norm not in ENCODER_NORMS:
            raise ValueError(f"encoder_norm must be one of {', '.join(ENCODER_NORMS)}, got {self.encoder_norm!r}")
        if self.paired_loss not in PAIRED_LOSSES:
            raise ValueError(f"paired_loss must be one of {', '.join(PAIRED_LOSSES)}, got {self.paired_loss!r}")
        if self.adv_weight == 0 and self.paired_weight == 0:
            raise ValueError(
                "adv_weight 0 with paired_weight 0 leaves nothing that teaches G_g to colour; "
                "set one of them above 0"
            )
        if self.paired_weight > 0 and self.gray_data:
            raise ValueError("paired_weight > 0 needs gray images made from the colour ones; drop gray_data")
        if self.generator_head in ("logits", "ab"):
            others = [n for n in ("cycle_weight", "content_weight") if getattr(self, n) > 0]
            if others or self.paired_weight == 0:
                raise ValueError(
                    f"paired_loss {self.paired_loss!r} makes G_g predict "
                    f"{'colour bins' if self.generator_head == 'logits' else 'CIELAB ab'}, not images: it needs "
                    f"paired_weight > 0 and cycle_weight and content_weight 0"
                    + (f" (got {', '.join(f'{n} {getattr(self, n)}' for n in others)})" if others else "")
                )
        ema = self.ema
        if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
            raise ValueError(f"ema must be a decay in [0, 1) (0: off), got {ema!r}")
        if self.bins_stride > 1 and self.paired_loss not in BIN_LOSSES:
            raise ValueError(f"bins_stride {self.bins_stride} is for the ab-bins paired loss, not {self.paired_loss!r}")
        if self.rebalance < 0:
            raise ValueError(f"rebalance must be >= 0, got {self.rebalance}")
        mean_weight = self.bins_mean_weight
        if isinstance(mean_weight, bool) or not isinstance(mean_weight, (int, float)) or not mean_weight >= 0:
            raise ValueError(f"bins_mean_weight must be a number >= 0, got {mean_weight!r}")
        if mean_weight > 0 and self.paired_loss not in BIN_LOSSES:
            raise ValueError(
                f"bins_mean_weight {mean_weight} is for the ab-bins paired loss, not {self.paired_loss!r}"
            )
        sigma = self.bins_soft_sigma
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0:
            raise ValueError(f"bins_soft_sigma must be a number >= 0 (0: one bin per pixel), got {sigma!r}")
        if sigma > 0 and self.paired_loss not in BIN_LOSSES:
            raise ValueError(f"bins_soft_sigma {sigma} is for the ab-bins paired loss, not {self.paired_loss!r}")
        decibel = self.bins_decibel_weight
        if isinstance(decibel, bool) or not isinstance(decibel, (int, float)) or not decibel >= 0:
            raise ValueError(f"bins_decibel_weight must be a number >= 0, got {decibel!r}")
        if decibel > 0 and self.paired_loss not in BIN_LOSSES:
            raise ValueError(f"bins_decibel_weight {decibel} is for the ab-bins paired loss, not {self.paired_loss!r}")
        distill = self.distill_weight
        if isinstance(distill, bool) or not isinstance(distill, (int, float)) or not distill >= 0:
            raise ValueError(f"distill_weight must be a number >= 0, got {distill!r}")
        if self.distill_from and (self.paired_weight == 0 or self.paired_loss not in BIN_LOSSES):
            raise ValueError(
                "distill_from needs a paired ab-bins run (paired_weight > 0, paired_loss 'ab-bins'): the teachers' "
                f"bin distributions are matched on the paired term's pixels; got paired_weight {self.paired_weight}, "
                f"paired_loss {self.paired_loss!r}"
            )
        if self.distill_flip and not self.distill_from:
            raise ValueError("distill_flip mirrors the teachers' input; it needs distill_from")
        if self.rebalance > 0 and self.paired_weight == 0:
            raise ValueError("rebalance weights the paired term; it needs paired_weight > 0")
        for name in ("time_budget", "snapshot_every"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 seconds when given, got {value!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")

    @property
    def cycle_weight_enabled(self) -> bool:
        return self.cycle_weight > 0

    @property
    def adv_weight_enabled(self) -> bool:
        return self.adv_weight > 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["pooling"] = list(self.pooling)
        d["exclude"] = list(self.exclude)
        d["distill_from"] = list(self.distill_from)
        if self.decoder_channels is not None:
            d["decoder_channels"] = list(self.decoder_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**d)

    @property
    def generator_head(self) -> str:
        """G_g's output layer: "logits" (scores over ab bins) for the ab-bins paired term, "ab" for the
        direct ab regressions, else "image"."""
        if self.paired_loss in BIN_LOSSES:
            return "logits"
        return "ab" if self.paired_loss in AB_LOSSES else "image"

    @property
    def ab_bins(self) -> dict[str, float] | None:
        """The bin grid a "logits" generator predicts over (None for an image generator)."""
        return {"bin_size": AB_BIN_SIZE, "limit": AB_LIMIT} if self.generator_head == "logits" else None

    def generator_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of G_g (``head`` and ``out_channels`` only for a generator of ab-bin scores)."""
        extra: dict[str, Any] = {}
        if self.generator_head == "logits":
            extra = {"head": "logits", "out_channels": ab_bin_count(AB_BIN_SIZE, AB_LIMIT) ** 2}
        elif self.generator_head == "ab":
            extra = {"head": "ab", "out_channels": 2}
        # Only what departs from the paper's generator, so that configs of earlier models stay as they were.
        if self.in_channels != 3:
            extra["in_channels"] = self.in_channels
        if self.encoder != "paper":
            extra["encoder"] = self.encoder
        if self.decoder_channels is not None:
            extra["decoder_channels"] = list(self.decoder_channels)
        return dict(
            **extra,
            base_channels=self.base_channels,
            num_blocks=self.num_blocks,
            num_groups=self.num_groups,
            pooling=tuple(self.pooling),
            use_cam=self.use_cam,
            rho_init=self.rho_init,
            upsample_rho_init=self.upsample_rho_init,
            learn_rho=self.learn_rho,
            **({"encoder_norm": self.encoder_norm} if self.encoder_norm != "in" else {}),
        )

    def discriminator_kwargs(self) -> dict[str, Any]:
        return dict(
            base_channels=self.d_base_channels,
            local_layers=self.d_local_layers,
            global_layers=self.d_global_layers,
            max_channels=self.d_max_channels,
            pooling=tuple(self.pooling),
        )
