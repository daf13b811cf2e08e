#!/usr/bin/env bash
# Installs the peer tools for bench/bench_peers.py only: they are not goldgate dependencies.
#   DeepEval 4.3.1  -> bench/.venv-deepeval (its own venv: its pins are not goldgate's)
#   promptfoo 0.121 -> bench/.peers-node (local npm prefix)
# Telemetry is off in every command that runs them (see bench/bench_peers.py); nothing is shared.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3.11}"

export DEEPEVAL_TELEMETRY_OPT_OUT=YES PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1 \
  PROMPTFOO_DISABLE_SHARING=1 PROMPTFOO_CONFIG_DIR="$here/.peers-node/promptfoo-config"

if [ ! -x "$here/.venv-deepeval/bin/python" ]; then
  "$python" -m venv "$here/.venv-deepeval"
fi
"$here/.venv-deepeval/bin/python" -m pip install -q "deepeval==4.3.1"

mkdir -p "$here/.peers-node/promptfoo-config"
npm install --prefix "$here/.peers-node" --no-save --no-audit --no-fund --loglevel=error "promptfoo@0.121"

"$here/.venv-deepeval/bin/python" -c "import deepeval; print('deepeval', deepeval.__version__)"
"$here/.peers-node/node_modules/.bin/promptfoo" --version | sed 's/^/promptfoo /'
