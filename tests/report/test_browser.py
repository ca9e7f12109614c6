"""The reports as a person sees them: Debian's Chromium, driven headless by Selenium through ChromeDriver.

A small runs folder of hand-made experiments and runs (``report_dirs.build_tree``: real PNGs, a table, an mp4,
claims.json old and new, HTML in labels, config values, a claim and a message) gets its gallery and reports built,
then every page reachable from the gallery is opened and checked: no console errors, every picture and video
loads, every relative link reaches a file, no script runs and text holding HTML reads as that text. Screenshots
of the gallery and an experiment report go to ``test-artifacts/`` (or ``$ATHANOR_TEST_ARTIFACTS``).

Needs ``chromium``, ``chromium-driver`` (Debian packages, at /usr/bin) and the ``selenium`` package:
``scripts/install-browser.sh`` installs the browser. Without them the tests skip, except under CI (env ``CI``
set), where a missing browser fails. Selenium Manager is never used: the driver's path is given explicitly, so
nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import pytest

from athanor.report.html import gallery
from report_dirs import HTML_TEXT, build_tree

CHROMIUM = os.environ.get("ATHANOR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ATHANOR_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = ("install it with scripts/install-browser.sh (apt-get install -y chromium chromium-driver) and "
           "`pip install -e '.[test]'` (selenium)")
REPO = Path(__file__).resolve().parents[2]
WIDTH, MAX_HEIGHT = 1280, 8000


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed"
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{what} is not at {path}"
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _artifacts_dir() -> Path:
    return Path(os.environ.get("ATHANOR_TEST_ARTIFACTS") or REPO / "test-artifacts")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (and per xdist worker), with its own profile folder."""
    missing = _missing()
    if missing:
        message = f"browser tests need Chromium, ChromeDriver and Selenium: {missing}; {INSTALL}"
        if _in_ci():
            pytest.fail(f"{message} (CI is set, so a missing browser is a failure)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="athanor-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--mute-audio", f"--window-size={WIDTH},900", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")  # an alert stays open, for the test to find
    # The driver's path given here means Selenium Manager is skipped: nothing is looked up or downloaded.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tree = build_tree(tmp_path_factory.mktemp("site") / "runs")
    tree["index"] = gallery(tree["root"])
    return tree


def _path_of(url: str) -> Path:
    parts = urlsplit(url)
    assert parts.scheme == "file", url
    return Path(url2pathname(unquote(parts.path)))


def _alert_text(driver) -> str | None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return None
    text = alert.text
    alert.dismiss()
    return text


def _open(driver, path: Path) -> list[dict]:
    """Load ``path`` and wait until every picture and video has loaded or failed; returns the console log."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.set_window_size(WIDTH, 900)
    driver.get(path.as_uri())
    assert _alert_text(driver) is None, f"{path.name}: a script ran and opened an alert"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(int(height) + 140, MAX_HEIGHT))  # the whole page, as a screenshot shows it
    # Lazy pictures far below the fold would wait for a scroll: ask for them now, then wait for every medium.
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const waits = [];
        for (const img of document.images) {
            img.loading = "eager";
            if (!img.complete) waits.push(new Promise(r => { img.onload = img.onerror = r; }));
        }
        for (const v of document.querySelectorAll("video")) {
            if (v.readyState < 1 && !v.error) {
                waits.push(new Promise(r => { v.onloadedmetadata = v.onerror = r; }));
                v.load();
            }
        }
        Promise.all(waits).then(() => done(true));
        setTimeout(() => done(false), 10000);
    """)
    return driver.get_log("browser")


