"""Rule ``figures``: every series figure of an area - one per selected point, and the overview."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def figures(
    *,
    raw_path: str | Path,
    smoothed_path: str | Path,
    points: Sequence[str],
    area: str,
    plots_dir: str | Path,
    overview: str | Path,
    processes: int = 1,
) -> None:
    """Draw all of an area's series figures in one job: ``plots_dir/{point}.png`` for each of
    ``points`` (the ids ``figures`` selects), in ``processes`` processes, and the area's
    overview of every point."""
    from ndvicube.figures.series import plot_overview, plot_points
    from ndvicube.timeseries.tables import read_series

    raw, smoothed = read_series(str(raw_path)), read_series(str(smoothed_path))
    written = plot_points(raw, smoothed, list(points), plots_dir, processes=processes)
    plot_overview(raw, smoothed, area, overview)
    log.info(
        "figures: %d point figure(s) of %d point(s), and the overview",
        len(written),
        smoothed["point"].nunique(),
    )
