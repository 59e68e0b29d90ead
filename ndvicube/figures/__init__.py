"""The figures stage: draws the series tables and the cube's or composites' maps as PNGs; one
job draws many figures (an area's point figures on one reused figure, in forked processes).

* :mod:`ndvicube.figures.series` - raw vs smoothed series per point (``PointFigures``,
  ``plot_point``, ``plot_points``) and the overview of all of an area's points
  (``plot_overview``).
* :mod:`ndvicube.figures.maps` - the quick-look: maps of the monthly medians of the cube or of
  the composites' periods, with the area's points (``plot_quicklook``, ``monthly_medians``).
"""

#: Point figures are drawn in several processes from this many on: below it a process's start
#: (a fork and its pickled rows) costs more than the figures it would draw (about 90 ms each).
#: The workflow asks for one core below it, so a small area's figures start without waiting
#: for a second core (docs/performance.md, "The default job").
PARALLEL_FROM_POINTS = 20


def new_figure(*, figsize: tuple[float, float]):
    """A matplotlib figure on its own Agg canvas, outside pyplot: no global current figure, no
    figure registry, so jobs drawing in threads of one process never see each other's figures,
    and importing pyplot (0.6 s) is never paid. Drawn and saved as pyplot's Agg figures are
    (same PNG bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure
