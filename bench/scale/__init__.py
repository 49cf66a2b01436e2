"""`make bench-scale`: the shop's pages and delivery rounds as its data grows (S, M, L).

`dataset` fills a migrated database with a shop's history in bulk, `measure` times every
figure of the scale table through the real app, `run` does both on SQLite and PostgreSQL and
prints one JSON object per database. Never part of `make test` (tests/test_bench_scale.py
checks the generator on tiny sizes).
"""
