"""Ports chosen for the embedded server and the tests' web UIs (``server.free_ports``): never from the kernel's
ephemeral range, where any outgoing connection could take one before its owner binds it, and never a port the
command binds itself."""

from __future__ import annotations

import socket

import pytest

from loadgen.errors import ServerError
from loadgen.milvus import server
from loadgen.milvus.server import free_ports


def test_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    low, high = server._ephemeral_range()
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(not low <= p <= high and p >= 1024 and p in server.port_pool() for p in ports), (low, high, ports)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: a listener could take it


def test_a_port_in_use_and_the_callers_own_ports_are_never_handed_out() -> None:
    pool = list(server.port_pool())
    start = next(i for i in range(0, len(pool) - 4, 7) if all(server._bindable(p) for p in pool[i : i + 4]))
    pool = pool[start:] + pool[:start]  # four free ports first (others on this machine may hold some)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", pool[0]))
        busy.listen()
        mine = pool[1]  # e.g. the command's --web-port, bound after the server starts
        others = set(pool[4:])
        chosen = free_ports(2, avoid=[mine, *others])  # left: pool[2] and pool[3] (pool[0] is taken)
        assert sorted(chosen) == pool[2:4]
        with pytest.raises(ServerError, match="could not find 3 free TCP ports"):
            free_ports(3, avoid=[mine, *others])
