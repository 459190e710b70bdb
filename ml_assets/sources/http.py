"""A day's records from an HTTP JSON API, archived as one CSV file.

The CSV is the archived raw copy (the JSON pages are not kept): one column per key, in the order
keys were first seen, each value as its JSON text (strings unquoted, null empty). Nothing is typed
here, so a bad value ("three" for a count) reaches validation and is quarantined with its reason,
through the same CSV reader as a landed file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urljoin

import httpx

from ml_assets.sources.base import SourceError, mask_url

_RETRY_STATUS = {429, 500, 502, 503, 504}
_MAX_WAIT_S = 60.0  # the longest Retry-After honoured: a pull should fail, not hang for an hour


@dataclass(frozen=True)
class HttpJsonSource:
    """GET `url` for a day: `{day}` in `url` or in a `params` value is replaced by the ISO day; without
    one in `url`, the day is sent as the `day` query parameter. Each page is a JSON object whose
    `records_key` lists flat records and whose `next_key` holds the next page's URL (absolute, or
    relative to the page; it is followed as given, without `params`); absent or null ends the day.

    Every request has `timeout_s` (per connect/read); connection errors, timeouts, 429 and 5xx are
    retried `retries` times with exponential backoff from `backoff_s` (or the server's Retry-After);
    other statuses fail at once. `headers_env` names an environment variable holding a JSON object of
    headers (e.g. an Authorization token), read at pull time and never shown.
    """

    url: str
    records_key: str = "records"
    next_key: str = "next"
    params: dict[str, str] = field(default_factory=dict, hash=False)
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    headers_env: str | None = None
    max_pages: int = 10_000  # a server whose `next` never ends must not keep a run busy forever

    def describe(self) -> str:
        return f"HTTP JSON {mask_url(self.url)}"

    def pull(self, dataset: str, day: date) -> tuple[str, bytes, str]:
        iso = day.isoformat()
        params = {k: str(v).replace("{day}", iso) for k, v in self.params.items()}
        if "{day}" not in self.url:
            params.setdefault("day", iso)
        # merged into the URL's own query (httpx's params= would replace it, dropping e.g. an API key)
        records = self._records(str(httpx.URL(self.url.replace("{day}", iso)).copy_merge_params(params)))
        if not records:
            raise SourceError(self.describe(), f"the API returned no records for {iso}",
                              "check that the day is available upstream (and the URL's day parameter)")
        return f"{dataset}_{iso}.csv", _csv_bytes(records), "csv"

    def _records(self, url: str) -> list[dict]:
        records, seen = [], set()
        with httpx.Client(timeout=self.timeout_s, headers=self._headers(), follow_redirects=True) as client:
            while url is not None:
                if len(seen) >= self.max_pages or url in seen:
                    why = "links back to a page already read" if url in seen else f"has more than {self.max_pages} pages"
                    raise SourceError(self.describe(), f"the pagination {why} ({mask_url(url)})",
                                      f"check the API's {self.next_key!r} links, or raise max_pages")
                seen.add(url)
                page = self._page(client, url)
                records += self._page_records(page, url)
                following = page.get(self.next_key)
                url = urljoin(url, str(following)) if following else None
        return records

    def _page_records(self, page, url: str) -> list[dict]:
        where = mask_url(url)
        if not isinstance(page, dict) or not isinstance(page.get(self.records_key), list):
            keys = sorted(page) if isinstance(page, dict) else type(page).__name__
            raise SourceError(self.describe(), f"the page {where} has no list under {self.records_key!r} "
                              f"(it has {keys})", "set records_key to the key holding the records")
        records = page[self.records_key]
        if not all(isinstance(r, dict) for r in records):
            raise SourceError(self.describe(), f"the page {where} lists records that are not JSON objects",
                              "point the source at an endpoint returning one object per record")
        return records

    def _page(self, client: httpx.Client, url: str):
        where = mask_url(url)
        for attempt in range(self.retries + 1):
            wait = self.backoff_s * 2 ** attempt
            try:
                response = client.get(url)
            except httpx.TransportError as err:  # connection refused or reset, timeouts
                problem = f"{type(err).__name__} ({err or 'no detail'})"
            else:
                if response.status_code not in _RETRY_STATUS:
                    return self._json(response, where)
                problem = f"HTTP {response.status_code}"
                wait = _retry_after(response, wait)
            if attempt < self.retries:
                time.sleep(wait)
        raise SourceError(self.describe(), f"{problem} from {where} after {self.retries + 1} attempts",
                          "check that the service is up; raise timeout_s or retries if it is only slow")

    def _json(self, response: httpx.Response, where: str):
        if not response.is_success:  # a client error: asking again would get the same answer
            fixes = {401: f"check the credentials in ${self.headers_env}", 404: "check the URL and that the day "
                     "exists upstream"}
            fixes[403] = fixes[401]
            raise SourceError(self.describe(), f"HTTP {response.status_code} from {where} "
                              f"({' '.join(response.text[:200].split()) or 'empty body'})",
                              fixes.get(response.status_code, "check the request (URL, params, headers)"))
        try:
            return response.json()
        except ValueError as err:
            raise SourceError(self.describe(), f"the response from {where} is not JSON ({err})",
                              "point the source at the API's JSON endpoint") from None

    def _headers(self) -> dict[str, str]:
        if not self.headers_env:
            return {}
        text = os.environ.get(self.headers_env)
        if text is None:
            raise SourceError(self.describe(), f"the environment variable {self.headers_env} is not set",
                              f'set {self.headers_env} to a JSON object of headers, e.g. {{"Authorization": "..."}}')
        try:
            headers = json.loads(text)
        except ValueError:
            headers = None
        if not isinstance(headers, dict):  # the value is a secret: say what is wrong, never what it is
            raise SourceError(self.describe(), f"the environment variable {self.headers_env} is not a JSON object",
                              'set it to e.g. {"Authorization": "Bearer ..."}')
        return {str(k): str(v) for k, v in headers.items()}


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "")), 0.0), _MAX_WAIT_S)
    except ValueError:  # absent, or an HTTP date: our own backoff
        return default


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _csv_bytes(records: list[dict]) -> bytes:
    header = list(dict.fromkeys(key for record in records for key in record))  # union, first-seen order
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(record.get(key)) for key in header] for record in records)
    return text.getvalue().encode("utf-8")
