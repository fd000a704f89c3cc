"""Per-address limits on pages that guessers like (activation), kept in the cache.

With several web machines the cache must be shared (``CACHE_URL`` pointing at
Redis), or each machine counts on its own.
"""

from __future__ import annotations

import ipaddress
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The visitor's address. Behind ``TRUSTED_PROXY_HOPS`` load balancers it is the
    address the nearest trusted one saw, read from X-Forwarded-For (entries added by
    the visitor themselves are to the left of it and are ignored)."""
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if addresses and _valid(addresses[-min(hops, len(addresses))]):
            return addresses[-min(hops, len(addresses))]
    remote = str(request.META.get("REMOTE_ADDR") or "")
    return remote if _valid(remote) else ""


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


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
