from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "web.live"
    label = "live"
    verbose_name = "Live viewer"
