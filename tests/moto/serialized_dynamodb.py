"""moto_server with DynamoDB calls serialized: what the tests start instead of `moto_server`.

moto 5.2.5 runs requests on threads without a lock around its DynamoDB tables, and a
TransactWriteItems whose condition fails restores every table it touched from a copy taken when
it began. A concurrent write that succeeded in between is then silently undone: measured, one
successful conditional transaction lost in 200 with two threads sending failing ones beside it.
DynamoDB itself never does this, and Fleet's workers race on purpose (conditional writes,
cancelled transactions for duplicates), so every DynamoDB operation here takes one lock.

Usage: python serialized_dynamodb.py [moto_server arguments]
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()

_SERIALIZED = (
    "create_table",
    "delete_table",
    "update_table",
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_get_item",
    "batch_write_item",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def _serialized(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return locked


for _name in _SERIALIZED:
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main())
