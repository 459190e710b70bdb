"""Hot swap: follow a registry alias and swap the served model atomically.

`refresh()` is called periodically (off the event loop). A new version is loaded completely
before a single attribute assignment makes it current, so a request is scored wholly by the old
or wholly by the new model. When the registry cannot be read, or a new version fails to load,
the loaded model keeps serving and the watcher reports itself degraded, with a reason fit for
clients (`degraded`: what is wrong, never the registry URL or a library's exception text); the
exception itself goes to the service log, once per distinct failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ml_assets.mlflow.registry import LoadedModel, alias_version, client, load_version

logger = logging.getLogger(__name__)


class ModelWatcher:
    def __init__(self, name: str, alias: str, tracking_uri: str | None = None,
                 on_swap: Callable[[LoadedModel, LoadedModel | None], None] | None = None,
                 prepare: Callable[[LoadedModel], LoadedModel] = lambda model: model):
        self.name, self.alias, self.tracking_uri = name, alias, tracking_uri
        self.client = client(tracking_uri)
        self.current: LoadedModel | None = None
        self.degraded: str | None = None
        self.last_check: float | None = None
        self.on_swap, self.prepare = on_swap, prepare
        self._lock = threading.Lock()  # one refresh at a time (start-up and the poller may overlap)
        self._logged: str | None = None

    def refresh(self) -> bool:
        """Check the alias once; load and swap if it moved. Returns whether the model changed."""
        with self._lock:
            version = None
            try:
                version = alias_version(self.client, self.name, self.alias)
                changed = version is not None and (self.current is None or self.current.version != version)
                if changed:
                    new, old = self.prepare(load_version(self.name, version, self.tracking_uri)), self.current
                    self.current = new  # the atomic swap
                    if self.on_swap:
                        self.on_swap(new, old)
                self.degraded = None if version is not None or self.alias != "champion" else \
                    f"no version has the alias '{self.alias}' yet"
                self._logged = None
                return changed
            except Exception as err:  # unreachable registry, corrupt artifact, ...: keep serving
                self.degraded = "the model registry cannot be read" if version is None else \
                    f"{self.name} v{version} (@{self.alias}) could not be loaded"
                detail = f"{self.degraded}: {type(err).__name__}: {err}"
                if detail != self._logged:
                    logger.warning("%s@%s: %s", self.name, self.alias, detail, exc_info=err)
                    self._logged = detail
                return False
            finally:
                self.last_check = time.time()

    def public_reason(self) -> str:
        """Why no model is served, in words for clients (the details are in the service log)."""
        return self.degraded or "no champion model is loaded"

    def describe(self) -> dict:
        model = self.current
        return {"alias": self.alias, "name": self.name, "version": model.version if model else None,
                "loaded_at": model.loaded_at if model else None, "last_check": self.last_check,
                "fast_path": bool(model and model.predictor is not model.pipeline),
                "degraded": self.degraded}
