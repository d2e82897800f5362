"""Settings profiles: ``web.settings.gateway`` (the embedded default) and
``web.settings.central``. Both read ``FIELDGATE_WEB_*`` variables, which ``variables.py``
declares (the README's site table is made from it)."""
