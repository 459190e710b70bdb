"""HttpJsonSource against a JSON API served by the test itself on 127.0.0.1."""

import json
import threading
import time
from collections import Counter
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandera.pandas as pa
import pytest

from ml_assets.core.day_files import validate_files
from ml_assets.sources import HttpJsonSource, SourceError, pull_day

DAY = date(2026, 1, 5)
FAST = {"backoff_s": 0.01, "timeout_s": 2.0}  # retries in milliseconds: the tests wait on nothing


class Api:
    """Routes: path -> fn(query, attempt on that path, headers) -> (status, JSON body) or None to hang."""

    def __init__(self):
        self.routes, self.hits, self.headers = {}, Counter(), []
        self.release = threading.Event()  # set at teardown: hung handlers return at once

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture
def api():
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            state.hits[parts.path] += 1
            state.headers.append(dict(self.headers))
            answer = state.routes[parts.path](parse_qs(parts.query), state.hits[parts.path], self.headers)
            if answer is None:
                state.release.wait(5)
                return
            status, body = answer
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()  # quick shutdown
    state.base = f"http://127.0.0.1:{server.server_port}"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def _pages(api, pages: list[list[dict]]):
    """Serve `pages` as /events (relative next link), /p2, /p3, ... (absolute next links)."""
    paths = ["/events"] + [f"/p{i}" for i in range(2, len(pages) + 1)]
    for i, (path, records) in enumerate(zip(paths, pages)):
        following = None if i == len(pages) - 1 else (paths[i + 1] + "?cursor=x" if i == 0 else api.url(paths[i + 1]))
        api.routes[path] = lambda q, n, h, r=records, f=following: (200, {"records": r, "next": f})


def test_pages_are_joined_in_order_into_one_csv(api, tmp_path):
    _pages(api, [[{"id": 1, "n": 3}], [{"id": 2, "note": "a, \"quoted\" note"}], [{"id": 3, "n": None, "ok": True}]])
    name, data, file_format = HttpJsonSource(api.url("/events"), **FAST).pull("events", DAY)
    assert (name, file_format) == ("events_2026-01-05.csv", "csv")
    assert data.decode().splitlines() == ["id,n,note,ok", "1,3,,", '2,,"a, ""quoted"" note",', "3,,,true"]
    assert dict(api.hits) == {"/events": 1, "/p2": 1, "/p3": 1}


def test_the_day_goes_into_the_url_template_or_the_day_parameter(api):
    seen = []
    api.routes["/by-day/2026-01-05"] = lambda q, n, h: (seen.append(q), (200, {"records": [{"id": 1}]}))[1]
    api.routes["/events"] = lambda q, n, h: (seen.append(q), (200, {"records": [{"id": 1}]}))[1]
    HttpJsonSource(api.url("/by-day/{day}"), params={"since": "{day}"}, **FAST).pull("events", DAY)
    HttpJsonSource(api.url("/events?region=eu"), **FAST).pull("events", DAY)
    assert seen == [{"since": ["2026-01-05"]}, {"region": ["eu"], "day": ["2026-01-05"]}]


def test_re_pulling_the_same_records_is_idempotent(api, tmp_path):
    _pages(api, [[{"id": 1}, {"id": 2}]])
    source = HttpJsonSource(api.url("/events"), **FAST)
    first = pull_day(source, tmp_path, "events", DAY)
    assert pull_day(source, tmp_path, "events", DAY) == first
    assert Path(first["archive_path"]).name == f"{first['sha256'][:16]}_events_2026-01-05.csv"
    _pages(api, [[{"id": 1}, {"id": 3}]])  # changed upstream: archived beside the first, not over it
    second = pull_day(source, tmp_path, "events", DAY)
    assert second["archive_path"] != first["archive_path"] and Path(first["archive_path"]).exists()


def test_503_is_retried_until_the_server_answers(api):
    api.routes["/events"] = lambda q, n, h: (503, "busy") if n <= 2 else (200, {"records": [{"id": 1}]})
    HttpJsonSource(api.url("/events"), retries=3, **FAST).pull("events", DAY)
    assert api.hits["/events"] == 3


