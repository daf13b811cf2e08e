"""Prompt templates: a text file with `## system` / `## user` sections and `{{ name }}` slots.

Slots are filled from the case's inputs (and `{{ labels }}` from the slot's label set). A slot
naming an image input becomes an OpenAI-style image content part, so vision models get pixels,
not a file name.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate.errors import ConfigError

__all__ = ["PromptTemplate", "load_prompt"]

_SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_SECTION = re.compile(r"^##\s*(system|user|assistant)\s*$", re.MULTILINE | re.IGNORECASE)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


@dataclass(frozen=True)
class PromptTemplate:
    path: Path
    text: str
    sections: tuple[tuple[str, str], ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def slots(self) -> set[str]:
        return {m.group(1) for _, body in self.sections for m in _SLOT.finditer(body)}

    def check(self, available: set[str]) -> None:
        """Fail before any call if the template needs a value the cases don't have."""
        missing = sorted(self.slots - available)
        if missing:
            raise ConfigError(
                f"{self.path}: template slot(s) {', '.join('{{' + m + '}}' for m in missing)} "
                f"not in the case inputs (have: {', '.join(sorted(available)) or 'none'})"
            )

    def render(self, values: dict[str, Any], base_dir: Path) -> list[dict[str, Any]]:
        """Chat messages for one case; image inputs become `image_url` content parts."""
        messages: list[dict[str, Any]] = []
        for role, body in self.sections:
            images: list[dict[str, Any]] = []

            def fill(m: re.Match[str], images: list[dict[str, Any]] = images) -> str:
                name = m.group(1)
                if name not in values:
                    raise ConfigError(f"{self.path}: template slot {{{{{name}}}}} has no value for this case")
                value = values[name]
                if _is_image(value):
                    images.append({"type": "image_url", "image_url": {"url": _image_url(value, base_dir)}})
                    return ""
                if isinstance(value, (list, tuple)):
                    return "\n".join(str(v) for v in value)
                return str(value)

            text = _SLOT.sub(fill, body).strip()
            if images:
                content: Any = ([{"type": "text", "text": text}] if text else []) + images
            else:
                content = text
            messages.append({"role": role, "content": content})
        return messages


def _is_image(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    low = value.lower().split("?", 1)[0]
    return low.endswith(_IMAGE_SUFFIXES) or value.startswith("data:image/")


def _image_url(value: str, base_dir: Path) -> str:
    if value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"image input {value!r}: cannot read {path}: {exc.strerror}") from None
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def load_prompt(path: Path) -> PromptTemplate:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"prompt template {path}: cannot read: {exc.strerror}") from None
    heads = list(_SECTION.finditer(text))
    if not heads:
        sections: tuple[tuple[str, str], ...] = (("user", text),)
    else:
        if text[: heads[0].start()].strip():
            raise ConfigError(f"{path}:1: text before the first '## system' / '## user' heading")
        parts = []
        for i, m in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            parts.append((m.group(1).lower(), text[m.end() : end]))
        sections = tuple(parts)
    if not any(role == "user" for role, _ in sections):
        raise ConfigError(f"{path}: prompt template has no '## user' section")
    return PromptTemplate(path, text, sections)
