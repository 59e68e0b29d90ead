"""Phenology accuracy per smoothing method, on a year of the demo catalog against its calendar.

One command, prints a table::

    python bench/bench_phenology.py

Builds the 2023 demo cube once (the workflow's functions, in this process), extracts the six
points, then for each smoothing method smooths, finds the seasons and compares start, peak and
end of season with the catalog's true crop calendar (green-up and senescence are its 50 %
crossings). Errors are in days.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pandas as pd  # noqa: E402

from ndvicube.demo import demo_series, phenology_errors  # noqa: E402
from ndvicube.jobs import season_metrics, smooth  # noqa: E402

METHODS = {
    "notebook (rolling mean 3)": {"method": "notebook", "window": 3},
    "savgol (window 7, order 2)": {"method": "savgol", "window": 7, "polyorder": 2},
    "whittaker (lambda 10)": {"method": "whittaker", "lam": 10.0},
    "whittaker (lambda 100)": {"method": "whittaker", "lam": 100.0},
}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ndvicube-phenology-"))
    catalog, raw = demo_series(tmp)
    print(
        "| smoothing | seasons found / true | SOS max (mean) d | POS max (mean) d "
        "| EOS max (mean) d |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    calendar = json.loads(catalog.calendar.read_text())
    true = sum(1 for p in calendar["points"] for s in p["seasons"] if s["peak"][:4] == "2023")
    for name, options in METHODS.items():
        smooth(raw_path=raw, out=tmp / "smoothed.csv", **options)
        season_metrics(
            smoothed_path=tmp / "smoothed.csv",
            out=tmp / "phenology.csv",
            fraction=0.5,
            min_amplitude=0.1,
        )
        found = pd.read_csv(tmp / "phenology.csv", parse_dates=["sos", "pos", "eos"])
        errors = phenology_errors(catalog.calendar, found, "2023-01-01", "2023-12-31")
        stats = errors.groupby("metric")["error_days"].agg(["max", "mean"])
        cells = [
            f"{stats.loc[m, 'max']:.0f} ({stats.loc[m, 'mean']:.1f})" for m in ("sos", "pos", "eos")
        ]
        print(f"| {name} | {len(found)} / {true} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
