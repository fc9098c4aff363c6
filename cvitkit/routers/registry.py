"""Router registry: a name in a mixture spec → the router class built inside each adapted layer."""

from __future__ import annotations

from cvitkit.errors import ConfigError

ROUTERS: dict[str, type] = {}


def register_router(name: str):
    def wrap(cls):
        if name in ROUTERS and ROUTERS[name] is not cls:
            raise ValueError(f"router name '{name}' is already registered by {ROUTERS[name].__name__}")
        ROUTERS[name] = cls
        cls.router_name = name
        return cls

    return wrap


def _import_all_routers() -> None:
    """Import every module of this package so that each router registers itself (no central list)."""
    import importlib
    import pkgutil

    import cvitkit.routers as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def build_router(name: str, **kwargs):
    if name not in ROUTERS:
        _import_all_routers()
    if name not in ROUTERS:
        raise ConfigError(f"unknown router '{name}'. Registered routers: {', '.join(sorted(ROUTERS))}.")
    return ROUTERS[name](**kwargs)
