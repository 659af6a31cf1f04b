"""scripts/widen_model.py (a wider finest decoder stage that computes what the original computes),
scripts/deepen_encoder.py (the same model on the deeper EfficientNet-Lite1, computing the same colours),
scripts/chroma_studies.py (post-processing studies of the decoded chroma) and scripts/refit_head.py (the
output layer fitted outright to the body's features) and scripts/revive_style.py (a dead AGIN style path
drawn anew at its old size)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from agincolor import Colorizer

REPO = Path(__file__).resolve().parents[1]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


widen_model = _script("widen_model")
deepen_encoder = _script("deepen_encoder")
chroma_studies = _script("chroma_studies")
refit_head = _script("refit_head")

BINS = {"bin_size": 10.0, "limit": 110.0}


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _lite0_bins(seed: int = 0) -> Colorizer:
    """An untrained ab-bins model on the Lite0 encoder, its layers randomised so that every channel matters."""
    torch.manual_seed(seed)
    model = Colorizer(
        generator=dict(encoder="efficientnet_lite0", in_channels=1, head="logits", out_channels=484, base_channels=16, num_groups=4),
        ab_bins=BINS, working_size=32, temperature=0.8, saturation=0.9,
    )  # fmt: skip
    with torch.no_grad():
        for name, p in model.generator.named_parameters():
            if name.endswith(("gamma", "beta")) or "head" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def test_widened_model_scores_as_the_original_and_keeps_its_settings(tmp_path: Path) -> None:
    model = _lite0_bins()
    wide = widen_model.widen(model, 3)
    assert wide.generator_config["decoder_channels"][-1] == 3 * widen_model.default_decoder_channels(model.generator)[-1]
    assert (wide.temperature, wide.saturation, wide.working_size, wide.decoding) == (0.8, 0.9, 32, model.decoding)
    x = torch.rand(2, 1, 40, 56) * 2 - 1
    with torch.no_grad():
        before, after = model.generator(x).image, wide.generator(x).image
    assert before.abs().max() > 1
    assert torch.allclose(before, after, atol=1e-4)
    # It saves and loads as any Colorizer, and colours a photo as the original does.
    wide.save_pretrained(tmp_path / "wide")
    loaded = Colorizer.from_pretrained(tmp_path / "wide")
    photo = (np.arange(48 * 64, dtype=np.float32).reshape(48, 64) % 97) / 97
    assert np.abs(loaded.colorize(photo).astype(int) - model.colorize(photo).astype(int)).max() <= 1


def test_widened_copies_learn_apart() -> None:
    """Copies of one channel compute the same thing, but their output weights differ, so one step's gradient
    already tells them apart (otherwise the extra width could never be used)."""
    wide = widen_model.widen(_lite0_bins(), 2).train()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    wide.generator(x).image.logsumexp(1).mean().backward()
    grad = wide.generator.upsample[-1].body[0][1].weight.grad
    assert grad is not None and grad[0].abs().max() > 0
    assert (grad[0] - grad[1]).abs().max() > 1e-3 * grad[0].abs().max()


def test_widen_refuses_what_it_cannot_widen_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="factor"):
        widen_model.widen(_lite0_bins(), 1)
    with pytest.raises(ValueError, match="noise"):
        widen_model.widen(_lite0_bins(), 2, noise=float("nan"))
    paper = Colorizer(generator=dict(base_channels=8, num_blocks=1, num_groups=4), working_size=32)
    with pytest.raises(ValueError, match="pretrained encoder"):
        widen_model.widen(paper, 2)
    _lite0_bins().save_pretrained(tmp_path / "m")
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit):
        widen_model.main([str(tmp_path / "m"), str(tmp_path / "taken")])
    assert "exists" in capsys.readouterr().err


def test_deepened_model_colours_as_the_original_and_keeps_its_settings(tmp_path: Path) -> None:
    model = _lite0_bins()
    model.save_pretrained(tmp_path / "lite0")
    assert deepen_encoder.main([str(tmp_path / "lite0"), str(tmp_path / "lite1")]) == 0
    deep = Colorizer.from_pretrained(tmp_path / "lite1")
    assert deep.generator.encoder_name == "efficientnet_lite1"
    assert {k: v for k, v in deep.generator_config.items() if k != "encoder"} == {
        k: v for k, v in model.generator_config.items() if k != "encoder"
    }
    assert (deep.temperature, deep.saturation, deep.working_size, deep.decoding) == (0.8, 0.9, 32, model.decoding)
    x = torch.rand(2, 1, 40, 56) * 2 - 1
    with torch.no_grad():
        before, after = model.generator(x).image, deep.generator(x).image
    assert before.abs().max() > 1
    torch.testing.assert_close(before, after, rtol=0, atol=1e-5)
    photo = (np.arange(48 * 64, dtype=np.float32).reshape(48, 64) % 97) / 97
    assert np.array_equal(deep.colorize(photo), model.colorize(photo))
    # With --residual-scale the added blocks act at once: other colours, same settings.
    assert deepen_encoder.main([str(tmp_path / "lite0"), str(tmp_path / "acting"), "--residual-scale", "0.5"]) == 0
    acting = Colorizer.from_pretrained(tmp_path / "acting")
    with torch.no_grad():
        assert not torch.allclose(acting.generator(x).image, before, atol=1e-3)
    # Half-precision weights stay half precision (the bundled model's are float16).
    half = deepen_encoder.deepen(Colorizer.from_pretrained(tmp_path / "lite0").to(torch.float16))
    assert {p.dtype for p in half.generator.parameters()} == {torch.float16}


def test_imagenet_encoder_takes_every_encoder_weight_from_lite1_and_the_rest_from_the_source(tmp_path: Path) -> None:
    from agincolor.encoders import EfficientNetLite1, load_pretrained_encoder

    model = _lite0_bins()
    model.save_pretrained(tmp_path / "lite0")
    assert deepen_encoder.main([str(tmp_path / "lite0"), str(tmp_path / "fresh"), "--imagenet-encoder"]) == 0
    fresh = Colorizer.from_pretrained(tmp_path / "fresh")
    assert fresh.generator.encoder_name == "efficientnet_lite1"
    assert (fresh.temperature, fresh.saturation, fresh.working_size) == (0.8, 0.9, 32)
    imagenet = load_pretrained_encoder(EfficientNetLite1(in_channels=1)).state_dict()
    encoder = fresh.generator.encoder.state_dict()
    assert encoder.keys() == imagenet.keys()
    for key, value in imagenet.items():
        torch.testing.assert_close(encoder[key], value, rtol=0, atol=0, msg=key)
    source = model.generator.state_dict()
    rest = {k: v for k, v in fresh.generator.state_dict().items() if not k.startswith("encoder.")}
    assert rest.keys() == {k for k in source if not k.startswith("encoder.")}
    for key, value in rest.items():
        torch.testing.assert_close(value, source[key], rtol=0, atol=0, msg=key)
    # The source's own encoder is gone, so the colours are not the source's.
    x = torch.rand(2, 1, 40, 56) * 2 - 1
    with torch.no_grad():
        assert not torch.allclose(fresh.generator(x).image, model.generator(x).image, atol=1e-3)
    # Nothing of the source's encoder is left for a residual scale to act on.
    with pytest.raises(ValueError, match="imagenet_encoder"):
        deepen_encoder.deepen(model, residual_scale=0.5, imagenet_encoder=True)


def test_deepen_refuses_what_is_not_on_lite0_and_never_writes_over_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paper = Colorizer(generator=dict(base_channels=8, num_blocks=1, num_groups=4), working_size=32)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        deepen_encoder.deepen(paper)
    _lite0_bins().save_pretrained(tmp_path / "m")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit):
        deepen_encoder.main([str(tmp_path / "m"), str(taken)])
    assert "exists" in capsys.readouterr().err
    assert (taken / "keep.txt").read_text() == "mine" and len(list(taken.iterdir())) == 1


def test_joint_bilateral_upsampling_puts_the_colour_edge_on_the_lightness_edge() -> None:
    # Working size 8x8: red on the left half, blue on the right; the full-size (16x16) lightness steps
    # exactly between columns 7 and 8, where bilinear upsampling blends the two colours.
    ab = np.zeros((2, 8, 8), np.float32)
    ab[0, :, :4], ab[1, :, 4:] = 60, -60
    lightness = np.where(np.arange(16) < 8, 30.0, 80.0)[None].repeat(16, 0).astype(np.float32)
    small = np.where(np.arange(8) < 4, 30.0, 80.0)[None].repeat(8, 0).astype(np.float32)
    guided = chroma_studies.joint_bilateral_upsample(ab, lightness, small, sigma_r=4.0)
    from agincolor.image_processor import resize_bilinear

    plain = resize_bilinear(ab, (16, 16))
    for col, side in ((7, 0), (8, 1)):  # the last left pixel is red (a > 0), the first right pixel blue (b < 0)
        assert abs(guided[side, 5, col]) > 55
        assert abs(plain[side, 5, col]) < 50
    flat = np.full((2, 8, 8), 7.0, np.float32)
    assert np.allclose(chroma_studies.joint_bilateral_upsample(flat, lightness, small), 7.0)


def test_hue_gains_recover_a_known_gain_per_hue() -> None:
    # The truth is each predicted ab times a gain that varies with its hue, interpolated between sector
    # centres (0, 90, 180 and 270 degrees): more chroma for yellows (b > 0), less for blues.
    known = np.array([1.0, 1.5, 1.0, 0.5])
    rng = np.random.default_rng(0)
    photos = []
    for _ in range(3):
        ab = rng.uniform(-60, 60, (2, 6, 6)).astype(np.float32)
        truth = chroma_studies.apply_hue_gains(ab, known)
        assert not np.allclose(truth, ab)
        photos.append(chroma_studies.Photo("f", None, None, 0.0, ab, None, None, truth))  # type: ignore[arg-type]
    gains = chroma_studies.fit_hue_gains(photos, 4, photo_weighted=False, saturation=1.0)
    assert gains == pytest.approx(known, abs=0.02)
    assert chroma_studies.apply_hue_gains(np.array([[0.0], [40.0]], np.float32), known)[1, 0] == pytest.approx(60.0)


def test_studies_run_on_a_folder_and_score_the_shipped_pipeline_against_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for k in range(2):
            Image.new("RGB", (40, 40), (40 + 80 * k, 120, 200 - 60 * k)).save(tmp_path / folder / f"p{k}.png")
    model = Colorizer(generator=dict(in_channels=1, out_channels=484, head="logits", base_channels=8, num_blocks=1, num_groups=4),
                      ab_bins=BINS, working_size=32, saturation=0.95)  # fmt: skip
    model.save_pretrained(tmp_path / "bins")
    common = ["--model", str(tmp_path / "bins"), "--threads", "1"]
    assert chroma_studies.main(["curves", *common, "--folder", f"a={tmp_path / 'a'}"]) == 0
    out = capsys.readouterr().out
    assert "| saturation 0.95 |" in out and "+0.0000 (0.0000)" in out and "Wiener 0.05" in out
    assert chroma_studies.main(["hue-gains", *common, "--fit", f"a={tmp_path / 'a'}", "--fit", f"b={tmp_path / 'b'}"]) == 0
    assert "a, gains fitted on the others" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        chroma_studies.main(["hue-gains", *common, "--fit", f"a={tmp_path / 'a'}"])
    assert "at least two --fit folders" in capsys.readouterr().err


def test_joint_bilateral_upsampling_stays_finite_where_every_neighbour_is_far_in_lightness() -> None:
    # A full-size pixel far brighter than all its working-size neighbours: every range weight would underflow.
    ab = np.full((2, 4, 4), 20.0, np.float32)
    ab[1] = -30
    lightness = np.zeros((8, 8), np.float32)
    lightness[3, 3] = 100.0
    out = chroma_studies.joint_bilateral_upsample(ab, lightness, np.zeros((4, 4), np.float32), sigma_r=1.0)
    assert np.isfinite(out).all() and np.allclose(out[0], 20.0) and np.allclose(out[1], -30.0)


def test_head_fit_reaches_the_layer_that_generated_the_bins() -> None:
    """On bins drawn from a known softmax layer, the fit from a wrong start lowers the cross-entropy to about
    that layer's own (the problem is convex, so L-BFGS gets there)."""
    torch.manual_seed(0)
    x = torch.randn(4000, 6)
    true_w, true_b = torch.randn(12, 6) * 2, torch.randn(12)
    y = torch.distributions.Categorical(logits=x @ true_w.T + true_b).sample()
    start_w, start_b = torch.zeros(12, 6), torch.zeros(12)
    w, b = refit_head.fit_head(start_w, start_b, x, y, iterations=100)
    best = refit_head.cross_entropy(true_w, true_b, x, y)
    assert refit_head.cross_entropy(start_w, start_b, x, y) > best + 0.5
    assert refit_head.cross_entropy(w, b, x, y) <= best + 0.005


