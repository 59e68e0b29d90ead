"""Rule ``quicklook``: maps of an area's first index, with its points: the composites, or the
cube's monthly medians."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ndvicube.geo import Point


def quicklook(
    *,
    cube_path: str | Path,
    points: Sequence[Point],
    area: str,
    out: str | Path,
    index: str = "NDVI",
    fields: str | Path | None = None,
    viewer: str | Path | None = None,
    tables: dict[str, str | Path | None] | None = None,
    tile_cache: str | Path | None = None,
    indices: Sequence[str] | None = None,
    threads: int = 1,
) -> None:
    """Draw the area's quick-look: maps of ``index`` with its points, and the outlines of its
    accepted ``fields`` (``fields.parquet``) when it has polygons.

    ``cube_path`` is the cube (its monthly medians are drawn) or a composites store (its
    periods are drawn as they are: one source of truth for the maps). A field set's maps are
    blank where its sparse cube holds no chunk.

    With ``viewer``, the same process writes the area's viewer folder there from the same
    maps, at full resolution (:func:`ndvicube.viewer.page.build_viewer`; ``tables`` are the
    series it shows, ``tile_cache`` where rendered tiles are kept between runs, ``threads``
    how many threads draw its tiles): a second job would cost seconds of start-up for the
    milliseconds of the page.
    """
    from ndvicube.composites.periods import SPEC_ATTR
    from ndvicube.cube.indices import column
    from ndvicube.cube.store import cube_attrs, cube_crs, open_cube
    from ndvicube.figures.maps import monthly_medians, plot_quicklook

    cube = open_cube(cube_path)
    maps = for_display(cube[column(index)])
    made = cube_attrs(cube).get(SPEC_ATTR)
    outlines = _outlines(fields, cube_crs(cube)) if fields else None
    if made is None:
        medians = monthly_medians(maps).compute()  # 512 px a side at most: drawn twice
        plot_quicklook(medians, points, area, out, fields=outlines)
        step = _step(maps, cube)
        viewer_maps = {index: medians}
        what = f"Monthly median {index}" + (f" (every {step}th pixel)" if step > 1 else "")
    else:
        what = f"{made['statistic'].capitalize()} per period ({made['period']}) of"
        plot_quicklook(maps, points, area, out, what=what, fields=outlines)
        wanted = [i for i in (indices or [index]) if column(i) in cube]
        viewer_maps = {i: cube[column(i)] for i in wanted}
        what = f"{what} {', '.join(wanted)}"
    if viewer is not None:
        from ndvicube.viewer.page import build_viewer

        build_viewer(
            maps=viewer_maps, crs=cube_crs(cube), what=what, out=viewer, area=area,
            points=points, tables={**(tables or {}), "fields": fields},
            cache=tile_cache or Path(viewer).parent / ".viewer-tiles",
            indices=list(indices or [index]), threads=threads,
        )  # fmt: skip


def _step(maps, cube) -> int:
    """How many cube pixels one displayed pixel stands for along a side."""
    return max(1, round(cube.sizes["x"] / maps.sizes["x"]))


#: Pixels per side of a quick-look map at most: each map is drawn about 256 px wide, so more
#: only costs (a 40 km area's 4,000 x 4,000 px monthly medians: 190 s, against seconds).
DISPLAY_PX = 512


def for_display(maps):
    """``maps`` thinned to every n-th pixel so no side exceeds :data:`DISPLAY_PX` (the pixels
    kept are the cube's own, nearest-neighbour; what is drawn of a 1 km area is unchanged)."""
    step = -(-max(maps.sizes["y"], maps.sizes["x"]) // DISPLAY_PX)
    return maps if step == 1 else maps.isel(y=slice(None, None, step), x=slice(None, None, step))


def _outlines(path: str | Path, crs: str):
    """The accepted fields' boundaries in the maps' CRS."""
    import geopandas as gpd

    return gpd.read_parquet(path).to_crs(crs).boundary
