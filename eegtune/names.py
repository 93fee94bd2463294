"""The registry: every network, activation, sampler, pruner and dataset is named here once.

This module imports nothing heavy (no torch, optuna or numpy), so the CLI builds its choices
from it and ``eegtune --help`` stays instant. Each entry points at the code that implements it
as ``"module:attribute"``, imported only when the entry is used. Adding a network is one model
class plus one :func:`register_network` call (or one line in :data:`NETWORKS`); a dataset, a
sampler or a pruner likewise.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DEFAULT_FOLDS",
    "DEFAULT_PORTFOLIO",
    "DEFAULT_STOP_WHEN_FLAT",
    "HOLDOUT_MIN_VAL",
    "PORTFOLIOS",
    "SMALL_DATA_FOLDS",
    "DATASET_KINDS",
    "DEFAULT_ACTIVATION",
    "DEFAULT_NETWORK",
    "DEFAULT_OBJECTIVE",
    "DEFAULT_RACE",
    "DEFAULT_WARM_START",
    "did_you_mean",
    "OBJECTIVE_TITLES",
    "DEFAULT_PRUNER",
    "DEFAULT_SAMPLER",
    "DROPOUT_MAX",
    "LAB_DATASET",
    "LAB_SETTINGS",
    "MAX_FOLDS",
    "MAX_SEED",
    "OBJECTIVES",
    "RACE_SPLITS",
    "objective_title",
    "NETWORKS",
    "PARAMS",
    "PRUNERS",
    "SAMPLERS",
    "Activation",
    "Entry",
    "Network",
    "network_title",
    "register_network",
]


@dataclass(frozen=True)
class Entry:
    """A named implementation: ``target`` is ``"package.module:attribute"``."""

    name: str
    target: str
    help: str

    def load(self) -> Any:
        """Import and return the implementation (a class or a factory function)."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Network(Entry):
    """A network: ``target`` is an ``nn.Module`` class taking ``n_chans``, ``n_times``,
    ``n_outputs``, ``activation`` and ``dropout`` (and ``dropout_layer``).

    ``title`` is how reports name it; ``preset`` names the search-space file in ``studies/``
    (another network's preset may be shared); ``lab_test_acc`` is the seed lab report's test
    accuracy in percent, where there is one. ``epoch_cost`` is its epoch time relative to
    EEGNet's (BENCHMARKS.md, CPU), for time estimates before one of its epochs was timed.
    """

    title: str = ""
    preset: str = ""
    lab_test_acc: float | None = None
    epoch_cost: float = 1.0


@dataclass(frozen=True)
class Activation:
    """An activation: the ``torch.nn`` class name and its keyword arguments."""

    name: str
    torch_class: str
    kwargs: dict[str, float] = field(default_factory=dict)


NETWORKS: dict[str, Network] = {
    "eegnet": Network(
        "eegnet", "eegtune.models.networks:EEGNet", "EEGNet (Lawhern et al. 2018)",
        title="EEGNet", preset="eegnet", lab_test_acc=79.63,
    ),
    "deepconvnet": Network(
        "deepconvnet", "eegtune.models.networks:DeepConvNet",
        "DeepConvNet (Schirrmeister et al. 2017)",
        title="DeepConvNet", preset="deepconvnet", lab_test_acc=83.52, epoch_cost=2.9,
    ),
}  # fmt: skip

ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", "ReLU"),
    "leaky_relu": Activation("leaky_relu", "LeakyReLU", {"negative_slope": 0.01}),
    "elu": Activation("elu", "ELU", {"alpha": 1.0}),
}

DROPOUT_MAX = 0.95
"""The largest dropout anywhere: ``train``, search spaces and ``build_model`` all use this bound."""

MAX_SEED = 2**32 - 1
"""The largest seed numpy and the samplers accept (``--seed``, ``--split-seed``)."""

PARAMS = ("activation", "dropout", "lr", "batch_size", "weight_decay")
"""The tuned hyperparameters, in the order trials sample them."""

SAMPLERS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "tpe",
            "eegtune.search.samplers:tpe_sampler",
            "multivariate TPE, random start-up sized to the target",
        ),
        Entry(
            "tpe-classic",
            "eegtune.search.samplers:classic_tpe_sampler",
            "univariate TPE after 10 random trials (eegtune 0.1's default)",
        ),
        Entry("random", "eegtune.search.samplers:random_sampler", "uniform random sampling"),
        Entry(
            "cmaes",
            "eegtune.search.samplers:cmaes_sampler",
            "CMA-ES, TPE for the categorical ones (needs cmaes)",
        ),
        Entry("gp", "eegtune.search.samplers:gp_sampler", "Gaussian process (needs scipy)"),
    )
}
DEFAULT_SAMPLER = "tpe"

PRUNERS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "hyperband", "eegtune.search.samplers:hyperband_pruner", "Hyperband, reduction factor 4"
        ),
        Entry("median", "eegtune.search.samplers:median_pruner", "median of earlier trials"),
        Entry(
            "patient", "eegtune.search.samplers:patient_pruner", "median, after a few poor epochs"
        ),
        Entry("none", "eegtune.search.samplers:no_pruner", "never prune"),
    )
}
DEFAULT_PRUNER = "hyperband"  # chosen by benchmarks/search_efficiency.py

