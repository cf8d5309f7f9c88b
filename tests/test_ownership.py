"""What the end of a run does with a collection (ownership.decide_release): one rule for every layer, no server."""

from __future__ import annotations

from typing import Any

import pytest

from loadgen.config.settings import Settings
from loadgen.milvus import ownership

THIS_RUN = "run-this"


def desc(*, owned: bool, run: str | None, by_property: bool = False) -> dict[str, Any]:
    props = {ownership.RUN_PROPERTY: run} if run else {}
    if owned and by_property:
        props[ownership.OWNER_PROPERTY[0]] = ownership.OWNER_PROPERTY[1]
    return {"description": ownership.MARKER if owned and not by_property else "", "properties": props}


@pytest.mark.parametrize(
    ("d", "flags", "dropped", "says"),
    [
        (desc(owned=True, run=THIS_RUN), {}, True, "created by this run"),
        (desc(owned=True, run=THIS_RUN, by_property=True), {}, True, "created by this run"),
        (desc(owned=True, run=THIS_RUN), {"keep_data": True}, False, "--keep-data"),
        (desc(owned=True, run="earlier"), {}, False, "reused from an earlier run; pass --recreate or --drop-reused"),
        (desc(owned=True, run=None), {}, False, "reused from an earlier run"),  # made before run ids existed
        (desc(owned=True, run="run-earlier"), {"drop_reused": True}, True, "--drop-reused"),
        (desc(owned=True, run="run-earlier"), {"drop_reused": True, "keep_data": True}, False, "--keep-data"),
        (desc(owned=False, run=None), {"drop_reused": True}, False, "not created by loadgen"),
        (desc(owned=False, run=THIS_RUN), {}, False, "not created by loadgen"),  # a copied property is not a marker
        (None, {}, False, "already gone"),
    ],
)
def test_a_run_drops_only_what_it_created(d: dict[str, Any] | None, flags: dict, dropped: bool, says: str) -> None:
    settings = Settings(uri="http://127.0.0.1:19530", run_id=THIS_RUN, **flags)
    out = ownership.decide_release(d, settings, "lg_x")
    assert out.dropped is dropped and says in out.message and "lg_x" in out.message


def test_run_id_defaults_to_one_per_process() -> None:
    a, b = Settings(uri="http://h:1"), Settings(uri="http://h:1", collection="other")
    assert ownership.run_id(a) == ownership.run_id(b) != ""
    assert ownership.run_id(Settings(uri="http://h:1", run_id="given")) == "given"


def test_what_this_process_created_is_its_own_even_when_the_server_lost_the_marks() -> None:
    """A restarted Milvus 2.3.5 can lose a collection's properties: the process that created it still drops it
    (and says it created it), while --keep-data still keeps it and another process's run still would not drop it."""
    settings = Settings(uri="http://127.0.0.1:19530", run_id=THIS_RUN)
    lost = desc(owned=True, run=None, by_property=True)
    lost["properties"] = {}  # LlamaIndex's schema: the marks were properties only, now gone
    out = ownership.decide_release(lost, settings, "lg_x", created_here=True)
    assert out.dropped and "created by this run" in out.message
    kept = ownership.decide_release(lost, Settings(uri=settings.uri, keep_data=True), "lg_x", created_here=True)
    assert not kept.dropped and "--keep-data" in kept.message
    assert not ownership.decide_release(lost, settings, "lg_x").dropped  # not known here: a user's, kept
