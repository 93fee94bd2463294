"""Search space: TOML presets, validation, and sampling a trial into a training config.

A space file has one table per parameter; the parameters are exactly ``activation``,
``dropout``, ``lr``, ``batch_size`` and ``weight_decay``. A table holds either
``choices = [...]`` or ``low``/``high`` with an optional ``log = true``. A ``--space`` file
may define only some parameters; the others come from the model's preset in ``studies/``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eegtune.errors import SpaceError
from eegtune.names import ACTIVATIONS, DROPOUT_MAX, NETWORKS, PARAMS

__all__ = [
    "PRESETS_DIR",
    "Choice",
    "Range",
    "SearchSpace",
    "load_space",
    "parse_space",
    "preset_path",
]

# The checkout's studies/ (source and editable installs), else the copy a wheel ships inside
# the package (pyproject.toml maps studies/ to eegtune/studies/).
_PACKAGE = Path(__file__).resolve().parent.parent  # eegtune/
_CHECKOUT_PRESETS = _PACKAGE.parent / "studies"
PRESETS_DIR = (
    _CHECKOUT_PRESETS if (_CHECKOUT_PRESETS / "eegnet.toml").is_file() else _PACKAGE / "studies"
)
_KINDS = {
    "activation": "choice",
    "dropout": "range",
    "lr": "range",
    "batch_size": "choice",
    "weight_decay": "range",
}


class TrialLike(Protocol):
    """The part of ``optuna.Trial`` that sampling needs."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"{self.low:g} .. {self.high:g}" + (" (log)" if self.log else "")


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]

    def describe(self) -> str:
        return ", ".join(str(c) for c in self.choices)


