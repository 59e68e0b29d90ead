"""The cube job's imports (issue 35, item 1): its engine path, with the remote reader, imports
none of xarray, pandas, dask.array, rasterio, odc-stac and odc-loader; what it does in their
place (the plan of the items' sources, the store's metadata) gives exactly what they give."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pystac
import pytest

from ndvicube.cube.sources import as_odc, odc_stac_sources, plan_sources
from ndvicube.demo import cube_spec
from ndvicube.search.items import sort_items
from tests.fault_helpers import items_subset

ROOT = Path(__file__).resolve().parent.parent
#: What the engine's job must not import (1.2 s of its 2 s of imports, docs/performance.md).
HEAVY = ("xarray", "pandas", "dask.array", "rasterio", "odc.stac", "odc.loader", "rioxarray")


def test_the_engine_job_imports_nothing_heavy_and_nothing_after_the_preload(
    catalog, cogs, tmp_path
):
    """A cube built by the job's function over HTTP (the remote reader), in a fresh process
    after the preload (``prepare_cube_jobs``): none of the heavy libraries is
    imported, nor any module the preload did not import. In Snakemake's process a job's import
    of a new module waits for the preload thread's whole import in progress (one import at a
    time, ndvicube/jobs/import_lock.py): the cube job waited 0.9-1.1 s that way, for the
    email modules importlib.metadata loads lazily, behind the light jobs' pandas."""
    items = items_subset(catalog, tmp_path / "items.json", base_url=cogs.url)
    params = cube_spec().to_params()  # (ndvicube.demo imports rasterio: not in the job)
    script = textwrap.dedent(f"""
        import sys
        from ndvicube.jobs.preload import prepare_cube_jobs
        prepare_cube_jobs()
        before = set(sys.modules)
        from ndvicube.cube.spec import CubeSpec
        from ndvicube.jobs import build_cube
        spec = CubeSpec.from_params({params!r})
        build_cube(spec, items_path={str(items)!r}, out={str(tmp_path / "ndvi.zarr")!r})
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        print(sorted(set(sys.modules) - before))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    heavy, after_preload = done.stdout.strip().splitlines()[-2:]
    assert heavy == "[]"
    assert after_preload == "[]"
    assert (tmp_path / "ndvi.zarr" / ".zmetadata").is_file()


# --- the plan of the sources: odc-stac's, without odc-stac ---------------------------------------


def _assert_same_plan(items: list[pystac.Item], assets: tuple[str, ...], crs: str) -> None:
    ordered = sort_items(items)
    lean = plan_sources(ordered, assets, crs)
    assert lean is not None, "planned by odc-stac instead"
    ref = odc_stac_sources(ordered, assets, crs)
    assert list(lean.rasters) == list(ref.rasters)
    for item_id, rasters in ref.rasters.items():
        assert {a: as_odc(r) for a, r in lean.rasters[item_id].items()} == rasters, item_id
        mine, theirs = lean.footprints[item_id], ref.footprints[item_id]
        assert mine.crs == theirs.crs and mine.geom.equals_exact(theirs.geom, 0), item_id
    assert {a: as_odc(c) for a, c in lean.cfgs.items()} == ref.cfgs


def _items(path: Path) -> list[pystac.Item]:
    return list(pystac.ItemCollection.from_file(str(path)))


def test_the_plan_of_the_demo_catalog_is_odc_stacs(catalog):
    """Two overlapping MGRS tiles a pass, 10 m bands and 20 m SCL."""
    _assert_same_plan(_items(catalog.items), ("red", "nir", "scl"), "EPSG:32644")
    _assert_same_plan(_items(catalog.items), ("red", "nir", "scl", "cloud"), "EPSG:32644")


def test_the_plan_of_real_overlapping_scenes_is_odc_stacs(shared_fixtures):
    """Real Earth Search items: four overlapping tiles, each scene twice (reprocessed, other
    offsets), footprints reprojected into another UTM zone; and a single tile's month."""
    es = shared_fixtures / "earth-search-v1"
    dupes = _items(es / "sentinel-2-l2a_32T-32U_2020-03_reprocessed-duplicates.json")
    _assert_same_plan(dupes, ("red", "nir", "scl"), "EPSG:32632")
    _assert_same_plan(dupes, ("red", "nir", "scl"), "EPSG:32633")
    tile = _items(es / "sentinel-2-c1-l2a_13TDE_2024-04.json")
    _assert_same_plan(tile, ("red", "nir08", "scl"), "EPSG:32613")


def test_items_of_another_shape_are_planned_by_odc_stac(catalog):
    """An item without the projection extension: not planned here (None), odc-stac plans."""
    items = _items(catalog.items)[:4]
    doc = items[1].to_dict()
    doc["stac_extensions"] = [e for e in doc["stac_extensions"] if "projection" not in e]
    items[1] = pystac.Item.from_dict(doc)
    assert plan_sources(sort_items(items), ("red", "nir", "scl"), "EPSG:32644") is None


@pytest.mark.parametrize("asset", ["red", "scl"])
def test_the_load_configs_are_odc_loaders(catalog, asset):
    """The dtype and fill value the blocks read into, as odc-loader resolves them."""
    import numpy as np
    from odc import loader

    from ndvicube.read.nodata import resolve_dst_dtype, resolve_dst_nodata, resolve_src_nodata

    items = sort_items(_items(catalog.items))
    cfg = plan_sources(items, (asset,), "EPSG:32644").cfgs[asset]
    odc = as_odc(cfg)

    for src_dtype, nodata in (("uint16", 0), ("uint8", None), ("float32", None)):
        assert resolve_dst_dtype(src_dtype, cfg) == loader.resolve_dst_dtype(src_dtype, odc)
        assert resolve_src_nodata(nodata, cfg) == loader.resolve_src_nodata(nodata, odc)
        dtype = np.dtype(src_dtype)
        mine, theirs = (
            resolve_dst_nodata(dtype, cfg, nodata),
            loader.resolve_dst_nodata(dtype, odc, nodata),
        )
        assert (mine, type(mine)) == (theirs, type(theirs)) or (np.isnan(mine) and np.isnan(theirs))
    assert json.dumps(cfg.dtype) == json.dumps(odc.dtype)


# --- the store's metadata: xarray's bytes, without xarray ----------------------------------------


def _metadata_both_ways(spec, days: int, tmp_path: Path) -> tuple[Path, Path]:
    """The store of ``spec`` (its days and scenes, no chunk of an index) written by xarray
    (the engine's template) and by zarr alone."""
    import dataclasses

    from ndvicube.compute import Compute
    from ndvicube.cube.engine import cube_layout, plan_build, template
    from ndvicube.cube.indices import resolve_indices
    from ndvicube.cube.metadata import write_cube_store
    from ndvicube.cube.store import write_store

    spec = dataclasses.replace(spec, indices=resolve_indices(spec.indices))
    dates = [f"2023-01-{d + 1:02d}" for d in range(days)]
    plan = plan_build(
        [], [], dates, {}, spec, Compute(), store="", old_store=None, collect=False,
        deadline_s=10.0, job_s=10.0,
    )  # fmt: skip
    scenes = [1 + d % 3 for d in range(days)]
    attrs = {"ndvicube:config": {"b": [1, 2.5], "a": "x"}, "ndvicube:days": {dates[0]: ["i"]}}
    ref, lean = tmp_path / "xarray.zarr", tmp_path / "zarr.zarr"
    write_store(
        template(plan, scenes), ref, crs=spec.crs, attrs=attrs,
        time_chunk=spec.cube.time_chunk, spatial_chunk=spec.cube.spatial_chunk,
        fill=lambda _store, _dataset: None,
    )  # fmt: skip
    layout = cube_layout(plan)
    assert layout is not None, "written by xarray"
    write_cube_store(layout, lean, attrs=attrs, fill=lambda _store: None)
    return ref, lean


def _files(store: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    "changes",
    [
        {},  # the demo: UTM 44N, NDVI
        {"indices": ("NDVI", "EVI", "NDWI"), "cube": {"time_chunk": 4, "spatial_chunk": 64}},
        {  # a tile read with its SCL buffer's margin, cropped
            "tile": {"row": 1, "col": 0, "rows": 2, "cols": 2},
            "cloud_mask": {"buffer_m": 30.0},
            "cube": {"time_chunk": 8, "spatial_chunk": 64},
        },
        {"crs": "EPSG:32744"},  # UTM 44S
        {"crs": "EPSG:2154", "resolution": 20.0},  # Lambert-93 (conformal conic)
        {"crs": "EPSG:3857", "resolution": 7.5},
    ],
)
def test_the_store_metadata_is_xarrays_byte_for_byte(changes, tmp_path):
    """Every file (.zgroup, .zattrs, each array's .zarray and .zattrs, the coordinates'
    chunks, .zmetadata) of the store written by zarr alone is xarray's and rioxarray's."""
    from ndvicube.cube.spec import CubeSpec

    params = cube_spec().to_params() | changes
    ref, lean = _metadata_both_ways(CubeSpec.from_params(params), 11, tmp_path)
    expected, written = _files(ref), _files(lean)
    assert sorted(written) == sorted(expected)
    assert {".zmetadata", "spatial_ref/.zattrs", "x/0", "time/0"} <= set(written)
    for name, data in expected.items():
        assert written[name] == data, name


def test_grids_the_zarr_writer_does_not_cover_are_written_by_xarray():
    """LAEA Europe (axes north, east: GDAL's WKT differs from PROJ's) goes to xarray."""
    import dataclasses

    from ndvicube.compute import Compute
    from ndvicube.cube.engine import cube_layout, plan_build

    def layout(crs: str):
        spec = dataclasses.replace(cube_spec(), crs=crs, indices=("NDVI",))
        plan = plan_build(
            [], [], ["2023-01-01"], {}, spec, Compute(), store="", old_store=None,
            collect=False, deadline_s=10.0, job_s=10.0,
        )  # fmt: skip
        return cube_layout(plan)

    assert layout("EPSG:3035") is None
    assert layout("EPSG:32644") is not None
