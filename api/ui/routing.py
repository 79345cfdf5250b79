"""The portal's route class: errors become HTML pages, a missing session a sign-in redirect.

The portal calls the JSON API's route functions, which raise :class:`api.problems.ApiProblem`
and the store's errors; here they are answered as a page with the same status (another
tenant's job is a 404 page, as it is a 404 document in the API). The wrapper runs outside the
route's dependencies, so the database session has already rolled back when it renders.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.problems import ApiProblem, friendly_message, store_status
from api.ui.render import SECURITY_HEADERS, error_page, is_htmx, redirect
from api.ui.session import CsrfRejected, SignInRequired
from store.errors import StoreError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def sign_in_redirect(request: Request) -> Response:
    if is_htmx(request):  # a live refresh: send the whole page to the sign-in form
        return Response(status_code=204, headers={**SECURITY_HEADERS, "HX-Redirect": "/ui/sign-in"})
    return redirect("/ui/sign-in")


class PortalRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except CsrfRejected:
                return error_page(request, 403, "The form is stale or was not sent by this portal.")
            except ApiProblem as error:
                return error_page(request, error.status, error.detail)
            except StoreError as error:
                return error_page(request, store_status(error), error.message)
            except RequestValidationError as error:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {friendly_message(e)}"
                    for e in error.errors()
                )
                return error_page(request, 422, detail)

        return handle
