from django.urls import path

from web.fleet import views

app_name = "fleet"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("fleet/counters.json", views.counters, name="counters"),
]
