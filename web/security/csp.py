"""The Content-Security-Policy header of every page (settings.CONTENT_SECURITY_POLICY).

Django 5.2 has no CSP support (6.0 adds it); the policy here is one fixed header, because the
pages carry no inline script or style (data reaches scripts through ``json_script``, which a
policy does not block), so nothing needs a nonce, and a package for it would be more than this.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin


class ContentSecurityPolicyMiddleware(MiddlewareMixin):  # sync and async, as Django's own
    def process_response(self, request, response):
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
