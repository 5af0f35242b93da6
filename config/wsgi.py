from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from config.startup import load

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = load(get_wsgi_application)
