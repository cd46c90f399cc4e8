"""provmark's own machinery behind the public API: nothing here is a promise.

The signing process and its pool (``signing_pool``, ``signing_worker``), the remote
client's sender threads and offline journal (``remote_sender``, ``remote_journal``).
Import from ``provmark`` (or the documented subpackages) instead; these move freely.
"""
