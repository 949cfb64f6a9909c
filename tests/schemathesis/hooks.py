"""Schemathesis hooks for `tests/openapi.rs`: authentication that survives the run.

The run acts as one admin (token and id from the test, in IPV6WGM_ST_* variables).
Operations that would end that admin's session are still fuzzed, just not on it:

- `POST /auth/logout`, `/auth/refresh` and `/auth/refresh-token` revoke the token they are
  called with (refresh rotates it), so each of their calls gets a token of its own, from a
  fresh login of the same admin.
- `PUT`/`PATCH`/`DELETE /users/{id}` and `POST /users/{id}/reset-password` on the run's own
  user could demote, disable or delete it, or sign it out (a new password revokes its
  tokens), so such a call is sent to an id that does not exist instead (a 404).

- `PUT /system/config` with a small `api_rate_limit` would answer every later request of the
  run 429 (the limit is per user, and the run is one user), and `monitoring_enabled: false`
  would stop the figures other operations read: the limit is raised to 1,000,000 a minute
  (still a valid, enforced value) and the collector is left on. The 429 itself is tested in
  tests/hardening_system.rs.

Both are auth providers / hooks, so `ignored_auth` still sends its requests without and with
a broken token to every operation.
"""

import json
import os
import urllib.request

import schemathesis

BASE = os.environ["IPV6WGM_ST_BASE"]
TOKEN = os.environ["IPV6WGM_ST_TOKEN"]
USER_ID = os.environ["IPV6WGM_ST_USER_ID"]
USERNAME = os.environ["IPV6WGM_ST_USERNAME"]
PASSWORD = os.environ["IPV6WGM_ST_PASSWORD"]

REVOKING = ["/auth/logout", "/auth/refresh", "/auth/refresh-token"]
OWN_USER = {
    ("PUT", "/users/{id}"),
    ("PATCH", "/users/{id}"),
    ("DELETE", "/users/{id}"),
    ("POST", "/users/{id}/reset-password"),
}
NO_SUCH_USER = 2**62


def login() -> str:
    body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
    req = urllib.request.Request(
        BASE + "/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["data"]["access_token"]


@schemathesis.auth(refresh_interval=None).skip_for(path=REVOKING)
class RunToken:
    """The run's token, for every operation that cannot revoke it."""

    def get(self, case, ctx):
        return TOKEN

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.auth(refresh_interval=None).apply_to(path=REVOKING)
class ThrowawayToken:
    """A token of its own for each call that revokes the token it is called with."""

    def get(self, case, ctx):
        return login()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context, case, kwargs):
    op = case.operation
    if (op.method.upper(), op.path) in OWN_USER:
        params = case.path_parameters or {}
        if str(params.get("id")) == USER_ID:
            params["id"] = NO_SUCH_USER
    if (op.method.upper(), op.path) == ("PUT", "/system/config") and isinstance(case.body, dict):
        if isinstance(case.body.get("api_rate_limit"), int) and case.body["api_rate_limit"] > 0:
            case.body["api_rate_limit"] = 1_000_000
        if case.body.get("monitoring_enabled") is False:
            case.body["monitoring_enabled"] = True
