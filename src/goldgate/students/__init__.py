"""Training students: leak-free training sets from human, corrected and LLM labels, the
scikit-learn and peft trainers, speed measurement, and the `distill` step that writes an artifact
with its card.

May import: engine, models, goldens and the foundation modules. torch, transformers and peft are
imported only inside the trainers.
"""
