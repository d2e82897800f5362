from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from web.fleet.models import Gateway
from web.fleet.status import summary
from web.live import history


@login_required
def gateway_page(request, name: str):
    gateway = get_object_or_404(Gateway, name=name)
    served, reason = history.served_here(name)
    return render(
        request,
        "live/gateway.html",
        {"gateway": summary(gateway), "history": {"served": served, "reason": reason}},
    )
