"""Every link and redirect of a switched page keeps its alias.

The admin's templates build many links with no way to add a parameter: breadcrumbs,
the sidebar, the objects listed on a delete confirmation, the history page's links,
the redirect after a password change. Without ``_db`` such a link opens the alias the
session remembers, which another tab may have changed. So a switched page's HTML and
its redirect are passed through ``keep_alias``: a link to a page of a switched model
that may live on the alias, and that names no alias, gets ``_db=<alias>``.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from django.db import models
from django.http import HttpResponseBase
from django.http.response import HttpResponseRedirectBase
from django.template.response import TemplateResponse
from django.urls import Resolver404, resolve

from dashboard.aliases import ALIAS_VAR, allowed_aliases

# Attribute name, quote, URL: the admin's templates quote every URL with double quotes.
_URL_ATTRIBUTE = re.compile(r'(?P<name>\b(?:href|action))="(?P<url>[^"]*)"')


def switched_model(path: str) -> type[models.Model] | None:
    """The model whose switched admin view serves ``path``, or None."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    model = getattr(match.func, "dbhealth_model", None)
    return model if isinstance(model, type) and issubclass(model, models.Model) else None


class _Linker:
    def __init__(self, alias: str, here: str) -> None:
        self.alias = alias
        self.here = here
        self._answers: dict[str, bool] = {}

    def _keeps(self, path: str) -> bool:
        if path not in self._answers:
            model = switched_model(path)
            self._answers[path] = model is not None and self.alias in allowed_aliases(model)
        return self._answers[path]

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not (parts.path or parts.query):
            return url  # off site, a fragment, or "this page" (which has its alias)
        if any(name == ALIAS_VAR for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
            return url
        # Relative links ("../password/" on a user's form) resolve against this page.
        if not self._keeps(urljoin(self.here, parts.path)):
            return url
        # Appended, so the rest of the query stays exactly as the admin wrote it.
        query = "&".join(part for part in (parts.query, urlencode({ALIAS_VAR: self.alias})) if part)
        return urlunsplit(parts._replace(query=query))

    def attribute(self, found: re.Match[str]) -> str:
        url = html.unescape(found["url"])
        kept = self.url(url)
        if kept == url:
            return found[0]
        return f'{found["name"]}="{html.escape(kept)}"'


def keep_alias(response: HttpResponseBase, alias: str, here: str) -> HttpResponseBase:
    """``response`` with ``_db=<alias>`` on its links and redirect to switched pages."""
    linker = _Linker(alias, here)
    if isinstance(response, HttpResponseRedirectBase):
        response["Location"] = linker.url(response["Location"])
    elif (
        isinstance(response, TemplateResponse)
        and response.is_rendered
        and response.get("Content-Type", "").startswith("text/html")
    ):
        charset = response.charset or "utf-8"
        content = response.content.decode(charset)
        response.content = _URL_ATTRIBUTE.sub(linker.attribute, content).encode(charset)
    return response
