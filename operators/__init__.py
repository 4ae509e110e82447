"""burnwatch's building blocks, in rooms by concept: usage/, spend/, alerting/, connectors/.

Beside them, what every room shares: records.py (time, the records between steps),
schemas.py (the output datasets) and metrics.py (Prometheus counters).
"""

import importlib
import importlib.abc
import importlib.util
import sys

# Recovery stores written before the rooms (up to f46496c) pickled these modules' classes
# (CreditLedger, LedgerEntry, Alert) under their old names, and pickle imports a module by
# its name: the old names load the new modules, so such a store still resumes.
_MOVED = {
    "operators.ledger": "operators.spend.ledger",
    "operators.alerts": "operators.alerting.alerts",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        pass  # already executed under its new name


class _MovedModules(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in _MOVED:
            return None
        return importlib.util.spec_from_loader(name, _Alias(_MOVED[name]))


sys.meta_path.append(_MovedModules())
