"""Lineage facts recorded with every model version: what data, which code."""

from __future__ import annotations

import hashlib
import pickle
import subprocess
from pathlib import Path

import pandas as pd


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a table: same rows and values in the same order -> same hash."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def model_hash(model) -> str:
    """Hash of the serialized fitted model (reproducibility: same inputs + seed -> same hash)."""
    return hashlib.sha256(pickle.dumps(model, protocol=5)).hexdigest()


def git_sha(path: Path | str = ".") -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
