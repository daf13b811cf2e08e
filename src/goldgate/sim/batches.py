"""The OpenAI files and batches endpoints, simulated: upload a JSONL of chat requests, create a
batch, poll it while it "runs" for `batch_delay_s`, download the output and error files.

Answers come from the same answer key as live chat calls; `batch_fail_rate` of the requests fail
(drawn per batch and custom_id, so a retry in a new batch can succeed) and land in the error file, as a provider's would.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from goldgate.sim.answers import uniforms
from goldgate.sim.http import TOKEN, json_response

__all__ = ["BatchStore"]

_FILE_FIELDS = ("id", "object", "bytes", "created_at", "filename", "purpose", "status")


class BatchStore:
    """Files and batches held in memory for the life of the server."""

    def __init__(self, sim: Any) -> None:  # the server's _Sim: its answers, auth and stats
        self.sim = sim
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.counts = {"files": 0, "batches": 0, "batch_requests": 0}

    def register(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}", self.file)
        app.router.add_get("/v1/files/{file_id}/content", self.content)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches/{batch_id}", self.retrieve)

    def _add_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        fid = f"file-{uuid.uuid4().hex[:24]}"
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                           "filename": filename, "purpose": purpose, "status": "processed", "data": data}
        self.counts["files"] += 1
        return self.files[fid]

    @staticmethod
    def _public(f: dict[str, Any]) -> dict[str, Any]:
        return {k: f[k] for k in _FILE_FIELDS}

    async def upload(self, request: web.Request) -> web.Response:
        if not self.sim._authorized(request):
            return json_response(401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
        reader = await request.multipart()
        data, filename, purpose = b"", "upload.jsonl", ""
        async for part in reader:
            if part.name == "file":
                filename = part.filename or filename
                data = bytes(await part.read())
            elif part.name == "purpose":
                purpose = (await part.text()).strip()
        if purpose != "batch" or not data:
            return json_response(400, {"error": {"message": "expected purpose=batch and a non-empty file"}})
        return json_response(200, self._public(self._add_file(data, filename, purpose)))

    async def file(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["file_id"])
        return json_response(200, self._public(f)) if f else json_response(404, {"error": {"message": "No such File object"}})

    async def content(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["file_id"])
        if f is None:
            return json_response(404, {"error": {"message": "No such File object"}})
        return web.Response(body=f["data"], content_type="application/octet-stream")

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        f = self.files.get(body.get("input_file_id", ""))
        if f is None:
            return json_response(400, {"error": {"message": f"input_file_id {body.get('input_file_id')!r} not found"}})
        lines = [json.loads(line) for line in f["data"].splitlines() if line.strip()]
        bid = f"batch_{uuid.uuid4().hex[:24]}"
        now = time.time()
        self.batches[bid] = {
            "id": bid, "object": "batch", "endpoint": body.get("endpoint", "/v1/chat/completions"),
            "errors": None, "input_file_id": f["id"], "completion_window": body.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": int(now),
            "in_progress_at": None, "expires_at": int(now) + 86400, "completed_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"), "_lines": lines, "_t0": now,
        }
        self.counts["batches"] += 1
        self.counts["batch_requests"] += len(lines)
        return json_response(200, self._view(self.batches[bid]))

    async def retrieve(self, request: web.Request) -> web.Response:
        b = self.batches.get(request.match_info["batch_id"])
        if b is None:
            return json_response(404, {"error": {"message": "No such Batch object"}})
        return json_response(200, self._view(b))

    def _view(self, b: dict[str, Any]) -> dict[str, Any]:
        """The batch as of now: it runs for `batch_delay_s`, its counts growing linearly."""
        if b["status"] != "completed":
            delay = self.sim.s.batch_delay_s
            done = 1.0 if delay <= 0 else min(1.0, (time.time() - b["_t0"]) / delay)
            total = b["request_counts"]["total"]
            b["status"] = "in_progress"
            b["in_progress_at"] = b["in_progress_at"] or int(b["_t0"])
            b["request_counts"]["completed"] = int(total * done)
            if done >= 1.0:
                self._finish(b)
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _finish(self, b: dict[str, Any]) -> None:
        out, err = [], []
        for line in b["_lines"]:
            cid = line.get("custom_id", "")
            rid = f"batch_req_{uuid.uuid4().hex[:24]}"
            if uniforms(self.sim.s.seed, "batch-fault", b["id"], cid)[0] < self.sim.s.batch_fail_rate:
                err.append({"id": rid, "custom_id": cid, "response": {"status_code": 500, "request_id": rid, "body": {
                    "error": {"message": "The server had an error processing this request (simulated).",
                              "type": "server_error"}}}, "error": None})
                continue
            req = line.get("body") or {}
            model = str(req.get("model", ""))
            content, prompt_tokens = self.sim._answer(req, model)
            completion_tokens = len(TOKEN.findall(content))
            out.append({"id": rid, "custom_id": cid, "error": None, "response": {
                "status_code": 200, "request_id": rid, "body": {
                    "id": f"chatcmpl-{rid[10:]}", "object": "chat.completion", "created": int(time.time()),
                    "model": model, "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens}}}})
        b["output_file_id"] = self._add_file(_jsonl(out), f"{b['id']}_output.jsonl", "batch_output")["id"] if out else None
        b["error_file_id"] = self._add_file(_jsonl(err), f"{b['id']}_error.jsonl", "batch_output")["id"] if err else None
        b["request_counts"].update(completed=len(out), failed=len(err))
        b["status"] = "completed"
        b["completed_at"] = int(time.time())
        b["_lines"] = []


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()

