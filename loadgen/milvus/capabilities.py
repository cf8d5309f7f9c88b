"""What a Milvus server can serve, read from its version, checked before any load starts.

Each operation declares the Milvus version it needs (``min_version``); ``require`` compares those with the version
the server reports (``MilvusClient.get_server_version()``) and refuses with one line naming the operation, the version
it needs and the server's version. Version strings seen here: the real engine ``v2.3.5-lite`` (the ``milvus`` wheel),
a release ``v2.5.4`` / ``2.6.0``, and milvus-lite ``milvus_lite-3.2.2``. milvus-lite numbers its own releases: 3.2.x
implements the Milvus 2.5/2.6 features (BM25 functions, hybrid search, text_match, grouping, iterators; the
retrieval layer's tests run each of them against it), so it counts as Milvus 2.6.0 for these checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError

Version = tuple[int, int, int]

# the Milvus release that introduced each feature loadgen's operations use
HYBRID_SEARCH: Version = (2, 4, 0)
SPARSE_VECTORS: Version = (2, 4, 0)
GROUPING_SEARCH: Version = (2, 4, 0)
FULL_TEXT_BM25: Version = (2, 5, 0)
TEXT_MATCH: Version = (2, 5, 0)
RANGE_SEARCH: Version = (2, 3, 0)
ITERATORS: Version = (2, 3, 0)
PARTITION_KEY: Version = (2, 2, 9)

# milvus-lite release (major, minor) -> the Milvus feature level it implements
_LITE_LEVELS: dict[tuple[int, int], Version] = {(3, 2): (2, 6, 0)}

_MILVUS = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+._].*)?$")
_LITE = re.compile(r"^milvus[_-]lite[-_ ]v?(\d+)\.(\d+)(?:\.(\d+))?", re.IGNORECASE)


@dataclass(frozen=True)
class ServerVersion:
    """``text``: what the server said; ``level``: the Milvus release whose features it serves (None: unknown)."""

    text: str
    level: Version | None

    @property
    def known(self) -> bool:
        return self.level is not None


def parse_version(text: str) -> ServerVersion:
    """The feature level of a version string. A string loadgen cannot read (a dev build's commit hash) gives an
    unknown level: ``require`` then lets the server itself answer each call rather than guess."""
    raw = str(text).strip()
    lite = _LITE.match(raw)
    if lite:
        major, minor = int(lite.group(1)), int(lite.group(2))
        level = _LITE_LEVELS.get((major, minor))
        if level is None:  # an unknown milvus-lite line: newer ones keep the features of the newest one we know
            known = [k for k in _LITE_LEVELS if k <= (major, minor)]
            level = _LITE_LEVELS[max(known)] if known else None
        return ServerVersion(raw, level)
    match = _MILVUS.match(raw)
    if match:
        return ServerVersion(raw, (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)))
    return ServerVersion(raw, None)


def show(version: Version) -> str:
    return ".".join(map(str, version))


def require(needs: Iterable[tuple[str, Version]], server: ServerVersion | str, where: str = "") -> None:
    """Refuse (one line, exit 2) if the server is older than any ``(operation, min_version)`` in ``needs``; the
    operation that needs the newest release is the one named."""
    if isinstance(server, str):
        server = parse_version(server)
    if server.level is None:
        return
    level = server.level
    missing = sorted((need for need in needs if need[1] > level), key=lambda need: need[1], reverse=True)
    if missing:
        op, version = missing[0]
        at = f" at {where}" if where else ""
        others = f" (and {len(missing) - 1} more operation(s))" if len(missing) > 1 else ""
        raise LoadgenError(
            f"operation {op!r} needs Milvus >= {show(version)}; the server{at} is {server.text}{others}: "
            "use a newer Milvus (or --engine lite), or leave this operation out with --weights"
        )


# Milvus 2.x (2.3 ... 2.6): proxy.maxDimension, the top-k / query limit bound (quotaAndLimits: "top k should be in
# range [1, 16384]"), and the collection name's length (common: "the length of a collection name must be less
# than 256 characters"); verified against the embedded 2.3.5 (tests/test_bad_input.py)
MILVUS_2_LIMITS = {"dim": 32768, "top_k": 16384, "collection_name": 255}


def limits_for(version: str) -> dict[str, int]:
    """Documented limits of a server version (``v2.3.5-lite``, ``2.6.1``); {} for one we do not know (milvus-lite)."""
    m = re.match(r"v?(\d+)\.(\d+)", version.strip())
    if m and int(m.group(1)) == 2:
        return dict(MILVUS_2_LIMITS)
    return {}


def server_limits(settings: Settings, version: str) -> None:
    """``--dim``, ``--top-k`` and the collection name within what the server version takes: else one line."""
    limits = limits_for(version)
    if not limits:
        return
    where = f"Milvus {version}"
    if settings.dim > limits["dim"]:
        raise LoadgenError(f"--dim {settings.dim} is above {where}'s maximum of {limits['dim']}")
    if settings.top_k > limits["top_k"]:
        raise LoadgenError(f"--top-k {settings.top_k} is above {where}'s maximum of {limits['top_k']}")
    if len(settings.collection) > limits["collection_name"]:
        raise LoadgenError(
            f"--collection is {len(settings.collection)} characters; {where} takes at most {limits['collection_name']}"
        )
