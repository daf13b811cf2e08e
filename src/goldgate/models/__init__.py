"""The runtime side of a slot: the `Model` interface (`predict(inputs) -> Prediction`), the prompted
LLM candidate, served students (scikit-learn, peft), their artifact cards and what a request costs,
and `load_model`, which app code calls.

May import: calls, goldens and the foundation modules. torch, transformers and peft are imported
only inside the student backends that need them.
"""
