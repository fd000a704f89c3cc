"""Per-address limits on pages that guessers like (activation), kept in the cache.

With several web machines the cache must be shared (``CACHE_URL`` pointing at
Redis), or each machine counts on its own.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def throttle_allows(scope: str, key: str, limits: list[tuple[int, int]]) -> bool:
    """Count one hit of ``key`` in ``scope``; False once any (count, seconds) window
    is full. Fixed windows: cheap, and enough to stop guessing at scale."""
    now = int(time.time())
    allowed = True
    for count, seconds in limits:
        bucket = f"throttle:{scope}:{key}:{seconds}:{now // seconds}"
        if cache.add(bucket, 1, timeout=seconds + 1):
            hits = 1
        else:
            try:
                hits = cache.incr(bucket)
            except ValueError:  # the bucket expired between add and incr
                cache.add(bucket, 1, timeout=seconds + 1)
                hits = 1
        if hits > count:
            allowed = False
    return allowed
