"""Humans in the loop through Argilla: push goldens and candidates, pull responses back into the
git goldens, lock files and conflicts; and a real local Argilla stack without Docker.

May import: engine (results), goldens, calls (process helpers) and the foundation modules. The
argilla SDK is imported only where a command talks to a server.
"""
