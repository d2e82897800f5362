"""The fleet page's filters: ``{{ row.disk_free|disk:row.disk_total }}`` and the rest, from
:mod:`web.fleet.display`."""

from django import template

from web.fleet import display

register = template.Library()

register.filter("size", display.size)
register.filter("disk", display.disk)
register.filter("rate", display.rate)
register.filter("count", display.count)
register.filter("backlog", display.backlog)
register.filter("sparkline", display.sparkline)


@register.simple_tag
def age(last_seen, now):
    return display.age(last_seen, now)
