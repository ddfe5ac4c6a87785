"""A named lock held by one job at a time, across processes and machines.

On PostgreSQL a session-level advisory lock: it is released when the job ends or its connection dies (a killed
worker cannot leave it held). SQLite (the single-machine development default) has no such lock: every acquisition
succeeds there, and `proves_exclusive` says so to callers that would act on exclusivity.
"""

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def _lock_key(name: str) -> int:
    # pg advisory locks take a signed 64-bit key; crc32 is stable across processes (hash() is salted).
    return zlib.crc32(name.encode())


def proves_exclusive() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def job_lock(name: str) -> Iterator[bool]:
    """Yield True with the lock held, or False at once when another session holds it."""
    if not proves_exclusive():
        yield True
        return
    key = _lock_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
