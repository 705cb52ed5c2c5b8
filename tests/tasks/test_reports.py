"""Reports in a real browser: every image loads, the console stays clean, the sections are there.

Headless Chromium (the Debian package's /usr/bin/chromium) driven by Playwright for Python.
Without that browser the tests skip, except under CI=true, where they fail: CI must never pass
by not looking. Set OVERNIGHT_REPORT_SCREENSHOTS=<folder> to keep a full-page screenshot of
each report for a person to look at.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from luigi.execution_summary import LuigiStatusCode

from pipeline.examples import write_examples
from pipeline.store import database
from tasks import EvaluateModel, Nightly, RegisterModel, TrainModel
from tasks.cli import main as overnight
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PER_NIGHT = 40

OPEN_REPORT = """() => ({
    images: [...document.images].map(image => ({complete: image.complete, width: image.naturalWidth,
                                                 height: image.naturalHeight, cls: image.className,
                                                 src: image.getAttribute('src').slice(0, 22)})),
    headings: [...document.querySelectorAll('h1, h2, h3')].map(h => h.textContent.trim()),
    banners: [...document.querySelectorAll('.banner')].map(b => b.className),
    snippets: [...document.querySelectorAll('.snippet')].map(s => s.textContent),
    alertRows: document.querySelectorAll('tr.alert').length,
    scripts: document.scripts.length,
})"""


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the browser tests must run, not skip)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_report(browser, path: Path, screenshot_name: str) -> dict:
    """Load the report as a person would (file://) and collect what the page says about itself."""
    assert path.is_file(), path
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console_errors, page_errors, requests = [], [], []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        found = page.evaluate(OPEN_REPORT)
        folder = os.environ.get("OVERNIGHT_REPORT_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{screenshot_name}.png"), full_page=True)
    finally:
        page.close()
    assert not console_errors, console_errors
    assert not page_errors, page_errors
    # The page itself, and data URIs: nothing fetched from anywhere else.
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    assert found["images"], "no image at all"
    for image in found["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["src"] == "data:image/png;base64,", image
    assert found["scripts"] == 0
    return found


def evaluation_run_id(config_dir: Path) -> str:
    url = f"sqlite:///{config_dir / 'data' / 'overnight.db'}"
    with database.connect(url).connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT run_id FROM runs WHERE task = 'EvaluateModel' AND status = 'succeeded' ORDER BY started_at DESC"
            )
        ).scalar()


@pytest.mark.parametrize(
    "data, dataset, extra",
    [
        ("digits_folder", {}, {"TrainModel": {"architecture": "cnn"}}),
        ("text_csv", {"label": "sentiment"}, {}),
        ("tabular_csv", {"slice_column": "island"}, {}),
    ],
    ids=["digits", "text", "tabular"],
)
def test_evaluation_report_opens_with_every_plot_and_the_worst_examples(
    browser, configure, request, tmp_path, data, dataset, extra
):
    configure(dataset={"path": str(request.getfixturevalue(data)), **dataset}, **extra)
    result = build(EvaluateModel())
    assert result.status in SUCCEEDED, result.summary_text
    report = Path(fresh(EvaluateModel).output().path) / "report.html"
    found = open_report(browser, report, f"evaluation-{request.node.callspec.id}")

    headings = found["headings"]
    assert headings[0].startswith("Evaluation report: classification, headline accuracy = ")
    for heading in ("Metrics", "Learning curves", "Confusion matrix", "Calibration", "Worst 12 test examples"):
        assert heading in headings, headings
    assert ("Per-slice metrics" in headings) == (data == "tabular_csv")
    assert len(found["banners"]) == 1 and "banner" in found["banners"][0]
    thumbnails = [image for image in found["images"] if image["cls"] == "thumbnail"]
    if data == "digits_folder":
        # 8x8 digits, upscaled so that a person can read them.
        assert len(thumbnails) == 12 and all(image["width"] == 64 for image in thumbnails)
    else:
        assert not thumbnails
    if data == "text_csv":
        assert len(found["snippets"]) == 12 and all("indeed" in snippet for snippet in found["snippets"])

    # `overnight report RUN_ID` (or the first characters of it) prints this very file.
    run_id = evaluation_run_id(tmp_path)
    runner = CliRunner()
    for given in (run_id, run_id[:8]):
        printed = runner.invoke(overnight, ["report", given])
        assert printed.exit_code == 0 and printed.output.strip() == str(report), printed.output


def test_report_command_resolves_a_training_run_and_fails_in_one_line(configure, digits_folder, tmp_path):
    configure(dataset={"path": str(digits_folder)}, TrainModel={"architecture": "cnn"})
    assert build(EvaluateModel()).status in SUCCEEDED
    report = Path(fresh(EvaluateModel).output().path) / "report.html"
    url = f"sqlite:///{tmp_path / 'data' / 'overnight.db'}"
    with database.connect(url).connect() as connection:
        training = connection.execute(sa.text("SELECT run_id FROM runs WHERE task = 'TrainModel'")).scalar()
        ingest = connection.execute(sa.text("SELECT run_id FROM runs WHERE task = 'IngestData'")).scalar()
    runner = CliRunner()
    printed = runner.invoke(overnight, ["report", training])
    assert printed.exit_code == 0 and printed.output.strip() == str(report), printed.output
    for arguments, message in (
        (["report", "no-such-run"], "matches no run"),
        (["report", ingest], "is a run of IngestData"),
        (["report", "--date", "2031-01-01"], "no nightly report for 2031-01-01"),
    ):
        failed = runner.invoke(overnight, arguments)
        assert failed.exit_code != 0 and message in failed.output, failed.output
        assert len(failed.output.strip().splitlines()) == 1, failed.output
    both = runner.invoke(overnight, ["report", training, "--date", "2031-01-01"])
    assert both.exit_code != 0 and "not both" in both.output


def test_nightly_reports_tell_a_drifted_night_from_a_normal_one(browser, configure, tmp_path):
    data = tmp_path / "data"
    examples = write_examples(data, nights=3, per_night=PER_NIGHT)
    configure(dataset={"path": str(data / "raw" / "digits")}, TrainModel={"architecture": "cnn", "epochs": "3"})
    assert build(RegisterModel()).status in SUCCEEDED
    model = fresh(TrainModel).version
    first, second, shifted = (datetime.date.fromisoformat(night) for night in examples.nights)
    for night in (first, second):
        assert build(fresh(Nightly, date=night)).status in SUCCEEDED
    alarmed = build(fresh(Nightly, date=shifted))
    assert alarmed.status == LuigiStatusCode.FAILED

    runner = CliRunner()
    reports = {}
    for night in (second, shifted):
        path = data / "09_monitoring" / night.isoformat() / f"report-{model}.html"
        printed = runner.invoke(overnight, ["report", "--date", night.isoformat()])
        assert printed.exit_code == 0 and printed.output.strip() == str(path), printed.output
        reports[night] = open_report(browser, path, f"nightly-{night.isoformat()}")

    for found in reports.values():
        for heading in ("Rows per night", "Drift per feature", "Predicted classes", "Live quality", "This night"):
            assert heading in found["headings"], found["headings"]
        assert len(found["images"]) == 4  # rows, drift, classes, and live quality from the first night's labels
    normal, drifted = reports[second], reports[shifted]
    assert normal["banners"] == ["banner good"] and normal["alertRows"] == 0
    assert drifted["banners"] == ["banner bad"] and drifted["alertRows"] >= 2  # the night's row and its alerts
    assert drifted["headings"][0] == f"Nightly report {shifted.isoformat()}"
