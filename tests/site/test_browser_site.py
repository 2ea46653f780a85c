"""The built leaderboard in a real browser: headless Chromium (Debian's) driven by Selenium.

Opens the overview from disk (no server: tabs, sorting and filtering run in the page): the
overview figure of a track, switching tracks and tables with their tabs, every table within
the page width, sorting a column, filtering, a permalink into a hidden track; follows links
to a split page (verdict, results table, data card, in that order) and a scorer page (the
definition, the ROC SVGs); then opens /docs from a live server with no network in reach of
the page's assets. Saves a screenshot of each page under test-artifacts/ and checks the
browser console stayed free of errors. Without Chromium (and chromium-driver) the test skips,
except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmark.server import create_app
from benchmark.site import build_site
from site_helpers import XSS, live_server, make_results

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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


def _overflowing_tables(driver) -> list[str]:
    """Displayed tables wider than their block (which would need a horizontal scroll)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.table-block')).filter(function (b) {"
        "  return b.offsetParent !== null && b.scrollWidth > b.clientWidth + 1; }).map(function (b) { return b.id; });"
    )


def test_overview_figure_tabs_tables_split_page_scorer_page_and_offline_docs(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    results = make_results(tmp_path / "results", published=True)
    report = build_site(results, tmp_path / "site")
    assert report.n_results > 0 and not report.rejected
    ARTIFACTS.mkdir(exist_ok=True)
    driver = _driver(tmp_path / "profile")
    try:
        driver.get(report.index.as_uri())
        assert "membench" in driver.title

        # the overview figure of the first track: each scorer's AUC beside the blind baseline
        pre = driver.find_element(By.ID, "section-pretraining")
        figures = pre.find_elements(By.CSS_SELECTOR, "#figure-pretraining svg.overview")
        assert len(figures) == 2 and all(f.is_displayed() and f.size["width"] > 300 for f in figures)
        assert len(figures[0].find_elements(By.CSS_SELECTOR, "g.row circle")) >= 3
        assert figures[0].find_elements(By.CSS_SELECTOR, "line.blind-line")
        # one track and one table shown by default, the others one click away
        assert not driver.find_element(By.ID, "section-control").is_displayed()
        assert driver.find_element(By.ID, "track-pretraining").is_displayed()
        assert not driver.find_element(By.ID, "matrix-pretraining").is_displayed()
        assert _overflowing_tables(driver) == []
        driver.save_screenshot(str(ARTIFACTS / "overview.png"))

        table = "track-pretraining"
        header = driver.find_element(By.CSS_SELECTOR, f"#{table} thead th:nth-child(4) button")
        header.click()
        asc = [float(v.split()[0]) for v in _column(driver, table, 3)]
        assert asc == sorted(asc) and len(asc) > 5
        assert driver.find_element(By.CSS_SELECTOR, f"#{table} thead th:nth-child(4)").get_attribute("aria-sort") == "ascending"
        header.click()
        desc = [float(v.split()[0]) for v in _column(driver, table, 3)]
        assert desc == sorted(desc, reverse=True)

        box = driver.find_element(By.CSS_SELECTOR, f'input.filter[data-table="{table}"]')
        box.send_keys("LOSS")
        scorers = _column(driver, table, 0)
        assert scorers and all("LOSS" in s for s in scorers) and len(scorers) < len(desc)
        assert "of" in driver.find_element(By.ID, f"{table}-count").text
        assert XSS in driver.find_element(By.TAG_NAME, "body").text  # user text is shown as text, never run

        driver.find_element(By.CSS_SELECTOR, 'button[data-tab="panel-matrix-pretraining"]').click()
        assert driver.find_element(By.ID, "matrix-pretraining").is_displayed()
        assert not driver.find_element(By.ID, "track-pretraining").is_displayed()
        driver.find_element(By.CSS_SELECTOR, 'button[data-tab="section-control"]').click()
        assert driver.find_element(By.ID, "section-control").is_displayed() and not pre.is_displayed()
        assert driver.find_element(By.CSS_SELECTOR, "#figure-control svg.overview").is_displayed()
        assert _overflowing_tables(driver) == []
        driver.find_element(By.CSS_SELECTOR, 'button[data-tab="section-pretraining"]').click()

        # a permalink to a row of a hidden track opens that track
        row_id = driver.find_element(By.CSS_SELECTOR, "#track-control tbody.ranked tr").get_attribute("id")
        driver.get(report.index.as_uri() + "#" + row_id)
        assert driver.find_element(By.ID, row_id).is_displayed()
        assert not driver.find_element(By.ID, "section-pretraining").is_displayed()

        # a split page: verdict (with its figure), results table, data card, in that order
        driver.get(report.index.as_uri())
        driver.find_element(By.CSS_SELECTOR, "#track-pretraining tbody.ranked tr td:nth-child(3) a").click()
        assert "/split/" in driver.current_url
        sections = [s.get_attribute("id") for s in driver.find_elements(By.CSS_SELECTOR, "main section")]
        assert sections[:3] == ["verdict", "results", "card"]
        assert driver.find_element(By.CSS_SELECTOR, "#verdict svg.overview").is_displayed()
        assert driver.find_element(By.CSS_SELECTOR, "#verdict .badge.verdict").is_displayed()
        assert driver.find_elements(By.CSS_SELECTOR, "#results tbody.pinned tr.blind")
        assert "labels of this split are public" in driver.find_element(By.ID, "verdict").text
        assert _overflowing_tables(driver) == []
        driver.save_screenshot(str(ARTIFACTS / "split.png"))

        # values papers reported: a column beside the AUC; reported-only rows after the ranked ones,
        # sorted among themselves, filtered with them; each links its row on the paper's page
        split_url = driver.current_url
        driver.get((report.out_dir / "split" / "wikimia-32.html").as_uri())
        tid = "split-wikimia-32"
        heads = [h.text.strip() for h in driver.find_elements(By.CSS_SELECTOR, f"#{tid} thead th")]
        at = heads.index("reported")
        assert heads[at - 1].startswith("AUC")
        only = f"#{tid} tbody.reported-only tr"
        assert len(driver.find_elements(By.CSS_SELECTOR, only)) > 10
        bodies = "return Array.from(document.querySelectorAll('#%s tbody tr')).map(function (r) { return r.parentNode.className; });" % tid
        order = ["pinned", "ranked", "reported-only"]
        for _ in range(2):  # ascending, then descending
            driver.find_element(By.CSS_SELECTOR, f"#{tid} thead th:nth-child({at + 1}) button").click()
            kinds = driver.execute_script(bodies)
            assert kinds == sorted(kinds, key=order.index) and kinds[-1] == "reported-only"
            values = [float(r.find_elements(By.TAG_NAME, "td")[at].get_attribute("data-sort"))
                      for r in driver.find_elements(By.CSS_SELECTOR, only)]
            ascending = driver.find_element(By.CSS_SELECTOR, f"#{tid} thead th:nth-child({at + 1})").get_attribute("aria-sort") == "ascending"
            assert values == sorted(values, reverse=not ascending)
        assert all("reported only" in r.text for r in driver.find_elements(By.CSS_SELECTOR, only))
        driver.find_element(By.CSS_SELECTOR, f'input.filter[data-table="{tid}"]').send_keys("LLaMA-13B")
        shown = [r for r in driver.find_elements(By.CSS_SELECTOR, f"#{tid} tbody tr") if r.is_displayed()]
        assert shown and all("LLaMA-13B" in r.text for r in shown if "blind" not in (r.get_attribute("class") or ""))
        assert _overflowing_tables(driver) == []
        link = next(a for a in driver.find_elements(By.CSS_SELECTOR, f"{only} .reported-value a") if a.is_displayed())
        anchor = link.get_attribute("href").split("#", 1)[1]
        link.click()
        assert "/paper/zhang2025minkpp.html" in driver.current_url
        assert driver.find_element(By.ID, anchor).is_displayed()
        assert "reported only" in driver.find_element(By.ID, "status").text
        assert _overflowing_tables(driver) == []
        driver.save_screenshot(str(ARTIFACTS / "paper.png"))
        driver.get(split_url)

        # a scorer page: paper name, definition from the docstring, ROC curves linear and log-log
        driver.find_element(By.CSS_SELECTOR, "#results tbody.ranked td:first-child a:not(.permalink)").click()
        assert "/scorer/" in driver.current_url
        assert driver.find_element(By.CSS_SELECTOR, "#definition pre.definition").text.strip()
        svgs = driver.find_elements(By.CSS_SELECTOR, "#roc svg")
        assert len(svgs) >= 2 and svgs[0].is_displayed()
        assert any("log-log" in (s.get_attribute("aria-label") or "") for s in svgs)
        assert _overflowing_tables(driver) == []
        driver.save_screenshot(str(ARTIFACTS / "scorer.png"))
        assert _severe(driver) == []

        # /docs from a live server renders Swagger UI from local assets
        with live_server(create_app(report.out_dir, results, include_submissions=False)) as base:
            driver.get(f"{base}/docs")
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"))
            assert "membench" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
            assert driver.find_elements(By.CSS_SELECTOR, ".opblock")  # the operations are listed
            driver.save_screenshot(str(ARTIFACTS / "docs.png"))
        assert _severe(driver) == []
    finally:
        logs = _severe(driver) if driver else []
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    assert logs == []
    for name in ("overview.png", "split.png", "paper.png", "scorer.png", "docs.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