@dataclass(frozen=True)
class SearchSpace:
    """The five tuned parameters of one network."""

    params: dict[str, Range | Choice]

    def fixing(self, name: str, value: Any) -> SearchSpace:
        """This space with parameter ``name`` fixed to ``value`` (unchanged when None)."""
        if value is None:
            return self
        return SearchSpace({**self.params, name: Choice((value,))})

    def distributions(self) -> dict[str, Any]:
        """The Optuna distribution of each parameter, as :meth:`sample` draws it."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        return {
            name: FloatDistribution(spec.low, spec.high, log=spec.log)
            if isinstance(spec, Range)
            else CategoricalDistribution(list(spec.choices))
            for name, spec in self.params.items()
        }

    def check_study(self, trials: Any, name: str, where: str | None) -> None:
        """Refuse a space that Optuna cannot mix with the distributions of ``trials``.

        Narrowing a range is fine; changing a parameter's choices (or its kind) is not.

        Raises:
            SpaceError: naming the parameter and suggesting a new study.
        """
        from optuna.distributions import check_distribution_compatibility

        mine = self.distributions()
        for trial in trials:
            for param, theirs in trial.distributions.items():
                if param not in mine:
                    continue
                try:
                    check_distribution_compatibility(theirs, mine[param])
                except ValueError:
                    source = where or "the preset"
                    raise SpaceError(
                        f"{source}: parameter {param!r} is {_shown(mine[param])} here but "
                        f"{_shown(theirs)} in study {name!r}'s trials, and Optuna cannot mix "
                        "them in one study; keep the study's choices or start a new --study"
                    ) from None

    def contains(self, config: dict[str, Any]) -> bool:
        """Whether ``config`` sets every parameter of this space to a value inside it."""
        for name, spec in self.params.items():
            if name not in config:
                return False
            value = config[name]
            if isinstance(spec, Range):
                if not spec.low <= value <= spec.high:
                    return False
            elif value not in spec.choices:
                return False
        return True

    def sample(self, trial: TrialLike) -> dict[str, Any]:
        """Draw one configuration from ``trial`` (an ``optuna.Trial``)."""
        config: dict[str, Any] = {}
        for name in PARAMS:
            spec = self.params[name]
            if isinstance(spec, Range):
                config[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
            else:
                config[name] = trial.suggest_categorical(name, list(spec.choices))
        return config


def _shown(distribution: Any) -> str:
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return "choices " + ", ".join(map(str, choices))
    kind = "a log range" if getattr(distribution, "log", False) else "a linear range"
    return f"{kind} {distribution.low:g} .. {distribution.high:g}"


def _parse_param(name: str, table: Any, where: str) -> Range | Choice:
    if not isinstance(table, dict):
        raise SpaceError(f"{where}: [{name}] must be a table with choices or low/high")
    kind = _KINDS[name]
    allowed = {"choices"} if kind == "choice" else {"low", "high", "log"}
    unknown = set(table) - allowed
    if unknown:
        raise SpaceError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} in [{name}]; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    if kind == "choice":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: [{name}] choices must be a non-empty list")
        nested = [c for c in choices if not isinstance(c, str | int | float | bool)]
        if nested:
            raise SpaceError(
                f"{where}: [{name}] choices must be plain values (strings or numbers), "
                f"not {type(nested[0]).__name__}s such as {nested[0]!r}"
            )
        if len(set(choices)) != len(choices):
            raise SpaceError(f"{where}: [{name}] choices contain duplicates")
        if name == "activation":
            bad = [c for c in choices if c not in ACTIVATIONS]
            if bad:
                raise SpaceError(
                    f"{where}: unknown activation {bad[0]!r}; choose from {', '.join(ACTIVATIONS)}"
                )
        if name == "batch_size" and not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in choices
        ):
            raise SpaceError(f"{where}: [batch_size] choices must be positive integers")
        return Choice(tuple(choices))
    if "low" not in table or "high" not in table:
        raise SpaceError(f"{where}: [{name}] needs both low and high")
    low, high, log = table["low"], table["high"], table.get("log", False)
    numbers = (low, high)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        raise SpaceError(f"{where}: [{name}] low and high must be numbers")
    if not all(math.isfinite(v) for v in numbers):
        raise SpaceError(f"{where}: [{name}] low and high must be finite")
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: [{name}] log must be true or false")
    if low >= high:
        raise SpaceError(
            f"{where}: [{name}] range is inverted or empty (low {low} >= high {high}); "
            "for a fixed value narrow the range instead"
        )
    if log and low <= 0:
        raise SpaceError(f"{where}: [{name}] a log range needs low > 0, got {low}")
    if name == "dropout" and not (0 <= low and high <= DROPOUT_MAX):
        raise SpaceError(
            f"{where}: [dropout] must lie within [0, {DROPOUT_MAX}], got {low} .. {high}"
        )
    if name in ("lr", "weight_decay") and low < 0:
        raise SpaceError(f"{where}: [{name}] must not be negative")
    return Range(float(low), float(high), log)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read()
        # Editors on Windows may write a UTF-8 byte-order mark, which TOML parsers refuse.
        return tomllib.loads(raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"{path}: search-space file not found") from None
    except IsADirectoryError:
        raise SpaceError(f"{path}: is a folder, expected a .toml search-space file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpaceError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise SpaceError(f"{path}: cannot read ({exc.strerror})") from None


def parse_space(raw: dict[str, Any], where: str) -> dict[str, Range | Choice]:
    """Validate a parsed TOML document; return the parameters it defines."""
    unknown = set(raw) - set(PARAMS)
    if unknown:
        raise SpaceError(
            f"{where}: unknown parameter(s) {', '.join(sorted(unknown))}; "
            f"the search space has: {', '.join(PARAMS)}"
        )
    return {name: _parse_param(name, table, where) for name, table in raw.items()}


def preset_path(model: str) -> Path:
    """The preset file of a registered network (its own, or the one it shares)."""
    entry = NETWORKS.get(model)
    if entry is None:
        raise SpaceError(f"unknown model {model!r}; choose one of: {', '.join(NETWORKS)}")
    return PRESETS_DIR / f"{entry.preset or model}.toml"


def load_space(model: str, path: Path | str | None = None) -> SearchSpace:
    """The search space of ``model``: its preset, overridden by ``path`` when given.

    Raises:
        SpaceError: for a missing or invalid file, with the file named.
    """
    preset = preset_path(model)
    params = parse_space(_read_toml(preset), str(preset))
    if path is not None:
        params.update(parse_space(_read_toml(Path(path)), str(path)))
    missing = [p for p in PARAMS if p not in params]
    if missing:
        raise SpaceError(f"{preset}: missing parameter(s) {', '.join(missing)}")
    return SearchSpace(params)
