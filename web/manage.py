#!/usr/bin/env python
"""Django's command-line utility for the fieldgate site (profile: DJANGO_SETTINGS_MODULE)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings.gateway")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
