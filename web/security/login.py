"""Django's login view, with failures limited per client address and per account name.

Over either limit the form answers 429 with ``Retry-After`` and does not check the password at
all, so guessing on cannot tell a right password from a wrong one. Failures are counted when
the form is invalid (Django's ``AuthenticationForm`` found no such user and password); a
successful login forgets its account's failures. Each refusal is logged and counted.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import views as auth_views

from gateway.core.rate_window import Limit
from gateway.logs import log_event
from web.fleet import counters
from web.security.limits import FailureLimiter

log = logging.getLogger("web.security")


def limiters() -> tuple[FailureLimiter, FailureLimiter]:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    return (
        FailureLimiter("login-client", Limit(settings.LOGIN_FAILURES_PER_CLIENT, window)),
        FailureLimiter("login-account", Limit(settings.LOGIN_FAILURES_PER_ACCOUNT, window)),
    )


def client_address(request) -> str:
    """The peer's address as the ASGI server saw it (uvicorn puts the client of a proxy on
    127.0.0.1 there from X-Forwarded-For; see docs/web.md, "TLS")."""
    return request.META.get("REMOTE_ADDR") or "unknown"


class LimitedLoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        by_client, by_account = limiters()
        client = client_address(request)
        account = (request.POST.get("username") or "")[:150].lower()
        for limiter, who, what in ((by_client, client, "client"), (by_account, account, "account")):
            wait = limiter.refused_for(who)
            if wait is not None:
                return self.refuse(request, client, account, what, wait)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated and response.status_code == 302:
            by_account.forget(account)
        else:
            by_client.failed(client)
            by_account.failed(account)
            counters.COUNTERS.add(counters.LOGIN_FAILED)
        return response

    def refuse(self, request, client: str, account: str, what: str, wait: int):
        counters.COUNTERS.add(counters.LOGIN_THROTTLED)
        log_event(
            log,
            logging.WARNING,
            "login_refused",
            client=client,
            account=account[:64],
            limit=what,
            retry_after=wait,
            hint=f"too many failed logins from this {what}; it may try again in {wait} s "
            "(FIELDGATE_WEB_LOGIN_FAILURES_PER_CLIENT, _PER_ACCOUNT, _WINDOW_SECONDS)",
        )
        response = self.render_to_response(
            {**self.get_context_data(), "throttled": True, "retry_after": wait}, status=429
        )
        response["Retry-After"] = str(wait)
        return response
