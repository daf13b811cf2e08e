"""`goldgate argilla push / pull / status / push-candidates` against the real local Argilla server."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from argilla_helpers import record, respond

pytestmark = pytest.mark.argilla


def _run_dir(tmp_path, outputs: dict[str, str], model: str = "openai/sim-router"):
    """A run directory whose cases.jsonl holds the LLM's outputs, as `goldgate run` writes it."""
    run = tmp_path / "run"
    run.mkdir()
    lines = [json.dumps({"suite": "s", "case_id": cid, "repeat": 0, "status": "passed", "model": model,
                         "output": {"label": label, "text": label}, "confidence": 0.8, "error": None})
             for cid, label in outputs.items()]
    (run / "cases.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_push_candidates_two_annotators_pull_and_idempotence(make_project, annotators, owner, tmp_path):
    proj = make_project('url = "local"\nmin_submitted = 2\n')
    labelled = [record(i, ["card", "refund", "transfer", "other"][i % 4]) for i in range(4)]
    pool = [record(i, None, split="pool") for i in range(10, 16)]
    proj.write(labelled + pool)
    run = _run_dir(tmp_path, {"r0010": "card", "r0011": "refund", "r0012": "card", "r0013": "other",
                                "r0014": "card"})

    out = proj.goldgate("argilla", "push-candidates", proj.name, str(run))
    assert "5 sent" in out.stdout and "1 unlabelled record(s) had no output" in out.stdout
    ds = owner.datasets(proj.name, workspace="argilla")
    suggested = {r.id: [(s.value, s.agent, s.score) for s in r.suggestions] for r in ds.records()}
    assert suggested["r0011"] == [("refund", "openai/sim-router", 0.8)]

    (a, ca), (b, cb) = annotators(2)
    respond(owner, ca, proj.name, "r0010", "submitted", "card")       # both accept the LLM's label
    respond(owner, cb, proj.name, "r0010", "submitted", "card")
    respond(owner, ca, proj.name, "r0011", "submitted", "transfer")   # both correct it
    respond(owner, cb, proj.name, "r0011", "submitted", "transfer")
    respond(owner, ca, proj.name, "r0012", "submitted", "card")       # they disagree
    respond(owner, cb, proj.name, "r0012", "submitted", "refund")
    respond(owner, ca, proj.name, "r0013", "discarded")               # both discard
    respond(owner, cb, proj.name, "r0013", "discarded")
    respond(owner, ca, proj.name, "r0014", "draft", "other")          # a draft only

    out = proj.goldgate("argilla", "pull", proj.name)
    assert "2 updated" in out.stdout and "1 removed" in out.stdout, out.stdout
    assert "Krippendorff's alpha" in out.stdout and "r0012" in out.stdout
    got = proj.read()
    assert got["r0010"]["expected"] == {"label": "card"}
    assert got["r0010"]["provenance"]["source"] == "human"
    assert got["r0011"]["expected"] == {"label": "transfer"}
    prov = got["r0011"]["provenance"]
    assert prov["source"] == "llm-corrected"
    assert prov["annotators"] == sorted([a.username, b.username])
    assert prov["llm"] == {"label": {"model": "openai/sim-router", "suggested": "refund"}}
    assert prov["argilla_record_id"]
    assert got["r0012"]["expected"] == {} and got["r0014"]["expected"] == {}
    assert "r0013" not in got

    before = proj.golden.read_bytes()
    again = proj.goldgate("argilla", "pull", proj.name)
    assert "0 updated, 0 added, 0 removed" in again.stdout
    assert proj.golden.read_bytes() == before
    assert "5 sent" in proj.goldgate("argilla", "push", proj.name).stdout  # the never-pushed ones
    assert "0 sent" in proj.goldgate("argilla", "push", proj.name).stdout
    status = proj.goldgate("argilla", "status", proj.name)
    assert "conflicts" not in status.stdout


def test_push_is_incremental_and_never_duplicates(make_project, owner):
    proj = make_project()
    proj.write([record(i, "card" if i % 2 else "refund") for i in range(30)])
    assert "30 sent" in proj.goldgate("argilla", "push", proj.name).stdout
    assert "0 sent, 30 unchanged" in proj.goldgate("argilla", "push", proj.name).stdout
    recs = proj.read()
    recs["r0003"]["expected"]["label"] = "refund"
    proj.write(list(recs.values()))
    assert "1 sent, 29 unchanged" in proj.goldgate("argilla", "push", proj.name).stdout
    ds = owner.datasets(proj.name, workspace="argilla")
    remote = list(ds.records())
    assert len(remote) == 30
    lock = json.loads(proj.lock.read_text())
    assert lock["dataset_id"] == str(ds.id) and lock["workspace"] == "argilla" and len(lock["records"]) == 30


def test_hidden_suggestions_for_test_split(make_project, owner, tmp_path):
    proj = make_project()
    proj.write([record(1, "card", split="test"), record(2, "refund", split="train")])
    run = _run_dir(tmp_path, {"r0001": "refund", "r0002": "card"})
    proj.goldgate("argilla", "push", proj.name, "--suggestions", str(run), "--hide-suggestions", "test")
    ds = owner.datasets(proj.name, workspace="argilla")
    sugg = {r.id: [s.value for s in r.suggestions] for r in ds.records()}
    assert sugg == {"r0001": [], "r0002": ["card"]}
    meta = {r.id: r.metadata for r in ds.records()}
    assert meta["r0001"] == {"split": "test", "source": "human"}


def test_conflict_is_reported_never_overwritten(make_project, annotators, owner):
    proj = make_project()
    proj.write([record(i, label) for i, label in enumerate(["card", "refund", "transfer"])])
    proj.goldgate("argilla", "push", proj.name)
    proj.goldgate("argilla", "pull", proj.name)
    ((_, ann),) = annotators(1)
    respond(owner, ann, proj.name, "r0001", "submitted", "card")
    recs = proj.read()
    recs["r0001"]["expected"]["label"] = "transfer"
    proj.write(list(recs.values()))

    status = proj.goldgate("argilla", "status", proj.name, check=False)
    assert status.returncode == 1 and "conflicts (changed on both sides): 1" in status.stdout and "r0001" in status.stdout
    pulled = proj.goldgate("argilla", "pull", proj.name, check=False)
    assert pulled.returncode == 1 and "1 conflict(s)" in pulled.stdout
    assert proj.read()["r0001"]["expected"] == {"label": "transfer"}
    pushed = proj.goldgate("argilla", "push", proj.name, check=False)
    assert pushed.returncode == 1 and "r0001" in pushed.stdout

    proj.goldgate("argilla", "pull", proj.name, "--prefer", "remote")
    assert proj.read()["r0001"]["expected"] == {"label": "card"}
    assert "3 in sync" in proj.goldgate("argilla", "status", proj.name).stdout


class _FlakyProxy:
    """An HTTP proxy in front of Argilla that dies after `fail_after` record reads or
    `fail_after_writes` bulk writes, like a server crash."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.fail_after, self.reads, self.down = upstream, 10**9, 0, False
        self.fail_after_writes, self.writes = 10**9, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a) -> None:
                pass

            def _forward(self) -> None:
                if "/records" in self.path and self.command == "GET" and "/me/" not in self.path:
                    proxy.reads += 1
                    if proxy.reads > proxy.fail_after:
                        proxy.down = True
                if self.path.endswith("/records/bulk") and self.command == "PUT":
                    proxy.writes += 1
                    if proxy.writes > proxy.fail_after_writes:
                        proxy.down = True
                if proxy.down:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "accept-encoding")}
                req = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers,
                                             method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, payload, rheaders = resp.status, resp.read(), resp.headers
                except urllib.error.HTTPError as exc:
                    status, payload, rheaders = exc.code, exc.read(), exc.headers
                self.send_response(status)
                self.send_header("Content-Type", rheaders.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(argilla):
    proxy = _FlakyProxy(argilla.url)
    yield proxy
    proxy.close()


@pytest.fixture
def proxied(make_project, argilla, proxy):
    """A project whose Argilla is reached through `proxy`."""
    return make_project(f'url = "{proxy.url}"\napi_key_env = "GG_TEST_ARGILLA_KEY"\n',
                        GG_TEST_ARGILLA_KEY=argilla.api_key)


@pytest.mark.slow
def test_outage_mid_pull_leaves_goldens_untouched_and_rerun_completes(proxied, proxy, owner):
    proj = proxied
    proj.write([record(i, "card" if i % 3 else "refund") for i in range(1200)])
    proj.goldgate("argilla", "push", proj.name)
    ds = owner.datasets(proj.name, workspace="argilla")
    import argilla as rg

    me = owner.me
    changed = [rg.Record(id=f"r{i:04d}", fields={"text": f"ticket number {i}: please help"},
                         responses=[rg.Response("label", "refund", user_id=me.id, status="submitted")])
               for i in range(0, 1200, 2)]
    ds.records.log(changed, batch_size=500)
    before = proj.golden.read_bytes()
    lock_before = proj.lock.read_bytes()

    proxy.fail_after = 1  # the first page of records arrives, then the server is gone
    failed = proj.goldgate("argilla", "pull", proj.name, check=False)
    assert failed.returncode == 2
    assert failed.stderr.startswith("goldgate: error: cannot reach Argilla at") and failed.stderr.count("\n") == 1
    assert "goldens unchanged" in failed.stderr
    assert proj.golden.read_bytes() == before and proj.lock.read_bytes() == lock_before

    proxy.down, proxy.fail_after = False, 10**9
    done = proj.goldgate("argilla", "pull", proj.name)
    assert "600 updated" in done.stdout  # each answered record gains its annotator
    got = proj.read()
    assert got["r0002"]["expected"] == {"label": "refund"} and got["r0001"]["expected"] == {"label": "card"}


@pytest.mark.slow
def test_outage_mid_push_then_rerun_sends_everything_once(proxied, proxy, owner):
    proj = proxied
    proj.write([record(i, "card" if i % 3 else "refund") for i in range(2200)])  # 5 batches, 4 in flight
    proxy.fail_after_writes = 2
    failed = proj.goldgate("argilla", "push", proj.name, check=False)
    assert failed.returncode == 2
    assert failed.stderr.startswith("goldgate: error: cannot reach Argilla at") and failed.stderr.count("\n") == 1
    ds = owner.datasets(proj.name, workspace="argilla")
    assert 0 < len(list(ds.records())) < 2200

    proxy.down, proxy.fail_after_writes = False, 10**9
    assert "2200 sent" in proj.goldgate("argilla", "push", proj.name).stdout
    assert "0 sent, 2200 unchanged" in proj.goldgate("argilla", "push", proj.name).stdout
    assert sorted(r.id for r in ds.records()) == [f"r{i:04d}" for i in range(2200)]


def test_one_line_errors(make_project, argilla):
    proj = make_project('url = "http://127.0.0.1:9"\napi_key_env = "GG_TEST_ARGILLA_KEY"\n',
                        GG_TEST_ARGILLA_KEY="x")
    proj.write([record(1, "card"), record(2, "refund")])
    wrong_url = proj.goldgate("argilla", "push", proj.name, check=False)
    assert wrong_url.returncode == 2
    assert wrong_url.stderr == "goldgate: error: cannot reach Argilla at http://127.0.0.1:9 while connecting " \
                               "(ConnectError); local goldens unchanged, re-run to complete\n"

    secret = "gg.not-the-key-" + "z" * 20
    bad_key = make_project(f'url = "{argilla.url}"\napi_key_env = "GG_TEST_ARGILLA_KEY"\n', GG_TEST_ARGILLA_KEY=secret)
    bad_key.write([record(1, "card"), record(2, "refund")])
    out = bad_key.goldgate("argilla", "push", bad_key.name, check=False)
    assert out.returncode == 2 and "rejected the API key from $GG_TEST_ARGILLA_KEY (401)" in out.stderr
    assert secret not in out.stderr + out.stdout

    no_ws = make_project('url = "local"\nworkspace = "nope"\n')
    no_ws.write([record(1, "card"), record(2, "refund")])
    out = no_ws.goldgate("argilla", "push", no_ws.name, check=False)
    assert out.returncode == 2 and "workspace 'nope' not found" in out.stderr

    mism = make_project()
    mism.write([record(1, "card"), record(2, "refund")])
    mism.goldgate("argilla", "push", mism.name)
    mism.write([record(1, "card"), record(2, "refund"), record(3, "brand-new-label")])
    out = mism.goldgate("argilla", "push", mism.name, check=False)
    assert out.returncode == 2
    assert "schema mismatch" in out.stderr and "brand-new-label" in out.stderr and out.stderr.count("\n") == 1
