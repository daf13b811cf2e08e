"""`goldgate llm serve`: a real local LLM (llama.cpp) on 127.0.0.1, for litellm as an `openai/` model."""

from __future__ import annotations

import argparse
import signal
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("llm", help="run a real local LLM (llama.cpp's OpenAI-compatible server)")
    s = p.add_subparsers(dest="llm_command", metavar="COMMAND", required=True)
    serve = s.add_parser("serve", help="serve a pinned GGUF (smollm2) or any GGUF file until interrupted")
    serve.add_argument("--model", default="smollm2", help="pinned alias (checksum-verified) or a GGUF path")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8766, help="port (0 picks a free one; default 8766)")
    serve.add_argument("--n-ctx", type=int, default=4096, help="context window in tokens")
    serve.add_argument("--threads", type=int, help="compute threads (default: $GOLDGATE_THREADS, 1 on ≤ 2 CPUs)")
    serve.add_argument("--alias", default="local", help="model name clients send (litellm: openai/<alias>)")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from goldgate.localllm.server import LlamaServer

    # SIGTERM unwinds like Ctrl-C, so the llama.cpp child is stopped, never orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    server = LlamaServer(args.model, host=args.host, port=args.port, n_ctx=args.n_ctx, n_threads=args.threads,
                         alias=args.alias)
    with server:
        print(f"llama.cpp serving {server.gguf.name} at {server.url} ({server.n_threads} thread(s))\n"
              f"candidate config:\n  model = \"openai/{args.alias}\"\n  api_base = \"{server.url}\"\n"
              f"  constrain_labels = true", flush=True)
        try:
            return server.wait()
        except KeyboardInterrupt:
            return 0
