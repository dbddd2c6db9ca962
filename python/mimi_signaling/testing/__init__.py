"""Tools for testing and demonstrating deployments: not used by a running server.

- ``cluster``: real ``mimi serve`` processes on loopback with a private CA (the tests, the
  benchmarks and ``mimi demo``).
"""
