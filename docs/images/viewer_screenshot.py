"""Take the README's screenshot of a viewer: headless Chromium, one period, a field's chart.

    python docs/images/viewer_screenshot.py results/fields/viewer/index.html overlap_rice \
        docs/images/viewer_demo.png

The page is opened by ``file://`` as a user opens it; the sixth period is chosen, the field is
found with the page's own search, and the map is fitted to the area again.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main(page: str, field: str, out: str) -> None:
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--force-device-scale-factor=1", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(Path(page).resolve().as_uri())
        while not driver.execute_script("return !!(window.ndvicubeViewer && ndvicubeViewer.ready)"):
            time.sleep(0.05)
        driver.execute_script(
            "var e = document.getElementById('period'); e.value = 5;"
            "e.dispatchEvent(new Event('input'));"
            "ndvicubeViewer.find(arguments[0]);"
            "document.getElementById('search').value = arguments[0];",
            field,
        )
        time.sleep(0.3)
        driver.execute_script(
            "var V = ndvicubeViewer, b = V.conf.bounds;"
            "V.map.fitBounds(L.latLngBounds([[b[1], b[0]], [b[3], b[2]]]), {animate: false});"
        )
        time.sleep(0.8)
        driver.save_screenshot(out)
    finally:
        driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
