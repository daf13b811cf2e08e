"""The eval engine, usable without pytest: `@eval` declarations, suites resolved to cases and a
model, prefetched outputs, case records, the results files (summary.json, cases.jsonl), gates
and the statistics behind them.

May import: judges, models, calls, goldens and the foundation modules.
"""
