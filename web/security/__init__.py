"""The site's defences: failure limits per client and account (``limits``), the same-origin
check of people's sockets (``origin``), the Content-Security-Policy header (``csp``) and the
rate-limited login form (``login``). The decisions are pure (gateway/core/rate_window.py,
gateway/core/origins.py); these modules bind them to Django's cache, settings and requests."""
