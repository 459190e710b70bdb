"""Which allocator Arrow uses for bulk table work."""

import os

import pyarrow as pa


def prefer_jemalloc() -> str:
    """Route Arrow's allocations through jemalloc unless ARROW_DEFAULT_MEMORY_POOL names a pool.

    pyarrow >= 20 defaults to mimalloc. Every Dagster run is a fresh process, and in a fresh
    process on the 2-core VM the 1M-row ingest spent 1.07 s of system time faulting in mimalloc's
    new pages, against 0.27 s on jemalloc (1.43 s against 1.02 s wall; BENCHMARKS.md has both).
    Switching is safe at any time: every buffer is freed to the pool that allocated it.
    """
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # a pyarrow build without jemalloc (Windows wheels): keep the default
            pass
    return pa.default_memory_pool().backend_name
