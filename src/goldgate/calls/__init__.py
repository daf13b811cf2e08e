"""Model calls: prompt templates, the request/result types and cache key, goldgate's own SQLite
cache, the litellm client (the only place litellm is imported), and the runner and worker pool that
answer a batch concurrently.

May import: the foundation modules. Knows nothing of goldens, suites or pytest.
"""
