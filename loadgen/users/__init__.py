"""Locust users, one module per client layer."""
