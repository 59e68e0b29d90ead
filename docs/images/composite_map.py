"""Draw one composite COG as a map, as a GIS shows it: the README's picture.

    python docs/images/composite_map.py results/seed/composites/NDVI_2023-03-01.tif \
        docs/images/composite_ndvi.png

The file is opened with rasterio like any GeoTIFF; the axes are its projected coordinates
(from the file's own transform and CRS), nodata (clouds all month, outside the swath) is grey.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import rasterio
from rasterio.plot import plotting_extent


def main(cog: str, out: str) -> None:
    with rasterio.open(cog) as src:
        values = src.read(1, masked=True)
        extent, crs = plotting_extent(src), src.crs
        tags = src.tags(ns="IMAGE_STRUCTURE")
        overviews = src.overviews(1)
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="0.8")
    fig, ax = plt.subplots(figsize=(6.4, 6.2))
    image = ax.imshow(np.ma.masked_invalid(values), extent=extent, cmap=cmap, vmin=-0.2, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="NDVI (median of the month's clear days)")
    ax.set_xlabel(f"easting, m ({crs.to_string()})")
    ax.set_ylabel("northing, m")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.set_title(
        f"{cog.rsplit('/', 1)[-1]}\n{tags.get('LAYOUT')} {tags.get('COMPRESSION')}, "
        f"overviews {overviews}, grey: no clear observation",
        fontsize="small",
    )
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:3])
