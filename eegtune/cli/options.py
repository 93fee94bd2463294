"""Shared pieces of the command line: registry choices, option declarations, error handling.

Kept apart from :mod:`eegtune.cli.app` so that the commands read top to bottom. Imports nothing
heavy: ``eegtune --help`` must stay instant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeAlias, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from eegtune import __version__
from eegtune.errors import EegtuneError
from eegtune.names import (
    ACTIVATIONS,
    HOLDOUT_MIN_VAL,
    MAX_FOLDS,
    MAX_SEED,
    NETWORKS,
    OBJECTIVES,
    PRUNERS,
    RACE_SPLITS,
    SAMPLERS,
    SMALL_DATA_FOLDS,
    did_you_mean,
)
from eegtune.signals import exit_code

__all__ = [
    "app",
    "data_app",
    "ActivationName",
    "ArtifactsOpt",
    "CHOICES",
    "Command",
    "choice",
    "AmpOpt",
    "DataDirOpt",
    "DatasetOpt",
    "FmaxOpt",
    "FminOpt",
    "ResampleOpt",
    "SubjectOpt",
    "TmaxOpt",
    "TminOpt",
    "DeviceOpt",
    "ModelName",
    "ObjectiveName",
    "OfflineOpt",
    "PrunerName",
    "SamplerName",
    "SplitSeedOpt",
    "StorageOpt",
    "StudyFoldsOpt",
    "PortfolioOpt",
    "StopWhenFlatOpt",
    "RaceOpt",
    "WarmStartOpt",
    "StudySplitSeedOpt",
    "StudyValFractionOpt",
    "ValFractionOpt",
    "fail",
    "handles_errors",
]

# Choices come from the registry (eegtune.names). A choice is a plain string at run time,
# matched without regard to case (--model EEGNet, as the README spells it), and a near miss
# gets a "did you mean".
ModelName: TypeAlias = str
ActivationName: TypeAlias = str
SamplerName: TypeAlias = str
PrunerName: TypeAlias = str
ObjectiveName: TypeAlias = str

CHOICES: dict[str, Any] = {
    "network": NETWORKS,
    "activation": ACTIVATIONS,
    "sampler": SAMPLERS,
    "pruner": PRUNERS,
    "objective": OBJECTIVES,
}


def _parser(kind: str) -> Callable[[str], str]:
    names = list(CHOICES[kind])

    def parse(value: str) -> str:
        key = str(value).strip().lower()
        if key in names:
            return key
        raise typer.BadParameter(
            f"unknown {kind} {value!r}{did_you_mean(key, names)} (choose one of: "
            f"{', '.join(names)})"
        )

    return parse


def choice(kind: str, *names: str, **option: Any) -> Any:
    """A ``typer.Option`` whose value is one of the registry's names of ``kind``."""
    return typer.Option(*names, parser=_parser(kind), metavar="|".join(CHOICES[kind]), **option)


