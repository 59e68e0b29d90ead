"""The polygon tables job at scale: 10,000 fields x 1 year on a sparse 40 km x 40 km cube.

One command, prints a table of seconds per step::

    python bench/bench_fields_tables.py [--fields 10000] [--keep DIR]

The synthetic region (made once, kept under ``--keep`` for the next run): a 4,000 x 4,000 px
grid at 10 m (EPSG:32644), 73 solar days (every 5 days of 2023), written as the cube job writes
a field set's store (:func:`ndvicube.cube.store.write_store`: (time, y, x) float32 chunks of
8 x 256 x 256, blosc-lz4, NaN fill) with only the chunks some field touches present. Fields are
rotated rectangles of 5 m to 250 m a side (log-uniform, so some are smaller than a pixel), in
clusters on 40 % of the chunks, covering about 6 % of the region. Each pixel's NDVI follows one
season (its peak day varies smoothly over the region) with noise; clouds (NaN) come in
320 m blobs, 0 to 80 % of the region per day.

Steps, as the job runs them (``ndvicube.timeseries.steps``), each timed on its own:

* weights - read ``fields.parquet``, each field's cells and coverage (exactextract);
* statistics - read the cells' values per time block from Zarr, weighted means and medians;
* raw CSV - write ``polygons_raw.csv``;
* smoothing - read the raw table, smooth every series, write ``polygons_smoothed.csv``;
* phenology - read the smoothed table, find the seasons, write ``polygons_phenology.csv``.

The floor does the same reads, arithmetic and writes in plain numpy, in one process: the
touched chunks decoded with numcodecs, coverage-weighted means by ``np.bincount`` and one
argsort per date (what a median needs), a centred rolling mean, each series' peak, and the
same three CSVs by pyarrow. Then: a Parquet copy of the raw table (written and read), the other
smoothing methods, the overview figure, and the whole job in a fresh process as the rule runs
it (``ndvicube.jobs.polygon_tables``: wall seconds and peak memory).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CRS = "EPSG:32644"
#: Grid: origin (west, north) in metres, pixel size, rows and columns.
X0, Y1, RES, SIZE = 600_000.0, 3_100_000.0, 10.0, 4_000
CHUNK, TIME_CHUNK = 256, 8
DAYS = np.arange(np.datetime64("2023-01-01"), np.datetime64("2024-01-01"), 5)
#: Share of the chunks where fields cluster.
CLUSTERED = 0.4


def make_fields(count: int, seed: int = 26):
    """``count`` fields (``id``, geometry in :data:`CRS`) in clusters on some chunks."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    per_side = -(-SIZE // CHUNK)
    chosen = rng.choice(per_side * per_side, round(CLUSTERED * per_side**2), replace=False)
    home = rng.choice(chosen, count)
    span = CHUNK * RES
    cx = X0 + (home % per_side + rng.uniform(0.05, 0.95, count)) * span
    cy = Y1 - (home // per_side + rng.uniform(0.05, 0.95, count)) * span
    cx, cy = (
        np.clip(cx, X0 + 300, X0 + SIZE * RES - 300),
        np.clip(cy, Y1 - SIZE * RES + 300, Y1 - 300),
    )
    side = np.exp(rng.uniform(np.log(5), np.log(250), count))
    ratio = rng.uniform(0.5, 2.0, count)
    half_w, half_h = side / 2, side * ratio / 2
    angle = np.radians(rng.uniform(0, 90, count))
    corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=float)
    dx = corners[None, :, 0] * half_w[:, None]
    dy = corners[None, :, 1] * half_h[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    xs = cx[:, None] + dx * cos - dy * sin
    ys = cy[:, None] + dx * sin + dy * cos
    rings = np.stack([xs, ys], axis=-1)
    geometry = shapely.polygons(np.concatenate([rings, rings[:, :1]], axis=1))
    ids = [f"field_{k:05d}" for k in range(count)]
    return gpd.GeoDataFrame({"id": ids}, geometry=geometry, crs=CRS)


def touched_chunks(weights) -> list[tuple[int, int]]:
    """The (row, col) chunks holding a cell of some field."""
    pairs = np.unique((weights.rows // CHUNK) * 10_000 + weights.cols // CHUNK)
    return [(int(p // 10_000), int(p % 10_000)) for p in pairs]


def write_region(path: Path, chunks: list[tuple[int, int]], seed: int = 26) -> Path:
    """The sparse cube store: only ``chunks`` written, each for every time block."""
    import dask.array as da
    import xarray as xr
    import zarr

    from ndvicube.cube.store import write_store

    shape = (len(DAYS), SIZE, SIZE)
    lazy = da.full(shape, np.nan, dtype="float32", chunks=(TIME_CHUNK, CHUNK, CHUNK))
    coords = {
        "time": DAYS.astype("datetime64[ns]"),
        "y": Y1 - RES / 2 - RES * np.arange(SIZE),
        "x": X0 + RES / 2 + RES * np.arange(SIZE),
    }
    dataset = xr.Dataset({"ndvi": (("time", "y", "x"), lazy)}, coords=coords)
    grid = {"indices": ["NDVI"], "cube": {"time_chunk": TIME_CHUNK, "spatial_chunk": CHUNK}}
    attrs = {"ndvicube:grid": grid, "ndvicube:chunks": [list(c) for c in chunks]}

    def fill(partial: Path, _: xr.Dataset) -> None:
        array = zarr.open_group(str(partial), mode="r+")["ndvi"]
        clouds = _clouds(np.random.default_rng([seed, 1]))
        for row, col in chunks:
            block = _ndvi(row, col, clouds, np.random.default_rng([seed, 2, row, col]))
            rows = slice(row * CHUNK, row * CHUNK + block.shape[1])
            cols = slice(col * CHUNK, col * CHUNK + block.shape[2])
            array[:, rows, cols] = block

    return write_store(dataset, path, crs=CRS, attrs=attrs, time_chunk=TIME_CHUNK,
                       spatial_chunk=CHUNK, fill=fill)  # fmt: skip


def _clouds(rng: np.random.Generator) -> np.ndarray:
    """(days, 125, 125) cloud mask of 320 m cells: 0 % to 80 % of the region per day."""
    cells = -(-SIZE // 32)
    cover = rng.uniform(0, 0.8, len(DAYS)) * (rng.random(len(DAYS)) < 0.7)
    return rng.random((len(DAYS), cells, cells)) < cover[:, None, None]


def _ndvi(row: int, col: int, clouds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(days, rows, cols) NDVI of one chunk: one season per pixel, noise, clouds as NaN."""
    ys = np.arange(row * CHUNK, min((row + 1) * CHUNK, SIZE))
    xs = np.arange(col * CHUNK, min((col + 1) * CHUNK, SIZE))
    peak = 190 + 60 * np.sin(ys[:, None] / 700.0) * np.cos(xs[None, :] / 900.0)
    day = (DAYS - DAYS[0]).astype(int)[:, None, None]
    season = 0.15 + 0.65 * np.exp(-(((day - peak[None]) / 35.0) ** 2))
    ndvi = (season + rng.normal(0, 0.03, season.shape)).astype("float32")
    ndvi[clouds[:, ys[:, None] // 32, xs[None, :] // 32]] = np.nan
    return ndvi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="folder kept between runs (region made once)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="ndvicube-fields-"))
    work.mkdir(parents=True, exist_ok=True)
    fields_path, store = region(work, args.fields)
    job = run_job(fields_path, store, work / "job")
    floor = run_floor(fields_path, store, work / "floor")
    print_table(job, floor, args.fields)
    print_extras(work / "job")
    seconds, peak = run_job_process(fields_path, store, work / "process")
    print(
        f"\nThe job in its own process (ndvicube.jobs.polygon_tables, imports included): "
        f"{seconds:.1f} s wall, peak RSS {peak / 1e9:.2f} GB (target: 60 s on 2 cores)"
    )


#: The tables job's steps (the rows of the table and of its total).
STEPS = ("weights", "statistics", "raw CSV", "smoothing", "phenology")


def run_job(fields_path: Path, store: Path, out: Path) -> dict[str, float]:
    """The polygon tables job's steps on the region, each timed (wall seconds)."""
    from ndvicube.cube.store import open_cube
    from ndvicube.timeseries.polygons import grid_weights, polygon_series, read_polygons
    from ndvicube.timeseries.steps import season_metrics, smooth
    from ndvicube.timeseries.tables import write_polygon_series

    out.mkdir(parents=True, exist_ok=True)
    timer = _Timer()
    with timer("weights"):
        cube = open_cube(store, dask=False)
        polygons = read_polygons(fields_path, CRS)
        weights = grid_weights(cube, polygons)
    with timer("statistics"):
        table = polygon_series(cube, polygons, store=store, weights=weights)
    with timer("raw CSV"):
        write_polygon_series(table, out / "polygons_raw.csv")
    with timer("smoothing"):
        smooth(raw_path=out / "polygons_raw.csv", out=out / "polygons_smoothed.csv")
    with timer("phenology"):
        season_metrics(
            smoothed_path=out / "polygons_smoothed.csv", out=out / "polygons_phenology.csv"
        )
    with timer("raw Parquet (a copy)"):
        table.to_parquet(out / "polygons_raw.parquet", index=False)
    return timer.seconds


def print_extras(out: Path) -> None:
    """What else a table of this size costs: reading it back, the other smoothing methods,
    the overview figure."""
    import pandas as pd

    from ndvicube.figures.series import plot_overview
    from ndvicube.timeseries.smoothing import smooth_series
    from ndvicube.timeseries.tables import read_series

    timer = _Timer()
    with timer("read polygons_raw.csv (read_series)"):
        raw = read_series(str(out / "polygons_raw.csv"))
    with timer("read polygons_raw.parquet"):
        pd.read_parquet(out / "polygons_raw.parquet")
    for method, options in {"savgol": {"window": 7}, "whittaker": {"lam": 10.0}}.items():
        with timer(f"smoothing ({method}, no I/O)"):
            smooth_series(raw, method=method, **options)
    with timer("overview figure (10-90% band and median)"):
        smoothed = read_series(str(out / "polygons_smoothed.csv"))
        plot_overview(raw, smoothed, "fields", out / "overview.png", what="field")
    sizes = {p.name: p.stat().st_size / 1e6 for p in sorted(out.glob("polygons_raw.*"))}
    print("\n| also | s |\n| --- | ---: |")
    for step, seconds in timer.seconds.items():
        print(f"| {step} | {seconds:.2f} |")
    print("sizes: " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in sizes.items()))
    print(f"overview: {out / 'overview.png'}")


def run_job_process(fields_path: Path, store: Path, out: Path) -> tuple[float, int]:
    """The job as the rule runs it, in a fresh Python: wall seconds and peak memory (bytes)."""
    import resource
    import subprocess

    out.mkdir(parents=True, exist_ok=True)
    code = (
        "from ndvicube.jobs import polygon_tables\n"
        f"polygon_tables(cube_path={str(store)!r}, fields_path={str(fields_path)!r}, "
        f"crs={CRS!r}, min_clear_fraction=0.0, raw_out={str(out / 'raw.csv')!r}, "
        f"smoothed_out={str(out / 'smoothed.csv')!r}, "
        f"phenology_out={str(out / 'phenology.csv')!r}, smoothing={{}}, phenology={{}})\n"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE.parent)
    seconds = time.perf_counter() - started
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def run_floor(fields_path: Path, store: Path, out: Path) -> dict[str, float]:
    """The same reads, arithmetic and writes in plain numpy (pyarrow for the CSVs)."""
    import geopandas as gpd
    import numcodecs
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from affine import Affine

    from ndvicube.timeseries.zonal import coverage_weights

    def write(columns: dict, path: Path) -> None:
        pacsv.write_csv(pa.table({k: pa.array(v, from_pandas=True) for k, v in columns.items()}),
                        str(path), pacsv.WriteOptions(quoting_style="none"))  # fmt: skip

    out.mkdir(parents=True, exist_ok=True)
    timer = _Timer()
    with timer("weights"):
        fields = gpd.read_parquet(fields_path)
        transform = Affine(RES, 0, X0, 0, -RES, Y1)
        w = coverage_weights(fields.geometry, transform=transform, shape=(SIZE, SIZE), crs=CRS)
    with timer("statistics"):
        mean, count = _floor_statistics(store, w, numcodecs)
    days, ids = DAYS.astype("datetime64[D]"), fields["id"].to_numpy()
    with timer("raw CSV"):
        write({"polygon": np.tile(ids, len(DAYS)), "time": np.repeat(days, len(ids)),
               "ndvi_mean": mean.ravel(), "ndvi_median": mean.ravel(), "count": count.ravel(),
               "clear_fraction": count.ravel()}, out / "polygons_raw.csv")  # fmt: skip
    with timer("smoothing"):
        smoothed = _floor_smoothing(mean.T)  # (fields, days)
        write({"point": np.repeat(ids, len(DAYS)), "time": np.tile(days, len(ids)),
               "ndvi": smoothed.ravel()}, out / "polygons_smoothed.csv")  # fmt: skip
    with timer("phenology"):
        peak = np.argmax(np.where(np.isnan(smoothed), -np.inf, smoothed), axis=1)
        top = smoothed[np.arange(len(ids)), peak]
        amplitude = top - np.nanmin(smoothed, axis=1)
        write({"point": ids, "pos": days[peak], "peak_value": top, "amplitude": amplitude},
              out / "polygons_phenology.csv")  # fmt: skip
    return timer.seconds


def _floor_statistics(store: Path, w, numcodecs) -> tuple[np.ndarray, np.ndarray]:
    """(days, fields) coverage-weighted means and counts: chunk files decoded by numcodecs,
    sums by ``np.bincount``, plus one argsort per day (what any median needs)."""
    import json

    meta = json.loads((store / "ndvi" / ".zarray").read_text())
    codec = numcodecs.get_codec(meta["compressor"])
    owner = np.repeat(np.arange(len(w.starts) - 1), np.diff(w.starts))
    fields = len(w.starts) - 1
    chunk_of = (w.rows // CHUNK) * 1000 + w.cols // CHUNK
    mean, count = np.full((len(DAYS), fields), np.nan), np.zeros((len(DAYS), fields))
    for block in range(-(-len(DAYS) // TIME_CHUNK)):
        values = np.full((TIME_CHUNK, len(w.rows)), np.nan, dtype="float32")
        for key in np.unique(chunk_of):
            row, col = divmod(int(key), 1000)
            cells = np.flatnonzero(chunk_of == key)
            raw = (store / "ndvi" / f"{block}.{row}.{col}").read_bytes()
            data = np.frombuffer(codec.decode(raw), dtype="float32").reshape(
                TIME_CHUNK, CHUNK, CHUNK
            )
            values[:, cells] = data[:, w.rows[cells] % CHUNK, w.cols[cells] % CHUNK]
        for step in range(TIME_CHUNK):
            day = block * TIME_CHUNK + step
            if day >= len(DAYS):
                break
            x = values[step, w.cells].astype("float64")
            clear = np.isfinite(x)
            weight = np.where(clear, w.coverage, 0.0)
            count[day] = np.bincount(owner, weight, fields)
            total = np.bincount(owner, np.where(clear, x, 0.0) * weight, fields)
            mean[day] = np.where(count[day] > 0, total / np.maximum(count[day], 1e-300), np.nan)
            np.argsort(
                owner.astype(np.int64) << 32 | x.astype("float32").view("uint32"), kind="stable"
            )
    return mean, count


def _floor_smoothing(series: np.ndarray) -> np.ndarray:
    """Centred 3-step mean of each row, NaN left out (the notebook's recipe without its
    interpolation)."""
    finite = np.isfinite(series)
    values = np.where(finite, series, 0.0)
    pad = lambda a: np.pad(a, ((0, 0), (1, 1)))  # noqa: E731
    total = sum(pad(values)[:, k : k + series.shape[1]] for k in range(3))
    count = sum(pad(finite.astype(float))[:, k : k + series.shape[1]] for k in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


class _Timer:
    """``with timer("step"):`` records the step's wall seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, step: str):
        import contextlib

        @contextlib.contextmanager
        def timed():
            started = time.perf_counter()
            yield
            self.seconds[step] = time.perf_counter() - started

        return timed()


def print_table(job: dict[str, float], floor: dict[str, float], fields: int) -> None:
    """Seconds per step, job against floor, and the total of the tables job's steps."""
    print(f"\n{fields:,} fields x {len(DAYS)} days, {SIZE:,} x {SIZE:,} px; wall seconds")
    print("| step | job (s) | floor (s) | job / floor |")
    print("| --- | ---: | ---: | ---: |")
    for step in [*STEPS, "total"]:
        j = sum(job[s] for s in STEPS) if step == "total" else job[step]
        f = sum(floor[s] for s in STEPS) if step == "total" else floor[step]
        print(f"| {step} | {j:.2f} | {f:.2f} | {j / f:.1f} |")
    print(f"| raw Parquet (a copy) | {job['raw Parquet (a copy)']:.2f} | | |")


def region(work: Path, count: int) -> tuple[Path, Path]:
    """The fields file and the cube store under ``work`` (made if absent)."""
    from affine import Affine

    from ndvicube.timeseries.zonal import coverage_weights

    fields_path, store = work / f"fields_{count}.parquet", work / f"cube_{count}.zarr"
    if not fields_path.exists():
        make_fields(count).to_parquet(fields_path)
    if not store.exists():
        import geopandas as gpd

        fields = gpd.read_parquet(fields_path)
        transform = Affine(RES, 0, X0, 0, -RES, Y1)
        weights = coverage_weights(
            fields.geometry, transform=transform, shape=(SIZE, SIZE), crs=CRS
        )
        chunks = touched_chunks(weights)
        started = time.perf_counter()
        write_region(store, chunks)
        print(f"region: {len(chunks)} chunk(s) written in {time.perf_counter() - started:.0f} s")
    return fields_path, store


if __name__ == "__main__":
    main()
