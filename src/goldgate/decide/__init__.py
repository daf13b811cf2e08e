"""Decisions from evidence: base vs head on the same cases (`compare`), and whether a student
should replace the LLM (`decision`: non-inferiority, cost, per-class guard), from the run files
and student cards (`evidence`).

May import: students, engine, models, goldens and the foundation modules.
"""
