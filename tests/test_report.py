"""`snakemake --report`: one self-contained HTML with every figure and table, opened in a real
headless browser (Chromium through Selenium), where the page must render and every image decode.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.workflow_helpers import POINTS, demo_config, snakemake, write_config

pytestmark = pytest.mark.workflow

CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def report(catalog, tmp_path_factory):
    """The demo workflow for January-April, then its report."""
    work = tmp_path_factory.mktemp("report")
    config = demo_config(str(catalog.items), str(catalog.points))
    config |= {"start": "2023-01-01", "end": "2023-04-30"}
    cfg = write_config(work / "config.yaml", config)
    run = snakemake(work, cfg, "--cores", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    made = snakemake(work, cfg, "--report", "report.html")
    assert made.returncode == 0, made.stderr[-3000:]
    return work / "report.html"


def embedded_results(html: str) -> dict:
    """The report's ``var results = {...}``: every annotated output with its data URI."""
    match = re.search(r"var results = (\{.*?\});?\s*</script>", html, re.S)
    assert match, "no results table in the report"
    return json.loads(match.group(1))


def test_report_embeds_every_figure_and_table(report, catalog):
    results = embedded_results(report.read_text())
    names = {key.split("/", 2)[2] for key in results}
    assert names == {
        *(f"plots/{p}.png" for p in POINTS),
        "overview.png",
        "quicklook.png",
        "series_raw.csv",
        "series_smoothed.csv",
        "phenology.csv",
    }
    for key, entry in results.items():
        assert entry["data_uri"].startswith("data:"), key  # self-contained: no file links
    quicklook = results["results/seed/quicklook.png"]
    assert quicklook["labels"] == {"area": "seed", "figure": "monthly NDVI maps"}


def test_without_composites_the_viewer_maps_the_monthly_medians(report):
    """The viewer is not in the report (Snakemake refuses folders in an HTML report) but beside
    it; without `composites:` its layers are the quick-look's monthly medians, one a month."""
    setup = (report.parent / "results/seed/viewer/data/setup.js").read_text()
    conf = json.loads(setup[len("ndvicubeViewer.setup(") : -len(");\n")])
    assert [layer["start"] for layer in conf["layers"]["NDVI"]] == [
        "2023-01-01", "2023-02-01", "2023-03-01", "2023-04-01",
    ]  # fmt: skip
    assert conf["what"].startswith("Monthly median NDVI") and len(conf["points"]) == len(POINTS)
    assert 'href="seed/viewer/index.html"' in (report.parent / "results/index.html").read_text()


@pytest.mark.skipif(
    CHROMEDRIVER is None,
    reason="no chromedriver: install Debian's chromium and chromium-driver (.ci/run does)",
)
def test_report_opens_in_a_headless_browser_and_its_images_load(report):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(report.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: "Tables" in d.execute_script("return document.body.innerText")
        )
        text = driver.execute_script("return document.body.innerText")
        assert "Points" in text and "Areas" in text
        decoded = driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            const images = Object.entries(results).filter(([, r]) => r.mime_type === "image/png");
            Promise.all(images.map(([key, r]) => new Promise((resolve) => {
                const img = new Image();
                img.onload = () => resolve([key, img.naturalWidth, img.naturalHeight]);
                img.onerror = () => resolve([key, 0, 0]);
                img.src = r.data_uri;
            }))).then(done);
            """
        )
    finally:
        driver.quit()
    assert len(decoded) == len(POINTS) + 2  # point figures, overview, quick-look
    for key, width, height in decoded:
        assert width > 100 and height > 100, key


def test_a_zip_report_holds_the_viewer_as_a_page_of_its_own(report, tmp_path):
    """`--report report.zip` (on the same finished run) marks the viewer folder for the report
    (`htmlindex`): the zip's report lists it under Areas, its link a file of the zip beside
    every file of the folder, and the page opens from the unzipped folder with no error."""
    import zipfile

    work = report.parent
    made = snakemake(work, work / "config.yaml", "--report", "report.zip")
    assert made.returncode == 0, made.stderr[-3000:]
    zipfile.ZipFile(work / "report.zip").extractall(tmp_path)
    results = embedded_results((tmp_path / "report/report.html").read_text())
    entry = results["results/seed/viewer/index.html"]
    assert entry["labels"] == {"area": "seed", "figure": "viewer"}
    page = tmp_path / "report" / entry["data_uri"]
    viewer = work / "results/seed/viewer"
    files = {p.relative_to(viewer) for p in viewer.rglob("*") if p.is_file()}
    files.discard(Path(".snakemake_timestamp"))  # Snakemake's own, left out of reports
    assert {p.relative_to(page.parent) for p in page.parent.rglob("*") if p.is_file()} == files
    assert any(p.parts[0] == "tiles" for p in files)
    if CHROMEDRIVER is None:
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(page.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return window.ndvicubeViewer && ndvicubeViewer.ready")
        )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    assert errors == []
