"""`overnight serve` as a user runs it: a real server process answering real HTTP requests with the
trained digits model, on SQLite and PostgreSQL. Every acknowledged answer is one row in SQL, also
across a SIGKILL and while the database is away; a promote swaps the answering model with no
failed request; bad requests get one clear 4xx."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pipeline.store import database, registry
from pipeline.store.tables import ONLINE, night_quality, predictions
from tests.tasks.serving import JSON, CuttableProxy, ServerProcess, digit_payloads

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("trained")]

TOKEN = "serve-test-token"
SHAPES = ("dataframe_records", "instances", "inputs", "dataframe_split")


def _body(images: list[str], shape: str, ids: list[str] | None = None) -> bytes:
    rows = [{"image": image, **({"image_id": ids[n]} if ids else {})} for n, image in enumerate(images)]
    if shape == "dataframe_split":
        columns = list(rows[0])
        document = {shape: {"columns": columns, "data": [[row[c] for c in columns] for row in rows]}}
    elif shape == "inputs":
        document = {shape: {column: [row[column] for row in rows] for column in rows[0]}}
    else:
        document = {shape: rows}
    return json.dumps(document).encode()


async def _post_all(url: str, bodies: list[bytes], *, concurrency: int, headers: dict) -> list:
    """Every body POSTed to /invocations, `concurrency` at a time: responses, or the error raised."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def post(body: bytes):
            async with gate:
                try:
                    return await client.post("/invocations", content=body, headers=headers)
                except httpx.HTTPError as error:
                    return error

        return await asyncio.gather(*(post(body) for body in bodies))


def _acknowledged(responses: list) -> Counter:
    """(example_id, model_version) of every row answered 'ok' by a 200 response."""
    found = Counter()
    for response in responses:
        if isinstance(response, httpx.Response) and response.status_code == 200:
            answer = response.json()
            for row in answer["predictions"]:
                if row["status"] == "ok":
                    found[row["example_id"], answer["model_version"]] += 1
    return found


def _online_rows(url: str) -> Counter:
    engine = database.connect(url)
    query = sa.select(predictions.c.example_id, predictions.c.model_version).where(predictions.c.origin == ONLINE)
    with engine.connect() as connection:
        return Counter(tuple(row) for row in connection.execute(query))


@pytest.fixture
def start_server():
    """start_server(config, url, cwd, **env) -> a running ServerProcess, killed at teardown if the
    test did not stop it (a failing test leaves no server behind)."""
    started: list[ServerProcess] = []

    def start(*arguments, **env) -> ServerProcess:
        started.append(ServerProcess(*arguments, **env))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.kill()


def _images(examples, tmp_path) -> list[str]:
    return digit_payloads(tmp_path / "data" / "incoming" / examples.nights[0])


