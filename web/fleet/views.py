import os
import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render

from web.fleet.models import Gateway
from web.fleet.status import COUNTERS, summary


@login_required
def overview(request):
    now = time.time()
    rows = [summary(gateway, now) for gateway in Gateway.objects.all()]
    offline_after = settings.FIELDGATE["OFFLINE_AFTER_SECONDS"]
    return render(request, "fleet/overview.html", {"rows": rows, "offline_after": offline_after})


@login_required
def counters(request):
    """This worker process's counters: ingest rejects, viewer drops (one worker's share)."""
    return JsonResponse({"pid": os.getpid(), "counters": dict(COUNTERS)})
