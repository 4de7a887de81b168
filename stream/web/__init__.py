"""The HTTP service: routes, pages, the access gate and the review page."""
