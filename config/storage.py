"""Where files that must never be public live: proofs of residence, confirmations.

Nothing under ``PRIVATE_MEDIA_ROOT`` has a URL; views that check who asks read the
files and send them as downloads.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class PrivateStorage(FileSystemStorage):
    """File storage under ``PRIVATE_MEDIA_ROOT``, read at each use so that tests and
    deployments can move it."""

    @property
    def base_location(self) -> str:
        return str(settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)

    def url(self, name: str | None) -> str:
        raise ValueError("private files have no URL; serve them through a view")


private_storage = PrivateStorage()


def private_storage_get() -> PrivateStorage:
    return private_storage
