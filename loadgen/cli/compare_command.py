"""``loadgen compare``'s command: the layers' sync-vs-async experiment (``loadgen.cli.compare``), or with ``--modes``
the retrieval modes side by side (``loadgen.cli.modes``), each against ``--host`` or an embedded Milvus."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from loadgen.cli import preflight
from loadgen.cli.common import milvus, offline_checks, quiet_clients, terminate_on_sigterm
from loadgen.config.settings import Settings, positive_ints
from loadgen.errors import LoadgenError


def _modes_command(args: argparse.Namespace) -> int:
    from loadgen.cli import modes

    wanted = modes.parse_modes(args.modes)  # before any server is started or touched
    quiet_clients()
    checked = offline_checks(args)
    out = (args.out or Path("results") / time.strftime("compare-%Y%m%d-%H%M%S")).resolve()
    preflight.check_run(args, checked, None, out)
    terminate_on_sigterm()
    with milvus(args) as (host, _keep):
        settings = Settings.from_options(args, host)
        rows, created = modes.compare_modes(settings, wanted, args.mode_queries, out)
        if created and not args.keep_data:
            from loadgen.clients import retrieval

            retrieval.drop(settings)
    print(modes.render(rows))
    print(f"\nresults: {out / 'modes.json'}  chart: {out / 'modes.png'}")
    return 0


def command(args: argparse.Namespace) -> int:
    from loadgen.cli import compare
    from loadgen.milvus import collection

    if args.modes:
        return _modes_command(args)
    counts = positive_ints(args.counts, "--counts")
    quiet_clients()
    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    from loadgen.clients import layers as known_layers

    unknown = [x for x in layers if x not in known_layers()]
    if unknown or not layers:  # before any server or collection is touched
        bad = unknown[0] if unknown else args.layers
        raise LoadgenError(f"--layers: unknown client layer {bad!r}; choose from {', '.join(known_layers())}")

    checked = offline_checks(args)
    out = (args.out or Path("results") / time.strftime("compare-%Y%m%d-%H%M%S")).resolve()
    preflight.check_run(args, checked, None, out)
    terminate_on_sigterm()
    with milvus(args) as (host, _keep):
        base = Settings.from_options(args, host)
        if args.collection == "loadgen_bench":  # the default: compare collections get their own prefix
            base = dataclasses.replace(base, collection="loadgen_compare")
        version = collection.check(base)
        print(f"loadgen: Milvus {version} at {collection.redact_uri(base.uri)}", file=sys.stderr)
        rows = compare.compare(base, layers, counts, out, log=lambda m: print(m, file=sys.stderr))
    print(compare.render(rows))
    print(f"\nresults: {out / 'compare.json'}  chart: {out / 'compare.png'}")
    return 0
