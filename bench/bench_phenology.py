"""Phenology accuracy per smoothing method, on a year of the demo catalog against its calendar.

One command, prints a table::

    python bench/bench_phenology.py

Builds the 2023 demo cube once (the workflow's functions, in this process), extracts the six
points, then for each smoothing method smooths, finds the seasons and compares start, peak and
end of season with the catalog's true crop calendar (green-up and senescence are its 50 %
crossings). Errors are in days.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


from ndvicube.demo import demo_phenology, demo_series, true_seasons  # noqa: E402
from ndvicube.timeseries.smoothing import Smoothing  # noqa: E402

METHODS = {
    "notebook (rolling mean 3)": Smoothing(method="notebook", window=3),
    "savgol (window 7, order 2)": Smoothing(method="savgol", window=7, polyorder=2),
    "whittaker (lambda 10)": Smoothing(method="whittaker", lambda_=10.0),
    "whittaker (lambda 100)": Smoothing(method="whittaker", lambda_=100.0),
}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ndvicube-phenology-"))
    catalog, raw = demo_series(tmp)
    print(
        "| smoothing | seasons found / true | SOS max (mean) d | POS max (mean) d "
        "| EOS max (mean) d |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    true = true_seasons(catalog)
    for name, smoothing in METHODS.items():
        found, errors = demo_phenology(catalog, raw, tmp, smoothing)
        stats = errors.groupby("metric")["error_days"].agg(["max", "mean"])
        cells = [
            f"{stats.loc[m, 'max']:.0f} ({stats.loc[m, 'mean']:.1f})" for m in ("sos", "pos", "eos")
        ]
        print(f"| {name} | {len(found)} / {true} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