def _check_page(driver, path: Path, root: Path) -> list[Path]:
    """Every check a person's eye would make on one page; returns the report pages it links to."""
    log = _open(driver, path)
    errors = [e for e in log if e.get("level") in ("SEVERE", "ERROR")]
    assert not errors, f"{path.relative_to(root)}: console errors {errors}"
    assert driver.execute_script("return document.scripts.length") == 0, "pages carry no script"
    assert driver.execute_script("return document.querySelectorAll('[onerror], [onload]').length") == 0
    broken = driver.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    assert not broken, f"{path.relative_to(root)}: pictures that do not load: {broken}"
    videos = driver.execute_script(
        "return [...document.querySelectorAll('video')].map(v => [v.currentSrc || v.src, v.readyState, "
        "v.error && v.error.code, v.videoWidth])")
    for src, ready, error, width in videos:
        assert error is None and ready >= 1 and width > 0, f"{path.relative_to(root)}: video {src} does not play " \
            f"(readyState {ready}, error code {error})"
    pages = []
    links = driver.execute_script(
        "return [...document.querySelectorAll('a[href], img[src], video[src], source[src]')]"
        ".map(e => [e.getAttribute('href') || e.getAttribute('src'), e.href || e.src])")
    for raw, resolved in links:
        assert "://" not in raw and not raw.startswith(("/", "javascript:", "data:")), \
            f"{path.relative_to(root)}: a link that is not relative: {raw}"
        target = _path_of(resolved)
        assert target.is_file(), f"{path.relative_to(root)}: link {raw} -> {target} is missing"
        assert root in target.parents, f"{path.relative_to(root)}: link {raw} leaves the runs folder"
        if target.suffix == ".html":
            pages.append(target)
    return pages


def test_every_page_loads_with_its_pictures_videos_and_links(browser, site):
    root, seen, queue = site["root"], set(), deque([site["index"]])
    while queue:
        page = queue.popleft()
        if page in seen:
            continue
        seen.add(page)
        queue.extend(_check_page(browser, page, root))
    expected = {site["index"], site["single"] / "report.html"}
    for exp in site["experiments"]:
        expected |= {exp / "report.html", *exp.glob("*/report.html")}
    assert seen == expected  # the gallery reaches every experiment report and every run report


def test_html_in_labels_config_and_claims_is_shown_as_text(browser, site):
    generative = site["experiments"][0]
    for page in (site["index"], generative / "report.html", site["single"] / "report.html",
                 generative / "gan_s1" / "report.html"):
        _open(browser, page)
        assert _alert_text(browser) is None
        text = browser.execute_script("return document.body.textContent")
        assert HTML_TEXT in text, f"{page.name}: the HTML text is not shown as text"
        assert browser.execute_script("return document.querySelectorAll('img[src=x], script').length") == 0
        # and it reads: the visible text (innerText) holds it too, not only hidden markup
        assert HTML_TEXT in browser.execute_script("return document.body.innerText")


def test_claims_table_reads_per_check(browser, site):
    _open(browser, site["experiments"][0] / "report.html")
    rows = browser.execute_script(
        "return [...document.querySelectorAll('table.claims tbody.claim')].map(b => b.innerText)")
    assert len(rows) == 3
    assert "reproduced" in rows[0] and "4, 3, 5" in rows[0] and "> 0" in rows[0]
    assert "leans" in rows[1] and "in [0.5, 2]" in rows[1] and ">= 2" in rows[1]
    rule = browser.execute_script("return [...document.querySelectorAll('p.rule')].map(p => p.innerText)")
    assert len(rule) == 2 and rule[0].startswith("Interval:") and rule[1].startswith("Verdict rule:")


def test_screenshots_of_the_gallery_and_an_experiment_report(browser, site):
    out = _artifacts_dir()
    out.mkdir(parents=True, exist_ok=True)
    for page, name in ((site["index"], "gallery.png"), (site["experiments"][0] / "report.html",
                                                          "experiment-report.png"),
                       (site["single"] / "report.html", "run-report.png")):
        _open(browser, page)
        tmp = out / f".{name}.{os.getpid()}.tmp.png"
        assert browser.save_screenshot(str(tmp)), name
        os.replace(tmp, out / name)  # whole files only, whichever xdist worker writes last
        assert (out / name).stat().st_size > 10_000
