"""Where plugins come from: the settings file's directory, and which entry points are allowed."""

import logging
import os
import sys
from importlib import metadata
from typing import Any, Iterable, List, Optional

logger = logging.getLogger(__name__)

ALL = "*"  # entry_point_plugins: ["*"] loads every installed one


def add_plugin_dir(settings_path: Optional[str]) -> Optional[str]:
    """Make modules beside the settings file importable (``plugins: [myshop_plugin]``).

    Appended to ``sys.path``, so an installed package of the same name still wins.
    Standalone only (the CLI, ``tornpay serve``, the zipapp, ``python server.py``).
    """
    if not settings_path or not os.path.isfile(settings_path):
        return None
    directory = os.path.dirname(os.path.abspath(settings_path))
    if directory not in sys.path:
        sys.path.append(directory)
    return directory


def selected_entry_points(group: str, allowed: Optional[Iterable[str]]) -> List[Any]:
    """The installed entry points of ``group`` that ``entry_point_plugins`` allows, by name."""
    wanted = [ALL] if allowed is None else list(allowed)
    found = list(metadata.entry_points(group=group))
    if ALL in wanted:
        return found
    chosen = [ep for ep in found if ep.name in wanted]
    for ep in found:
        if ep.name not in wanted:
            logger.info("plugin %s (entry point %s): installed but not in entry_point_plugins; "
                        "not loaded", ep.name, ep.value)
    missing = sorted(set(wanted) - {ep.name for ep in found})
    if missing:
        logger.warning("entry_point_plugins names %s, but no such entry point is installed",
                       ", ".join(missing))
    return chosen


def describe_module(obj: Any) -> str:
    """Where a plugin's code was loaded from: its file (or its name when it has none)."""
    path = getattr(obj, "__file__", None)
    if path is None:  # a function, class or object: the file of the module defining it
        module = sys.modules.get(getattr(obj, "__module__", None) or "")
        path = getattr(module, "__file__", None)
    return path or getattr(obj, "__name__", type(obj).__name__)


def describe_entry_point(ep: Any) -> str:
    """``entry point NAME = VALUE of DIST VERSION`` (the distribution when known)."""
    dist = getattr(ep, "dist", None)
    owner = f" of {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{owner}"
