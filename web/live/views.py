from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from web.fleet.models import Gateway
from web.fleet.status import summary
from web.live import history


@login_required
def gateway_page(request, name: str):
    gateway = get_object_or_404(Gateway, name=name)
    return render(
        request,
        "live/gateway.html",
        {"gateway": summary(gateway), "served": history.served_here(name)},
    )
