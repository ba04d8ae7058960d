"""moto_server as the tests start it: DynamoDB calls serialized, SQS's clock made cheap.

1. DynamoDB calls serialized.

moto 5.2.5 runs requests on threads without a lock around its DynamoDB tables, and a
TransactWriteItems whose condition fails restores every table it touched from a copy taken when
it began. A concurrent write that succeeded in between is then silently undone: measured, one
successful conditional transaction lost in 200 with two threads sending failing ones beside it.
DynamoDB itself never does this, and Fleet's workers race on purpose (conditional writes,
cancelled transactions for duplicates), so every DynamoDB operation here takes one lock.

2. TransactWriteItems without a copy of the table. moto backs up every table a transaction
touches with `copy.deepcopy` and restores it when the transaction is cancelled; the copies are
never freed (measured: 200 transactions on a 2,000-item table grew the process by 420 MB, and a
1,000-event run grew moto to 23 GB and into swap). Under the lock above nothing else writes
meanwhile, so it is enough to save the items the transaction names and put them back: the table
itself is no longer copied.

3. SQS's clock made cheap. moto filters a queue's messages by visibility on every call, reading
the time through datetime arithmetic for each message: at a depth of 1,000 one ReceiveMessage
took 415 ms, 87 % of it in `unix_time_millis` (profiled, moto 5.2.5, 2026-11-28). The same value
(wall-clock milliseconds since the epoch) from `time.time()` brings it to 16 ms and changes
nothing else, so the end-to-end tests can drain a 1,000-message backlog in minutes.

4. SendMessageBatch keeps each entry's MessageSystemAttributes. SQS accepts `AWSTraceHeader` on
a batch entry as on SendMessage; moto 5.2.5 reads it only on SendMessage and drops it from batch
entries, so a trace context that travels in the header (a message that already has 10
attributes) would vanish on moto alone. Each entry's system attributes are handed to the
`send_message` the batch makes for it, in entry order.

Usage: python launcher.py [moto_server arguments]
"""

import functools
import sys
import threading
import time

import copy

import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models.table import Table

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

class _NoTableCopy:
    """`copy` for moto's DynamoDB module: a table is "copied" as itself (see 2. above)."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


dynamodb_models.copy = _NoTableCopy()
_transact_write_items = DynamoDBBackend.transact_write_items


def _named_items(backend, transact_items):
    """(table, key, a copy of the item or None) for each item a transaction names."""
    saved = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            if op_type == "Put":
                keys = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                key = {k: op["Item"][k] for k in keys}
            else:
                key = op["Key"]
            current = backend.get_item(op["TableName"], key)
            saved.append((op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        except Exception:
            continue
    return saved


def _transact_restoring_items(self, transact_items):
    with _LOCK:
        saved = _named_items(self, transact_items)
        try:
            return _transact_write_items(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(saved):
                if attributes is None:
                    try:
                        self.delete_item(table_name, key)
                    except Exception:
                        pass
                else:
                    self.put_item(table_name, attributes)
            raise


DynamoDBBackend.transact_write_items = _transact_restoring_items

_unix_time_millis = sqs_models.unix_time_millis
_unix_time = sqs_models.unix_time


def _fast_unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _unix_time_millis(dt)


def _fast_unix_time(dt=None):
    return time.time() if dt is None else _unix_time(dt)


sqs_models.unix_time_millis = _fast_unix_time_millis
sqs_models.unix_time = _fast_unix_time

_batch = threading.local()
_send_message = sqs_models.SQSBackend.send_message
_send_message_batch = sqs_models.SQSBackend.send_message_batch


def _send_message_batch_keeping_system_attributes(self, queue_name, entries):
    _batch.system_attributes = [e.get("MessageSystemAttributes") for e in entries.values()]
    try:
        return _send_message_batch(self, queue_name, entries)
    finally:
        _batch.system_attributes = None


def _send_message_with_entry_system_attributes(self, queue_name, *args, **kwargs):
    pending = getattr(_batch, "system_attributes", None)
    if pending:
        from_entry = pending.pop(0)
        if kwargs.get("system_attributes") is None:
            kwargs["system_attributes"] = from_entry
    return _send_message(self, queue_name, *args, **kwargs)


sqs_models.SQSBackend.send_message_batch = _send_message_batch_keeping_system_attributes
sqs_models.SQSBackend.send_message = _send_message_with_entry_system_attributes

if __name__ == "__main__":
    sys.exit(main())
