"""milvus-loadgen: Locust load tests for Milvus-backed retrieval apps."""

__version__ = "0.1.0"
