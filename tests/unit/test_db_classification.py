"""The one classification every database step shares (pure: driver exceptions built by hand)."""

from __future__ import annotations

import sqlite3

import pymysql
import pytest
from sqlalchemy.exc import OperationalError

from drainer.db.engine import classified, is_transient
from drainer.errors import DatabaseAccessDenied, DatabaseLocked, DatabaseUnavailable


def mysql(number: int, text: str = "x") -> OperationalError:
    return OperationalError("SELECT 1", {}, pymysql.err.OperationalError(number, text))


def sqlite(text: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(text))


@pytest.mark.parametrize(
    ("error", "transient", "kind"),
    [
        (mysql(1290, "read-only"), True, DatabaseUnavailable),  # a failover: retried, then 69
        (mysql(1792, "read-only transaction"), True, DatabaseUnavailable),
        (mysql(2006, "gone away"), True, DatabaseUnavailable),
        (mysql(2013, "lost connection"), True, DatabaseUnavailable),
        (mysql(4031, "disconnected for inactivity"), True, DatabaseUnavailable),
        (mysql(1205, "Lock wait timeout exceeded"), True, DatabaseLocked),
        (sqlite("database is locked"), True, DatabaseLocked),
        (mysql(1142, "INSERT command denied to user 'ro'@'%' for table 'drainer_leases'"), False, DatabaseAccessDenied),
        (mysql(1045, "Access denied"), False, DatabaseAccessDenied),
        (sqlite("attempt to write a readonly database"), False, DatabaseAccessDenied),
        (mysql(1064, "syntax"), False, DatabaseUnavailable),
    ],
)
def test_each_error_is_retried_or_classified_as_the_batch_does(error, transient: bool, kind: type) -> None:
    assert is_transient(error) is transient
    result = classified(error, "taking the lease")
    assert type(result) is kind and str(result).startswith("taking the lease: ")
