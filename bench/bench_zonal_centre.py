"""Exact zonal statistics against the old pixel-centre rule, on the demo cube (docs/polygons.md).

One command, prints a table::

    python bench/bench_zonal_centre.py

Generates half a year of the demo catalog, builds its cube (the workflow's functions, in this
process), and computes the NDVI mean of several field sets on every date both ways:

* exact: ``polygon_series`` - every pixel weighted by the share of its area inside the field;
* centre: ndvicube's rule before issue 26 - the pixels whose centres lie inside, one label
  raster burnt with ``rasterio.features.rasterize`` (where fields overlap, the later one takes
  the shared pixels), unweighted.

In the demo world every 10 m pixel is uniform over its square (parcels lie on the 20 m grid,
noise is per 10 m pixel), so on a clear date the exact mean *is* the field's true mean, and the
difference is the centre rule's error. Field sets: the demo's parcels (boxes on the pixel grid,
where both rules agree), the same turned 15 degrees or shifted 3 m x 4 m off the grid, 300 small
fields (20 m to 50 m squares at random angles), 300 sub-pixel fields (3 m to 9 m squares), and
the demo field set (config/demo_fields.geojson, screened, those on the cube's grid) when it is
there.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CRS = "EPSG:32644"
START, END = "2023-01-01", "2023-06-30"


def main() -> None:
    from ndvicube.cube.store import open_cube
    from ndvicube.demo import DemoCatalogSpec, cube_spec, generate_demo_catalog
    from ndvicube.jobs import build_cube

    work = Path(tempfile.mkdtemp(prefix="ndvicube-centre-"))
    catalog = generate_demo_catalog(work / "catalog", DemoCatalogSpec(start=START, end=END))
    doc = json.loads(catalog.items.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["eo:cloud_cover"] < 30]
    (work / "items.json").write_text(json.dumps(doc))
    store = build_cube(cube_spec(), items_path=work / "items.json", out=work / "ndvi.zarr")
    cube = open_cube(store, dask=False)
    print("| fields | count | mean abs. difference | 95th pct. | max | no centre inside |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, fields in field_sets(catalog, cube).items():
        print(compare(name, fields, cube, store))


def field_sets(catalog, cube) -> dict:
    """The field sets compared, each a GeoDataFrame (``id``, geometry in the cube's CRS)."""
    import geopandas as gpd
    from shapely import affinity
    from shapely.geometry import box

    from ndvicube.timeseries.polygons import grid_transform

    t = grid_transform(cube)
    grid = box(t.c, t.f + t.e * cube.sizes["y"], t.c + t.a * cube.sizes["x"], t.f)
    calendar = json.loads(catalog.calendar.read_text())
    parcels = [box(*p["bounds_utm"]) for p in calendar["parcels"] if p["cover"] != "water"]
    parcels = [p for p in parcels if grid.buffer(-20).contains(p)]
    rng = np.random.default_rng(26)

    def frame(geometries) -> gpd.GeoDataFrame:
        ids = [f"f{k}" for k in range(len(geometries))]
        return gpd.GeoDataFrame({"id": ids}, geometry=list(geometries), crs=CRS)

    def squares(count: int, low: float, high: float):
        inner = grid.buffer(-60).bounds
        x = rng.uniform(inner[0], inner[2], count)
        y = rng.uniform(inner[1], inner[3], count)
        side = rng.uniform(low, high, count)
        angle = rng.uniform(0, 90, count)
        return [
            affinity.rotate(box(a - s / 2, b - s / 2, a + s / 2, b + s / 2), float(r))
            for a, b, s, r in zip(x, y, side, angle, strict=True)
        ]

    sets = {
        "demo parcels (boxes on the pixel grid)": frame(parcels),
        "demo parcels turned 15 degrees": frame([affinity.rotate(p, 15) for p in parcels]),
        "demo parcels shifted 3 m x 4 m": frame([affinity.translate(p, 3, 4) for p in parcels]),
        "small fields (20 m to 50 m squares)": frame(squares(300, 20, 50)),
        "sub-pixel fields (3 m to 9 m squares)": frame(squares(300, 3, 9)),
    }
    demo = HERE.parent / "config" / "demo_fields.geojson"
    if demo.exists():
        from ndvicube.timeseries.polygons import read_polygons

        kept = read_polygons(demo, CRS)  # screened as the fields job does, bar the footprints
        sets["demo field set (config/demo_fields.geojson)"] = kept[kept.intersects(grid)]
    return sets


def compare(name: str, fields, cube, store) -> str:
    """One row: how far the centre rule's means are from the exact ones."""
    from ndvicube.timeseries.polygons import polygon_series

    exact = polygon_series(cube, fields, store=store)["ndvi_mean"].to_numpy()
    centre = centre_means(cube, fields)
    both = np.isfinite(exact) & np.isfinite(centre)
    diff = np.abs(exact - centre)[both]
    dates = cube.sizes["time"]
    missing = int((~np.isfinite(centre.reshape(dates, -1))).all(axis=0).sum())
    return (
        f"| {name} | {len(fields)} | {diff.mean():.4f} | {np.percentile(diff, 95):.4f} "
        f"| {diff.max():.4f} | {missing} |"
    )


def centre_means(cube, fields) -> np.ndarray:
    """(dates x fields) unweighted means of the clear pixels whose centres lie in each field,
    rows date by date as ``polygon_series`` writes them: the rule before issue 26."""
    from rasterio.features import rasterize

    from ndvicube.timeseries.polygons import grid_transform

    shapes = ((g, n + 1) for n, g in enumerate(fields.geometry))
    shape = (cube.sizes["y"], cube.sizes["x"])
    labels = rasterize(shapes, out_shape=shape, transform=grid_transform(cube), dtype="int32")
    inside = labels > 0
    owner = labels[inside] - 1
    values = cube["ndvi"].values[:, inside]  # (dates, pixels)
    clear = np.isfinite(values)
    means = np.full((len(values), len(fields)), np.nan)
    for day, (v, c) in enumerate(zip(values, clear, strict=True)):
        count = np.bincount(owner[c], minlength=len(fields))
        total = np.bincount(owner[c], v[c], minlength=len(fields))
        with np.errstate(invalid="ignore", divide="ignore"):
            means[day] = np.where(count > 0, total / count, np.nan)
    return means.ravel()


if __name__ == "__main__":
    main()
