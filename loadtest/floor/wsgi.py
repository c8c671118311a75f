"""WSGI entry of the floor project (``gunicorn loadtest.floor.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "loadtest.floor.settings"
application = get_wsgi_application()
