"""The simulator over real HTTP: protocol shape, answer key statistics, faults, judge mode, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

import goldgate.sim.server
from goldgate.errors import ConfigError, GoldenFormatError
from goldgate.sim.process import SimProcess
from goldgate.sim.server import build_app, running
from goldgate.sim.settings import SimSettings

T = TypeVar("T")
SRC = Path(goldgate.sim.server.__file__).resolve().parents[2]
LABELS = [
    "card_arrival", "card_delivery_estimate", "card_not_working", "card_linking",
    "lost_or_stolen_card", "transfer_failed", "transfer_not_received", "pending_transfer",
    "cancel_transfer", "top_up_failed", "top_up_reverted", "pending_top_up", "top_up_limits",
    "exchange_rate", "exchange_charge", "wrong_exchange_rate", "refund_not_showing",
    "request_refund", "balance_not_updated", "pin_blocked",
]  # fmt: skip
N_CASES = 2000
WRAPPED = re.compile(r"^(?:Intent: (\S+)|The intent is (\S+)\.|`(\S+)`)$")


def _text(i: int) -> str:
    return f"Customer message number {i} about my account"


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = [
        {
            "id": f"case-{i:05d}",
            "inputs": {"text": _text(i)},
            "expected": {"label": LABELS[i % len(LABELS)]},
            "metadata": {"split": "test"},
            "provenance": {"source": "human"},
        }
        for i in range(N_CASES)
    ]
    records.append(
        {
            "id": "img",
            "inputs": {"image": "https://img.test/cat.png"},
            "expected": {"label": "pin_blocked"},
        }
    )
    return _write(tmp_path_factory.mktemp("key") / "intents.jsonl", records)


def _truth(i: int) -> str:
    return LABELS[i % len(LABELS)]


def _settings(key: Path, **kw: Any) -> SimSettings:
    return SimSettings(port=0, keys=[key], **kw)


def _serve(settings: SimSettings, body: Callable[[str, aiohttp.ClientSession], Awaitable[T]]) -> T:
    async def main() -> T:
        async with running(settings) as url, aiohttp.ClientSession() as http:
            return await body(url, http)

    return asyncio.run(main())


def _ask(text: Any, model: str = "sim-model", **extra: Any) -> dict[str, Any]:
    system = {"role": "system", "content": "Classify the customer message into one intent."}
    return {"model": model, "messages": [system, {"role": "user", "content": text}], **extra}


async def _post(
    http: aiohttp.ClientSession, url: str, payload: Any, **kw: Any
) -> tuple[int, dict[str, str], dict[str, Any]]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with http.post(f"{url}/chat/completions", data=data, **kw) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def _contents(http: aiohttp.ClientSession, url: str, payloads: list[Any]) -> list[str]:
    sem = asyncio.Semaphore(32)

    async def one(payload: Any) -> str:
        async with sem:
            status, _, body = await _post(http, url, payload)
            assert status == 200, body
            return body["choices"][0]["message"]["content"]

    return await asyncio.gather(*(one(p) for p in payloads))


async def _stats(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url.removesuffix("/v1") + "/_sim/stats") as resp:
        return await resp.json()


def _unwrap(content: str) -> str:
    m = WRAPPED.match(content)
    return next(g for g in m.groups() if g) if m else content


def test_completion_has_openai_shape_and_usage(key: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        status, _, out = await _post(http, url, _ask(f"Message: {_text(3)}", model="sim-strong"))
        assert status == 200
        assert out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-")
        assert out["model"] == "sim-strong" and isinstance(out["created"], int)
        choice = out["choices"][0]
        assert choice["finish_reason"] == "stop"
        assert choice["message"] == {"role": "assistant", "content": _truth(3), "refusal": None}
        prompt = 2 * 3 + len(
            re.findall(r"\w+|[^\w\s]", "Classify the customer message into one intent.")
        )
        prompt += len(re.findall(r"\w+|[^\w\s]", f"Message: {_text(3)}"))
        assert out["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": 1,
            "total_tokens": prompt + 1,
        }
        async with http.get(f"{url}/models") as resp:
            models = await resp.json()
        assert models == {
            "object": "list",
            "data": [
                {"id": "sim-strong", "object": "model", "created": 0, "owned_by": "goldgate-sim"}
            ],
        }

    _serve(_settings(key, accuracy=1.0, format_noise=0, model_accuracy={"sim-strong": 1.0}), body)


def test_litellm_talks_to_it_unchanged(key: Path) -> None:
    import litellm

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        resp = await litellm.acompletion(
            model="openai/sim-model", api_base=url, api_key="x", messages=_ask(_text(7))["messages"]
        )
        assert resp.choices[0].message.content == _truth(7)
        assert resp.usage.completion_tokens == 1 and resp.usage.prompt_tokens > 10
        assert (await _stats(http, url))["by_model"] == {"sim-model": 1}

    _serve(_settings(key, accuracy=1.0, format_noise=0), body)


@pytest.fixture(scope="module")
def default_run(key: Path) -> list[str]:
    """Raw answers of the default model (accuracy 0.85, format noise 0.03) for every case."""

    async def body(url: str, http: aiohttp.ClientSession) -> list[str]:
        return await _contents(http, url, [_ask(f"Message: {_text(i)}") for i in range(N_CASES)])

    return _serve(_settings(key), body)


def test_accuracy_is_on_target_overall_per_class_and_per_model(
    key: Path, default_run: list[str]
) -> None:
    answers = [_unwrap(a) for a in default_run]
    assert abs(sum(a == _truth(i) for i, a in enumerate(answers)) / N_CASES - 0.85) <= 0.03
    per_class: dict[str, list[bool]] = defaultdict(list)
    for i, a in enumerate(answers):
        per_class[_truth(i)].append(a == _truth(i))
    rates = [sum(v) / len(v) for v in per_class.values()]
    assert max(rates) - min(rates) >= 0.08, "classes should differ in difficulty"

    async def weak(url: str, http: aiohttp.ClientSession) -> list[str]:
        return await _contents(
            http, url, [_ask(_text(i), model="sim-weak") for i in range(N_CASES)]
        )

    answers = _serve(_settings(key, format_noise=0, model_accuracy={"sim-weak": 0.6}), weak)
    assert abs(sum(a == _truth(i) for i, a in enumerate(answers)) / N_CASES - 0.6) <= 0.03


def _jaccard(a: str, b: str) -> float:
    x, y = set(re.split(r"[_\s-]+", a)), set(re.split(r"[_\s-]+", b))
    return len(x & y) / len(x | y)


def test_wrong_answers_are_confusions_with_similar_labels(default_run: list[str]) -> None:
    wrong = [(_truth(i), _unwrap(a)) for i, a in enumerate(default_run) if _unwrap(a) != _truth(i)]
    assert all(a in LABELS for _, a in wrong)
    confused: dict[str, set[str]] = defaultdict(set)
    for truth, answer in wrong:
        confused[truth].add(answer)
    assert all(len(v) <= 3 for v in confused.values())
    similarity = sum(_jaccard(t, a) for t, a in wrong) / len(wrong)
    baseline = sum(_jaccard(a, b) for a in LABELS for b in LABELS if a != b) / (len(LABELS) * 19)
    assert similarity > 3 * baseline
    assert _jaccard("top_up_failed", "top_up_reverted") == 0.5


def test_format_noise_rate(default_run: list[str]) -> None:
    wrapped = [a for a in default_run if a not in LABELS]
    assert all(WRAPPED.match(a) for a in wrapped)
    assert abs(len(wrapped) / N_CASES - 0.03) <= 0.012
    assert len({a.split(" ")[0][:3] for a in wrapped}) >= 2


def test_unknown_input_gets_a_plausible_label_and_free_text_is_garbled(
    tmp_path: Path, key: Path
) -> None:
    refs = [
        f"The customer {i} wants a refund for the duplicated card payment of last week"
        for i in range(300)
    ]
    summaries = _write(
        tmp_path / "summaries.jsonl",
        [
            {"id": str(i), "inputs": {"ticket": f"ticket body {i}"}, "expected": {"summary": r}}
            for i, r in enumerate(refs)
        ],
    )

    async def body(url: str, http: aiohttp.ClientSession) -> list[str]:
        return await _contents(
            http, url, [_ask(f"ticket body {i}") for i in range(300)] + [_ask("never seen")]
        )

    *answers, unknown = _serve(
        SimSettings(port=0, keys=[key, summaries], accuracy=0.5, format_noise=0), body
    )
    assert unknown in LABELS
    right = sum(a == r for a, r in zip(answers, refs))
    assert 100 <= right <= 200
    for answer, ref in zip(answers, refs):
        assert answer == ref or (
            len(answer.split()) < len(ref.split()) and set(answer.split()) <= set(ref.split())
        )


def test_answers_repeat_across_processes_and_change_with_seed(key: Path) -> None:
    async def ask(url: str) -> list[str]:
        async with aiohttp.ClientSession() as http:
            return await _contents(http, url, [_ask(_text(i)) for i in range(300)])

    with SimProcess(_settings(key, seed=7)) as one, SimProcess(_settings(key, seed=7)) as two:
        first, second = asyncio.run(ask(one.url)), asyncio.run(ask(two.url))
        assert one.stats()["completions"] == 300
        one.reset()
        assert one.stats()["requests"] == 0
    with SimProcess(_settings(key, seed=8)) as other:
        third = asyncio.run(ask(other.url))
    assert first == second
    assert first != third


def test_faults_are_deterministic_counted_and_retryable(key: Path) -> None:
    payloads = [_ask(_text(i)) for i in range(400)]

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        async def statuses() -> list[int]:
            return [(await _post(http, url, p))[0] for p in payloads]

        first = await statuses()
        counts = Counter(str(s) for s in first)
        assert (await _stats(http, url))["by_status"] == dict(counts)
        assert 0.05 <= counts["429"] / 400 <= 0.15 and 0.05 <= counts["500"] / 400 <= 0.15
        async with http.post(url.removesuffix("/v1") + "/_sim/reset") as resp:
            assert resp.status == 200
        assert await statuses() == first, "a reset replays the same fault sequence"
        async with http.post(url.removesuffix("/v1") + "/_sim/reset") as resp:
            assert resp.status == 200
        limited = payloads[first.index(429)]
        status, headers, err = await _post(http, url, limited)
        assert (
            status == 429 and headers["Retry-After"] == "0.2" and headers["retry-after-ms"] == "200"
        )
        assert err["error"]["code"] == "rate_limit_exceeded" and err["error"]["type"] == "requests"
        tries = 1
        while status != 200 and tries < 30:
            status, headers, err = await _post(http, url, limited)
            tries += 1
        assert status == 200, "a retry of the same body is a new attempt and can succeed"
        status, _, err = await _post(http, url, payloads[first.index(500)])
        assert status == 500 and err["error"]["type"] == "server_error"
        stats = await _stats(http, url)
        assert stats["requests"] == tries + 1 == sum(stats["by_status"].values())

    _serve(_settings(key, rate_429=0.1, rate_500=0.1, retry_after_s=0.2), body)


def test_latency_and_jitter(key: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> list[float]:
        async def timed(i: int) -> float:
            start = time.monotonic()
            await _post(http, url, _ask(_text(i)))
            return time.monotonic() - start

        return await asyncio.gather(*(timed(i) for i in range(20)))

    elapsed = _serve(_settings(key, latency_ms=100, jitter_ms=100), body)
    assert all(0.1 <= e < 0.5 for e in elapsed)
    assert max(elapsed) - min(elapsed) > 0.03, "jitter spreads the latencies"


def test_a_hang_outlasts_a_short_client_timeout(key: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        with pytest.raises(asyncio.TimeoutError):
            await _post(http, url, _ask(_text(1)), timeout=aiohttp.ClientTimeout(total=0.1))
        start = time.monotonic()
        status, _, _ = await _post(
            http, url, _ask(_text(2)), timeout=aiohttp.ClientTimeout(total=5)
        )
        assert status == 200 and time.monotonic() - start >= 0.4
        assert (await _stats(http, url))["hangs"] == 2

    _serve(_settings(key, rate_hang=1.0, hang_s=0.4), body)


def test_max_inflight_answers_429_above_the_limit(key: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        results = await asyncio.gather(*(_post(http, url, _ask(_text(i))) for i in range(12)))
        statuses = Counter(status for status, _, _ in results)
        assert statuses == {200: 3, 429: 9}
        assert all(h["Retry-After"] == "1" for s, h, _ in results if s == 429)
        assert (await _stats(http, url))["max_inflight"] >= 4

    _serve(_settings(key, max_inflight=3, latency_ms=500), body)


def test_api_key_is_required_when_set(key: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            status, _, err = await _post(http, url, _ask("hi"), headers=headers)
            assert status == 401 and err["error"]["code"] == "invalid_api_key"
            assert "s3cret" not in json.dumps(err)
        status, _, _ = await _post(
            http, url, _ask("hi"), headers={"Authorization": "Bearer s3cret"}
        )
        assert status == 200

    _serve(_settings(key, api_key="s3cret"), body)


def test_image_parts_are_counted_and_their_url_looked_up(key: Path) -> None:
    parts = [
        {"type": "text", "text": "What does this screenshot show?"},
        {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}},
        {"type": "image_url", "image_url": {"url": "https://img.test/other.png"}},
    ]

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        assert await _contents(http, url, [_ask(parts)]) == ["pin_blocked"]
        assert (await _stats(http, url))["image_parts"] == 2

    _serve(_settings(key, accuracy=1.0, format_noise=0), body)


VERDICT_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "goldgate_verdict", "schema": {"type": "object"}},
}


def _judge_items() -> list[tuple[str, str, str | None, bool]]:
    """(input, output, reference, human truth): half right, half confused, half with a reference."""
    items = []
    for i in range(N_CASES):
        truth = _truth(i)
        output = truth if i % 2 else LABELS[(i + 1) % len(LABELS)]
        items.append((_text(i), output, truth if i % 4 >= 2 else None, output == truth))
    return items


def _judge_request(
    item: tuple[str, str, str | None, bool], model: str, marker: bool
) -> dict[str, Any]:
    inp, out, ref, _ = item
    text = f"<input>{inp}</input>\n<output>{out}</output>"
    text += f"\n<reference>{ref}</reference>" if ref is not None else ""
    if marker:
        system = "[goldgate-judge]\nGrade the output. Answer in JSON."
        return {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
        }
    return {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "response_format": VERDICT_FORMAT,
    }


def test_judge_agrees_at_the_configured_rate_and_leans_lenient(key: Path) -> None:
    items = _judge_items()

    async def body(
        url: str, http: aiohttp.ClientSession
    ) -> tuple[list[str], list[str], dict[str, Any]]:
        default = await _contents(
            http, url, [_judge_request(it, "judge", marker=False) for it in items]
        )
        weak = await _contents(
            http, url, [_judge_request(it, "judge-weak", marker=True) for it in items]
        )
        return default, weak, await _stats(http, url)

    settings = _settings(key, judge_model_agreement={"judge-weak": 0.8})
    default, weak, stats = _serve(settings, body)
    assert stats["judge_requests"] == 2 * N_CASES and stats["completions"] == 2 * N_CASES
    for answers, target in ((default, 0.95), (weak, 0.8)):
        verdicts = [json.loads(a) for a in answers]
        assert all(
            set(v) == {"verdict", "rationale"} and v["rationale"].endswith(".") for v in verdicts
        )
        said = [v["verdict"] == "pass" for v in verdicts]
        truth = [it[3] for it in items]
        agreement = sum(s == t for s, t in zip(said, truth)) / len(items)
        assert abs(agreement - target) <= 0.02
        misses = [s for s, t in zip(said, truth) if s != t]
        assert abs(sum(misses) / len(misses) - 0.7) <= 0.12, "most disagreements are false passes"


def test_judge_garbage_rate(key: Path) -> None:
    items = _judge_items()[:600]

    async def body(url: str, http: aiohttp.ClientSession) -> list[str]:
        return await _contents(
            http, url, [_judge_request(it, "judge", marker=True) for it in items]
        )

    answers = _serve(_settings(key, judge_garbage_rate=0.1), body)
    garbage = 0
    for answer in answers:
        try:
            json.loads(answer)
        except json.JSONDecodeError:
            garbage += 1
    assert abs(garbage / len(items) - 0.1) <= 0.04


def test_bad_requests_get_openai_errors_and_reset_zeroes_stats(key: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        cases = [
            (b"{not json", None),
            ({"model": "m"}, "messages"),
            ({"model": "m", "messages": []}, "messages"),
            (_ask("hi", stream=True), "stream"),
        ]
        for payload, param in cases:
            status, _, err = await _post(http, url, payload)
            assert status == 400
            assert (
                err["error"]["type"] == "invalid_request_error" and err["error"]["param"] == param
            )
            assert set(err["error"]) == {"message", "type", "param", "code"}
        stats = await _stats(http, url)
        assert stats["requests"] == 4 and stats["by_status"] == {"400": 4}
        async with http.post(url.removesuffix("/v1") + "/_sim/reset") as resp:
            assert resp.status == 200
        stats = await _stats(http, url)
        assert stats == {
            "requests": 0, "completions": 0, "hangs": 0, "image_parts": 0, "judge_requests": 0,
            "by_status": {}, "by_model": {}, "max_inflight": 0, "files": 0, "batches": 0, "batch_requests": 0,
        }  # fmt: skip

    _serve(_settings(key), body)


def test_settings_errors_are_one_line_config_errors(tmp_path: Path) -> None:
    for table, field in (
        ({"accuracy": 1.5}, "sim.accuracy"),
        ({"colour": "red"}, "sim.colour"),
        ({"keys": [str(tmp_path / "missing.jsonl")]}, "sim.keys"),
        ({"rate_429": 0.6, "rate_500": 0.6}, "rate_429 + rate_500"),
        ({"model_accuracy": {"m": -1}}, "sim.model_accuracy.m"),
    ):
        with pytest.raises(ConfigError, match=re.escape(field)) as info:
            SimSettings.model_validate(table)
        assert "\n" not in str(info.value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"inputs": {"text": "a"}, "expected": {"label": "x"}}\n{"inputs": {}}\n')
    with pytest.raises(
        GoldenFormatError, match=re.escape(f"{bad}:2: 'expected' must be an object")
    ):
        build_app(SimSettings(keys=[bad]))


def _cli(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(SRC), os.environ.get("PYTHONPATH")))),
    }
    cmd = [sys.executable, "-m", "goldgate", "sim", "serve", *args]
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_cli_serves_config_keys_writes_port_file_and_stops_on_sigterm(
    tmp_path: Path, key: Path
) -> None:
    (tmp_path / "k.jsonl").write_text(key.read_text())
    (tmp_path / "pyproject.toml").write_text(
        '[tool.goldgate.sim]\nkeys = ["k.jsonl"]\naccuracy = 1.0\n'
    )
    port_file = tmp_path / "port"
    proc = _cli("--port", "0", "--port-file", str(port_file), "--format-noise", "0", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr and proc.stderr.read()
            )
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port_file.read_text()}/v1"

        async def ask() -> list[str]:
            async with aiohttp.ClientSession() as http:
                return await _contents(http, url, [_ask(_text(i)) for i in range(20)])

        assert asyncio.run(ask()) == [_truth(i) for i in range(20)]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "a simulator, not a model" in err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(["--accuracy", "1.5"], "sim.accuracy"), (["--key", "missing.jsonl"], "sim.keys")],
)
def test_cli_bad_value_is_one_line_and_exit_2(
    tmp_path: Path, flags: list[str], expected: str
) -> None:
    proc = _cli("--no-config", "--port", "0", *flags, cwd=tmp_path)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and err.startswith("goldgate: error: ") and expected in err


def test_free_text_answers_and_their_judging(tmp_path: Path) -> None:
    """Free-text goldens (`expected.answer` + `also_correct`): the sim answers the reference or a
    garbled one, and its judge passes any listed true answer, also inside a chatty wrapper."""
    qa = _write(tmp_path / "qa.jsonl", [
        {"id": f"q{i}", "inputs": {"question": f"What happens in case number {i}?"},
         "expected": {"answer": f"Nothing at all happens in case {i}", "also_correct": [f"Case {i} is harmless"]},
         "metadata": {"split": "test"}, "provenance": {"source": "human"}}
        for i in range(200)
    ])
    items = []
    for i in range(200):
        right = [f"Nothing at all happens in case {i}", f"case {i} is HARMLESS",
                 f"Sure! Here it is:\nNothing at all happens in case {i}"][i % 3]
        out, truth = (right, True) if i % 2 else (f"Something terrible happens in case {i}", False)
        items.append((f"What happens in case number {i}?", out, f"Nothing at all happens in case {i}", truth))

    async def body(url: str, http: aiohttp.ClientSession) -> tuple[list[str], list[str]]:
        answers = await _contents(http, url, [_ask(f"Question: {it[0]}", model="answerer") for it in items])
        verdicts = await _contents(http, url, [_judge_request(it, "judge", marker=False) for it in items])
        return answers, verdicts

    answers, verdicts = _serve(_settings(qa, accuracy=0.5, format_noise=0.0, judge_agreement=1.0), body)
    right = [a == f"Nothing at all happens in case {i}" for i, a in enumerate(answers)]
    assert 0.35 <= sum(right) / len(right) <= 0.65
    assert all(r or len(a.split()) < 7 for r, a in zip(right, answers))  # wrong ones are garbled
    assert [json.loads(v)["verdict"] == "pass" for v in verdicts] == [it[3] for it in items]
