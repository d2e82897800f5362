from django.urls import path

from web.live import views

app_name = "live"
urlpatterns = [path("gateways/<str:name>/", views.gateway_page, name="gateway")]
