"""LLM-as-a-judge: judge config, verdicts, the calibration record, and the calibration gate
(Cohen's kappa against human verdicts).

May import: models, calls, goldens and the foundation modules.
"""