def test_refit_head_runs_on_a_folder_and_writes_a_model_like_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for k in range(4):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).repeat(5, 0).repeat(5, 1)
            Image.fromarray(pixels).save(tmp_path / "data" / folder / f"p{k}.png")
    source = Colorizer(generator=dict(in_channels=1, out_channels=484, head="logits", base_channels=8, num_blocks=1, num_groups=4),
                       ab_bins=BINS, working_size=32, temperature=0.8, saturation=0.95)  # fmt: skip
    source.save_pretrained(tmp_path / "bins")
    args = [str(tmp_path / "bins"), str(tmp_path / "refit"), "--data", str(tmp_path / "data"), "--exclude", "b"]
    assert refit_head.main([*args, "--photos", "5", "--pixels", "64", "--iterations", "20"]) == 0
    out = capsys.readouterr().out
    assert "192 pixels of 3 photos fitted, 64 held out" in out  # "b" left out: 4 photos, one of them held out
    before, after = (float(re.search(rf"{name}: cross-entropy ([0-9.]+)", out).group(1)) for name in ("before", "after"))
    assert after < before
    refit = Colorizer.from_pretrained(tmp_path / "refit")
    assert refit.current_config() == source.current_config()
    head, new_head = source.generator.head[0].weight, refit.generator.head[0].weight
    assert not torch.allclose(head, new_head)
    body = [k for k in source.generator.state_dict() if not k.startswith("head.")]
    assert all(torch.equal(source.generator.state_dict()[k], refit.generator.state_dict()[k]) for k in body)
    # It never writes over an existing folder, and refuses a model with no bins head.
    with pytest.raises(SystemExit):
        refit_head.main(args)
    assert "exists" in capsys.readouterr().err
    Colorizer(generator=dict(in_channels=1, out_channels=2, head="ab", base_channels=8, num_blocks=1, num_groups=4),
              working_size=32).save_pretrained(tmp_path / "ab")  # fmt: skip
    with pytest.raises(SystemExit):
        refit_head.main([str(tmp_path / "ab"), str(tmp_path / "refit_ab"), "--data", str(tmp_path / "data")])
    assert "only an ab-bins model" in capsys.readouterr().err
    assert not (tmp_path / "refit_ab").exists()
    # One photo cannot be split into fitted and held-out ones.
    (tmp_path / "one").mkdir()
    Image.new("RGB", (40, 40), (200, 60, 30)).save(tmp_path / "one" / "p.png")
    with pytest.raises(SystemExit):
        refit_head.main([str(tmp_path / "bins"), str(tmp_path / "refit_one"), "--data", str(tmp_path / "one")])
    assert "at least 2 are needed" in capsys.readouterr().err
    assert not (tmp_path / "refit_one").exists()


