"""Settings profiles: ``web.settings.gateway`` (the embedded default) and
``web.settings.central``. Both read ``FIELDGATE_WEB_*`` variables (docs/web.md lists them)."""
