"""What differs between databases, one module per vendor, found by Django's ``vendor``.

``postgresql.py``, ``mysql.py`` and ``sqlite.py`` each fill one ``Vendor``
(``dashboard.vendors.base``) with everything that differs for their database: connect
bounds, connect, ping, version, read-only reading, timeout classification, vitals,
activity, maintenance and cancel statements, the migrations-table query, the option
names the system checks need. The generic modules ask ``get(vendor)`` for the parts.

A backend with no entry here (Oracle, a third-party one) is still probed, through
Django's own ``DatabaseWrapper`` (``dashboard.probes``), and its failures are
classified by ``is_timeout``'s generic reading of the error text.

Adding a vendor is adding one module that defines ``VENDOR`` and naming it in
``BUILT_IN`` below; a site can ``register`` one of its own from its ``AppConfig.ready``.
"""

from __future__ import annotations

import re

from dashboard.vendors import mysql, postgresql, sqlite
from dashboard.vendors.base import Params, Vendor

__all__ = ["VENDORS", "Params", "Vendor", "get", "is_file", "is_timeout", "register"]

BUILT_IN = (postgresql.VENDOR, mysql.VENDOR, sqlite.VENDOR)

VENDORS: dict[str, Vendor] = {vendor.name: vendor for vendor in BUILT_IN}


def register(vendor: Vendor) -> None:
    """Use ``vendor`` for every backend whose ``vendor`` is ``vendor.name`` (replaces one)."""
    VENDORS[vendor.name] = vendor


def get(name: str) -> Vendor | None:
    """The vendor Django's backend names ``name``; None: probe through Django's wrapper."""
    return VENDORS.get(name)


def is_file(name: str) -> bool:
    """Whether an alias of vendor ``name`` is a file of its own (False when unknown)."""
    vendor = VENDORS.get(name)
    return vendor is not None and vendor.is_file


def _generic_is_timeout(error: BaseException, waited_out: bool) -> bool:
    return bool(re.search(r"time(d)? ?out", str(error), re.IGNORECASE))


def is_timeout(vendor: str, error: BaseException, *, waited_out: bool = False) -> bool:
    known = VENDORS.get(vendor)
    check = known.is_timeout if known else _generic_is_timeout
    return check(error, waited_out)
