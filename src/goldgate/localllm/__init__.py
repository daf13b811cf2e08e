"""`goldgate llm serve`: a real local LLM behind llama.cpp's OpenAI-compatible server, on a pinned,
checksum-verified GGUF (or any GGUF path), so litellm talks to a real model over real HTTP.

Sits beside `sim` at the bottom of the layering. May import: the foundation modules only.
llama-cpp-python is never imported: the server runs as a child process.
"""
