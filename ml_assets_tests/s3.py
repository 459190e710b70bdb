"""A local S3-compatible server for tests: moto's server mode (installed from PyPI, `moto[server]`)
as its own process, a real HTTP endpoint on 127.0.0.1 that s3fs, boto3 and MLflow talk to exactly as
they would to S3 (no in-process mock: the code under test only sees the endpoint in the environment).

ML_ASSETS_TEST_PORTS=LOW-HIGH keeps its port in a range (see processes.free_port);
ML_ASSETS_TEST_S3_BUCKET_PREFIX names the session's bucket (default ml-assets-test)."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ml_assets_tests.processes import free_port, stop

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.TransportError:
        return False


@contextmanager
def s3_server(log: Path) -> Iterator[str]:
    """`moto_server` on a free port until the block ends; yields its endpoint URL."""
    for _ in range(5):  # the port can be taken between the probe and the bind: try another
        port = free_port()
        command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        with log.open("ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while process.poll() is None and not _answers(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        if process.poll() is None and _answers(url):
            break
        stop(process)
    else:
        raise AssertionError(f"moto_server did not start: {log.read_text()[-2000:]}")
    try:
        yield url
    finally:
        stop(process)



def new_bucket(fs) -> str:
    name = f"{os.environ.get('ML_ASSETS_TEST_S3_BUCKET_PREFIX', 'ml-assets-test')}-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    return name


def drop_bucket(fs, name: str) -> None:
    if fs.exists(name):
        fs.rm(name, recursive=True)  # the objects, then the bucket itself
    fs.invalidate_cache()


class S3:
    """The session's server and bucket; `folder()` gives each test a prefix of its own."""

    def __init__(self, url: str, bucket: str, fs):
        self.url, self.bucket, self.fs = url, bucket, fs

    def folder(self) -> str:
        return f"s3://{self.bucket}/{uuid.uuid4().hex[:10]}"
