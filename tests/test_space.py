"""Search-space presets and TOML validation."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import optuna
import pytest

from eegtune.errors import SpaceError
from eegtune.names import NETWORKS as MODELS
from eegtune.names import PARAMS
from eegtune.search.space import Choice, Range, load_space


@pytest.mark.parametrize("model", ["eegnet", "deepconvnet"])
def test_presets_hold_the_documented_space(model: str) -> None:
    space = load_space(model)
    assert set(space.params) == set(PARAMS)
    assert space.params["activation"] == Choice(("relu", "leaky_relu", "elu"))
    assert space.params["dropout"] == Range(0.1, 0.75)
    assert space.params["lr"] == Range(1e-4, 5e-2, log=True)
    assert space.params["batch_size"] == Choice((32, 64, 128, 256, 512, 1024))  # 1024: the lab's
    assert space.params["weight_decay"] == Range(1e-6, 1e-1, log=True)


def test_sampling_names_exactly_five_parameters() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    config = load_space("eegnet").sample(trial)
    assert set(config) == set(PARAMS) == set(trial.params)
    assert 0.1 <= config["dropout"] <= 0.75 and config["batch_size"] in (
        32,
        64,
        128,
        256,
        512,
        1024,
    )


def test_a_space_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "narrow.toml"
    path.write_text('[activation]\nchoices = ["elu"]\n[lr]\nlow = 1e-3\nhigh = 1e-2\nlog = true\n')
    space = load_space("deepconvnet", path)
    assert space.params["activation"] == Choice(("elu",))
    assert space.params["lr"] == Range(1e-3, 1e-2, log=True)
    assert space.params["dropout"] == Range(0.1, 0.75)


BAD_SPACES = {
    "unknown-param": ("[momentum]\nlow = 0.1\nhigh = 0.9\n", "unknown parameter(s) momentum"),
    "unknown-key": ("[lr]\nlow = 1e-4\nhigh = 1e-2\nstep = 2\n", "unknown key(s) step in [lr]"),
    "empty-choices": ("[activation]\nchoices = []\n", "choices must be a non-empty list"),
    "inverted": ("[dropout]\nlow = 0.6\nhigh = 0.2\n", "range is inverted"),
    "bad-activation": ('[activation]\nchoices = ["gelu"]\n', "unknown activation 'gelu'"),
    "log-zero": ("[weight_decay]\nlow = 0\nhigh = 0.1\nlog = true\n", "log range needs low > 0"),
    "batch-float": ("[batch_size]\nchoices = [32.5]\n", "positive integers"),
    "not-toml": ("[lr\nlow = ", "not valid TOML"),
    "dropout-one": ("[dropout]\nlow = 0.1\nhigh = 1.0\n", "within [0, 0.95]"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_files_raise_one_clear_error(tmp_path: Path, case: str) -> None:
    text, fragment = BAD_SPACES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    with pytest.raises(SpaceError) as info:
        load_space("eegnet", path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_missing_space_file(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="not found"):
        load_space("eegnet", tmp_path / "nope.toml")


def test_a_wheel_ships_the_presets(tmp_path: Path) -> None:
    """A non-editable install has no checkout around it: the presets travel in the wheel."""
    root, src = Path(__file__).resolve().parent.parent, tmp_path / "src"
    # Build from a clean copy: nothing is written into the checkout, no journal is copied.
    shutil.copytree(root / "eegtune", src / "eegtune", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "studies").mkdir()
    for part in ("pyproject.toml", "README.md", *(f"studies/{m}.toml" for m in MODELS)):
        shutil.copy(root / part, src / part)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("eegtune-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import eegtune.search.space as s; "
        "print(s.PRESETS_DIR); print(sorted(s.load_space('deepconvnet').params))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == str(site / "eegtune" / "studies")
    assert out[1] == str(sorted(PARAMS))
