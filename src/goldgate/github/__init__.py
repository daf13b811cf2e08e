"""GitHub: the sticky PR comment, step summary and annotations, and the model-swap pull request.

May import: report, decide, engine and the foundation modules. PyGithub is imported only where a
command talks to GitHub.
"""
