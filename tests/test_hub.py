"""Tests for loading a Colorizer by Hub id, entirely offline, from a pre-filled Hugging Face cache.

The cache built here has the layout huggingface_hub's ``hf_hub_download`` writes (and reads back in its
``local_files_only`` branch / ``try_to_load_from_cache``):

    <cache_dir>/models--<org>--<name>/
        blobs/<sha256 of the file (LFS files) or git blob sha1 (small files)>
        refs/<branch>                          the commit hash, no trailing newline
        snapshots/<commit hash>/<filename>     relative symlink to ../../blobs/<etag>

No test may reach the network: offline mode is switched on and socket connections are refused.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import socket
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from huggingface_hub import ModelHubMixin, try_to_load_from_cache

from agincolor.colorizer import Colorizer

# Colour photos are recoloured here on purpose: their "already has colour" warning is tested in
# test_colour_inputs_warn_naming_the_file (test_colorizer.py).
pytestmark = pytest.mark.filterwarnings("ignore:.*already has colour:UserWarning")

TINY = {"base_channels": 8, "num_groups": 8, "num_blocks": 1}
REPO_ID = "org/name"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Offline mode as the environment variable and as huggingface_hub's import-time constant; no sockets;
    and a working directory where "org/name" is not a local folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


def make_colorizer(seed: int) -> Colorizer:
    torch.manual_seed(seed)
    return Colorizer(generator=dict(TINY), working_size=32).eval()


def commit_hash(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_snapshot(
    cache_dir: Path, repo_id: str, commit: str, files: dict[str, bytes], branches: tuple[str, ...] = ("main",)
) -> Path:
    """Put ``files`` into the cache as revision ``commit`` of ``repo_id``, as hf_hub_download would."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    for name, data in files.items():
        etag = hashlib.sha256(data).hexdigest() if name.endswith(".safetensors") else git_blob_sha1(data)
        blob = repo / "blobs" / etag
        blob.write_bytes(data)
        pointer = snapshot / name
        try:
            pointer.symlink_to(os.path.relpath(blob, pointer.parent))
        except OSError:  # no symlinks on this filesystem: huggingface_hub then stores a copy
            shutil.copyfile(blob, pointer)
    for branch in branches:
        (repo / "refs" / branch).write_text(commit)
    return snapshot


def saved_files(model: Colorizer, folder: Path) -> dict[str, bytes]:
    model.save_pretrained(folder)
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


@pytest.fixture()
def gray() -> np.ndarray:
    return np.tile(np.linspace(0, 255, 56).astype(np.uint8), (40, 1))


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    cache_dir = tmp_path / "hub-cache"
    cache_dir.mkdir()
    return cache_dir


def test_the_cache_built_here_is_what_huggingface_hub_reads(cache: Path, tmp_path: Path) -> None:
    commit = commit_hash("one")
    snapshot = add_snapshot(cache, REPO_ID, commit, saved_files(make_colorizer(0), tmp_path / "saved"))
    for name in ("config.json", "model.safetensors"):
        found = try_to_load_from_cache(REPO_ID, name, cache_dir=cache)
        assert found == str(snapshot / name)
        found = try_to_load_from_cache(REPO_ID, name, cache_dir=cache, revision=commit)
        assert found == str(snapshot / name)


def test_a_cached_hub_repo_loads_offline_with_identical_outputs(cache: Path, tmp_path: Path, gray: np.ndarray) -> None:
    model = make_colorizer(0)
    add_snapshot(cache, REPO_ID, commit_hash("one"), saved_files(model, tmp_path / "saved"))
    loaded = Colorizer.from_pretrained(REPO_ID, cache_dir=cache, local_files_only=True)
    assert isinstance(loaded, Colorizer) and not loaded.training
    np.testing.assert_array_equal(loaded.colorize(gray), model.colorize(gray))
    from_folder = Colorizer.from_pretrained(tmp_path / "saved")
    np.testing.assert_array_equal(loaded.colorize(gray), from_folder.colorize(gray))


def test_a_revision_loads_that_snapshot(cache: Path, tmp_path: Path, gray: np.ndarray) -> None:
    main_model, old_model = make_colorizer(0), make_colorizer(1)
    main_commit, old_commit = commit_hash("main"), commit_hash("old")
    add_snapshot(cache, REPO_ID, main_commit, saved_files(main_model, tmp_path / "main"))
    add_snapshot(cache, REPO_ID, old_commit, saved_files(old_model, tmp_path / "old"), branches=("v0",))
    assert not np.array_equal(main_model.colorize(gray), old_model.colorize(gray))  # the revisions are told apart
    for revision, expected in ((old_commit, old_model), ("v0", old_model), (main_commit, main_model), ("main", main_model)):
        loaded = Colorizer.from_pretrained(REPO_ID, revision=revision, cache_dir=cache, local_files_only=True)
        np.testing.assert_array_equal(loaded.colorize(gray), expected.colorize(gray), err_msg=revision)


def test_offline_mode_alone_reads_the_cache(cache: Path, tmp_path: Path, gray: np.ndarray) -> None:
    model = make_colorizer(0)
    add_snapshot(cache, REPO_ID, commit_hash("one"), saved_files(model, tmp_path / "saved"))
    loaded = Colorizer.from_pretrained(REPO_ID, cache_dir=cache)  # HF_HUB_OFFLINE, no local_files_only
    np.testing.assert_array_equal(loaded.colorize(gray), model.colorize(gray))


