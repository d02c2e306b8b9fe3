"""tornpay plugins: the hook specification, the ``hookimpl`` marker and the bundled plugins."""

import pluggy

from tornpay.plugins.hookspecs import DURABLE_HOOKS, HOOK_NAMES, hookspec

# Optional: a plugin may decorate its functions with @hookimpl (for tryfirst
# and friends) or simply define functions named after the hooks.
hookimpl = pluggy.HookimplMarker("tornpay")

__all__ = ["hookimpl", "hookspec", "HOOK_NAMES", "DURABLE_HOOKS"]
