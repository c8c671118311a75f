"""Settings of the bare floor project: nothing but what Django needs to answer one view."""

import os

SECRET_KEY = os.environ.get("SECRET_KEY") or "floor-" + "x" * 50
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "loadtest.floor.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TEMPLATES: list[dict[str, object]] = []
LOGGING_CONFIG = None
