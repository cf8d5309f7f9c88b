"""Locust users, one module per client layer. Importing any of them sets up everything loadgen adds to Locust:
the gevent/asyncio policy, its options and listeners (``loadgen.locust.hooks``) and the web UI's tab."""

import loadgen.runtime

# isort: split
import loadgen.locust.hooks
import loadgen.web.tab  # noqa: F401  - registers the Vector DB tab with the hooks
