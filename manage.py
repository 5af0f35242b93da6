#!/usr/bin/env python
"""Django's command-line utility for the dbhealth project."""

from __future__ import annotations

import os
import sys

# Nagios' UNKNOWN: `dbhealth` could not run its checks at all.
UNKNOWN = 3


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from config.startup import stop

    try:
        # Before the command: runserver's autoreloader would otherwise catch a mistake
        # found while apps load and print it as a traceback in its serving thread.
        django.setup()
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A settings mistake (bad DATABASE_URL_*, bad number, an alias that does not
        # exist) deserves one clear line, not a traceback.
        stop(error, UNKNOWN if sys.argv[1:2] == ["dbhealth"] else 1)


if __name__ == "__main__":
    main()
