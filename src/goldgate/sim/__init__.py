"""`goldgate sim`: an offline OpenAI-compatible server that answers like an LLM from an answer key
(configurable accuracy, confusions, latency, faults, judge mode). A stand-in for tests, the demo
and benchmarks; never presented as model results.

May import: the foundation modules only.
"""
