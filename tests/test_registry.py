"""The registry in eegtune.names: one place names every network; a new one needs nothing else."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
from torch import nn

from eegtune import names
from eegtune.data.synthetic import make_synthetic
from eegtune.models.networks import ConvClassifier
from eegtune.results.collect import collect
from eegtune.results.report import write_report
from eegtune.search.plan import plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage


class ToyNet(ConvClassifier):
    """A third network, defined here: one temporal convolution and a pooling layer."""

    def __init__(
        self,
        n_chans: int = 2,
        n_times: int = 750,
        n_outputs: int = 2,
        activation=nn.ELU,
        dropout: float = 0.25,
        dropout_layer=nn.Dropout,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(1, 4, (n_chans, 25)),
                act=activation(),
                pool=nn.AvgPool2d((1, 25)),
                drop=dropout_layer(dropout),
            )
        )
        self._add_classifier(n_chans, n_times, n_outputs)


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> names.Network:
    """ToyNet in the registry for one test only (sharing EEGNet's search-space preset)."""
    entry = names.Network(
        "toynet", f"{__name__}:ToyNet", "a toy network", title="ToyNet", preset="eegnet"
    )
    monkeypatch.setitem(names.NETWORKS, "toynet", entry)
    return entry


def test_a_third_network_needs_only_its_class_and_registry_entry(
    toy_registered: names.Network, tmp_path: Path
) -> None:
    storage = str(tmp_path / "toy.journal")
    data = make_synthetic()
    for model in ("toynet", "eegnet"):
        settings = plan_search(
            model=model,
            study_name=model,
            trials=1,
            epochs=1,
            storage=storage,
            dataset="synthetic",
            device="cpu",
        )
        status = run_search(settings, data_set=data)
        assert status.complete == 1, status
    reports = collect(open_storage(storage, create=False))
    assert {r.model for r in reports} == {"toynet", "eegnet"}
    toy = next(r for r in reports if r.model == "toynet")
    assert toy.complete[0].user_attrs["n_params"] == sum(p.numel() for p in ToyNet().parameters())
    out = tmp_path / "report"
    write_report(reports, out)
    assert (out / "toynet_activations.html").is_file()
    side = (out / "networks_side_by_side.html").read_text()
    assert "EEGNet vs ToyNet" in side
    assert "ToyNet (toynet)" in (out / "activation_box.html").read_text()
    assert "toynet" in (out / "best_trials.csv").read_text()


def test_cli_choices_come_from_the_registry() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from eegtune import names;"
        "names.register_network('toynet', 'x:Y', title='ToyNet');"
        "from eegtune.cli.app import app;"
        "r = CliRunner().invoke(app, ['search', '--help'], env={'COLUMNS': '200'});"
        "print(r.output); assert 'torch' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "eegnet|deepconvnet|toynet" in out.stdout
    assert "tpe|tpe-classic|random|cmaes|gp" in out.stdout
    assert "hyperband|median|patient|none" in out.stdout


def test_registry_imports_nothing_heavy() -> None:
    code = (
        "import sys, eegtune.names;"
        "heavy = [m for m in ('torch', 'optuna', 'numpy', 'plotly') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_every_entry_resolves_to_its_implementation() -> None:
    for registry in (names.SAMPLERS, names.PRUNERS, names.DATASETS, names.NETWORKS):
        for entry in registry.values():
            assert callable(entry.load()), entry
    for name, spec in names.ACTIVATIONS.items():
        assert issubclass(getattr(nn, spec.torch_class), nn.Module), name


def test_unknown_names_list_the_registered_ones() -> None:
    from eegtune.errors import ConfigError, DataError, StudyError
    from eegtune.models.networks import build_model
    from eegtune.search.samplers import make_pruner, make_sampler

    with pytest.raises(ConfigError, match="choose one of: eegnet, deepconvnet"):
        build_model("resnet")
    with pytest.raises(StudyError, match="choose one of: tpe, tpe-classic, random, cmaes, gp"):
        make_sampler("grid", 0)
    with pytest.raises(StudyError, match="choose one of: hyperband, median, patient, none"):
        make_pruner("asha", 10)
    from eegtune.data.loading import load_dataset

    with pytest.raises(DataError, match="choose one of: bci-iiib, synthetic"):
        load_dataset("mnist")


def load_toy(data_dir: Path, *, offline: bool, progress=None):
    """A fourth dataset, defined here: a small seeded synthetic set under its own name."""
    data = make_synthetic(n_train=96, n_test=32, seed=5)
    data.name = "toy-data"
    return data


def test_a_new_dataset_needs_only_its_loader_and_registry_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from eegtune.cli.app import app

    entry = names.Entry("toy-data", f"{__name__}:load_toy", "a toy dataset")
    monkeypatch.setitem(names.DATASETS, "toy-data", entry)
    journal = str(tmp_path / "toy.journal")
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--model",
            "eegnet",
            "--dataset",
            "toy-data",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--storage",
            journal,
        ],
    )
    assert result.exit_code == 0, result.output
    study = names_study(journal)
    assert study.user_attrs["dataset"] == "toy-data"
    assert study.user_attrs["data"]["train"] == [96, 1, 2, 750]


def names_study(journal: str):
    from eegtune.search.study import load_study

    storage = open_storage(journal, create=False)
    return load_study(storage, "eegnet-toy-data")  # the default name: model and dataset
