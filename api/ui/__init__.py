"""The web portal: server-rendered pages at ``/ui/`` for researchers, tenant admins and platform
admins, served by the API process itself.

The portal is a presentation layer over the JSON API. Its routes call the same functions the
``/v1`` routes are (``api.routers.*``) with the principal of the signed-in user, so scoping,
roles and tenant isolation (another tenant's objects are a 404) are exactly the API's; it
reads nothing the API does not, except what a page needs to draw (who holds which GPU, the
tenant's run history for the decayed-usage chart). Pages are Jinja2 templates; live parts are
refreshed by htmx (vendored, pinned, in ``static/``); charts are SVG drawn on the server.

- :mod:`api.ui.session`: the signed session cookie, CSRF tokens and the signed-in user.
- :mod:`api.ui.render`: templates, navigation, security headers and HTML error pages.
- :mod:`api.ui.charts`: geometry of the SVG charts (pure functions).
- :mod:`api.ui.routers`: one router per area (sign-in, jobs, tenants, admin).
- :mod:`api.ui.portal`: mounts all of it on the application.
"""
