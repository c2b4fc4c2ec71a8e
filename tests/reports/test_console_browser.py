"""The officer console in a real browser: Debian's chromium driven by chromium-driver (offline,
no browser download), against `baomi server run` over HTTPS on loopback. An officer signs in,
filters by level, opens a violation, assigns it, records the rectification and closes it; a file
named `<script>…</script>` renders as text. Screenshots go to the test artefacts."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from audit_helpers import BAOMI, Collector

from reports.render.fixture import build_sample_log
from reports.server import load_data

ARTEFACTS = Path(os.environ.get("BAOMI_ARTEFACTS") or Path(__file__).parent.parent / "artefacts") / "console"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="Debian chromium and chromium-driver are not installed "
    "(make test installs them from .ci/debian-packages-test.txt)")


@pytest.fixture
def served(sqlite_data: Path) -> Iterator[Collector]:
    data = load_data(sqlite_data)
    store = data.open_store()
    try:
        build_sample_log(store, data.key, n_findings=200)
    finally:
        store.close()
    r = subprocess.run([*BAOMI, "server", "user", "add", "officer1", "--role", "officer", "--data", str(sqlite_data),
                        "--password-file", "-"], input="officer-pass-1\n", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    c = Collector(sqlite_data).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1000", "--lang=zh-CN", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              # the collector's own private CA: the test trusts it for loopback only
              "--ignore-certificate-errors"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    drv.set_page_load_timeout(60)
    drv.implicitly_wait(15)  # after a click the next page may still be loading on a busy machine
    try:
        yield drv
    finally:
        drv.quit()


def shot(drv: object, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(ARTEFACTS / f"{name}.png"))  # type: ignore[attr-defined]


def test_officer_follows_a_violation_up_in_chromium(served: Collector, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    drv = browser
    find = drv.find_element  # type: ignore[attr-defined]

    def submit(element: object) -> None:
        """Click what loads the next page and wait until it has replaced this one: reading the
        next page's fields while the old page is still shown read a field that then went stale
        (seen once in a clean-clone CI run on a busy machine)."""
        page = find(By.TAG_NAME, "html")
        element.click()  # type: ignore[attr-defined]
        WebDriverWait(drv, 60).until(expected_conditions.staleness_of(page))

    drv.get(served.url + "/violations")  # type: ignore[attr-defined]
    assert "登录" in drv.title  # type: ignore[attr-defined]
    find(By.ID, "name").send_keys("officer1")
    find(By.ID, "password").send_keys("officer-pass-1")
    submit(find(By.ID, "signin"))
    # back on the page asked for, signed in
    assert find(By.ID, "count").text.startswith("共")
    assert "违规事项" in find(By.TAG_NAME, "h1").text
    shot(drv, "01-violations")

    # the hostile file name is text, not markup: no alert, the name readable as written
    rows_text = find(By.ID, "violations").text
    assert "<script>alert(1)</script>.docx" in rows_text
    assert drv.execute_script("return document.scripts.length") == 0  # type: ignore[attr-defined]

    Select(find(By.ID, "f-level")).select_by_value("secret")
    submit(find(By.ID, "apply"))
    levels = {td.text for td in drv.find_elements(By.CSS_SELECTOR, "#violations td.lv")}  # type: ignore[attr-defined]
    assert levels == {"机密"}
    shot(drv, "02-filtered-secret")
    Select(find(By.ID, "f-status")).select_by_value("unassigned")
    submit(find(By.ID, "apply"))
    link = find(By.CSS_SELECTOR, "#violations td.path a")
    path = link.text
    submit(link)
    assert find(By.ID, "status").text == "待交办"
    assert find(By.ID, "path").text == path
    assert len(find(By.ID, "sha256").text) == 64
    assert find(By.ID, "chainpos").text.startswith("#")
    shot(drv, "03-detail")

    deadline = (date.today() + timedelta(days=10)).isoformat()
    find(By.ID, "owner-input").send_keys("张三")
    # a date input takes the date typed in the browser's locale order; set it as ISO instead
    drv.execute_script("arguments[0].value = arguments[1]", find(By.ID, "deadline-input"), deadline)  # type: ignore[attr-defined]
    submit(find(By.ID, "assign"))
    assert find(By.ID, "status").text == "整改中"
    assert find(By.ID, "owner").text == "张三" and find(By.ID, "deadline").text == deadline
    shot(drv, "04-assigned")

    find(By.ID, "rectification").send_keys("已删除外发副本，重新定密")
    find(By.ID, "explanation").send_keys("经办人误将文件拷入外网机")
    submit(find(By.ID, "rectify"))
    assert find(By.ID, "status").text == "已整改"
    assert "已删除外发副本，重新定密" in find(By.ID, "steps").text
    shot(drv, "05-rectified")

    find(By.ID, "conclusion").send_keys("整改到位，同意办结")
    submit(find(By.ID, "close"))
    assert find(By.ID, "status").text == "已办结"
    steps = find(By.ID, "steps").text
    assert steps.count("officer1") == 3 and "整改到位" in steps
    drv.implicitly_wait(0)
    assert not drv.find_elements(By.ID, "assign-form")  # type: ignore[attr-defined]
    drv.implicitly_wait(15)
    shot(drv, "06-closed")

    # the dashboard counts it as closed; its charts are images served by the console
    drv.get(served.url + "/")  # type: ignore[attr-defined]
    assert "已办结" in find(By.TAG_NAME, "main").text
    imgs = drv.find_elements(By.CSS_SELECTOR, ".charts img")  # type: ignore[attr-defined]
    assert len(imgs) == 4 and all(drv.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs)  # type: ignore[attr-defined]
    shot(drv, "07-dashboard")