revive_style = _script("revive_style")


def _photo_folder(folder: Path, count: int = 6) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    for k in range(count):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).repeat(6, 0).repeat(6, 1)
        Image.fromarray(pixels).save(folder / f"p{k}.png")
    return folder


def _style_grads(model: Colorizer, gray: torch.Tensor) -> tuple[float, float]:
    """Largest gradient on the style MLP's first layer and on to_gamma, for a loss on the scores."""
    generator = model.generator.train()
    generator.zero_grad()
    generator(gray).image.logsumexp(1).mean().backward()
    grads = (generator.mlp[0].weight.grad, generator.to_gamma.weight.grad)
    return tuple(0.0 if g is None else float(g.abs().max()) for g in grads)  # type: ignore[return-value]


def test_revive_style_brings_a_dead_style_path_back_without_changing_the_colours(tmp_path: Path) -> None:
    model = _lite0_bins()
    with torch.no_grad():  # the first layer's units never fire: the pooled features are never negative
        model.generator.mlp[0].weight.copy_(-model.generator.mlp[0].weight.abs())
    gray = revive_style.calibration_batch(str(_photo_folder(tmp_path / "data")), 6, 32)
    assert gray.shape == (6, 1, 32, 32)
    dead = revive_style.style_stats(model.generator.eval(), gray)
    assert dead["hidden_firing"] == 0 and dead["gamma_rms"] == 0 and dead["block_change"] < 1e-6
    assert _style_grads(model, gray) == (0.0, 0.0)  # nothing can ever move it

    revived = revive_style.revive(model, gray)
    alive = revive_style.style_stats(revived.generator, gray)
    assert alive["hidden_firing"] > 0.2 and alive["style_rms"] > 0
    # Zero before, so the floor: with gamma and beta both zero no gradient would pass the blocks' ReLUs.
    assert alive["gamma_rms"] == pytest.approx(1e-3, rel=1e-4) and alive["beta_rms"] == pytest.approx(1e-3, rel=1e-4)
    first, to_gamma = _style_grads(revived, gray)
    assert first > 0 and to_gamma > 0
    # The branches stay small beside the features they are added to (this untrained model's are tiny).
    assert alive["block_change"] < 0.2
    with pytest.raises(ValueError, match="floor"):
        revive_style.revive(model, gray, floor=0.0)
    assert revived.current_config() == model.current_config()


