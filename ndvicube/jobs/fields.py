"""Rule ``fields``: an area's polygons screened against its scenes, kept ones in the cube's CRS.

Writes ``fields.parquet`` (GeoParquet: ``id`` and ``geometry`` of the accepted fields, repaired
ones repaired, in the area's cube CRS), which the polygon series and the cube read instead of
the user's file, and ``fields_rejected.csv`` (``id``, ``row``, ``reason``; only the header when
none was; ``row`` is the field's place in the file, 1 for the first, so a field without an id is
named too). One bad field never sinks the run: the job fails only when no field is left and the area
has no points either.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ndvicube.fields import Screening

log = logging.getLogger(__name__)

#: Rejected fields named one by one in the log (all of them are in ``fields_rejected.csv``).
LOGGED_REJECTIONS = 20


def fields(
    *,
    polygons_path: str | Path,
    items_path: str | Path,
    crs: str,
    has_points: bool,
    fields_out: str | Path,
    rejected_out: str | Path,
    max_field_km2: float | None = None,
) -> Screening:
    """Screen the fields of ``polygons_path`` against the footprints of ``items_path``'s items
    (and ``max_field_km2``, the largest field's area) and write the accepted ones (in ``crs``)
    and the rejected ones' reasons.

    Raises :class:`~ndvicube.errors.NoFieldsError` when none is accepted and ``has_points`` is
    false: the area would have nothing to make series of.
    """
    from ndvicube.errors import NoFieldsError
    from ndvicube.fields import (
        TOO_LARGE,
        field_label,
        item_footprints,
        read_fields,
        screen_fields,
    )

    screened = screen_fields(
        read_fields(polygons_path),
        footprints=item_footprints(items_path),
        max_field_km2=max_field_km2,
    )
    log.info("fields of %s: %s", polygons_path, screened.summary())
    for row in screened.rejected.head(LOGGED_REJECTIONS).itertuples():
        log.info("field %s rejected: %s", field_label(row.id, row.row), row.reason)
    large = int((screened.rejected["reason"] == TOO_LARGE).sum())
    if large:
        log.warning(
            "%d field(s) larger than fields.max_field_km2 (%g km²) rejected as too large; raise "
            "the setting to keep them (the polygon tables hold about 1.8 MB per km² of the "
            "largest field at 10 m)",
            large,
            max_field_km2,
        )
    if len(screened.rejected) > LOGGED_REJECTIONS:
        log.info("... and %d more in %s", len(screened.rejected) - LOGGED_REJECTIONS, rejected_out)
    if screened.accepted.empty and not has_points:
        raise NoFieldsError(
            f"No field of {str(polygons_path)!r} can be used ({screened.summary()}) and the area "
            "has no points, so there is nothing to make series of. See the reasons in the log; "
            "'outside every scene' means no scene of the search covers the field (check the "
            "file's CRS, or the period and cloud limit)."
        )
    screened.accepted.to_crs(crs).to_parquet(fields_out)
    screened.rejected.to_csv(rejected_out, index=False)
    return screened
