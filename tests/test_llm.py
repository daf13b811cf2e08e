"""The litellm client: where each request is built, and that the answer survives the change."""

from __future__ import annotations

import asyncio
import threading

from goldgate.calls.base import CallRequest
from goldgate.calls.llm import LLMClient
from goldgate.sim.process import SimProcess


def _req(model: str, url: str, i: int) -> CallRequest:
    return CallRequest(model=model, messages=[{"role": "user", "content": f"Text: hello {i}"}], api_base=url,
                       input_cost_per_token=1e-6, output_cost_per_token=2e-6)


def test_openai_compatible_builds_run_on_the_loop_everything_else_on_threads(sim: SimProcess) -> None:
    client = LLMClient(timeout_s=5, max_retries=0)
    here = threading.get_ident()

    async def go() -> tuple[list, list, int]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(client.builds)
        openai = await asyncio.gather(*(client.complete(_req("openai/sim", sim.url, i)) for i in range(20)))
        inlined = client.builds.inlined
        other = await asyncio.gather(client.complete(_req("anthropic/claude-sim", sim.url, 0)))
        return openai, other, inlined, await loop.run_in_executor(None, threading.get_ident)

    openai, other, inlined, worker = asyncio.run(go())
    assert inlined == 20 and all(r.ok and r.content and r.prompt_tokens > 0 for r in openai)
    assert openai[0].cost_usd == openai[0].prompt_tokens * 1e-6 + openai[0].completion_tokens * 2e-6
    assert client.builds.inlined == 20 and not other[0].ok  # built on a thread; the sim speaks OpenAI only
    assert worker != here  # work that is not a litellm build still runs on a thread