def test_revive_style_keeps_gamma_and_beta_at_their_size_and_every_other_weight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _lite0_bins(seed=3)
    with torch.no_grad():  # a style path that fires on some inputs
        for layer in (model.generator.to_gamma, model.generator.to_beta):
            layer.weight.mul_(5.0)
    model.save_pretrained(tmp_path / "m")
    data = _photo_folder(tmp_path / "data")
    gray = revive_style.calibration_batch(str(data), 6, 32)
    before = revive_style.style_stats(model.generator.eval(), gray)
    assert before["gamma_rms"] > 0 and before["beta_rms"] > 0

    assert revive_style.main([str(tmp_path / "m"), str(tmp_path / "r"), "--data", str(data), "--size", "32"]) == 0
    assert "wrote" in capsys.readouterr().out
    revived = Colorizer.from_pretrained(tmp_path / "r")
    after = revive_style.style_stats(revived.generator.eval(), gray)
    assert after["gamma_rms"] == pytest.approx(before["gamma_rms"], rel=1e-4)
    assert after["beta_rms"] == pytest.approx(before["beta_rms"], rel=1e-4)
    redrawn = ("mlp.", "to_gamma.", "to_beta.")
    old, new = model.generator.state_dict(), revived.generator.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old if not k.startswith(redrawn))
    assert all(not torch.equal(old[k], new[k]) for k in old if k.startswith(redrawn))
    assert revived.current_config() == model.current_config()


