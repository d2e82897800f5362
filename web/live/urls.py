from django.urls import path

from web.live import history, views

app_name = "live"
urlpatterns = [
    path("gateways/<str:name>/", views.gateway_page, name="gateway"),
    path("gateways/<str:name>/history.json", history.history_view, name="history"),
    path("gateways/<str:name>/export.csv", history.export_view, name="export"),
]
