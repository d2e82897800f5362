from django.urls import path

from web.fleet import views

app_name = "fleet"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("fleet/counters.json", views.counters, name="counters"),
    path("fleet/gateways.json", views.gateways, name="gateways"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
]
