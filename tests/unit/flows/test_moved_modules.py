"""Recovery stores written before operators/ had rooms still unpickle."""

import pickle

from operators.alerting.alerts import Alert
from operators.spend.ledger import CreditLedger, LedgerEntry


def _by_old_name(module: str, name: str):
    # What pickle wrote for a class under its module's name before the move.
    return pickle.loads(f"c{module}\n{name}\n.".encode())


def test_classes_pickled_under_their_old_modules_load_as_the_new_ones():
    assert _by_old_name("operators.ledger", "LedgerEntry") is LedgerEntry
    assert _by_old_name("operators.ledger", "CreditLedger") is CreditLedger
    assert _by_old_name("operators.alerts", "Alert") is Alert


def test_new_pickles_name_the_new_modules():
    assert b"operators.spend.ledger" in pickle.dumps(CreditLedger)
    assert b"operators.alerting.alerts" in pickle.dumps(Alert)
