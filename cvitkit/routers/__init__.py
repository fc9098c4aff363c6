"""Routers: token gates, task routers, task selectors and the routers of the four methods."""

from cvitkit.routers.context import RoutingContext
from cvitkit.routers.dense import DenseSoftmaxRouter
from cvitkit.routers.registry import ROUTERS, build_router, register_router

__all__ = ["ROUTERS", "DenseSoftmaxRouter", "RoutingContext", "build_router", "register_router"]
