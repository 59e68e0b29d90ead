"""One cube build of the field-set benchmark (``bench/bench_fields.py``), in a fresh process.

Usage: python bench/_fields_trial.py {dense|sparse|floor|odc-stac} ITEMS_JSON OUT_ZARR
                                     --bbox LON0 LAT0 LON1 LAT1 [--fields FIELDS_PARQUET]

* dense - ``build_cube`` as the ``cube`` rule calls it, with ``Compute(threads=2)``, on the box;
* sparse - the same with ``fields=FIELDS_PARQUET, field_points=[]`` (a field set without
  points): only the chunks the fields touch;
* floor, odc-stac - ``bench/_engine_trial.py``'s plain program and odc-stac's load of the box.

Prints one JSON line: ``wall`` (ndvicube: the call, from after ``import ndvicube.jobs``, its lazy
imports included; floor: imports excluded), ``process_s`` (from the process's start: the
interpreter, every import, the work), ``rss_mb`` (this program's peak RSS: ``VmHWM``, not
``ru_maxrss``, which a child inherits from its parent's RSS at ``fork`` and keeps across
``exec``), ``cpu_s`` (user + system seconds of all its threads, since its start: the work,
less sensitive than wall time to other processes on the machine) and for ndvicube ``tiles``
(COG tiles fetched and decoded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import _engine_trial  # noqa: E402
from _engine_trial import CRS, RESOLUTION, SCL_CLASSES, TIME_CHUNK  # noqa: E402


def ndvicube(items: Path, out: Path, bbox: tuple, fields: Path | None) -> dict:
    """The cube job's function on the box, dense or (``fields``) sparse."""
    from ndvicube.jobs import build_cube

    started = time.perf_counter()
    from ndvicube.compute import Compute
    from ndvicube.cube.spec import Chunking, CloudMask, CubeSpec

    spec = CubeSpec(
        bbox, CRS, resolution=RESOLUTION, cloud_mask=CloudMask(SCL_CLASSES),
        cube=Chunking(time_chunk=TIME_CHUNK, spatial_chunk=256),
    )  # fmt: skip
    sparse = {} if fields is None else {"fields": fields, "field_points": []}
    build_cube(spec, items_path=items, out=out, compute=Compute(threads=2), **sparse)
    wall = time.perf_counter() - started
    from ndvicube.read.tiles import TILES

    return {"wall": wall, "tiles": TILES.counts()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["dense", "sparse", "floor", "odc-stac"])
    parser.add_argument("items", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--bbox", type=float, nargs=4, required=True)
    parser.add_argument("--fields", type=Path)
    args = parser.parse_args()
    bbox = tuple(args.bbox)
    if args.method in ("dense", "sparse"):
        fields = args.fields if args.method == "sparse" else None
        result = ndvicube(args.items, args.out, bbox, fields)
    else:
        run = _engine_trial.floor if args.method == "floor" else _engine_trial.odc_stac
        result = run(args.items, args.out, bbox, 256)
    _engine_trial.report(result)


if __name__ == "__main__":
    main()
