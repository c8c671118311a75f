import pytest


@pytest.fixture(autouse=True)
def _cheap_password_hashing(settings):
    """admin_client creates a superuser; PBKDF2 at production strength costs about a second."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
