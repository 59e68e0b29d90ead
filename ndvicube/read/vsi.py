"""The GDAL virtual file path of a URI (``/vsicurl/...``, ``/vsis3/...``), as rasterio opens it.

GDAL names its cache entries by this path: a retried read names it in
``CPL_VSIL_CURL_NON_CACHED`` (:mod:`ndvicube.read.retries`) so that GDAL reads the file again
instead of repeating a remembered failure.
"""

from __future__ import annotations

from urllib.parse import urlparse

#: URI schemes rasterio opens, and the GDAL virtual file system each maps to.
VSI_SCHEMES = {
    "ftp": "curl",
    "gzip": "gzip",
    "http": "curl",
    "https": "curl",
    "s3": "s3",
    "tar": "tar",
    "zip": "zip",
    "file": "file",
    "oss": "oss",
    "gs": "gs",
    "az": "az",
}


def vsi_path(uri: str) -> str:
    """The GDAL path rasterio opens for ``uri``: ``/vsicurl/https://host/a.tif?sig``,
    ``/vsis3/bucket/a.tif``, ``/vsizip/vsis3/bucket/a.zip/b.tif`` for ``zip+s3://bucket/a.zip!b.tif``;
    a local path or a ``/vsi...`` path as it is.

    GDAL names its cache entries by this path (``CPL_VSIL_CURL_NON_CACHED`` takes it). rasterio
    computes it in a private module (``rasterio._path._parse_path(uri).as_vsi()``, not part of its
    API), so the lines are owned here: copied from rasterio 1.4.4 (Copyright (c) 2013-2021, Mapbox;
    BSD-3-Clause, https://github.com/rasterio/rasterio) for the string URIs ndvicube passes.
    """
    parts = urlparse(uri)
    schemes = parts.scheme.split("+") if parts.scheme else []
    if uri.startswith("/vsi") or not schemes or not all(p in VSI_SCHEMES for p in schemes):
        return uri
    path, archive = parts.path + (f"?{parts.query}" if parts.query else ""), None
    if schemes[0] in ("gzip", "tar", "zip"):
        pieces = path.split("!")
        path = pieces.pop() if pieces else None
        archive = pieces.pop() if pieces else None
    if parts.netloc:
        if archive:
            archive = parts.netloc + archive
        else:
            path = parts.netloc + path
    suffix = f"{schemes[-1]}://" if VSI_SCHEMES[schemes[-1]] == "curl" else ""
    prefix = "/".join(f"vsi{VSI_SCHEMES[p]}" for p in schemes if p != "file")
    if not prefix:
        return path
    if archive:
        return f"/{prefix}/{suffix}{archive}/{path.lstrip('/')}"
    return f"/{prefix}/{suffix}{path}"
