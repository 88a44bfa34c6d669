"""Fixtures of the webhook end-to-end tests: settings for a worker allowed to deliver to loopback
quickly, and a receiver that checks each signature."""
import pytest

from tests.helpers.receiver import SECRET, Receiver


@pytest.fixture
def webhook_settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, webhook_secret=SECRET, webhook_allow_private=True,
                         webhook_backoff_s=1, webhook_max_attempts=3)


@pytest.fixture
def receiver():
    found = Receiver(SECRET)
    found.url = found.start()
    yield found
    found.stop()
