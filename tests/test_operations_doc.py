"""The README's table of operations is `loadgen operations`' output: the tables are the one place an operation lives."""

from __future__ import annotations

import re

from conftest import ROOT, run_cli

from loadgen import clients


def test_readme_table_is_the_tables_output() -> None:
    proc = run_cli("operations")
    assert proc.returncode == 0, proc.stderr
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- operations:begin[^>]*-->\n(.*?)\n<!-- operations:end -->", readme, re.S)
    assert block is not None and block.group(1).strip() == proc.stdout.strip()


def test_every_operation_is_one_record_with_both_flavours() -> None:
    for layer in clients.layers():
        adapter = clients.adapter(layer)
        assert sum(op.search for op in adapter.operations.values()) == 1, layer  # what fan-out and recall use
        for name, op in adapter.operations.items():
            assert op.name == name and op.kind in ("read", "write") and op.weight >= 0
            assert callable(op.inputs) and callable(op.call) and callable(op.acall or op.call)
            # twins pair up by the table, whatever the library calls its async method
            for use_async, flavour in ((False, "sync"), (True, "async")):
                request_type = layer + ("-async" if use_async else "")
                assert clients.row_operation(request_type, op.request_name(use_async)) == (layer, name, flavour)
