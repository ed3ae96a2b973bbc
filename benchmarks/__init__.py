"""Harnesses around the ``assistant`` library: benchmarks (``summit bench``), the soak test
(``python -m benchmarks.soak``), the Milvus benchmark, BEIR import/export and the evaluation
report (tables, markdown, plot). The library never imports this package at module level; the
CLI imports it inside the commands that use it."""
