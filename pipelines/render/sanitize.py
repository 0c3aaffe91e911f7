"""Allowlist HTML sanitising: model output and document text are untrusted."""
from __future__ import annotations

import re

import nh3

ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s",
    "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
}


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # A src loads as the page renders, so any URL would let a document make every viewer's browser
    # fetch it (or hit this server): only inline data:image/ pictures load. A link waits for a click;
    # it may go anywhere http(s) (nh3 adds rel="noopener noreferrer nofollow"), but never to data:.
    if attribute == "src":
        return value if value.strip().lower().startswith("data:image/") else None
    if attribute == "href" and value.strip().lower().startswith("data:"):
        return None
    return value


_TAG_START = re.compile(r"<(?=/?([A-Za-z][A-Za-z0-9-]*))")


def _escape_unknown_tags(fragment: str) -> str:
    # "<papersize>" in a manual or "<script>" in a hostile page is text: show it, don't drop it.
    return _TAG_START.sub(
        lambda m: "<" if m.group(1).lower() in ALLOWED_TAGS else "&lt;", fragment
    )


def sanitize_html(fragment: str) -> str:
    """The fragment with allowlisted tags kept (minus unsafe attributes and URLs) and any other
    tag-like text escaped, so it displays as text and never runs."""
    return nh3.clean(
        _escape_unknown_tags(fragment),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "data"},
        attribute_filter=_filter_attribute,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
