from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "web.fleet"
    label = "fleet"
    verbose_name = "Gateway registry and status"
