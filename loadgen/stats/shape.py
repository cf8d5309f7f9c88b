"""The shape of the searches a row made, tallied per request row and merged across workers with the latency
histograms (``HistogramListener`` carries it): query vectors sent (``--nq`` per call, context ``nq``) and the bytes
of the answers (context ``response_bytes``, measured as ``loadgen.clients.shape`` says).

The figures, defined once here and read by the summary, results.json, the web UI's tab, the report and the checks:

- ``query_vectors``: the query vectors the row's calls sent, successes and failures alike (as ``requests`` counts
  both); ``qvps`` = ``query_vectors`` / the run's window (the same window as ``rps``); ``nq`` = query vectors per call.
- ``response_bytes_per_call``: the mean size of the answers of the row's successful calls whose answer was measured
  (``response_bytes_calls`` of them), ``response_bytes_max`` the largest, ``response_bytes_total`` their sum.
"""

from __future__ import annotations

from typing import Any

_CALLS, _VECTORS, _MEASURED, _BYTES, _MAX = range(5)


class ShapeTally:
    """Per (request type, name): [calls that counted query vectors, query vectors, answers measured, bytes, max]."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], list[int]] = {}

    def __bool__(self) -> bool:
        return bool(self._rows)

    def _row(self, key: tuple[str, str]) -> list[int]:
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = [0, 0, 0, 0, 0]
        return row

    def record(self, request_type: str, name: str, nq: Any, response_bytes: Any) -> None:
        if not isinstance(nq, int) and not isinstance(response_bytes, int):
            return
        row = self._row((request_type, name))
        if isinstance(nq, int):
            row[_CALLS] += 1
            row[_VECTORS] += nq
        if isinstance(response_bytes, int):
            row[_MEASURED] += 1
            row[_BYTES] += response_bytes
            row[_MAX] = max(row[_MAX], response_bytes)

    def figures(self, request_type: str, name: str, window: float) -> dict[str, Any]:
        """The row's figures (module text); {} for a row that tallied nothing."""
        row = self._rows.get((request_type, name))
        if row is None:
            return {}
        out: dict[str, Any] = {}
        if row[_CALLS]:
            out.update(query_vectors=row[_VECTORS], qvps=row[_VECTORS] / window if window > 0 else 0.0,
                       nq=row[_VECTORS] / row[_CALLS])  # fmt: skip
        if row[_MEASURED]:
            out.update(response_bytes_per_call=row[_BYTES] / row[_MEASURED], response_bytes_max=row[_MAX],
                       response_bytes_total=row[_BYTES], response_bytes_calls=row[_MEASURED])  # fmt: skip
        return out

    def counts(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """Per row, the running counts: (query vectors, answers measured, their bytes): what Prometheus rates."""
        return {key: (r[_VECTORS], r[_MEASURED], r[_BYTES]) for key, r in sorted(self._rows.items())}

    def to_payload(self) -> list[list[Any]]:
        return [[t, n, *row] for (t, n), row in sorted(self._rows.items())]

    def merge_payload(self, payload: list[list[Any]]) -> None:
        for t, n, *values in payload:
            row = self._row((str(t), str(n)))
            for i in (_CALLS, _VECTORS, _MEASURED, _BYTES):
                row[i] += int(values[i])
            row[_MAX] = max(row[_MAX], int(values[_MAX]))

    def reset(self) -> None:
        self._rows = {}


def totals(rows: list[dict[str, Any]], window: float) -> dict[str, Any]:
    """The run's query vectors and query vectors per second over every row that counted them ({} if none did)."""
    vectors = [int(r["query_vectors"]) for r in rows if "query_vectors" in r]
    if not vectors:
        return {}
    return {"query_vectors": sum(vectors), "qvps": sum(vectors) / window if window > 0 else 0.0}
