"""The lab's deliverables: per network, the test accuracy of each activation under the tuned
and the lab's settings, and the learning curves of the final retrains.

The lab hands in, per network, one figure (train and test accuracy per epoch of the three
activations) and one table ("highest testing accuracy", network x activation). Both are read
from what ``evaluate`` and ``compare`` stored in the studies, so ``compare`` and a later
``report`` show the same thing. Which stored evaluation fills a place:

- tuned settings: compare's ``tuned``, else evaluate's per-activation result, else evaluate's
  overall ``best`` (for the activation it uses);
- lab settings: compare's ``baseline`` (trial 0 of a cell, the lab's own settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eegtune.names import ACTIVATIONS, NETWORKS
from eegtune.results.evaluate import Evaluation
from eegtune.results.statistics import mean_ci
from eegtune.results.text import clip_interval

if TYPE_CHECKING:
    from eegtune.results.collect import StudyReport

__all__ = ["SETTINGS", "SETTING_TITLES", "Curve", "LabNetwork", "lab_networks", "mean_curve"]

SETTINGS = ("tuned", "lab")  # the two rows of each network in the lab's table
SETTING_TITLES = {"tuned": "tuned by eegtune", "lab": "the lab's settings"}


@dataclass
class LabNetwork:
    """One network of the lab's report: evaluations by setting and activation."""

    model: str
    results: dict[str, dict[str, Evaluation]] = field(default_factory=dict)  # setting -> act.

    def get(self, setting: str, activation: str) -> Evaluation | None:
        return self.results.get(setting, {}).get(activation)

    @property
    def activations(self) -> list[str]:
        """Activations with any result, in registry order."""
        found = {a for by in self.results.values() for a in by}
        return [a for a in ACTIVATIONS if a in found] + sorted(found - set(ACTIVATIONS))

    @property
    def chance(self) -> float | None:
        chances = [e.chance for by in self.results.values() for e in by.values() if e.chance]
        return max(chances) if chances else None


def _tuned(evaluations: dict[str, dict], activation: str) -> Evaluation | None:
    for label in ("tuned", activation, "best"):  # the first one found (module docstring)
        stored = evaluations.get(label)
        if stored and stored.get("params", {}).get("activation") == activation:
            return Evaluation.from_dict(stored)
    return None


def lab_networks(reports: list[StudyReport]) -> list[LabNetwork]:
    """Per network (registry order), the evaluations that fill the lab's table and figure.

    A network appears only when at least one of its configurations was evaluated.
    """
    by_model: dict[str, LabNetwork] = {}
    for report in reports:
        stored = report.evaluation
        if not stored:
            continue
        network = by_model.setdefault(report.model, LabNetwork(report.model))
        for activation in report.activations:
            tuned = _tuned(stored, activation)
            if tuned is not None:
                network.results.setdefault("tuned", {}).setdefault(activation, tuned)
            lab = stored.get("baseline")
            if lab and lab.get("params", {}).get("activation") == activation:
                network.results.setdefault("lab", {}).setdefault(
                    activation, Evaluation.from_dict(lab)
                )
    rank = {name: i for i, name in enumerate(NETWORKS)}
    for network in by_model.values():
        network.results = {s: network.results[s] for s in SETTINGS if s in network.results}
    networks = [n for n in by_model.values() if n.results]
    return sorted(networks, key=lambda n: (rank.get(n.model, len(rank)), n.model))


@dataclass(frozen=True)
class Curve:
    """Mean accuracy per epoch over seeds, with a 95% band (None with one seed)."""

    mean: list[float]
    low: list[float] | None
    high: list[float] | None
    seeds: int


def mean_curve(evaluation: Evaluation, key: str) -> Curve | None:
    """The mean over seeds of one recorded curve (``train_acc`` or ``test_acc``).

    Seeds without the curve (evaluated before curves were kept) are left out; the band is the
    95% t-interval of the mean at each epoch, clipped to [0, 1].
    """
    runs = [c[key] for c in evaluation.curves if c.get(key)]
    if not runs:
        return None
    length = min(len(r) for r in runs)
    intervals = [mean_ci([r[i] for r in runs]) for i in range(length)]
    means = [i.mean for i in intervals]
    if len(runs) < 2:  # one seed: no interval
        return Curve(means, None, None, 1)
    ends = [clip_interval(i) for i in intervals]
    return Curve(means, [low for low, _, _ in ends], [high for _, high, _ in ends], len(runs))
