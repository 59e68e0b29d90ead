"""The odc-stac driver of the remote reader: each chunk's pixels pasted or warped from the cube's
window of a COG (:data:`ndvicube.read.remote.WINDOWS`) exactly as odc-stac's own reader does with
what GDAL read; GDAL's reader for anything else (local files, overviews, unusual TIFFs).
"""

from __future__ import annotations

import concurrent.futures
import contextlib

import numpy as np
from odc.geo.geobox import GeoBox
from odc.geo.roi import roi_is_empty, roi_pad

from ndvicube.read.gdal_reader import RetryingRioDriver, RetryingRioReader
from ndvicube.read.remote import (
    NEAREST_TTOL,
    WARP_PAD,
    WINDOWS,
    CogWindow,
    UseGdal,
    forget,
    is_remote,
    read_cube_window,
    runtime,
)
from ndvicube.read.retries import seconds_left, with_retries


class RemoteReader(RetryingRioReader):
    """odc-stac reader for remote COGs through :data:`WINDOWS`; GDAL's for anything else."""

    def read_retried(self, cfg, dst_geobox, *, dst=None, selection=None):
        url = self._src.uri
        load_geobox = getattr(self._ctx, "load_geobox", None)
        if load_geobox is None:  # a reader used outside a load: the window it is asked for
            load_geobox = dst_geobox

        def attempt(number: int):
            if number > 1:
                forget(url)
            try:
                return _read(url, cfg, dst_geobox, dst, load_geobox)
            except UseGdal:
                return None

        result = with_retries(attempt, url) if selection is None else None
        if result is None:
            return super().read_retried(cfg, dst_geobox, dst=dst, selection=selection)
        return result


def _read(url: str, cfg, dst_geobox: GeoBox, dst: np.ndarray | None, load_geobox: GeoBox):
    """odc-loader's ``_do_read`` with the pixels sliced from the cube's window of the COG."""
    import rasterio.warp
    from odc.geo.overlap import compute_reproject_roi
    from odc.geo.roi import roi_shape
    from odc.geo.warp import resampling_s2rio
    from odc.loader import resolve_dst_dtype, resolve_dst_nodata, resolve_src_nodata

    from ndvicube.read.nodata import nodata_mask, same_nodata

    ttol = NEAREST_TTOL if cfg.nearest else 0.05
    window = _wait(WINDOWS.get(url, load_geobox, ttol))
    layout = window.layout
    rr = compute_reproject_roi(layout.geobox, dst_geobox, ttol=ttol)
    if (cfg.use_overviews and rr.read_shrink > 1) or (dst is not None and dst.ndim != 2):
        raise UseGdal()
    roi_dst = rr.roi_dst
    if dst is not None:
        out = dst[roi_dst]
    else:
        out = np.ndarray(roi_shape(roi_dst), dtype=resolve_dst_dtype(layout.dtype.name, cfg))
    src_nodata = resolve_src_nodata(layout.nodata, cfg)
    dst_nodata = resolve_dst_nodata(out.dtype, cfg, src_nodata)
    if roi_is_empty(roi_dst):
        return roi_dst, out
    if roi_is_empty(rr.roi_src):
        if dst_nodata is not None:
            np.copyto(out, dst_nodata)
        return roi_dst, out
    if rr.paste_ok and rr.read_shrink == 1:
        out[...] = _pixels(url, window, rr.roi_src)
        if dst_nodata is not None and not same_nodata(src_nodata, dst_nodata):
            np.copyto(out, dst_nodata, where=nodata_mask(out, src_nodata))
        return roi_dst, out
    rows, cols = roi_pad(rr.roi_src, WARP_PAD, layout.geobox.shape.yx)
    rasterio.warp.reproject(
        _pixels(url, window, (rows, cols)),
        out,
        src_transform=layout.geobox[rows, cols].transform,
        src_crs=str(layout.geobox.crs),
        src_nodata=src_nodata,
        dst_crs=str(dst_geobox.crs),
        dst_transform=dst_geobox[roi_dst].transform,
        dst_nodata=dst_nodata,
        resampling=resampling_s2rio(cfg.resampling),
    )
    return roi_dst, out


def _pixels(url: str, window: CogWindow, roi: tuple[slice, slice]) -> np.ndarray:
    """The pixels of ``roi`` from the cube's window; a chunk reaching outside it (odc-geo's
    rounding on a chunk's edge) has its own window read."""
    pixels = window.pixels(*roi)
    if pixels is not None:
        return pixels
    own = _wait(runtime().submit(read_cube_window(url, window.layout.geobox[roi], NEAREST_TTOL)))
    return own.pixels(*roi)


def _wait(future: concurrent.futures.Future):
    """``future``'s result, waited for until the read's deadline at most; a read still running
    then is cancelled (its requests end) and the wait fails with ``TimeoutError``."""
    try:
        return future.result(timeout=seconds_left())
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError("no answer before the read's deadline") from None
    except concurrent.futures.CancelledError:  # another read of this COG gave up on it
        raise TimeoutError("a read of this COG passed its deadline") from None


class RemoteRioDriver(RetryingRioDriver):
    """odc-stac driver: remote COGs through :class:`RemoteReader`, the rest through GDAL.

    Its readers see the whole load's grid (``ctx.load_geobox``), so the first chunk read from
    a COG fetches every tile of it the cube needs.
    """

    @contextlib.contextmanager
    def restore_env(self, env, load_state):
        with super().restore_env(env, load_state) as ctx:
            ctx.load_geobox = load_state.geobox
            yield ctx

    def open(self, src, ctx):
        if is_remote(src.uri):
            return RemoteReader(src, ctx)
        return super().open(src, ctx)