def test_answers_follow_the_protocol_and_each_is_one_row_in_sql(trained, tmp_path, start_server):
    url, examples, config = trained
    images = _images(examples, tmp_path)
    with open(config, "a") as extra:
        extra.write("\n[serve]\nmax_body_bytes = 200000\nmax_rows = 50\n")
    server = start_server(config, url, tmp_path, OVERNIGHT_SERVE_TOKEN=TOKEN)
    auth = JSON | {"Authorization": f"Bearer {TOKEN}"}
    post = lambda body, headers=auth: httpx.post(f"{server.url}/invocations", content=body, headers=headers)  # noqa: E731

    # Refused whole, one line each, nothing stored.
    assert post(_body(images[:1], "instances"), JSON).status_code == 401
    assert post(_body(images[:1], "instances"), JSON | {"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    for body, status, words in [
        (b"{not json", 400, "not JSON"),
        (json.dumps({"instances": [{"image": images[0], "colour": "red"}]}).encode(), 400, "unknown column 'colour'"),
        (json.dumps({"instances": [{"image": images[0], "label": "3"}]}).encode(), 400, "is the label"),
        (json.dumps({"instances": [{"image_id": "x"}]}).encode(), 422, "missing columns 'image'"),
        (_body(images[:1] * 51, "instances"), 413, "at most 50"),
        (json.dumps({"instances": [{"image": "A" * 250_000}]}).encode(), 413, "max_body_bytes"),
    ]:
        response = post(body)
        assert response.status_code == status, response.text
        assert words in response.json()["message"] and "Traceback" not in response.text
    # Wrong types are rows rejected with their reason: the others of the request are scored.
    mixed = json.dumps({"instances": [{"image": images[0]}, {"image": 7}, {"image": "bm90IGFuIGltYWdl"}]})
    answer = post(mixed.encode()).json()
    assert [row["status"] for row in answer["predictions"]] == ["ok", "rejected", "rejected"]
    assert "base64" in answer["predictions"][1]["reason"]
    assert "a readable image" in answer["predictions"][2]["reason"]
    none_usable = post(json.dumps({"instances": [{"image": 7}]}).encode())
    assert none_usable.status_code == 422 and none_usable.json()["predictions"][0]["status"] == "rejected"

    # Under load, every shape, ids given or the server's: every row answered is stored once.
    bodies = [
        _body(
            images[n % len(images) : n % len(images) + 1 + n % 3],
            SHAPES[n % len(SHAPES)],
            [f"client-{n}-{k}" for k in range(3)] if n % 2 else None,
        )
        for n in range(400)
    ]
    responses = asyncio.run(_post_all(server.url, bodies, concurrency=16, headers=auth))
    assert [r.status_code for r in responses if isinstance(r, httpx.Response)] == [200] * len(bodies)
    acknowledged = _acknowledged(responses) + Counter(
        {(answer["predictions"][0]["example_id"], answer["model_version"]): 1}
    )
    assert max(acknowledged.values()) == 1
    metrics = httpx.get(f"{server.url}/metrics", headers=auth).text
    assert (
        "overnight_serve_journal_backlog_rows" in metrics and 'overnight_serve_requests_total{status="200"}' in metrics
    )
    assert server.wait_for_empty_journal()["database"] == "reachable"
    assert server.stop()

    stored = _online_rows(url)
    assert stored == acknowledged
    # The day's quality row counts them: the night report and prediction_quality_daily read it.
    today = datetime.now(UTC).date()
    with database.connect(url).connect() as connection:
        (counted,) = connection.execute(
            sa.select(night_quality.c.predicted).where(
                night_quality.c.batch_date == today, night_quality.c.origin == ONLINE
            )
        ).one()
    assert counted == sum(stored.values())


# The journal and its replay are the same on both databases (the protocol test loads into both):
# the kill runs on SQLite, the outage and the promote on PostgreSQL, to keep the suite's minutes.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_server_killed_mid_load_loses_and_doubles_nothing_it_acknowledged(trained, tmp_path, start_server):
    url, examples, config = trained
    images = _images(examples, tmp_path)
    server = start_server(config, url, tmp_path)

    async def load_then_kill():
        bodies = [_body([images[n % len(images)]], "instances") for n in range(3000)]
        sending = asyncio.create_task(_post_all(server.url, bodies, concurrency=16, headers=JSON))
        await asyncio.sleep(2.0)
        server.kill()
        return await sending

    responses = asyncio.run(load_then_kill())
    acknowledged = _acknowledged(responses)
    failed = sum(1 for r in responses if not isinstance(r, httpx.Response))
    assert len(acknowledged) > 20 and failed > 0  # the kill came mid-load

    restarted = start_server(config, url, tmp_path)
    restarted.wait_for_empty_journal()
    assert restarted.stop()
    stored = _online_rows(url)
    assert max(stored.values()) == 1
    assert set(acknowledged) <= set(stored)  # nothing acknowledged is lost
    # Rows journaled but never answered (the kill came between the fsync and the reply) may be
    # stored too: a handful at most, one group's.
    assert len(set(stored) - set(acknowledged)) <= 16


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_journal_holds_answers_while_the_database_is_away_then_loads_them(trained, tmp_path, start_server):
    url, examples, config = trained
    images = _images(examples, tmp_path)
    real = sa.engine.make_url(url)
    proxy = CuttableProxy(real.host or "127.0.0.1", real.port or 5432)
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = start_server(config, through_proxy, tmp_path)
    try:
        before = asyncio.run(
            _post_all(server.url, [_body([i], "instances") for i in images], concurrency=8, headers=JSON)
        )
        server.wait_for_empty_journal()
        proxy.cut()
        during = asyncio.run(
            _post_all(server.url, [_body([i], "inputs") for i in images * 3], concurrency=8, headers=JSON)
        )
        assert all(isinstance(r, httpx.Response) and r.status_code == 200 for r in during)  # still answered
        time.sleep(2.5)  # the loader tries, fails, keeps the rows
        health = server.health()
        assert health["database"] == "unreachable" and health["journal_backlog_rows"] == len(images) * 3
        proxy.mend()
        server.wait_for_empty_journal()
        assert server.stop()
    finally:
        proxy.close()
    assert _online_rows(url) == _acknowledged(before) + _acknowledged(during)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_promote_during_load_changes_the_answering_model_with_no_failed_request(trained, tmp_path, start_server):
    url, examples, config = trained
    images = _images(examples, tmp_path)
    engine = database.connect(url)
    current = registry.production(engine)
    with open(config, "a") as extra:
        extra.write("\n[serve]\nreload_seconds = 0.5\n")
    server = start_server(config, url, tmp_path)
    # The same files registered again under a new version: what a retrained model looks like to the server.
    registry.register(
        engine,
        version="v2-same-files",
        run_id=None,
        path=current["path"],
        sha256=current["sha256"],
        task=current["task"],
        data_version=current["data_version"],
        evaluation_path=None,
        headline=None,
        metrics=None,
        actor="test",
    )

    async def load_and_promote():
        bodies = [_body([images[n % len(images)]], "dataframe_records") for n in range(600)]
        sending = asyncio.create_task(_post_all(server.url, bodies, concurrency=8, headers=JSON))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(registry.promote, engine, "v2-same-files", actor="test", reason="swap under load")
        return await sending

    responses = asyncio.run(load_and_promote())
    assert all(isinstance(r, httpx.Response) and r.status_code == 200 for r in responses)
    versions = [r.json()["model_version"] for r in responses]
    assert versions[0] == current["version"] and versions[-1] == "v2-same-files"
    switched = versions.index("v2-same-files")
    assert all(version == "v2-same-files" for version in versions[switched + 8 :])  # in flight at the swap: 8
    assert server.health()["model_version"] == "v2-same-files"
    server.wait_for_empty_journal()
    assert server.stop()
    assert _online_rows(url) == _acknowledged(responses)


def _counted(metrics: str, name: str) -> dict[str, float]:
    """{label set: value} of one metric in Prometheus's text format."""
    found = {}
    for line in metrics.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line[len(name) :].rpartition(" ")
            found[labels] = float(value)
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_count_every_worker_s_answers_whichever_worker_is_scraped(trained, tmp_path, start_server):
    url, examples, config = trained
    images = _images(examples, tmp_path)
    server = start_server(config, url, tmp_path, "--workers", "2")
    deadline = time.monotonic() + 60
    while len(_counted(httpx.get(f"{server.url}/metrics").text, "overnight_serve_model")) < 2:  # a row per worker
        assert time.monotonic() < deadline, "the second worker did not start"
        time.sleep(0.5)

    bodies = [_body([images[n % len(images)]], "instances") for n in range(60)]
    responses = asyncio.run(_post_all(server.url, bodies, concurrency=8, headers=JSON))
    assert [r.status_code for r in responses] == [200] * 60
    for _ in range(6):  # each scrape may reach either worker: each sums both
        metrics = httpx.get(f"{server.url}/metrics").text
        assert _counted(metrics, "overnight_serve_requests_total") == {'{status="200"}': 60.0}, metrics
        assert _counted(metrics, "overnight_serve_rows_total")['{outcome="scored"}'] == 60.0
    server.wait_for_empty_journal()
    assert server.stop()
    assert sum(_online_rows(url).values()) == 60


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_night_s_drift_check_reads_the_images_answered_online_that_day(trained, tmp_path, start_server):
    import shutil

    from pipeline.artifacts.monitoring import DriftFolder
    from tasks import Nightly
    from tests.tasks.support import build, fresh

    url, examples, config = trained
    images = _images(examples, tmp_path)
    server = start_server(config, url, tmp_path)
    bodies = [_body([images[n % len(images)]], "instances") for n in range(24)]
    responses = asyncio.run(_post_all(server.url, bodies, concurrency=4, headers=JSON))
    assert [r.status_code for r in responses] == [200] * 24
    server.wait_for_empty_journal()
    assert server.stop()

    with database.connect(url).connect() as connection:
        kept = connection.execute(
            sa.select(predictions.c.batch_date, predictions.c.inputs).where(predictions.c.origin == ONLINE)
        ).all()
    days = {row.batch_date for row in kept}
    assert len(kept) == 24 and len(days) == 1
    day = days.pop()
    # Each row names its image under the server's folder for that day, never the request's bytes.
    named = [json.loads(row.inputs)["image"] for row in kept]
    assert all(name.startswith(f"{day.isoformat()}/") for name in named)
    assert all((tmp_path / "data" / "serving" / "images" / name).is_file() for name in named)

    # That day's night, with one night's files: its drift is measured over both, the images read.
    shutil.copytree(tmp_path / "data" / "incoming" / examples.nights[0], tmp_path / "data" / "incoming" / str(day))
    drift = fresh(Nightly, date=day).requires()["drift"]
    build(drift)
    summary = DriftFolder(Path(drift.output().path)).summary()
    assert summary["online_rows"] == 24, summary
