"""Switch the database alias an admin model's pages read and write.

``DBHealthSiteMixin.register`` mixes ``AliasAdminMixin`` into every registered
ModelAdmin (auth.User's too); ``dbhealth_switchable = False`` on an admin class opts
out. For a model whose table can live on several aliases, every page of its admin
names its alias in the URL (``?_db=second_db``), shows a banner with the alias, its
vendor, host and last known status, and the list shows a switcher.

One idea per module:

- ``choice``: which alias a request asked for, and the session's memory of it;
- ``page``: what the banner and switcher show, from the last known probes;
- ``view``: the wrapper around each admin view (override, transaction, errors);
- ``admin``: the ModelAdmin hooks (querysets, permissions, the log);
- ``fields``, ``widgets``: relation fields, autocomplete and popups on the chosen alias;
- ``readonly``: whether an alias takes writes (its probe, refused writes);
- ``links``: every link and redirect of a switched page keeps its alias;
- ``log``: which alias each admin log entry is about, written only if the write was;
- ``auth``: editing a user on another alias never touches the admin's session;
- ``autocomplete``: the admin's autocomplete answers JSON, even from a down alias.
"""

from __future__ import annotations

from dashboard.switching.admin import AliasAdminMixin, switchable
from dashboard.switching.choice import SESSION_KEY
from dashboard.switching.view import SWITCHER_ID

__all__ = ["SESSION_KEY", "SWITCHER_ID", "AliasAdminMixin", "switchable"]
