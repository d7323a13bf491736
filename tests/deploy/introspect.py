"""Find a service's settings class, to check variable names against it."""

from __future__ import annotations

import importlib
import inspect

from shared.settings import ServiceSettings


def settings_class(module_name: str) -> type[ServiceSettings]:
    module = importlib.import_module(module_name)
    classes = [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls) and issubclass(cls, ServiceSettings) and cls is not ServiceSettings
        and cls.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{module_name}: expected one settings class, found {classes}"
    return classes[0]
