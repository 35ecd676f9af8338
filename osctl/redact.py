"""Keeps secrets out of everything osctl prints.

Function keys reach the client in two ways: the user's own key, and keys a server writes into
the URLs it returns (an app from before the operation route handed out Durable's check-status
URLs, which carry `code=`). Both are masked here, in text
and in parsed JSON, before anything is shown; `RedactingWriter` is a last line of defence on the
output streams themselves.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"

# `sig` is a storage SAS signature: just as secret as a function key when a URL carries one.
_SECRET_QUERY = re.compile(r"(?i)([?&](?:code|sig)=)[^&#\s\"'<>]*")

# Shorter values are not real keys (Azure function keys are 56 characters); masking them would
# mangle ordinary words in the output.
MIN_SECRET_LENGTH = 8


class Redactor:
    """Masks `code=`/`sig=` query values and the literal secrets it was given."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                variants.add(secret)
                variants.add(quote(secret, safe=""))
        # Longest first so that a secret containing another is masked whole.
        self._literals = sorted(variants, key=len, reverse=True)

    def text(self, value: str) -> str:
        masked = redact_url(value)
        for literal in self._literals:
            masked = masked.replace(literal, MASK)
        return masked

    def data(self, value: Any) -> Any:
        """The same JSON value with every string (keys included) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


def redact_url(url: str) -> str:
    """`url` with its `code=` (and `sig=`) query values masked."""
    return _SECRET_QUERY.sub(lambda match: match.group(1) + MASK, url)


class RedactingWriter(io.TextIOBase):
    """A text stream that redacts each write before passing it on to `target`.

    Rich decides about colours and live display from `isatty()`, so that answer is passed
    through unchanged.
    """

    def __init__(self, target: Any, redactor: Redactor) -> None:
        super().__init__()
        self._target = target
        self._redactor = redactor

    def write(self, text: str) -> int:
        self._target.write(self._redactor.text(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return bool(self._target.isatty())

    def fileno(self) -> int:
        return int(self._target.fileno())

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._target, "encoding", None) or "utf-8")