def test_a_server_slower_than_the_timeout_fails_in_bounded_time(api):
    api.routes["/events"] = lambda q, n, h: None
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"ReadTimeout .* after 2 attempts\. Fix: check that the service is up"):
        HttpJsonSource(api.url("/events"), timeout_s=0.2, retries=1, backoff_s=0.01).pull("events", DAY)
    assert time.monotonic() - started < 2 and api.hits["/events"] == 2


def test_a_client_error_is_not_retried(api):
    api.routes["/events"] = lambda q, n, h: (404, {"error": "no such day"})
    with pytest.raises(SourceError, match=r"HTTP 404 from http://127.*/events\?day=2026-01-05 .*no such day.*"
                                          r"Fix: check the URL"):
        HttpJsonSource(api.url("/events"), retries=3, **FAST).pull("events", DAY)
    assert api.hits["/events"] == 1


def test_a_bad_value_is_quarantined_by_validation_not_a_crash(api, tmp_path):
    _pages(api, [[{"id": 1, "n": 3, "day": "2026-01-05"}, {"id": 2, "n": "three", "day": "2026-01-05"}],
                 [{"id": 3, "n": 4, "day": "2026-01-05"}]])
    pulled = pull_day(HttpJsonSource(api.url("/events"), **FAST), tmp_path, "events", DAY)
    schema = pa.DataFrameSchema({"id": pa.Column(int), "n": pa.Column(int), "day": pa.Column("datetime64[ns]")})
    result = validate_files([pulled["archive_path"]], schema, {"day": DAY}, names=[pulled["name"]])
    assert (result.records, result.rows_valid, result.rows_quarantined, result.accounted) == (3, 2, 1, True)
    assert result.valid["id"].tolist() == [1, 3]
    assert result.quarantine[["n", "quarantine_reason", "source_row"]].values.tolist() == [
        ["three", "n:dtype(int64)=three", 1]]


def test_no_records_for_the_day_is_an_error_naming_the_day(api):
    api.routes["/events"] = lambda q, n, h: (200, {"records": [], "next": None})
    with pytest.raises(SourceError, match=r"HTTP JSON http://127.*: the API returned no records for 2026-01-05"):
        HttpJsonSource(api.url("/events"), **FAST).pull("events", DAY)


def test_pages_without_records_or_with_endless_links_fail_clearly(api):
    api.routes["/events"] = lambda q, n, h: (200, {"items": []})
    with pytest.raises(SourceError, match=r"no list under 'records' \(it has \['items'\]\)"):
        HttpJsonSource(api.url("/events"), **FAST).pull("events", DAY)
    api.routes["/loop"] = lambda q, n, h: (200, {"records": [{"id": n}], "next": "/loop"})
    with pytest.raises(SourceError, match="links back to a page already read"):
        HttpJsonSource(api.url("/loop"), **FAST).pull("events", DAY)
    api.routes["/endless"] = lambda q, n, h: (200, {"records": [{"id": n}], "next": f"/endless?page={n + 1}"})
    with pytest.raises(SourceError, match="more than 5 pages"):
        HttpJsonSource(api.url("/endless"), max_pages=5, **FAST).pull("events", DAY)
    assert api.hits["/endless"] == 5


def test_headers_come_from_the_environment_and_never_show(api, monkeypatch):
    api.routes["/events"] = lambda q, n, h: (200, {"records": [{"id": 1}]}) if h["Authorization"] == "Bearer t0k" \
        else (401, "no")
    source = HttpJsonSource(api.url("/events?api_key=k3y"), headers_env="EVENTS_API_HEADERS", **FAST)
    monkeypatch.delenv("EVENTS_API_HEADERS", raising=False)
    with pytest.raises(SourceError, match="environment variable EVENTS_API_HEADERS is not set"):
        source.pull("events", DAY)
    monkeypatch.setenv("EVENTS_API_HEADERS", "Bearer t0k")
    with pytest.raises(SourceError, match="EVENTS_API_HEADERS is not a JSON object") as raised:
        source.pull("events", DAY)
    assert "t0k" not in str(raised.value) and "k3y" not in source.describe()
    monkeypatch.setenv("EVENTS_API_HEADERS", json.dumps({"Authorization": "Bearer t0k"}))
    assert source.pull("events", DAY)[1] == b"id\n1\n"
