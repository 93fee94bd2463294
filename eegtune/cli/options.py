"""Shared pieces of the command line: registry choices, option declarations, error handling.

Kept apart from :mod:`eegtune.cli.app` so that the commands read top to bottom. Imports nothing
heavy: ``eegtune --help`` must stay instant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

import typer

from eegtune.errors import EegtuneError
from eegtune.names import ACTIVATIONS, MAX_SEED, NETWORKS, OBJECTIVES, PRUNERS, SAMPLERS
from eegtune.signals import exit_code

__all__ = [
    "app",
    "data_app",
    "ActivationName",
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
    "ValFractionOpt",
    "fail",
    "handles_errors",
]

# Choices come from the registry (eegtune.names). Typer reads these enums at run time; for the
# type checker an option value is the plain string it also is at run time.
if TYPE_CHECKING:
    ModelName: TypeAlias = str
    ActivationName: TypeAlias = str
    SamplerName: TypeAlias = str
    PrunerName: TypeAlias = str
    ObjectiveName: TypeAlias = str
else:

    def _choices(name: str, values: Any) -> type[StrEnum]:
        return StrEnum(name, {value: value for value in values})

    ModelName = _choices("ModelName", NETWORKS)
    ActivationName = _choices("ActivationName", ACTIVATIONS)
    SamplerName = _choices("SamplerName", SAMPLERS)
    PrunerName = _choices("PrunerName", PRUNERS)
    ObjectiveName = _choices("ObjectiveName", OBJECTIVES)


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
    name="eegtune",
    help="Find the best hyperparameters for EEGNet and DeepConvNet on BCI IIIb EEG with Optuna.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Get, verify and describe the dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")