OBJECTIVES: dict[str, str] = {
    "smoothed": "best mean validation accuracy over 3 consecutive epochs",
    "best": "best single-epoch validation accuracy",
}
DEFAULT_OBJECTIVE = "smoothed"  # chosen by benchmarks/selection.py (BENCHMARKS.md)
DEFAULT_FOLDS = 1
"""Folds of the training set a trial is scored on (1: one hold-out) when the hold-out holds
at least :data:`HOLDOUT_MIN_VAL` trials; see BENCHMARKS.md."""
HOLDOUT_MIN_VAL = 100
"""The fewest validation trials a default hold-out may have (standard error about 5 points at
75%); a new study on a smaller training set is scored on :data:`SMALL_DATA_FOLDS` folds."""
SMALL_DATA_FOLDS = 5
"""Folds of a new study whose hold-out would hold fewer than :data:`HOLDOUT_MIN_VAL` trials
(benchmarks/budget.py, BENCHMARKS.md "Time to quality")."""
DEFAULT_PORTFOLIO = True
"""Whether a new study starts from its network's :data:`PORTFOLIOS` (``--no-portfolio``)."""
DEFAULT_STOP_WHEN_FLAT = False
"""Whether a study stops once the improvement still to expect is below a score's noise."""
MAX_FOLDS = 20
"""More folds than this cost K times an epoch each for a score hardly less noisy."""
DEFAULT_RACE = 0
"""Finalists raced on fresh splits before a configuration is chosen (0: none). Off: on two
datasets x 3 search seeds racing doubled the epochs and did not lower the regret of a hold-out
search (BENCHMARKS.md, "Scoring, racing and warm start")."""
DEFAULT_WARM_START = False
"""Whether a later compare cell also starts from the earlier cells' best. Off: it cost 6.6
points of test accuracy on the realistic data and 0.2 on synthetic (BENCHMARKS.md)."""
RACE_SPLITS = 2
"""Fresh hold-outs each finalist of a hold-out study is re-scored on (a K-fold study: K folds)."""
OBJECTIVE_TITLES: dict[str, str] = {
    "smoothed": "smoothed validation accuracy (3-epoch mean)",
    "best": "best single-epoch validation accuracy",
}
"""What a trial's value is called wherever it is shown (column headings, live lines)."""


def objective_title(objective: str) -> str:
    """The name of a study's score (a study made before objectives existed used ``best``)."""
    return OBJECTIVE_TITLES.get(objective, f"validation score ({objective})")


LAB_SETTINGS: dict[str, float | int] = {
    "lr": 0.005,
    "dropout": 0.5,
    "batch_size": 1024,
    "weight_decay": 0.01,
}
"""The seed lab report's settings (Adam, :data:`LAB_EPOCHS` epochs): the baseline of every
tuned cell."""

PORTFOLIOS: dict[str, list[dict[str, float | int | str]]] = {
    # python benchmarks/budget.py pool --out bench/budget      (32 random EEGNet configurations,
    #   the lab's among them, 30 epochs, on synthetic seed 1 (540 trials), realistic seed 1
    #   (540), small seeds 1 and 2: none of them a dataset the search is judged on)
    # python benchmarks/budget.py portfolio --out bench/budget --size 5
    # Greedy picks (mean regret across the 4 pool datasets after each: 0.64, 0.32, 0.05, 0.00
    # points); kept 3: with 4 datasets a 4th pick reaches 0 by construction. Rounded to 3
    # significant digits. BENCHMARKS.md "Time to quality".
    "eegnet": [
        {"activation": "relu", "dropout": 0.186, "lr": 0.0086, "batch_size": 64,
         "weight_decay": 0.0504},
        {"activation": "relu", "dropout": 0.698, "lr": 0.00847, "batch_size": 32,
         "weight_decay": 0.0174},
        {"activation": "leaky_relu", "dropout": 0.714, "lr": 0.00256, "batch_size": 128,
         "weight_decay": 0.00123},
    ],
}  # fmt: skip
"""Each network's first design: a few diverse configurations that together test well on most
data, queued at the start of a new study (``--no-portfolio`` leaves them out). A network
without an entry starts from the sampler alone."""

LAB_EPOCHS = 300
"""How many epochs the lab trains its settings for (full-batch training learns slowly)."""

DEFAULT_NETWORK = "eegnet"
DEFAULT_ACTIVATION = "elu"
LAB_DATASET = "bci-iiib"
"""The lab's dataset: the default everywhere, and the one lab reports' numbers refer to."""

DATASETS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("bci-iiib", "eegtune.data.fetch:load_bci_iiib_or_fetch", "the BCI IIIb files"),
        Entry("synthetic", "eegtune.data.synthetic:load_synthetic", "seeded synthetic trials"),
        Entry(
            "realistic",
            "eegtune.data.realistic:load_realistic",
            "seeded trials with real recordings' difficulties (artifacts, session shift)",
        ),
        Entry(
            "small",
            "eegtune.data.realistic:load_small",
            "one subject's short session of realistic's kind (160 training trials)",
        ),
    )
}

DATASET_KINDS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("npz", "eegtune.data.arrays:load_npz", "DIR"),
        Entry("moabb", "eegtune.data.moabb:load_moabb", "NAME"),
    )
}
"""Datasets named with a prefix: ``npz:DIR`` (your own arrays) and ``moabb:NAME`` (any MOABB
motor-imagery dataset). Each loader takes ``(target, subjects, preprocessing)``."""


def register_network(
    name: str,
    target: str,
    *,
    title: str | None = None,
    preset: str = "eegnet",
    help: str = "",
) -> Network:
    """Add a network to the registry (for plug-ins and tests); returns its entry."""
    entry = Network(name, target, help or name, title=title or name, preset=preset)
    NETWORKS[name] = entry
    return entry


def network_title(name: str) -> str:
    """How reports name a network (its registered title, else the name itself)."""
    entry = NETWORKS.get(name)
    return entry.title if entry is not None and entry.title else name


def did_you_mean(value: str, names: Iterable[str]) -> str:
    """``"; did you mean eegnet?"`` for a near miss of one of ``names``, else ``""``."""
    close = difflib.get_close_matches(value.strip().lower(), list(names), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
