"""A stateful stand-in for the GitHub REST API endpoints goldgate uses, on 127.0.0.1.

Branches, commits and file contents live in a real bare git repository (written with git's own
plumbing), so shas are real blob/commit shas and `git clone` / `git push` against it work. Pull
requests, labels, comments and releases are kept in memory. Errors use GitHub's status codes and JSON shapes:
401 Bad credentials, 403 for a read-only token, 404 Not Found, 409 stale file sha, and 422 for an
existing ref, an existing PR for the same head, no commits between base and head, and oversized bodies.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

DOCS = "https://docs.github.com/rest"
BODY_MAX = 65_536


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "documentation_url": DOCS, "status": str(self.status)}
        if self.errors:
            out["errors"] = self.errors
        return out


def _not_found() -> ApiError:
    return ApiError(404, "Not Found")


def _validation(resource: str, message: str, **extra: Any) -> ApiError:
    return ApiError(422, "Validation Failed", [{"resource": resource, "code": "custom", "message": message, **extra}])


class GitRepo:
    """A bare repository driven through git plumbing commands."""

    def __init__(self, path: Path, default_branch: str = "main"):
        self.path = path
        self.env = {**os.environ, "GIT_DIR": str(path), "GIT_AUTHOR_NAME": "standin",
                    "GIT_AUTHOR_EMAIL": "standin@example.invalid", "GIT_COMMITTER_NAME": "standin",
                    "GIT_COMMITTER_EMAIL": "standin@example.invalid"}
        subprocess.run(["git", "init", "-q", "--bare", f"--initial-branch={default_branch}", str(path)],
                       check=True, capture_output=True)

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        proc = subprocess.run(["git", *args], check=False, input=input, env=self.env, capture_output=True)
        if check and proc.returncode:
            raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode("utf-8", errors="replace").strip()

    def ref(self, branch: str) -> str | None:
        return self.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False) or None

    def set_ref(self, branch: str, sha: str | None) -> None:
        if sha is None:
            self.git("update-ref", "-d", f"refs/heads/{branch}")
        else:
            self.git("update-ref", f"refs/heads/{branch}", sha)

    def blob(self, commit: str, path: str) -> tuple[str, bytes] | None:
        sha = self.git("rev-parse", "--verify", "-q", f"{commit}:{path}", check=False)
        if not sha or self.git("cat-file", "-t", sha) != "blob":
            return None
        data = subprocess.run(["git", "cat-file", "blob", sha], env=self.env, capture_output=True,
                              check=True).stdout
        return sha, data

    def _tree_with(self, tree: str | None, parts: list[str], blob: str) -> str:
        entries = {}
        if tree:
            for line in self.git("ls-tree", tree).splitlines():
                meta, name = line.split("\t", 1)
                entries[name] = meta
        if len(parts) == 1:
            entries[parts[0]] = f"100644 blob {blob}"
        else:
            sub = entries.get(parts[0])
            sub_sha = sub.split()[2] if sub and sub.split()[1] == "tree" else None
            entries[parts[0]] = f"040000 tree {self._tree_with(sub_sha, parts[1:], blob)}"
        spec = "".join(f"{meta}\t{name}\n" for name, meta in sorted(entries.items()))
        return self.git("mktree", input=spec.encode())

    def commit_files(self, parent: str | None, files: dict[str, bytes], message: str) -> str:
        tree = self.git("rev-parse", f"{parent}^{{tree}}") if parent else None
        for path, data in files.items():
            blob = self.git("hash-object", "-w", "--stdin", input=data)
            tree = self._tree_with(tree, path.split("/"), blob)
        assert tree is not None
        args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
        return self.git(*args)

    def commits_between(self, base: str, head: str) -> int:
        return int(self.git("rev-list", "--count", f"{base}..{head}"))

    def is_ancestor(self, old: str, new: str) -> bool:
        return subprocess.run(["git", "merge-base", "--is-ancestor", old, new], check=False, env=self.env,
                              capture_output=True).returncode == 0


@dataclass
class PullRequest:
    number: int
    title: str
    body: str
    head: str
    base: str
    state: str = "open"
    labels: list[str] = field(default_factory=list)


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: str


Hook = Callable[["GitHubStandIn", str, str], None]


class GitHubStandIn:
    """`with GitHubStandIn(tmp_path, "acme/app", tokens={"tok": "write"}) as gh: gh.api_url`."""

    def __init__(self, root: Path, full_name: str = "acme/app", *, tokens: dict[str, str] | None = None,
                 bot: str = "goldgate-bot", default_branch: str = "main"):
        self.owner, self.name = full_name.split("/")
        self.full_name = full_name
        self.tokens = tokens or {"test-token": "write"}
        self.bot = bot
        self.default_branch = default_branch
        self.git = GitRepo(root / f"{self.name}.git", default_branch)
        self.pulls: dict[int, PullRequest] = {}
        self.comments: dict[int, Comment] = {}
        self.labels: dict[str, int] = {}
        self.releases: dict[str, dict[str, Any]] = {}
        self.issue_numbers = 0
        self.comment_ids = 1000
        self.requests: list[tuple[str, str]] = []
        self.hooks: list[Hook] = []
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Self:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                standin._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v3"

    @property
    def repo_url(self) -> str:
        return f"{self.api_url}/repos/{self.full_name}"

    # --- seeding helpers for tests -------------------------------------------------------------
    def seed(self, files: dict[str, str], message: str = "initial commit") -> str:
        parent = self.git.ref(self.default_branch)
        sha = self.git.commit_files(parent, {k: v.encode() for k, v in files.items()}, message)
        self.git.set_ref(self.default_branch, sha)
        return sha

    def push(self, branch: str, files: dict[str, str], message: str) -> str:
        """A commit by someone else on `branch` (e.g. to make a client's file sha stale)."""
        sha = self.git.commit_files(self.git.ref(branch), {k: v.encode() for k, v in files.items()}, message)
        self.git.set_ref(branch, sha)
        return sha

    def file(self, branch: str, path: str) -> str | None:
        got = self.git.blob(f"refs/heads/{branch}", path)
        return got[1].decode() if got else None

    def issue_comments(self, number: int) -> list[Comment]:
        return [c for c in self.comments.values() if c.issue == number]

    def open_pull(self, head: str, base: str | None = None, title: str = "a PR") -> int:
        """A PR opened by a person (for comment tests)."""
        with self.lock:
            self.issue_numbers += 1
            self.pulls[self.issue_numbers] = PullRequest(self.issue_numbers, title, "", head,
                                                         base or self.default_branch)
            return self.issue_numbers

    def add_comment(self, number: int, body: str, user: str = "someone") -> int:
        with self.lock:
            self.comment_ids += 1
            self.comments[self.comment_ids] = Comment(self.comment_ids, number, body, user)
            return self.comment_ids

    # --- JSON shapes -------------------------------------------------------------------------
    def _user(self, login: str) -> dict[str, Any]:
        kind = "Bot" if login == self.bot else "User"
        return {"login": login, "id": abs(hash(login)) % 10**6, "type": kind,
                "url": f"{self.api_url}/users/{login}"}

    def _repo_json(self) -> dict[str, Any]:
        return {"id": 1, "name": self.name, "full_name": self.full_name, "private": False,
                "owner": self._user(self.owner) | {"type": "Organization"},
                "default_branch": self.default_branch, "url": self.repo_url,
                "html_url": f"{self.base_url}/{self.full_name}"}

    def _ref_json(self, branch: str, sha: str) -> dict[str, Any]:
        return {"ref": f"refs/heads/{branch}", "node_id": f"REF_{branch}",
                "url": f"{self.repo_url}/git/refs/heads/{quote(branch)}",
                "object": {"sha": sha, "type": "commit", "url": f"{self.repo_url}/git/commits/{sha}"}}

    def _commit_json(self, sha: str) -> dict[str, Any]:
        return {"sha": sha, "url": f"{self.repo_url}/git/commits/{sha}",
                "html_url": f"{self.base_url}/{self.full_name}/commit/{sha}",
                "message": self.git.git("log", "-1", "--format=%B", sha)}

    def _content_json(self, path: str, sha: str, data: bytes, ref: str) -> dict[str, Any]:
        return {"type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1],
                "path": path, "sha": sha, "content": base64.encodebytes(data).decode(),
                "url": f"{self.repo_url}/contents/{quote(path)}?ref={quote(ref)}",
                "html_url": f"{self.base_url}/{self.full_name}/blob/{ref}/{path}"}

    def _label_json(self, name: str) -> dict[str, Any]:
        return {"id": self.labels[name], "name": name, "color": "ededed",
                "url": f"{self.repo_url}/labels/{quote(name)}"}

    def _pr_json(self, pr: PullRequest) -> dict[str, Any]:
        def side(b: str) -> dict[str, Any]:
            return {"ref": b, "label": f"{self.owner}:{b}", "sha": self.git.ref(b) or "0" * 40,
                    "repo": self._repo_json(), "user": self._user(self.owner)}

        return {"id": 10_000 + pr.number, "number": pr.number, "state": pr.state, "title": pr.title,
                "body": pr.body, "user": self._user(self.bot), "draft": False, "merged": False,
                "url": f"{self.repo_url}/pulls/{pr.number}", "issue_url": f"{self.repo_url}/issues/{pr.number}",
                "comments_url": f"{self.repo_url}/issues/{pr.number}/comments",
                "html_url": f"{self.base_url}/{self.full_name}/pull/{pr.number}",
                "head": side(pr.head), "base": side(pr.base),
                "labels": [self._label_json(n) for n in pr.labels]}

    def _issue_json(self, pr: PullRequest) -> dict[str, Any]:
        return {"id": 20_000 + pr.number, "number": pr.number, "state": pr.state, "title": pr.title,
                "body": pr.body, "user": self._user(self.bot),
                "url": f"{self.repo_url}/issues/{pr.number}",
                "comments_url": f"{self.repo_url}/issues/{pr.number}/comments",
                "html_url": f"{self.base_url}/{self.full_name}/pull/{pr.number}",
                "labels": [self._label_json(n) for n in pr.labels],
                "pull_request": {"url": f"{self.repo_url}/pulls/{pr.number}"}}

    def _comment_json(self, c: Comment) -> dict[str, Any]:
        return {"id": c.id, "body": c.body, "user": self._user(c.user),
                "url": f"{self.repo_url}/issues/comments/{c.id}",
                "issue_url": f"{self.repo_url}/issues/{c.issue}",
                "html_url": f"{self.base_url}/{self.full_name}/pull/{c.issue}#issuecomment-{c.id}",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}

    # --- HTTP ----------------------------------------------------------------------------------
    ROUTES: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", r"", "get_repo"),
        ("GET", r"/branches/(?P<branch>.+)", "get_branch"),
        ("GET", r"/git/ref/heads/(?P<branch>.+)", "get_ref"),
        ("POST", r"/git/refs", "create_ref"),
        ("PATCH", r"/git/refs/heads/(?P<branch>.+)", "update_ref"),
        ("DELETE", r"/git/refs/heads/(?P<branch>.+)", "delete_ref"),
        ("GET", r"/contents/(?P<path>.+)", "get_contents"),
        ("PUT", r"/contents/(?P<path>.+)", "put_contents"),
        ("GET", r"/pulls", "list_pulls"),
        ("POST", r"/pulls", "create_pull"),
        ("GET", r"/pulls/(?P<number>\d+)", "get_pull"),
        ("PATCH", r"/pulls/(?P<number>\d+)", "edit_pull"),
        ("GET", r"/issues/(?P<number>\d+)", "get_issue"),
        ("GET", r"/issues/(?P<number>\d+)/comments", "list_comments"),
        ("POST", r"/issues/(?P<number>\d+)/comments", "create_comment"),
        ("PATCH", r"/issues/comments/(?P<id>\d+)", "edit_comment"),
        ("POST", r"/issues/(?P<number>\d+)/labels", "add_labels"),
        ("POST", r"/releases", "create_release"),
    ]

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        status, payload, headers = 500, {}, {}
        try:
            status, payload, headers = self._dispatch(h.command, url.path, query, raw, h.headers.get("Authorization", ""))
        except ApiError as exc:
            status, payload = exc.status, exc.payload()
        body = b"" if status == 204 else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("X-GitHub-Media-Type", "github.v3")
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _dispatch(self, method: str, path: str, query: dict[str, str], raw: bytes,
                  auth: str) -> tuple[int, Any, dict[str, str]]:
        scheme, _, token = auth.partition(" ")
        role = self.tokens.get(token) if scheme.lower() in ("token", "bearer") else None
        if role is None:
            raise ApiError(401, "Bad credentials")
        prefix = f"/api/v3/repos/{self.full_name}"
        if not path.startswith(prefix):
            raise _not_found()
        rest = path[len(prefix):]
        for m, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, rest)
            if m == method and match:
                if method != "GET" and role != "write":
                    raise ApiError(403, "Resource not accessible by integration")
                with self.lock:
                    self.requests.append((method, path))
                    for hook in list(self.hooks):
                        hook(self, method, rest)
                    data = json.loads(raw) if raw else {}
                    params = {k: unquote(v) for k, v in match.groupdict().items()}
                    result = getattr(self, f"_h_{name}")(data=data, query=query, **params)
                    return result if isinstance(result, tuple) and len(result) == 3 else (200, result, {})
        raise _not_found()

    def _page(self, items: list[Any], query: dict[str, str], path: str) -> tuple[int, Any, dict[str, str]]:
        per = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per: page * per]
        headers = {}
        if page * per < len(items):
            q = "&".join(f"{k}={quote(v)}" for k, v in {**query, "page": str(page + 1)}.items())
            headers["Link"] = f'<{self.base_url}{path}?{q}>; rel="next"'
        return 200, chunk, headers

    # --- handlers ------------------------------------------------------------------------------
    def _h_get_repo(self, **_: Any) -> Any:
        return self._repo_json()

    def _h_get_branch(self, branch: str, **_: Any) -> Any:
        sha = self.git.ref(branch)
        if sha is None:
            raise ApiError(404, "Branch not found")
        return {"name": branch, "commit": self._commit_json(sha), "protected": False}

    def _h_get_ref(self, branch: str, **_: Any) -> Any:
        sha = self.git.ref(branch)
        if sha is None:
            raise _not_found()
        return self._ref_json(branch, sha)

    def _h_create_ref(self, data: dict[str, Any], **_: Any) -> Any:
        ref, sha = data.get("ref", ""), data.get("sha", "")
        if not ref.startswith("refs/heads/") or not sha:
            raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        branch = ref[len("refs/heads/"):]
        if self.git.ref(branch) is not None:
            raise ApiError(422, "Reference already exists")
        if self.git.git("cat-file", "-t", sha, check=False) != "commit":
            raise ApiError(422, "Object does not exist")
        self.git.set_ref(branch, sha)
        return 201, self._ref_json(branch, sha), {}

    def _h_update_ref(self, branch: str, data: dict[str, Any], **_: Any) -> Any:
        old, new = self.git.ref(branch), data.get("sha", "")
        if old is None:
            raise ApiError(422, "Reference does not exist")
        if self.git.git("cat-file", "-t", new, check=False) != "commit":
            raise ApiError(422, "Object does not exist")
        if not data.get("force") and not self.git.is_ancestor(old, new):
            raise ApiError(422, "Update is not a fast forward")
        self.git.set_ref(branch, new)
        return self._ref_json(branch, new)

    def _h_delete_ref(self, branch: str, **_: Any) -> Any:
        if self.git.ref(branch) is None:
            raise ApiError(422, "Reference does not exist")
        self.git.set_ref(branch, None)
        return 204, None, {}

    def _h_get_contents(self, path: str, query: dict[str, str], **_: Any) -> Any:
        ref = query.get("ref", self.default_branch)
        commit = self.git.ref(ref) or (ref if re.fullmatch(r"[0-9a-f]{40}", ref) else None)
        if commit is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        got = self.git.blob(commit, path)
        if got is None:
            raise _not_found()
        return self._content_json(path, got[0], got[1], ref)

    def _h_put_contents(self, path: str, data: dict[str, Any], **_: Any) -> Any:
        branch = data.get("branch", self.default_branch)
        if not data.get("message") or "content" not in data:
            raise _validation("Contents", "message and content are required")
        head = self.git.ref(branch)
        if head is None:
            raise ApiError(404, f"Branch {branch} not found")
        current = self.git.blob(head, path)
        if current is not None and not data.get("sha"):
            raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if current is not None and data["sha"] != current[0]:
            raise ApiError(409, f"{path} does not match {data['sha']}")
        content = base64.b64decode(data["content"])
        sha = self.git.commit_files(head, {path: content}, data["message"])
        self.git.set_ref(branch, sha)
        blob, stored = self.git.blob(sha, path)  # type: ignore[misc]
        return 201 if current is None else 200, {"content": self._content_json(path, blob, stored, branch),
                                                 "commit": self._commit_json(sha)}, {}

    def _find_pull(self, number: str) -> PullRequest:
        pr = self.pulls.get(int(number))
        if pr is None:
            raise _not_found()
        return pr

    def _h_list_pulls(self, query: dict[str, str], **_: Any) -> Any:
        state = query.get("state", "open")
        prs = [p for p in sorted(self.pulls.values(), key=lambda p: -p.number)
               if state == "all" or p.state == state]
        head = query.get("head")
        if head and ":" in head:  # like GitHub, a bare branch name is silently ignored
            owner, branch = head.split(":", 1)
            prs = [p for p in prs if owner == self.owner and p.head == branch]
        if query.get("base"):
            prs = [p for p in prs if p.base == query["base"]]
        return self._page([self._pr_json(p) for p in prs], query, f"/api/v3/repos/{self.full_name}/pulls")

    def _h_create_pull(self, data: dict[str, Any], **_: Any) -> Any:
        head = str(data.get("head", "")).split(":")[-1]
        base = str(data.get("base", ""))
        if not data.get("title"):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "title", "code": "missing_field"}])
        if len(data.get("body") or "") > BODY_MAX:
            raise _validation("Issue", f"body is too long (maximum is {BODY_MAX} characters)", field="body")
        if self.git.ref(base) is None:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "base", "code": "invalid"}])
        if self.git.ref(head) is None:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "head", "code": "invalid"}])
        if any(p.head == head and p.base == base and p.state == "open" for p in self.pulls.values()):
            raise _validation("PullRequest", f"A pull request already exists for {self.owner}:{head}.")
        if self.git.commits_between(self.git.ref(base), self.git.ref(head)) == 0:  # type: ignore[arg-type]
            raise _validation("PullRequest", f"No commits between {base} and {head}")
        self.issue_numbers += 1
        pr = PullRequest(self.issue_numbers, data["title"], data.get("body") or "", head, base)
        self.pulls[pr.number] = pr
        return 201, self._pr_json(pr), {}

    def _h_get_pull(self, number: str, **_: Any) -> Any:
        return self._pr_json(self._find_pull(number))

    def _h_edit_pull(self, number: str, data: dict[str, Any], **_: Any) -> Any:
        pr = self._find_pull(number)
        if len(data.get("body") or "") > BODY_MAX:
            raise _validation("Issue", f"body is too long (maximum is {BODY_MAX} characters)", field="body")
        if data.get("state") == "open" and pr.state == "closed" and any(
                p.head == pr.head and p.state == "open" for p in self.pulls.values()):
            raise _validation("PullRequest", f"A pull request already exists for {self.owner}:{pr.head}.")
        for key in ("title", "body", "state"):
            if key in data:
                setattr(pr, key, data[key])
        return self._pr_json(pr)

    def _h_get_issue(self, number: str, **_: Any) -> Any:
        return self._issue_json(self._find_pull(number))

    def _h_list_comments(self, number: str, query: dict[str, str], **_: Any) -> Any:
        self._find_pull(number)
        items = [self._comment_json(c) for c in sorted(self.issue_comments(int(number)), key=lambda c: c.id)]
        return self._page(items, query, f"/api/v3/repos/{self.full_name}/issues/{number}/comments")

    def _check_body(self, body: Any) -> str:
        if not isinstance(body, str) or not body:
            raise ApiError(422, "Validation Failed", [{"resource": "IssueComment", "field": "body", "code": "missing_field"}])
        if len(body) > BODY_MAX:
            raise _validation("IssueComment", f"body is too long (maximum is {BODY_MAX} characters)", field="body")
        return body

    def _h_create_comment(self, number: str, data: dict[str, Any], **_: Any) -> Any:
        self._find_pull(number)
        cid = self.add_comment(int(number), self._check_body(data.get("body")), self.bot)
        return 201, self._comment_json(self.comments[cid]), {}

    def _h_edit_comment(self, id: str, data: dict[str, Any], **_: Any) -> Any:
        c = self.comments.get(int(id))
        if c is None:
            raise _not_found()
        if c.user != self.bot:
            raise ApiError(403, "Resource not accessible by integration")
        c.body = self._check_body(data.get("body"))
        return self._comment_json(c)

    def _h_add_labels(self, number: str, data: dict[str, Any], **_: Any) -> Any:
        pr = self._find_pull(number)
        names = data.get("labels") if isinstance(data, dict) else data
        for name in names or []:
            self.labels.setdefault(name, len(self.labels) + 1)  # GitHub creates unknown labels
            if name not in pr.labels:
                pr.labels.append(name)
        return [self._label_json(n) for n in pr.labels]

    def _h_create_release(self, data: dict[str, Any], **_: Any) -> Any:
        tag = str(data.get("tag_name") or "")
        if not tag:
            raise ApiError(422, "Validation Failed", [{"resource": "Release", "field": "tag_name", "code": "missing_field"}])
        if tag in self.releases:
            raise ApiError(422, "Validation Failed", [{"resource": "Release", "field": "tag_name", "code": "already_exists"}])
        exists = self.git.git("rev-parse", "--verify", "-q", f"refs/tags/{tag}", check=False)
        if data.get("verify_tag") and not exists:
            raise ApiError(422, "Validation Failed", [{"resource": "Release", "field": "tag_name", "code": "invalid"}])
        self.releases[tag] = {"id": len(self.releases) + 1, "tag_name": tag, "name": data.get("name") or tag,
                              "html_url": f"{self.base_url}/{self.full_name}/releases/tag/{quote(tag)}"}
        return 201, self.releases[tag], {}
