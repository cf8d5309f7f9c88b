"""Unit tests of the options table, the frozen settings object and argv rebuilding."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from loadgen.clients import check_task_names, layer_weights
from loadgen.config.settings import Settings, add_options, normalize_uri, to_argv
from loadgen.errors import LoadgenError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    return parser.parse_args(list(argv))


def test_defaults_build_frozen_settings() -> None:
    s = Settings.from_options(parse(), "127.0.0.1:19530")
    assert s.uri == "http://127.0.0.1:19530"
    assert s.weights == {}  # each layer's own defaults
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.dim = 3  # type: ignore[misc]


def test_json_params_and_weights_parse() -> None:
    s = Settings.from_options(
        parse("--index-type", "HNSW", "--index-params", '{"M": 8}', "--weights", "search=3,insert=0"), "http://h:1"
    )
    assert s.index_params == {"M": 8}
    assert s.weights == {"search": 3, "insert": 0}


def test_layer_weights_defaults_unless_the_layer_is_named() -> None:
    defaults = {"search": 10, "insert": 2}
    assert layer_weights({}, defaults, fanout=True) == {"search": 10, "insert": 2, "fanout": 1}
    assert layer_weights({"similarity_search": 4}, defaults, fanout=False) == defaults  # names another layer
    assert layer_weights({"search": 3}, defaults, fanout=True) == {"search": 3, "insert": 0, "fanout": 0}


def test_every_adapter_operation_is_a_known_task() -> None:
    from loadgen import clients

    for layer in clients.layers():
        ops = clients.operation_names(layer)
        assert ops and tuple(clients.adapter(layer).operations) == ops
        assert set(ops) <= clients.task_names()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--index-params", "{bad"], "--index-params is not valid JSON"),
        (["--search-params", "[1]"], "must be a JSON object"),
        (["--weights", "nosuch=1"], "unknown task 'nosuch'"),
        (["--weights", "search=-1"], "negative"),
        (["--weights", "search=0"], "every task has weight 0"),
        (["--dim", "0"], "--dim must be at least 1"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["--collection", "bad-name"], "letters, digits and underscores"),
    ],
)
def test_bad_options_are_one_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(LoadgenError) as err:
        s = Settings.from_options(parse(*argv), "http://h:1")
        check_task_names(s.weights, s.stream_rates)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_host_and_bad_scheme() -> None:
    with pytest.raises(LoadgenError, match="no Milvus host"):
        Settings.from_options(parse(), None)
    with pytest.raises(LoadgenError, match="expected http"):
        normalize_uri("ftp://h:1")


def test_token_from_env_is_secret_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADGEN_MILVUS_TOKEN", "root:s3cret-token")
    monkeypatch.setenv("LOADGEN_DIM", "64")
    ns = parse()
    s = Settings.from_options(ns, "http://h:1")
    assert s.milvus_token == "root:s3cret-token" and s.dim == 64
    assert "s3cret" not in repr(s)
    assert "s3cret" not in str(s.public()) and s.public()["token_set"] is True
    assert "s3cret" not in " ".join(to_argv(ns))


def test_to_argv_round_trips_non_defaults() -> None:
    ns = parse("--dim", "32", "--keep-data", "--filter", "category < 10")
    argv = to_argv(ns)
    assert argv == ["--dim", "32", "--filter", "category < 10", "--keep-data"]
    assert vars(parse(*argv)) == vars(ns)


def test_form_text_is_parsed_like_the_flags() -> None:
    """The web UI's form sends text: each value becomes what its flag's parser gives (a check left empty is no
    check, not an empty string that a number is then compared with)."""
    form = {"dim": "16", "timeout": "2.5", "check_p99_ms": "", "check_min_qps": "100", "keep_data": "true",
            "index_type": "HNSW", "weights": "search=2"}  # fmt: skip
    s = Settings.from_options(argparse.Namespace(**{**vars(parse()), **form}), "http://h:1")
    assert (s.dim, s.timeout, s.check_p99_ms, s.check_min_qps, s.keep_data) == (16, 2.5, None, 100.0, True)
    assert (s.index_type, s.weights) == ("HNSW", {"search": 2})
    assert s == Settings.from_options(
        parse("--dim", "16", "--timeout", "2.5", "--check-min-qps", "100", "--keep-data", "--index-type", "HNSW",
              "--weights", "search=2"), "http://h:1")  # fmt: skip


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("dim", "1e3", "--dim '1e3': expected an integer"),
        ("check_p99_ms", "fast", "--check-p99-ms 'fast': expected a number"),
        ("timeout", "nan", "--timeout 'nan': expected a finite number"),
        ("keep_data", "maybe", "--keep-data 'maybe': expected true or false"),
        ("index_type", "HNSW2", "--index-type 'HNSW2': choose one of AUTOINDEX, HNSW, IVF_FLAT, FLAT"),
        ("rows", "", "--rows: expected a number, got nothing"),
    ],
)
def test_bad_form_text_is_one_line(field: str, text: str, message: str) -> None:
    with pytest.raises(LoadgenError) as caught:
        Settings.from_options(argparse.Namespace(**{**vars(parse()), field: text}), "http://h:1")
    assert str(caught.value) == message
