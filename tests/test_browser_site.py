"""The built leaderboard in a real browser: headless Chromium (Debian's) driven by Selenium.

Opens the overview from disk (no server: sorting and filtering run in the page), sorts a
column by clicking its header, filters with the text box, follows links to a split page and a
scorer page, finds the ROC SVG, saves a screenshot of each page under test-artifacts/ and
checks the browser console stayed free of errors. Without Chromium the test skips, except
under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmark.site import build_site
from site_helpers import XSS, make_results

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _driver(profile: Path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        msg = f"Chromium not installed ({', '.join(missing)} missing): apt-get install -y chromium chromium-driver"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1400", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


def _column(driver, table_id: str, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody.ranked tr")
    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in rows if r.is_displayed()]


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_overview_sort_filter_links_roc_screenshots(tmp_path):
    from selenium.webdriver.common.by import By

    results = make_results(tmp_path / "results", published=True)
    report = build_site(results, tmp_path / "site")
    assert report.n_results > 0 and not report.rejected
    ARTIFACTS.mkdir(exist_ok=True)
    driver = _driver(tmp_path / "profile")
    try:
        driver.get(report.index.as_uri())
        assert "membench" in driver.title
        table = "track-pretraining"

        # sort by AUC: click the header, rows come back in ascending, then descending order
        header = driver.find_element(By.CSS_SELECTOR, f"#{table} thead th:nth-child(4) button")
        header.click()
        asc = [float(v) for v in _column(driver, table, 3)]
        assert asc == sorted(asc) and len(asc) > 5
        assert driver.find_element(By.CSS_SELECTOR, f"#{table} thead th:nth-child(4)").get_attribute("aria-sort") == "ascending"
        header.click()
        desc = [float(v) for v in _column(driver, table, 3)]
        assert desc == sorted(desc, reverse=True)

        # filter with the text box: only rows mentioning min_k stay visible
        box = driver.find_element(By.CSS_SELECTOR, f'input.filter[data-table="{table}"]')
        box.send_keys("min_k")
        scorers = _column(driver, table, 0)
        assert scorers and all("min_k" in s for s in scorers)
        assert len(scorers) < len(desc)
        assert "of" in driver.find_element(By.ID, f"{table}-count").text
        # user text is shown as text, never run
        assert XSS in driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(str(ARTIFACTS / "overview.png"))

        # follow a link to a split page: verdict and diagnostics first, blind baseline pinned
        driver.find_element(By.CSS_SELECTOR, f"#{table} tbody.ranked tr:not([hidden]) td:nth-child(3) a").click()
        assert "/split/" in driver.current_url
        sections = [s.get_attribute("id") for s in driver.find_elements(By.CSS_SELECTOR, "main section")]
        assert sections[:4] == ["diagnostics", "controls", "card", "results"]
        assert driver.find_elements(By.CSS_SELECTOR, "tbody.pinned tr.blind")
        driver.save_screenshot(str(ARTIFACTS / "split.png"))

        # follow a link to a scorer page: ROC curves as SVG, linear and log-log
        driver.find_element(By.CSS_SELECTOR, "#results tbody.ranked td:first-child a:not(.permalink)").click()
        assert "/scorer/" in driver.current_url
        svgs = driver.find_elements(By.CSS_SELECTOR, "#roc svg")
        assert len(svgs) >= 2 and svgs[0].is_displayed()
        assert driver.find_elements(By.CSS_SELECTOR, "#roc svg polyline")
        assert any("log-log" in (s.get_attribute("aria-label") or "") for s in svgs)
        driver.save_screenshot(str(ARTIFACTS / "scorer.png"))

        assert _severe(driver) == []
    finally:
        logs = _severe(driver) if driver else []
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    assert logs == []
    for name in ("overview.png", "split.png", "scorer.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
