from django.contrib.auth import views as auth_views
from django.urls import include, path

from web.security.login import LimitedLoginView

urlpatterns = [
    path("accounts/login/", LimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("web.fleet.urls")),
    path("", include("web.live.urls")),
]
