"""``--dataset`` through the LangChain and LlamaIndex layers: texts that stand for the dataset's vectors.

The framework layers search by text; a dataset gives vectors and the true neighbors of its queries. So with
``--dataset`` the framework collections are prefilled with the dataset's base vector i under the text
``"dataset row i"`` (LangChain pk ``"i"``, LlamaIndex node ``"lg-i"``), and a query text ``"dataset query j"``
embeds to the dataset's query vector j. Every search the library makes (``similarity_search`` and its
``with_score`` and ``by_vector`` twins, ``query``, ``retrieve``) then runs the dataset's query j, and its hits are
scored against the same ground truth as the pymilvus layer's searches.

The lookup replaces the embedding model for those texts (a dataset's vectors come from its own model), so a run
with ``--dataset`` measures no model time for its queries; every other text (rows users add during the run) is
embedded by ``--embedding`` as usual.
"""

from __future__ import annotations

import re

QUERY = "dataset query {}"
ROW = "dataset row {}"
_QUERY_RE = re.compile(r"dataset query (\d+)")


def query_text(j: int) -> str:
    return QUERY.format(j)


def row_text(i: int) -> str:
    return ROW.format(i)


def query_index(text: str) -> int | None:
    """j for ``"dataset query j"``, else None."""
    m = _QUERY_RE.fullmatch(text)
    return int(m.group(1)) if m else None


def hit_index(key: object, prefix: str = "") -> int:
    """The dataset row a hit's primary key stands for (``"17"``, ``"lg-17"`` with ``prefix="lg-"``), else -1:
    rows users wrote during the run are no dataset row, so they count as misses."""
    text = str(key)
    if prefix:
        if not text.startswith(prefix):
            return -1
        text = text[len(prefix) :]
    return int(text) if text.isdigit() else -1
