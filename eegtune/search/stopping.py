"""A study that knows when to stop: ``--stop-when-flat``.

Before each new trial the scores of the completed trials are modelled by a Gaussian process
over the encoded configurations. The improvement still to expect is bounded by the gap between
the highest upper confidence bound anywhere in the space and the highest lower confidence bound
among the configurations already trained (the regret bound of Makarova et al., 2022, which
Optuna's deprecated Terminator used). When that bound falls below the noise of one score (the
binomial standard error of the best trial's accuracy on the trials it was scored on), more
trials can hardly find a configuration that a score could tell apart: the study stops.

NumPy only: a Matérn-5/2 kernel whose length scale and noise are chosen from a small grid by
marginal likelihood, on scores standardised to zero mean and unit variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from eegtune.search.space import Range, SearchSpace

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from eegtune.data.dataset import Split

__all__ = [
    "MIN_TRIALS",
    "STOPPED_KEY",
    "Verdict",
    "flat_verdict",
    "n_scored",
    "regret_bound",
    "score_error",
]

STOPPED_KEY = "stopped"
"""The study attribute that holds why ``--stop-when-flat`` ended it."""

MIN_TRIALS = 8
"""No study stops before this many completed trials: a model of fewer is not worth trusting."""
CANDIDATES = 2048
"""Random configurations the upper bound is maximised over (besides the trained ones)."""
DELTA = 0.1
"""The bound holds with probability 1 - DELTA (the confidence of the GP-UCB bound)."""
_LENGTH_SCALES = (0.1, 0.2, 0.35, 0.6, 1.0, 2.0)
_NOISES = (1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5)


def encode(space: SearchSpace, configs: Sequence[dict[str, Any]]) -> np.ndarray:
    """Configurations as points of the unit cube: ranges scaled (in log where the range is
    logarithmic), choices one-hot."""
    columns: list[np.ndarray] = []
    for name, spec in space.params.items():
        values = [c[name] for c in configs]
        if isinstance(spec, Range):
            low, high, v = spec.low, spec.high, np.asarray(values, dtype=float)
            if spec.log:
                low, high, v = math.log(low), math.log(high), np.log(v)
            columns.append(((v - low) / (high - low if high > low else 1.0))[:, None])
        elif len(spec.choices) > 1:
            columns.append(np.array([[float(x == c) for c in spec.choices] for x in values]))
    if not columns:
        return np.zeros((len(configs), 0))
    return np.hstack(columns)


def _random_points(space: SearchSpace, n: int, rng: np.random.Generator) -> np.ndarray:
    configs = []
    for _ in range(n):
        config: dict[str, Any] = {}
        for name, spec in space.params.items():
            if isinstance(spec, Range):
                if spec.log:
                    config[name] = math.exp(rng.uniform(math.log(spec.low), math.log(spec.high)))
                else:
                    config[name] = rng.uniform(spec.low, spec.high)
            else:
                config[name] = spec.choices[int(rng.integers(len(spec.choices)))]
        configs.append(config)
    return encode(space, configs)


def _matern52(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    d = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0)) / length
    return (1.0 + math.sqrt(5) * d + 5.0 / 3.0 * d**2) * np.exp(-math.sqrt(5) * d)


@dataclass(frozen=True)
class _Posterior:
    x: np.ndarray
    length: float
    chol: np.ndarray
    alpha: np.ndarray

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = _matern52(points, self.x, self.length)
        mean = k @ self.alpha
        v = np.linalg.solve(self.chol, k.T)
        var = np.maximum(1.0 - (v**2).sum(0), 1e-12)
        return mean, np.sqrt(var)


def _fit(x: np.ndarray, y: np.ndarray) -> _Posterior:
    """The GP with the (length scale, noise) of the grid that explains ``y`` best."""
    best: tuple[float, _Posterior] | None = None
    for length in _LENGTH_SCALES:
        gram = _matern52(x, x, length)
        for noise in _NOISES:
            try:
                chol = np.linalg.cholesky(gram + noise * np.eye(len(x)))
            except np.linalg.LinAlgError:
                continue
            alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
            evidence = -0.5 * y @ alpha - np.log(np.diag(chol)).sum()
            if best is None or evidence > best[0]:
                best = (float(evidence), _Posterior(x, length, chol, alpha))
    assert best is not None  # the largest noise always factorises
    return best[1]


def regret_bound(space: SearchSpace, configs: Sequence[dict[str, Any]], scores: Sequence[float],
                 seed: int = 0) -> float:  # fmt: skip
    """An upper bound of the score still to gain over the configurations trained so far:
    max over the space of the GP's upper confidence bound minus max over the trained
    configurations of its lower one, in the scores' own units."""
    y = np.asarray(scores, dtype=float)
    spread = float(y.std())
    if len(y) < 2 or spread < 1e-9:
        return 0.0  # every score alike: nothing the model could promise
    x = encode(space, configs)
    z = (y - y.mean()) / spread
    posterior = _fit(x, z)
    dims = max(1, x.shape[1])
    beta = 2.0 * math.log(dims * len(y) ** 2 * math.pi**2 / (6.0 * DELTA)) / 5.0
    rng = np.random.default_rng(seed)
    candidates = np.vstack([x, _random_points(space, CANDIDATES, rng)])
    mean, sd = posterior.predict(candidates)
    upper = float((mean + math.sqrt(beta) * sd).max())
    mean_t, sd_t = posterior.predict(x)
    lower = float((mean_t - math.sqrt(beta) * sd_t).max())
    return max(0.0, upper - lower) * spread


def n_scored(splits: Sequence[Split]) -> int:
    """How many validation trials a score averages over: the hold-out's, or every fold's (K
    folds score each training trial once)."""
    return sum(len(split.y_val) for split in splits)


def score_error(best: float, n_scored: int) -> float:
    """The standard error of an accuracy ``best`` measured on ``n_scored`` trials."""
    p = min(max(best, 1e-3), 1 - 1e-3)
    return math.sqrt(p * (1 - p) / max(1, n_scored))


@dataclass(frozen=True)
class Verdict:
    """Whether to stop, and the numbers behind it."""

    stop: bool
    bound: float
    error: float
    completed: int

    @property
    def reason(self) -> str:
        return (
            f"stopped early (--stop-when-flat): after {self.completed} completed trials the "
            f"improvement still to expect is at most {100 * self.bound:.1f} points, below the "
            f"{100 * self.error:.1f}-point noise of a score"
        )


def flat_verdict(
    space: SearchSpace, trials: Sequence[FrozenTrial], n_scored: int, seed: int = 0
) -> Verdict | None:
    """The verdict on a study's completed ``trials`` scored on ``n_scored`` validation trials;
    None before :data:`MIN_TRIALS` completed."""
    done = [t for t in trials if t.value is not None and space.contains(t.params)]
    if len(done) < MIN_TRIALS:
        return None
    scores = [float(t.value) for t in done if t.value is not None]
    bound = regret_bound(space, [t.params for t in done], scores, seed)
    error = score_error(max(scores), n_scored)
    return Verdict(bound < error, bound, error, len(done))
