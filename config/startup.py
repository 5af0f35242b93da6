"""How this project's entry points (manage.py, wsgi, asgi) stop on a settings mistake.

Every mistake is an ``ImproperlyConfigured`` whose message names the variable and never
a password; the operator gets that one line, not a traceback per worker.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from django.core.exceptions import ImproperlyConfigured

App = TypeVar("App")

# gunicorn's exit status for "App failed to load": its master stops instead of starting
# a new worker that would fail the same way, forever.
APP_LOAD_ERROR = 4

# The app names its own setting (DBHEALTH['ROUTES']); this project fills each DBHEALTH
# key from a variable, which is what the operator knows and must fix.
_APP_SETTING = re.compile(r"^DBHEALTH\['([A-Z_]+)'\]")


def variable_for(key: str) -> str:
    return "DATABASE_ROUTES" if key == "ROUTES" else f"DBHEALTH_{key}"


def configuration_error(error: ImproperlyConfigured) -> str:
    """The one line shown for a settings mistake."""
    text = " ".join(str(error).split())
    text = _APP_SETTING.sub(lambda found: f"{variable_for(found[1])} ({found[0]})", text)
    return f"Configuration error: {text}"


def stop(error: ImproperlyConfigured, status: int) -> NoReturn:
    print(configuration_error(error), file=sys.stderr, flush=True)
    raise SystemExit(status)


def static_files_problem() -> str | None:
    """Why pages would fail on their static files, or None.

    With a manifest storage (production), ``{% static %}`` raises for a file missing from
    the manifest: without ``collectstatic`` every admin page would be a 500.
    """
    from django.conf import settings
    from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage

    if isinstance(staticfiles_storage, ManifestFilesMixin) and (
        staticfiles_storage.read_manifest() is None
    ):
        return (
            f"the static files are not collected in STATIC_ROOT ({settings.STATIC_ROOT}): "
            "run `manage.py collectstatic --noinput` before starting the server."
        )
    return None


def load(get_application: Callable[[], App]) -> App:
    """The WSGI/ASGI application, or one line and gunicorn's "failed to load" status."""
    import django

    try:
        # What get_*_application() does first; the static files are checked before the
        # middleware loads (whitenoise warns about a missing STATIC_ROOT then).
        django.setup(set_prefix=False)
        problem = static_files_problem()
        if problem:
            raise ImproperlyConfigured(problem)
        return get_application()
    except ImproperlyConfigured as error:
        stop(error, APP_LOAD_ERROR)