def test_device_and_dtype_apply_to_a_hub_model(cache: Path, tmp_path: Path) -> None:
    add_snapshot(cache, REPO_ID, commit_hash("one"), saved_files(make_colorizer(0), tmp_path / "saved"))
    loaded = Colorizer.from_pretrained(REPO_ID, cache_dir=cache, local_files_only=True, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in loaded.parameters())


def test_a_repo_or_revision_missing_from_the_cache_raises_file_not_found(cache: Path, tmp_path: Path) -> None:
    add_snapshot(cache, REPO_ID, commit_hash("one"), saved_files(make_colorizer(0), tmp_path / "saved"))
    with pytest.raises(FileNotFoundError, match="org/absent"):
        Colorizer.from_pretrained("org/absent", cache_dir=cache, local_files_only=True)
    with pytest.raises(FileNotFoundError, match="org/absent"):
        Colorizer.from_pretrained("org/absent", cache_dir=cache)  # offline mode without local_files_only
    for revision in (commit_hash("never cached"), "no-such-branch"):
        with pytest.raises(FileNotFoundError, match="config.json"):
            Colorizer.from_pretrained(REPO_ID, revision=revision, cache_dir=cache, local_files_only=True)


@pytest.mark.parametrize(
    "repo_id, revision, local_files_only",
    [
        ("org/absent", None, True),
        ("org/absent", None, False),
        (REPO_ID, commit_hash("never cached"), True),
        (REPO_ID, "no-such-branch", True),
    ],
    ids=["absent-repo", "absent-repo-offline-mode", "absent-commit", "absent-branch"],
)
def test_a_cache_miss_says_the_file_is_not_in_the_local_cache(
    cache: Path, tmp_path: Path, repo_id: str, revision: str | None, local_files_only: bool
) -> None:
    add_snapshot(cache, REPO_ID, commit_hash("one"), saved_files(make_colorizer(0), tmp_path / "saved"))
    with pytest.raises(FileNotFoundError, match="local cache"):
        Colorizer.from_pretrained(repo_id, revision=revision, cache_dir=cache, local_files_only=local_files_only)


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json"])
def test_a_cached_repo_without_one_of_its_files_raises_file_not_found_naming_it(
    missing: str, cache: Path, tmp_path: Path
) -> None:
    files = saved_files(make_colorizer(0), tmp_path / "saved")
    del files[missing]
    add_snapshot(cache, REPO_ID, commit_hash("one"), files)
    with pytest.raises(FileNotFoundError, match=missing):
        Colorizer.from_pretrained(REPO_ID, cache_dir=cache, local_files_only=True)


def test_corrupt_cached_weights_raise_value_error(cache: Path, tmp_path: Path) -> None:
    files = saved_files(make_colorizer(0), tmp_path / "saved")
    files["model.safetensors"] = np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    add_snapshot(cache, REPO_ID, commit_hash("one"), files)
    with pytest.raises(ValueError, match="safetensors"):
        Colorizer.from_pretrained(REPO_ID, cache_dir=cache, local_files_only=True)


def test_push_to_hub_is_available_from_the_mixin() -> None:
    assert issubclass(Colorizer, ModelHubMixin)
    assert callable(Colorizer.push_to_hub)
    assert "repo_id" in inspect.signature(Colorizer.push_to_hub).parameters
    assert callable(make_colorizer(0).push_to_hub)


def test_save_pretrained_writes_a_model_card_for_the_hub(tmp_path: Path) -> None:
    make_colorizer(0).save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert "library_name: agincolor" in card
    assert "image-colorization" in card


# ------------------------------------------------------------------------------------------ licence
def test_a_saved_model_card_carries_the_models_own_licence(tmp_path: Path) -> None:
    model = Colorizer(generator=TINY, working_size=32, license="apache-2.0")
    model.save_pretrained(tmp_path / "m")
    card = huggingface_hub.ModelCard.load(tmp_path / "m" / "README.md")
    assert card.data.license == "apache-2.0"
    assert Colorizer.from_pretrained(tmp_path / "m").license == "apache-2.0"


def test_a_model_without_a_licence_is_never_published_as_mit(tmp_path: Path) -> None:
    model = Colorizer(generator=TINY, working_size=32)
    card = model.generate_model_card()
    assert card.data.license == "other"
    assert card.data.license_name == "terms-of-the-training-data"
    terms = Colorizer(generator=TINY, working_size=32, license="other", license_terms="Research use only!")
    assert terms.generate_model_card().data.license_name == "research-use-only"


@pytest.mark.parametrize("value", ["", "   ", 3])
def test_a_blank_or_non_string_licence_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="license"):
        Colorizer(generator=TINY, working_size=32, license=value)


def test_the_bundled_model_declares_its_data_terms_not_a_permissive_licence() -> None:
    bundled = Colorizer.from_pretrained()
    assert bundled.license == "other"
    assert bundled.license_terms and "research" in bundled.license_terms
    front = (Path(__file__).resolve().parents[1] / "src" / "agincolor" / "pretrained" / "README.md").read_text()
    assert "license: other" in front.split("---")[1]
