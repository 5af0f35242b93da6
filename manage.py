#!/usr/bin/env python
"""Django's command-line utility for the dbhealth project."""

from __future__ import annotations

import os
import sys

# Nagios' UNKNOWN: `dbhealth` could not run its checks at all.
UNKNOWN = 3


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A settings mistake (bad DATABASE_URL_*, bad number) deserves one clear line,
        # not a traceback; the messages never contain a password.
        print(f"Configuration error: {error}", file=sys.stderr)
        sys.exit(UNKNOWN if sys.argv[1:2] == ["dbhealth"] else 1)


if __name__ == "__main__":
    main()
