"""milvus-loadgen: Locust load tests for Milvus-backed retrieval apps."""

import os as _os

# grpc's core reads this once, when it is first imported (any loadgen module may import pymilvus, so it is set here,
# before all of them): otherwise every failed TLS handshake is logged at INFO and breaks our one-line errors.
# setdefault: a user's own GRPC_VERBOSITY wins.
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

__version__ = "0.1.0"
