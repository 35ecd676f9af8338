"""Route values are decoded once, segment by segment, as ASP.NET Core does for the Functions host.

The local host matches templates on the raw (still percent-encoded) path: `%2F` is part of a
value, never a separator, and `%25` decodes to `%` once (no double decoding: `%252F` is `%2F`).
The corpus of `tests/e2e/test_bad_input_corpus.py` drives the same through the HTTP server.
"""

from __future__ import annotations

import pytest

from localdev.host.routes import RouteTemplate


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("platforms/acme", "acme"),
        ("platforms/a%2Fb", "a%2Fb"),
        ("platforms/..%2f..", "..%2f.."),
        ("platforms/..%252F..", "..%2F.."),
        ("platforms/a%25b", "a%b"),
        ("platforms/a%0D%0Ab", "a\r\nb"),
        ("platforms/%24%7B%7Bx%7D%7D", "${{x}}"),
        ("platforms/%E2%80%AEacme", "\u202eacme"),
        ("platforms/a%00", "a\x00"),
    ],
)
def test_a_route_value_is_decoded_once_and_keeps_encoded_slashes(path: str, value: str) -> None:
    template = RouteTemplate.parse("platforms/{solutionId}")
    assert template.match(path) == {"solutionId": value}


def test_an_encoded_slash_does_not_split_a_segment() -> None:
    template = RouteTemplate.parse("platforms/{solutionId}/scale")
    assert template.match("platforms/a%2Fscale") is None
    assert template.match("platforms/a%2Fb/scale") == {"solutionId": "a%2Fb"}
