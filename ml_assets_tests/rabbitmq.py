"""A virtual host of a test's own on the machine's RabbitMQ (127.0.0.1:5672, guest/guest): the
Celery queues, exchanges and reply queues of a run live in it and go with it."""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

RABBITMQ = {"host": os.environ.get("ML_ASSETS_TEST_RABBITMQ_HOST", "127.0.0.1"),
            "port": int(os.environ.get("ML_ASSETS_TEST_RABBITMQ_PORT", "5672")),
            "user": os.environ.get("ML_ASSETS_TEST_RABBITMQ_USER", "guest"),
            "password": os.environ.get("ML_ASSETS_TEST_RABBITMQ_PASSWORD", "guest")}


def _rabbitmqctl(*args: str) -> None:
    command = shutil.which("rabbitmqctl")
    if command is None:
        raise RuntimeError("rabbitmqctl is not on PATH: the Celery tests create a RabbitMQ virtual host per run "
                           "with it; run them on the machine that runs the broker, as root or the rabbitmq user")
    done = subprocess.run([command, *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def scratch_vhost(prefix: str | None = None) -> Iterator[str]:
    """A uniquely named virtual host the test user may use fully; deleted afterwards. Its broker URL
    is `broker_url(name)`. The prefix (ML_ASSETS_TEST_RABBITMQ_PREFIX, else `ml_assets_test`) lets a
    shared broker tell whose virtual hosts these are."""
    name = f"{prefix or os.environ.get('ML_ASSETS_TEST_RABBITMQ_PREFIX', 'ml_assets_test')}_{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, RABBITMQ["user"], ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


def broker_url(vhost: str) -> str:
    return f"pyamqp://{RABBITMQ['user']}:{RABBITMQ['password']}@{RABBITMQ['host']}:{RABBITMQ['port']}/{vhost}"
