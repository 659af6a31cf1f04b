"""scripts/evaluate_sources.py --mirror, --zoom and --decoding (a bin model's distribution averaged over the photo
and its mirror image, taken from the photo enlarged, or decoded either way), and scripts/compare_decodings.py."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from agincolor import Colorizer, Generator

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("evaluate_sources", REPO / "scripts" / "evaluate_sources.py")
evaluate_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate_sources)  # type: ignore[union-attr]


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> Iterator[None]:
    """The script sets torch's thread count for the whole process; give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _bins_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(in_channels=1, out_channels=484, head="logits", base_channels=8, num_blocks=1, num_groups=4).eval()


def _photos_and_bin_model(tmp_path: Path) -> Path:
    """Two small colour photos in ``tmp_path/photos`` (returned), and a tiny untrained ab-bins model saved in
    ``tmp_path/bins``."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        Image.new("RGB", (40, 40), (40 + 80 * k, 120, 200 - 60 * k)).save(photos / f"p{k}.png")
    bins = Colorizer(generator=dict(in_channels=1, out_channels=484, head="logits", base_channels=8, num_blocks=1, num_groups=4),
                     ab_bins={"bin_size": 10.0, "limit": 110.0}, working_size=32)  # fmt: skip
    bins.save_pretrained(tmp_path / "bins")
    return photos


def test_mirrored_scores_are_the_log_of_both_views_mean_distribution_and_mirror_with_the_photo() -> None:
    G = _bins_generator()
    M = evaluate_sources.Mirrored(G)
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        scores = M(x).image
        both = (torch.softmax(G(x).image, 1) + torch.softmax(G(x.flip(-1)).image, 1).flip(-1)) / 2
        assert torch.allclose(scores.exp(), both, atol=1e-6)
        assert (torch.softmax(G(x).image, 1) - both).abs().max() > 1e-4  # the mirror view changes the answer
        # The average is the same whichever way round the photo comes: mirroring it mirrors the output.
        assert torch.allclose(M(x.flip(-1)).image, scores.flip(-1), atol=1e-5)


def test_mirror_flag_scores_a_bin_model_and_refuses_an_image_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos_and_bin_model(tmp_path)
    assert evaluate_sources.main(["--model", str(tmp_path / "bins"), "--folder", f"p={photos}", "--mirror", "--threads", "1"]) == 0
    assert "(mirrored)" in capsys.readouterr().out
    image = Colorizer(generator=dict(base_channels=8, num_blocks=1, num_groups=4), working_size=32)
    image.save_pretrained(tmp_path / "image")
    with pytest.raises(SystemExit):
        evaluate_sources.main(["--model", str(tmp_path / "image"), "--folder", f"p={photos}", "--mirror"])
    assert "does not predict ab bins" in capsys.readouterr().err


def test_zoomed_scores_come_from_the_enlarged_input_resized_back() -> None:
    G = _bins_generator()
    Z = evaluate_sources.Zoomed(G, 1.25)
    x = torch.rand(1, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        scores = Z(x).image
        big = torch.nn.functional.interpolate(x, size=(40, 60), mode="bilinear", align_corners=False)
        expected = torch.nn.functional.interpolate(torch.softmax(G(big).image, 1), size=(32, 48), mode="bilinear", align_corners=False)
        assert scores.shape == (1, 484, 32, 48)
        assert torch.allclose(scores.exp(), expected, atol=1e-6)
        assert torch.allclose(scores.exp().sum(1), torch.ones(1, 32, 48), atol=1e-5)  # still a distribution per pixel
        assert (scores.exp() - torch.softmax(G(x).image, 1)).abs().max() > 1e-4  # the enlarged view changes the answer


def test_zoom_flag_scores_a_bin_model_and_refuses_a_shrink_or_an_image_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    photos = _photos_and_bin_model(tmp_path)
    args = ["--model", str(tmp_path / "bins"), "--folder", f"p={photos}", "--threads", "1"]
    flags = ["--zoom", "1.5", "--mirror", "--decoding", "srgb-mean", "--decoding", "ab-mean"]
    assert evaluate_sources.main([*args, *flags, "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "(mirrored) (zoom 1.5) (srgb-mean)" in out and "(mirrored) (zoom 1.5) (ab-mean)" in out
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["decoding"] for r in rows] == ["srgb-mean", "ab-mean"]
    assert all(r["zoom"] == 1.5 and r["mirror"] is True for r in rows)
    assert rows[0]["model"]["psnr"] != rows[1]["model"]["psnr"]
    with pytest.raises(SystemExit):
        evaluate_sources.main([*args, "--zoom", "0.5"])
    assert "--zoom must be a number >= 1" in capsys.readouterr().err
    image = Colorizer(generator=dict(base_channels=8, num_blocks=1, num_groups=4), working_size=32)
    image.save_pretrained(tmp_path / "image")
    with pytest.raises(SystemExit):
        evaluate_sources.main(["--model", str(tmp_path / "image"), "--folder", f"p={photos}", "--zoom", "1.25"])
    assert "does not predict ab bins" in capsys.readouterr().err


def test_compare_decodings_reports_the_per_photo_difference_and_refuses_an_image_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("compare_decodings", REPO / "scripts" / "compare_decodings.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)  # type: ignore[union-attr]
    photos = _photos_and_bin_model(tmp_path)
    assert compare.main(["--model", str(tmp_path / "bins"), "--folder", str(photos), "--temperature", "1.0"]) == 0
    line = capsys.readouterr().out
    assert "2 photos, srgb-mean minus ab-mean " in line and "better on " in line and "worse on " in line
    image = Colorizer(generator=dict(base_channels=8, num_blocks=1, num_groups=4), working_size=32)
    image.save_pretrained(tmp_path / "image")
    with pytest.raises(SystemExit):
        compare.main(["--model", str(tmp_path / "image"), "--folder", str(photos)])
    assert "does not predict ab bins" in capsys.readouterr().err
    # Two models: each decodes its own way, and a model against itself differs by exactly nothing.
    assert compare.main(["--model", str(tmp_path / "image"), "--against", str(tmp_path / "bins"), "--folder", str(photos)]) == 0
    line = capsys.readouterr().out
    assert f"2 photos, {tmp_path / 'image'} minus {tmp_path / 'bins'} " in line
    assert compare.main(["--model", str(tmp_path / "bins"), "--against", str(tmp_path / "bins"), "--folder", str(photos)]) == 0
    assert "+0.000 dB (standard error 0.000), better on 0%, worse on 0%" in capsys.readouterr().out


def test_ensembled_scores_are_the_log_of_the_members_mean_distribution() -> None:
    G1 = _bins_generator()
    torch.manual_seed(1)
    G2 = type(G1)(in_channels=1, out_channels=484, head="logits", base_channels=8, num_blocks=1, num_groups=4).eval()
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        p1, p2 = torch.softmax(G1(x).image, 1), torch.softmax(G2(x).image, 1)
        assert (p1 - p2).abs().max() > 1e-4
        assert torch.allclose(evaluate_sources.Ensembled([G1, G2])(x).image.exp(), (p1 + p2) / 2, atol=1e-6)
        assert torch.allclose(evaluate_sources.Ensembled([G1, G1])(x).image.exp(), p1, atol=1e-6)


def test_ensemble_flag_scores_two_bin_models_and_refuses_another_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos_and_bin_model(tmp_path)
    bins = str(tmp_path / "bins")
    assert evaluate_sources.main(["--model", bins, "--ensemble", bins, "--mirror", "--folder", f"p={photos}", "--threads", "1"]) == 0
    assert f"(+ {bins}) (mirrored)" in capsys.readouterr().out
    image = Colorizer(generator=dict(base_channels=8, num_blocks=1, num_groups=4), working_size=32)
    image.save_pretrained(tmp_path / "image")
    with pytest.raises(SystemExit):
        evaluate_sources.main(["--model", bins, "--ensemble", str(tmp_path / "image"), "--folder", f"p={photos}"])
    assert "does not predict the bins" in capsys.readouterr().err
    colour_in = Colorizer(generator=dict(in_channels=3, out_channels=484, head="logits", base_channels=8, num_blocks=1, num_groups=4),
                          ab_bins={"bin_size": 10.0, "limit": 110.0}, working_size=32)  # fmt: skip
    colour_in.save_pretrained(tmp_path / "rgb_bins")
    with pytest.raises(SystemExit):
        evaluate_sources.main(["--model", bins, "--ensemble", str(tmp_path / "rgb_bins"), "--folder", f"p={photos}"])
    assert "takes 3 input channels" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, default, other, bad",
    [("resample", "bilinear", "lanczos", "nearest"), ("brightness", "lightness", "luma", "Y")],
)
def test_filter_and_brightness_flags_score_each_setting_and_refuse_an_unknown_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, default: str, other: str, bad: str
) -> None:
    import json

    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):  # fine detail, which the filters shrink differently
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(photos / f"p{k}.png")
    torch.manual_seed(0)
    Colorizer(generator=dict(in_channels=1, base_channels=8, num_blocks=1, num_groups=4, head="ab", out_channels=2),
              working_size=32).save_pretrained(tmp_path / "ab")  # fmt: skip
    args = ["--model", str(tmp_path / "ab"), "--folder", f"p={photos}", "--threads", "1", "--saturation", "4"]
    assert evaluate_sources.main([*args, f"--{flag}", default, f"--{flag}", other, "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert f"({other})" in out and f"({default})" not in out  # the default setting is not tagged
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r[flag] for r in rows] == [default, other]
    assert rows[0]["model"]["psnr"] != rows[1]["model"]["psnr"]
    with pytest.raises(SystemExit):
        evaluate_sources.main([*args, f"--{flag}", bad])
    assert f"invalid choice: '{bad}'" in capsys.readouterr().err
