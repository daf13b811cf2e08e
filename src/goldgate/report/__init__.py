"""Rendering run results for people: the terminal table and markdown.

May import: decide, engine and the foundation modules.
"""
