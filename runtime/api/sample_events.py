"""The sample event of each trigger, as the console's Test tab prefills it
(``GET /api/v2/actions/triggers/{trigger}/sample``).

They are the recorded events ``tests/events/spm_sms_verify_us.json`` and
``cpp_text_verify_au.json`` (constructed from Auth0's documented schema: made-up people,
documentation IP ranges, a code that is not anyone's) without their placeholder ``secrets``: a
test run adds the action's stored secrets. ``tests/api/test_triggers.py`` checks they stay the
same as those files.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["SAMPLE_EVENTS", "sample_event"]

SAMPLE_EVENTS: dict[str, dict[str, Any]] = {
    "send-phone-message": {
        "message_options": {
            "action": "second-factor-authentication",
            "code": "481516",
            "message_type": "sms",
            "recipient": "+14155552671",
            "text": "481516 is your verification code for Acme",
        },
        "client": {
            "client_id": "s6BhdRkqt3Xq9vTzL2mN8pW4yJc0aFhE",
            "name": "Acme Web",
            "metadata": {"brand": "acme", "support_tier": "gold"},
        },
        "request": {
            "ip": "203.0.113.7",
            "method": "POST",
            "hostname": "acme.us.auth0.com",
            "language": "en-US",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
            "Safari/605.1.15",
            "geoip": {
                "cityName": "San Francisco",
                "continentCode": "NA",
                "countryCode": "US",
                "countryCode3": "USA",
                "countryName": "United States",
                "latitude": 37.7749,
                "longitude": -122.4194,
                "subdivisionCode": "CA",
                "subdivisionName": "California",
                "timeZone": "America/Los_Angeles",
            },
        },
        "tenant": {"id": "acme"},
        "transaction": {"correlation_id": "c0ffee-42"},
        "user": {
            "user_id": "auth0|64b7f0c2a1e4d3b2c1a09f87",
            "email": "jane.doe@example.com",
            "email_verified": True,
            "given_name": "Jane",
            "family_name": "Doe",
            "name": "Jane Doe",
            "nickname": "jane.doe",
            "phone_number": "+14155552671",
            "phone_verified": True,
            "picture": "https://s.gravatar.com/avatar/64b7f0c2a1e4d3b2c1a09f87?s=480&r=pg&d=mp",
            "created_at": "2024-01-10T12:00:00.000Z",
            "updated_at": "2026-08-01T09:30:00.000Z",
            "app_metadata": {"plan": "enterprise", "roles": ["admin"]},
            "user_metadata": {"lang": "en", "timezone": "America/Los_Angeles"},
            "identities": [
                {
                    "connection": "Username-Password-Authentication",
                    "provider": "auth0",
                    "user_id": "64b7f0c2a1e4d3b2c1a09f87",
                    "isSocial": False,
                }
            ],
        },
    },
    "custom-phone-provider": {
        "notification": {
            "message_type": "otp_verify",
            "delivery_method": "text",
            "recipient": "+61412345678",
            "from": "+61480000000",
            "code": "271828",
            "locale": "en_AU",
            "as_text": "271828 is your Acme verification code",
            "as_voice": "Your verification code is 2. 7. 1. 8. 2. 8",
        },
        "client": {
            "client_id": "Qm7uR2dXk9PzT4vB1nL6wY8sJh3cE0aG",
            "name": "Acme iOS",
            "metadata": {"platform": "ios"},
        },
        "connection": {
            "id": "con_9Jx1aB2cD3eF4gH5",
            "name": "Username-Password-Authentication",
            "strategy": "auth0",
            "metadata": {},
        },
        "request": {
            "ip": "203.0.113.61",
            "method": "POST",
            "hostname": "acme.au.auth0.com",
            "language": "en-AU",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
            "Mobile/15E148 Safari/604.1",
            "geoip": {
                "cityName": "Sydney",
                "continentCode": "OC",
                "countryCode": "AU",
                "countryCode3": "AUS",
                "countryName": "Australia",
                "latitude": -33.8688,
                "longitude": 151.2093,
                "subdivisionCode": "NSW",
                "subdivisionName": "New South Wales",
                "timeZone": "Australia/Sydney",
            },
        },
        "tenant": {
            "id": "acme",
            "friendly_name": "Acme",
            "home_url": "https://www.acme.example",
            "logo_url": "https://www.acme.example/logo.png",
            "support_email": "support@acme.example",
            "support_url": "https://www.acme.example/support",
        },
        "transaction": {"correlation_id": "au-verify-1e6b"},
        "user": {
            "user_id": "auth0|6bc708192a3b4c5d6e7f8091",
            "email": "chloe.nguyen@example.com.au",
            "email_verified": True,
            "given_name": "Chloe",
            "family_name": "Nguyen",
            "name": "Chloe Nguyen",
            "nickname": "chloe.nguyen",
            "phone_number": "+61412345678",
            "phone_verified": True,
            "picture": "https://s.gravatar.com/avatar/6bc708192a3b4c5d6e7f8091?s=480&r=pg&d=mp",
            "created_at": "2025-02-17T23:40:00.000Z",
            "updated_at": "2026-08-21T00:03:12.000Z",
            "app_metadata": {"plan": "team"},
            "user_metadata": {"lang": "en-AU"},
            "login_count": 42,
        },
    },
}


def sample_event(trigger: str, tenant: str) -> dict[str, Any]:
    """A fresh copy of ``trigger``'s sample, as tenant ``tenant``'s (KeyError: no such trigger)."""
    event = copy.deepcopy(SAMPLE_EVENTS[trigger])
    event["tenant"]["id"] = tenant
    return event