class _HelpWithoutType:
    """Commands whose ``--help`` line shows no ``<bool>`` (their flags show none either)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option


class Command(_HelpWithoutType, TyperCommand):
    pass


class Group(_HelpWithoutType, TyperGroup):
    pass


# Shared option declarations -------------------------------------------------------------------
DatasetOpt = Annotated[
    str,
    typer.Option(
        "--dataset",
        help="Dataset: bci-iiib (the lab's files), synthetic (seeded trials), npz:DIR (your "
        "train.npz and test.npz) or moabb:NAME (a MOABB motor-imagery dataset, extra moabb).",
    ),
]
SubjectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--subject",
        help="Use only this subject's trials (repeatable; default: every subject). Needs data "
        "that says whose trial is whose: bci-iiib (S4, X11), npz: with a subject array, "
        "moabb: (subject numbers).",
        metavar="ID",
        show_default=False,
    ),
]
_MOABB = "MOABB preprocessing (moabb: datasets only)"
FminOpt = Annotated[
    float | None,
    typer.Option(
        help="Band-pass low edge in Hz (default 4).", rich_help_panel=_MOABB, show_default=False
    ),
]
FmaxOpt = Annotated[
    float | None,
    typer.Option(
        help="Band-pass high edge in Hz (default 38).", rich_help_panel=_MOABB, show_default=False
    ),
]
TminOpt = Annotated[
    float | None,
    typer.Option(
        help="Window start in s, from the dataset's imagery onset (default 0).",
        rich_help_panel=_MOABB,
        show_default=False,
    ),
]
TmaxOpt = Annotated[
    float | None,
    typer.Option(
        help="Window end in s (default: the end of the dataset's imagery window).",
        rich_help_panel=_MOABB,
        show_default=False,
    ),
]
ResampleOpt = Annotated[
    float | None,
    typer.Option(
        help="Resample to this rate in Hz (default 125, the lab data's rate).",
        rich_help_panel=_MOABB,
        show_default=False,
    ),
]
DataDirOpt = Annotated[
    Path, typer.Option("--data-dir", help="Folder holding the four BCI IIIb .npz files.")
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline/--no-offline",
        metavar="",
        help="Never download missing data files (also set by EEGTUNE_OFFLINE=1).",
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="Training device: auto, cpu, cuda or cuda:N.")
]
ValFractionOpt = Annotated[
    float,
    typer.Option(
        "--val-fraction",
        min=0.05,
        max=0.5,
        help="Share of the training set held out (stratified) for validation.",
    ),
]
AmpOpt = Annotated[
    bool,
    typer.Option(
        "--amp/--no-amp",
        metavar="",
        help="bfloat16 autocast: faster on CUDA and on CPUs with AVX-512 BF16/AMX, slightly "
        "different numbers.",
    ),
]
SplitSeedOpt = Annotated[
    int,
    typer.Option(
        "--split-seed", min=0, max=MAX_SEED, help="Seed of the stratified validation hold-out."
    ),
]

StudyValFractionOpt = Annotated[
    float | None,
    typer.Option(
        "--val-fraction",
        min=0.05,
        max=0.5,
        help="Share of the training set held out (stratified) for validation: 0.2 for a new "
        "study; an existing study keeps its own, and a different value is refused.",
        show_default=False,
    ),
]
StudyFoldsOpt = Annotated[
    int | None,
    typer.Option(
        "--folds",
        min=1,
        max=MAX_FOLDS,
        help="Score each trial by its mean validation accuracy over K stratified folds of the "
        "training set, trained in lockstep (1: one hold-out of --val-fraction). Default for "
        f"a new study: a hold-out while it holds {HOLDOUT_MIN_VAL} trials or more, else "
        f"{SMALL_DATA_FOLDS} folds; an existing study keeps its own.",
        show_default=False,
    ),
]
RaceOpt = Annotated[
    int,
    typer.Option(
        "--race",
        min=0,
        max=20,
        metavar="N",
        help=f"Before choosing, re-score the N best trials on {RACE_SPLITS} fresh hold-outs (K "
        "fresh folds for a --folds K study) and choose on the pooled score (0: take the best "
        "search score).",
    ),
]
WarmStartOpt = Annotated[
    bool,
    typer.Option(
        "--warm-start/--no-warm-start",
        metavar="",
        help="Queue in each later cell, after its baseline, the best configuration of every "
        "cell of its network already searched (its own activation substituted); a cell "
        "searched before keeps its history.",
    ),
]
PortfolioOpt = Annotated[
    bool,
    typer.Option(
        "--portfolio/--no-portfolio",
        metavar="",
        help="Start a new study with the network's portfolio: a few configurations that "
        "together test well across datasets (chosen by benchmarks/budget.py), then the sampler.",
    ),
]
StopWhenFlatOpt = Annotated[
    bool,
    typer.Option(
        "--stop-when-flat/--no-stop-when-flat",
        metavar="",
        help="End the study before --trials once the improvement still to expect (a Gaussian "
        "process's regret bound) is below the noise of one score, and say so.",
    ),
]
StudySplitSeedOpt = Annotated[
    int | None,
    typer.Option(
        "--split-seed",
        min=0,
        max=MAX_SEED,
        help="Seed of the stratified validation hold-out: 0 for a new study; an existing "
        "study keeps its own, and a different value is refused.",
        show_default=False,
    ),
]

ArtifactsOpt = Annotated[
    Path | None,
    typer.Option(
        "--artifacts",
        help="Optuna artifact folder the evaluated weights are attached to (default: "
        "artifacts/ beside a journal or SQLite file, studies/artifacts for a database server).",
        show_default=False,
    ),
]

ImageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--image",
        metavar="png|svg",
        help="Also save every figure as a static image for a written report (repeatable: "
        "--image png --image svg). Needs kaleido (pip install 'eegtune[images]') and Chrome "
        "or Chromium.",
        show_default=False,
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handles_errors(command: F) -> F:
    """Turn user-caused errors into one line and an exit code; Ctrl-C, SIGTERM and SIGHUP
    into exit code 128 + the signal's number (130, 143, 129)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EegtuneError as exc:
            stop = fail(str(exc), exc.exit_code)
            for line in exc.details:  # an indented block below the one error line
                typer.echo(f"  {line}", err=True)
            raise stop from None
        except OSError as exc:  # a path that cannot be written or read: no traceback either
            where = f" ({exc.filename})" if exc.filename else ""
            message = f"{exc.strerror or exc}{where}; check the path and its permissions"
            raise fail(message) from None
        except KeyboardInterrupt as exc:
            typer.echo("interrupted", err=True)
            raise typer.Exit(exit_code(exc)) from None

    return wrapper  # type: ignore[return-value]


StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Optuna storage: sqlite:///f.db, postgresql://..., mysql://..., redis://... or a "
        "journal file path. Default: $EEGTUNE_STORAGE or studies/eegtune.journal.",
        show_default=False,
    ),
]


app = typer.Typer(
    cls=Group,
    name="eegtune",
    help="Find the best hyperparameters for EEGNet and DeepConvNet on BCI IIIb EEG with Optuna.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"eegtune {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            metavar="",
            is_eager=True,
            callback=_show_version,
            help="Show eegtune's version and exit.",
        ),
    ] = False,
) -> None:
    """Find the best hyperparameters for EEGNet and DeepConvNet on BCI IIIb EEG with Optuna."""


data_app = typer.Typer(
    cls=Group, help="Get, verify and describe the dataset.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
