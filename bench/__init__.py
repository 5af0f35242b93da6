"""Benchmarks (``make bench``): dbhealth against the raw drivers and against its peers.

Not part of the test suite. Runs against the machine's real PostgreSQL, MariaDB and
SQLite with its own aliases (``bench/settings.py``) and its own databases.
"""
