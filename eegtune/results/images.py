"""Static PNG and SVG copies of the report's figures, through Plotly's own route (kaleido,
which drives the Chrome or Chromium installed on the machine).

Every image of a report is drawn in one browser session, into a temporary folder inside the
report's folder, and moved into place only when all of them were drawn: a failure or an
interruption leaves no half-written image and no half-new set.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from eegtune.errors import ExportError

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["IMAGE_FORMATS", "IMAGE_SIZE", "check_formats", "write_images"]

IMAGE_FORMATS = ("png", "svg")
IMAGE_SIZE = (1000, 560)  # pixels (PNG at scale 2 for print); an A4 page's width at 150 dpi
_INSTALL = "pip install 'eegtune[images]'"


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The requested formats, lower case and without repeats; kaleido must be installed.

    Raises:
        ExportError: an unknown format, or kaleido is not installed.
    """
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats))
    unknown = [f for f in chosen if f not in IMAGE_FORMATS]
    if unknown:
        raise ExportError(f"unknown image format {unknown[0]!r}; use {' or '.join(IMAGE_FORMATS)}")
    if chosen and importlib.util.find_spec("kaleido") is None:
        raise ExportError(f"PNG and SVG export needs kaleido: {_INSTALL}")
    if chosen:
        import plotly.io as pio

        if not hasattr(pio, "write_images"):
            raise ExportError(f"PNG and SVG export needs plotly 6.1 or newer: {_INSTALL}")
    return chosen


def write_images(figures: dict[str, go.Figure], out: Path, formats: Sequence[str]) -> list[Path]:
    """Write ``<stem>.<format>`` for every figure and format into ``out``.

    Raises:
        ExportError: kaleido is missing, or it found no Chrome/Chromium to draw with.
    """

    formats = check_formats(formats)
    if not formats or not figures:
        return []
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".images.", dir=out))
    try:
        jobs = [(stem, fmt) for stem in figures for fmt in formats]
        _draw(figures, jobs, staging)
        # kaleido returns a render that failed (its browser timed out on a busy machine) instead
        # of raising it, and leaves no file: draw those again, one at a time, then give up
        missing = [(stem, fmt) for stem, fmt in jobs if not (staging / f"{stem}.{fmt}").exists()]
        for job in missing:
            _draw(figures, [job], staging)
        failed = [f"{stem}.{fmt}" for stem, fmt in missing
                  if not (staging / f"{stem}.{fmt}").exists()]  # fmt: skip
        if failed:
            raise ExportError(
                f"PNG/SVG export drew no {', '.join(failed)} (twice; kaleido's browser failed "
                "or timed out): run the command again, or leave out --image"
            )
        written = []
        for stem, fmt in jobs:
            target = out / f"{stem}.{fmt}"
            os.replace(staging / target.name, target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _draw(figures: dict[str, go.Figure], jobs: list[tuple[str, str]], folder: Path) -> None:
    """Draw ``<stem>.<format>`` of each job into ``folder`` in one kaleido session."""
    import plotly.io as pio

    width, height = IMAGE_SIZE
    try:
        pio.write_images(
            [figures[stem] for stem, _ in jobs],
            [folder / f"{stem}.{fmt}" for stem, fmt in jobs],
            format=[fmt for _, fmt in jobs],
            width=width,
            height=height,
            scale=[2 if fmt == "png" else 1 for _, fmt in jobs],
        )
    except Exception as exc:  # kaleido's own types; a missing browser is the usual cause
        if "chrome" in f"{type(exc).__name__} {exc}".lower():
            raise ExportError(
                "PNG and SVG export found no Chrome or Chromium: install one (Debian: "
                "apt-get install chromium) or run kaleido_get_chrome"
            ) from None
        raise