def test_revive_style_reports_refuses_and_never_writes_over_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lite0_bins().save_pretrained(tmp_path / "m")
    data = str(_photo_folder(tmp_path / "data"))
    assert revive_style.main([str(tmp_path / "m"), "--data", data, "--size", "32", "--report"]) == 0
    assert re.search(r"source: hidden_rms [0-9.e+-]+ hidden_firing", capsys.readouterr().out)
    for bad, message in ((["--limit", "0"], "--limit must be"), (["--size", "16"], "--size must be")):
        with pytest.raises(SystemExit):
            revive_style.main([str(tmp_path / "m"), str(tmp_path / "out"), "--data", data, *bad])
        assert message in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit):
        revive_style.main([str(tmp_path / "m"), str(tmp_path / "taken"), "--data", data])
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        revive_style.main([str(tmp_path / "m"), "--data", data])
    assert "--report" in capsys.readouterr().err
    Colorizer(generator=dict(base_channels=8, num_blocks=1, num_groups=4), working_size=32).save_pretrained(tmp_path / "paper")
    with pytest.raises(SystemExit):
        revive_style.main([str(tmp_path / "paper"), str(tmp_path / "out"), "--data", data, "--size", "32"])
    assert "pretrained encoder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        revive_style.main([str(tmp_path / "m"), str(tmp_path / "out"), "--data", str(tmp_path / "empty")])
    assert "holds no images" in capsys.readouterr().err
