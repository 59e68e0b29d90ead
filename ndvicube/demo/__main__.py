"""``python -m ndvicube.demo OUT_DIR``: generate a demo catalog and print where its files are.

Why: the demo catalog is also handy outside the tests (to look at, to serve, to upload); the
Planetary Computer copy (:mod:`ndvicube.demo.pc`) is imported only when asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

import ndvicube.demo
from ndvicube.demo.catalog import generate_demo_catalog
from ndvicube.demo.world import DemoCatalogSpec


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: generate a demo catalog and print where its files are."""
    ap = argparse.ArgumentParser(
        prog="python -m ndvicube.demo", description=ndvicube.demo.__doc__.splitlines()[0]
    )
    d = DemoCatalogSpec()
    ap.add_argument("out_dir", metavar="OUT_DIR")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--start", default=d.start)
    ap.add_argument("--end", default=d.end)
    ap.add_argument("--proj-key", default=d.proj_key, choices=["proj:epsg", "proj:code"])
    ap.add_argument(
        "--planetary-computer",
        metavar="DIR",
        help="also write the catalog in Planetary Computer's shape (items.json, collection.json) "
        "to DIR (ndvicube.demo.pc)",
    )
    ap.add_argument(
        "--blob-url",
        help="with --planetary-computer: hrefs under this URL instead of local paths, e.g. "
        "http://ndvicubedemo.blob.core.windows.net/sentinel2-l2",
    )
    args = ap.parse_args(argv)
    spec = DemoCatalogSpec(seed=args.seed, start=args.start, end=args.end, proj_key=args.proj_key)
    cat = generate_demo_catalog(args.out_dir, spec)
    if args.planetary_computer:
        from ndvicube.demo.pc import planetary_computer_copy

        pc = planetary_computer_copy(cat, args.planetary_computer, blob_url=args.blob_url)
        print(f"planetary-computer items: {pc.items}")
    for name in (f.name for f in dataclasses.fields(cat)):
        print(f"{name}: {getattr(cat, name)}")


if __name__ == "__main__":
    main()
