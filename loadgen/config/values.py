"""Parsers for option values: each turns the text of a flag (or an env var, or a workload file's value) into the
value ``Settings`` holds, or raises a one-line ``LoadgenError`` that names the flag."""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import urlsplit

from loadgen.errors import LoadgenError

CATEGORY_COUNT = 100  # loadgen.workload.rows.CATEGORIES: rows' category is uniform over 0..99


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def name(text: str, option: str) -> str:
    """A name such as a driver's (letters, digits, underscores); which names exist is the caller's to check."""
    value = (text or "").strip().lower()
    if not value.replace("_", "a").isalnum():
        raise LoadgenError(f"{flag(option)} {text!r}: expected a name such as auto")
    return value


def json_object(text: str, name: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LoadgenError(f"{flag(name)} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LoadgenError(f"{flag(name)} must be a JSON object, got {text!r}")
    return value


def selectivity(text: str, name: str = "filter_selectivity") -> float:
    """``--filter-selectivity``: "" means none; else a share of rows in (0, 1]."""
    if not str(text).strip():
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise LoadgenError(f"{flag(name)} {text!r} is not a number; expected 0 < s <= 1") from None
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise LoadgenError(f"{flag(name)} must be in (0, 1], got {text}")
    if round(value * CATEGORY_COUNT) < 1:
        raise LoadgenError(f"{flag(name)} {text} keeps no category; the smallest is {1 / CATEGORY_COUNT}")
    return value


def selectivity_filter(share: float) -> str:
    """The filter a selectivity stands for: categories are uniform over 0..99."""
    return f"category < {round(share * CATEGORY_COUNT)}"


def positive_ints(text: str, option: str) -> list[int]:
    """``"1,5,10"`` -> ``[1, 5, 10]``, for list options such as ``--counts`` and ``--sweep-users``."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise LoadgenError(f"{option} {text!r}: expected comma-separated positive integers")
    return values


def weights(text: str, name: str = "weights") -> dict[str, int]:
    """``"search=8,insert=1"`` -> ``{"search": 8, "insert": 1}``. Task names are checked against the operation
    tables by ``loadgen.clients.check_task_names`` (this layer does not know them)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, value = (x.strip() for x in part.partition("="))
        try:
            if not sep or not key:
                raise ValueError
            out[key] = int(value)
        except ValueError:
            raise LoadgenError(f"{flag(name)}: {part!r} is not name=<integer>") from None
        if out[key] < 0:
            raise LoadgenError(f"{flag(name)}: {part!r} is negative")
    if out and not any(out.values()):
        raise LoadgenError(f"{flag(name)}: every task has weight 0; give at least one a positive weight")
    return out


def typed(text: str, typ: type, name: str, choices: tuple[str, ...] | None = None, default: Any = None) -> Any:
    """An option's text as the value its flag's parser would give: what Locust's web UI form sends is text, and a
    flag whose default is None (the checks) would otherwise stay a string ("" when the field was left empty)."""
    text = text.strip()
    if typ is bool:
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off", ""):
            return False
        raise LoadgenError(f"{flag(name)} {text!r}: expected true or false")
    if typ in (int, float):
        if not text:
            if default is None:
                return None  # left empty: no value, as when the flag is not given
            raise LoadgenError(f"{flag(name)}: expected a number, got nothing")
        try:
            value = typ(text)
        except ValueError:
            kind = "an integer" if typ is int else "a number"
            raise LoadgenError(f"{flag(name)} {text!r}: expected {kind}") from None
        if typ is float and not math.isfinite(value):
            raise LoadgenError(f"{flag(name)} {text!r}: expected a finite number")
        return value
    if choices and text not in choices:
        raise LoadgenError(f"{flag(name)} {text!r}: choose one of {', '.join(choices)}")
    return text


def rate(text: str | float, option: str) -> float:
    """A rate in requests per second: a finite number >= 0 (0: off)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise LoadgenError(f"{option} {text!r} is not a number of requests per second") from None
    if not math.isfinite(value) or value < 0:
        raise LoadgenError(f"{option} must be a rate of 0 or more requests per second, got {text}")
    return value


_SPAN = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def timespan_s(text: str) -> float:
    """A time span as Locust's ``--run-time`` takes it ("20s", "5m", "1h30m", "90"; fractions too: "2.5s") in
    seconds; ValueError when it is not one."""
    found = _SPAN.fullmatch(str(text).strip().lower())
    if not str(text).strip() or found is None:
        raise ValueError(f"not a time span: {text!r}")
    h, m, s = (float(g) if g else 0.0 for g in found.groups())
    return h * 3600 + m * 60 + s


def duration(text: str, option: str) -> float:
    """A span of time in seconds, 0 or more ("" or "0": none)."""
    if text in ("", None):
        return 0.0
    try:
        return timespan_s(str(text))
    except ValueError:
        raise LoadgenError(f"{flag(option)} {text!r}: expected e.g. 10s, 1m, 1m30s or a number of seconds") from None


def stream_rates(text: str, name: str = "stream_rates") -> dict[str, float]:
    """``"insert=20,delete=5"`` -> ``{"insert": 20.0, "delete": 5.0}`` (total calls per second per operation);
    operation names are checked with the task names (``loadgen.clients.check_task_names``)."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, value = (x.strip() for x in part.partition("="))
        if not sep or not key:
            raise LoadgenError(f"{flag(name)}: {part!r} is not op=<requests per second>")
        rates[key] = rate(value, f"{flag(name)} {key}")
    return {key: r for key, r in rates.items() if r > 0}


# a DNS name, an IPv4 address or (inside brackets in a URI) an IPv6 one
_HOSTNAME = re.compile(r"[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+")


def checked_url(url: str, option: str, example: str) -> None:
    """A URI's host and port as a client will read them: pymilvus and urllib raise a bare ``ValueError`` traceback
    on a port that is not a number (``http://h:19530",``), so the malformed ones are refused here, in one line."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # urllib's None is "no port given", which means the scheme's default
        raise LoadgenError(f"{option} {url!r}: the port must be a number from 1 to 65535; expected {example}")
    if not parts.hostname or not _HOSTNAME.fullmatch(parts.hostname):
        raise LoadgenError(f"{option} {url!r}: no valid host name in it; expected {example}")


def redact_uri(uri: str) -> str:
    """``http://user:secret@host`` -> ``http://***@host``: credentials never reach a message."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


def normalize_uri(host: str) -> str:
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme = host.split("://", 1)[0]
    if scheme not in ("http", "https", "tcp", "grpc", "unix"):
        raise LoadgenError(f"--host {host!r}: expected http://HOST:PORT or https://HOST:PORT")
    if scheme != "unix":  # a socket path, no host or port
        checked_url(host, "--host", "http://HOST:PORT or https://HOST:PORT")
    return host


def metrics_url(url: str) -> None:
    """``--milvus-metrics-url``: an http(s) URL a scraper can open."""
    example = "http(s)://HOST:PORT/metrics"
    if not url.startswith(("http://", "https://")):
        raise LoadgenError(f"--milvus-metrics-url {url!r}: expected {example}")
    checked_url(url, "--milvus-metrics-url", example)
