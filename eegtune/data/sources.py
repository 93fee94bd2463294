"""Where a dataset comes from: ``--dataset``, ``--subject`` and the MOABB preprocessing options.

A :class:`DataSource` is what a study remembers about its data (besides the split): the
dataset (``bci-iiib``, ``synthetic``, ``npz:DIR`` or ``moabb:NAME``), the subjects it is
restricted to, and, for MOABB datasets, the band-pass filter, time window and sampling rate.
Imports nothing heavy: the CLI parses options with it before loading anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eegtune.errors import ConfigError
from eegtune.names import DATASET_KINDS, DATASETS, did_you_mean

__all__ = ["MOABB_PREPROCESSING", "DataSource", "parse_source"]

MOABB_PREPROCESSING: dict[str, float | None] = {
    "fmin": 4.0,
    "fmax": 38.0,
    "tmin": 0.0,
    "tmax": None,
    "resample": 125.0,
}
"""Defaults for ``moabb:`` datasets: a 4-38 Hz band-pass (the band of Schirrmeister et al.
2017), the dataset's own imagery window from its start (``tmax`` None: to the window's end),
resampled to 125 Hz, the lab data's rate, for which the networks' kernel lengths were chosen."""


@dataclass(frozen=True)
class DataSource:
    """A dataset, the subjects it is restricted to, and its preprocessing (MOABB only)."""

    dataset: str
    subjects: tuple[str, ...] = ()
    preprocessing: tuple[tuple[str, float | None], ...] = ()

    @property
    def kind(self) -> str:
        """``npz``, ``moabb``, or the registered dataset's name."""
        prefix, sep, _ = self.dataset.partition(":")
        return prefix if sep else self.dataset

    @property
    def target(self) -> str:
        """The folder of an ``npz:`` dataset, the dataset name of a ``moabb:`` one."""
        return self.dataset.partition(":")[2]

    @property
    def options(self) -> dict[str, float | None]:
        return dict(self.preprocessing)

    def describe(self) -> str:
        """One line for titles and tables."""
        parts = [self.dataset]
        if self.subjects:
            plural = "s" if len(self.subjects) > 1 else ""
            parts.append(f"subject{plural} {', '.join(self.subjects)}")
        opts = self.options
        if opts:
            tmax = opts["tmax"]
            end = "end" if tmax is None else f"{tmax:g}"
            window = f"{opts['tmin']:g}-{end} s"
            parts.append(f"{opts['fmin']:g}-{opts['fmax']:g} Hz, {window}, {opts['resample']:g} Hz")
        return ", ".join(parts)

    def attrs(self) -> dict[str, Any]:
        """The study user attributes that remember this source."""
        return {
            "dataset": self.dataset,
            "subjects": list(self.subjects),
            "preprocessing": self.options,
        }

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], default: str) -> DataSource:
        """The source a study remembers (studies made before subjects existed: all of them)."""
        prep = attrs.get("preprocessing") or {}
        return cls(
            str(attrs.get("dataset", default)),
            tuple(str(s) for s in attrs.get("subjects") or ()),
            tuple((k, prep[k]) for k in MOABB_PREPROCESSING if k in prep),
        )


def parse_source(
    dataset: str,
    subjects: list[str] | tuple[str, ...] | None = None,
    **preprocessing: float | None,
) -> DataSource:
    """Check ``--dataset``, ``--subject`` and the preprocessing options; return the source.

    ``npz:DIR`` becomes an absolute path, so that a study finds its data from anywhere.

    Raises:
        ConfigError: one line saying what is wrong and what to write instead.
    """
    kinds = ", ".join([*DATASETS, *(f"{k}:{DATASET_KINDS[k].help}" for k in DATASET_KINDS)])
    prefix, sep, target = dataset.strip().partition(":")
    prefix = prefix.lower()  # names are case-insensitive; what follows the colon is not
    dataset = f"{prefix}{sep}{target}"
    if not sep and dataset not in DATASETS or sep and prefix not in DATASET_KINDS:
        hint = did_you_mean(prefix, [*DATASETS, *DATASET_KINDS])
        raise ConfigError(f"unknown dataset {dataset!r}{hint} (choose one of: {kinds})")
    if sep and not target.strip():
        what = DATASET_KINDS[prefix].help
        raise ConfigError(f"--dataset {dataset}: name the {what} after the colon ({prefix}:{what})")
    if prefix == "npz" and sep:
        dataset = f"npz:{Path(target).expanduser().resolve()}"
    chosen = tuple(dict.fromkeys(str(s).strip() for s in subjects or ()))
    if any(not s for s in chosen):
        raise ConfigError("--subject needs a subject identifier (for example --subject 1)")
    given = {k: v for k, v in preprocessing.items() if v is not None}
    unknown = set(given) - set(MOABB_PREPROCESSING)
    if unknown:
        raise ConfigError(f"unknown preprocessing option(s): {', '.join(sorted(unknown))}")
    if prefix != "moabb" or not sep:
        if given:
            names = ", ".join(f"--{k}" for k in given)
            raise ConfigError(f"{names} appl{'ies' if len(given) == 1 else 'y'} to moabb: "
                              f"datasets only; {dataset} is used as it is")  # fmt: skip
        return DataSource(dataset, chosen)
    options = {**MOABB_PREPROCESSING, **given}
    _check_preprocessing(options)
    return DataSource(dataset, chosen, tuple(options.items()))


def _check_preprocessing(options: dict[str, float | None]) -> None:
    fmin, fmax, tmin, tmax, rate = (options[k] for k in MOABB_PREPROCESSING)
    assert fmin is not None and fmax is not None and tmin is not None and rate is not None
    if not 0 <= fmin < fmax:
        raise ConfigError(f"--fmin {fmin:g} --fmax {fmax:g}: need 0 <= fmin < fmax (in Hz)")
    if rate <= 0:
        raise ConfigError(f"--resample {rate:g}: the sampling rate must be positive (in Hz)")
    if fmax >= rate / 2:
        raise ConfigError(
            f"--fmax {fmax:g} Hz is not below the Nyquist frequency of --resample {rate:g} Hz; "
            f"lower --fmax or raise --resample"
        )
    if tmax is not None and tmax <= tmin:
        raise ConfigError(f"--tmin {tmin:g} --tmax {tmax:g}: the window must end after it starts")
