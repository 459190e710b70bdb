"""Helpers of the closed-loop tests: the strict day-by-day replay, a webhook receiver, a scrape."""

import dataclasses
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg

from ml_assets.problems.churn import CHURN
from ml_assets.replay import Day, Replay

QUICK = dataclasses.replace(CHURN, search_iterations=1, retrain_min_labeled_days=7, retrain_cooldown_hours=0)


class DailyLoop(Replay):
    """The replay, with every run required to succeed and every retrain remembered by day."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.retrains: list[tuple[int, dg.ExecuteInProcessResult]] = []
        self.skips: dict[int, str] = {}

    def run_day(self, day: int, defs: dg.Definitions | None = None) -> Day:
        report = super().run_day(day, defs)
        assert not [r for r in report.failed if r not in report.retrains], f"day {day}: a run failed"
        self.retrains += [(day, r) for r in report.retrains]
        if report.sensor_said:
            self.skips[day] = report.sensor_said
        return report


class Webhook:
    """A real HTTP endpoint on 127.0.0.1 that records what is posted to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def scrape(registry) -> dict[tuple, float]:
    """Serve the registry on 127.0.0.1, GET /metrics over HTTP and parse the exposition text into
    {(sample name, sorted labels): value}, as Prometheus would see it."""
    import httpx
    from prometheus_client import start_http_server
    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).raise_for_status().text
    finally:
        server.shutdown()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def day_after(start, days: int) -> str:
    return str(start + timedelta(days=days))
