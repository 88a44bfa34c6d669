"""Fixtures of the web tests that act as several users."""
import pytest

from tests.factories import database, make_key, make_user


@pytest.fixture
def people(settings):
    """Users a and b, an admin, and one API key each (with the test module's own settings)."""
    with database(settings.database_url) as session:
        return {name: make_key(session, make_user(session, name, password=f"{name}-password", admin=admin))
                for name, admin in (("a", False), ("b", False), ("root", True))}
