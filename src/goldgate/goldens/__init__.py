"""Golden datasets: the record format (inputs, expected, metadata, provenance), the strict loader
with file:line errors, the sorted atomic writer, and importers from CSV / JSONL / Hugging Face.

May import: the foundation modules (config, errors, files) only. Everything else reads goldens.
"""
