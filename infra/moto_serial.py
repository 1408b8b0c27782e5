"""moto's server, each request handled atomically, and without costs that grow with the table.

Serialized requests. moto applies a TransactWriteItems action by action and rolls a failed one
back. Under moto_server's threaded request handling, two concurrent transactions can interleave,
and a rollback can erase another request's committed writes -- something DynamoDB never does.
Tests here run concurrent writers on purpose, so this launcher serves moto's own application
behind one lock: requests still arrive concurrently, each is processed alone, as DynamoDB's
per-request atomicity would have it.

No table copies (patch_moto). moto's transact_write_items backs up the whole table with
copy.deepcopy before it starts -- once per action, not once per transaction -- and every copied
Table and Item is constructed through moto's BaseModel.__new__, which appends each instance to a
class-wide list (`instances_tracked`, shown by the /moto-api/ dashboard) that is never emptied.
So every transaction kept (actions x items in the table) Item objects alive for good: `make dev`
grew by about 10 MB per booked invoice and each booking got slower with the table's size. Here a
transaction instead snapshots only the items its actions name and puts those back if moto
cancels it; moto's own loop still decides every outcome, so cancellation reasons are moto's. And
DynamoDB and SQS models are no longer tracked (the dashboard lists none of them).

Queries read what can match (_query_reads_only_candidates). moto's Query lists and sorts the
whole table on each call; here it is handed the partition's items (for an index, the items with
its key values) and filters, sorts and pages them as before.

moto's internals are version-specific: infra/moto.sh installs exactly MOTO_VERSION, and
patch_moto() checks what it relies on and runs a self-test, failing at start-up if any of it
changed.

Queue counts read the clock once (_queue_counts_read_the_clock_once). moto's SQS computes the
time once per message to count a queue, on every SendMessage; with nothing consuming the outbox
queue locally, each send got slower with every message sent before.

Usage: python infra/moto_serial.py -H 127.0.0.1 -p PORT
       MOTO_UNPATCHED=1 ...   moto as released (only to measure the difference)
"""
import argparse
import copy
import inspect
import os
import signal
import sys
import threading

MOTO_VERSION = "5.2.5"  # keep equal to the pin in infra/moto.sh
UNTRACKED_SERVICES = ("dynamodb", "sqs")  # the services the engine writes to per request


class MotoInternalsChanged(RuntimeError):
    pass


def _require(condition, what):
    if not condition:
        import moto

        raise MotoInternalsChanged(
            f"moto {moto.__version__}: {what}. infra/moto_serial.py patches moto {MOTO_VERSION}'s "
            f"internals (infra/moto.sh installs that version); review the patch before changing it."
        )


def _compact(source):
    return "".join(source.split())


def _stop_tracking_instances():
    """BaseModel.__new__ keeps every instance of every model forever; not for UNTRACKED_SERVICES."""
    from moto.core import common_models
    from moto.core.model_instances import model_data

    base_model = common_models.BaseModel
    original_new = base_model.__dict__.get("__new__")
    _require(isinstance(original_new, staticmethod), "BaseModel.__new__ is not the tracking constructor")
    _require(
        "cls.instances_tracked.append(instance)" in _compact(inspect.getsource(original_new.__func__)),
        "BaseModel.__new__ no longer appends to instances_tracked",
    )
    original_new = original_new.__func__

    def __new__(cls, *args, **kwargs):
        if cls.__module__.split(".")[1] in UNTRACKED_SERVICES:
            return super(base_model, cls).__new__(cls)  # what the original does, without the append
        return original_new(cls, *args, **kwargs)

    base_model.__new__ = staticmethod(__new__)
    for service in UNTRACKED_SERVICES:
        for model in model_data.get(service, {}).values():
            model.instances_tracked = []


class _CopyModuleForDynamoDB:
    """Stands for the `copy` module inside moto.dynamodb.models.

    While a patched transaction runs, moto's whole-table backup (`copy.deepcopy(table)`) is the table
    itself, and moto's rollback (`self.tables[name] = backup`) puts back the same object: a no-op.
    The transaction's own item snapshots undo the writes instead. Everything else is the real module.
    """

    def __init__(self, table_class):
        self._table_class = table_class
        self._state = threading.local()
        self.tables_not_copied = 0

    @property
    def in_transaction(self):
        return getattr(self._state, "in_transaction", False)

    @in_transaction.setter
    def in_transaction(self, value):
        self._state.in_transaction = value

    def deepcopy(self, x, memo=None):
        if self.in_transaction and isinstance(x, self._table_class):
            self.tables_not_copied += 1
            return x
        return copy.deepcopy(x, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def _snapshot_touched_items(backend, transact_items):
    """Copies of the items the transaction's writes name (before any of them), and how to put them back."""
    saved = []  # (table, hash key, range key or None, copy of the item or None)
    stream_lengths = {}  # id(table) -> (table, number of stream records before)
    if not isinstance(transact_items, list) or len(transact_items) > 100:
        return lambda: None  # moto refuses these before writing anything
    for action in transact_items:
        if not isinstance(action, dict) or len(action) != 1:
            continue  # moto refuses it when it gets there; what came before is put back
        ((op_type, op),) = action.items()
        if op_type not in ("Put", "Update", "Delete") or not isinstance(op, dict):
            continue  # a ConditionCheck writes nothing
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        try:
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            hash_key, range_key = backend.get_keys_value(table, key)
            current = table.get_item(hash_key, range_key)
        except Exception:
            continue  # an action without a usable key cannot write either
        saved.append((table, hash_key, range_key, copy.deepcopy(current)))
        if table.stream_shard is not None:
            stream_lengths.setdefault(id(table), (table, len(table.stream_shard.items)))

    def put_back():
        for table, hash_key, range_key, item in reversed(saved):
            if range_key is not None:
                if item is None:
                    bucket = table.items.get(hash_key)
                    if bucket is not None:
                        bucket.pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = item
            elif item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        for table, length in stream_lengths.values():
            if table.stream_shard is not None:
                del table.stream_shard.items[length:]

    return put_back


def _roll_back_touched_items_only():
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    _require(dynamodb_models.__dict__.get("copy") is copy, "moto.dynamodb.models no longer uses `copy`")
    original = DynamoDBBackend.transact_write_items
    source = _compact(inspect.getsource(original))
    for needle in (
        "original_table_state[table_name]=copy.deepcopy(self.tables[table_name])",
        "self.tables[table_name]=original_table_state[table_name]",
        "raiseTransactionCanceledException(errors)",
    ):
        _require(needle in source, f"transact_write_items no longer has `{needle}`")
    for method in ("put_item", "delete_item", "get_item"):
        _require(hasattr(Table, method), f"Table.{method} is gone")
    _require(hasattr(DynamoDBBackend, "get_keys_value"), "DynamoDBBackend.get_keys_value is gone")

    shim = _CopyModuleForDynamoDB(Table)
    dynamodb_models.copy = shim

    def transact_write_items(self, transact_items):
        put_back = _snapshot_touched_items(self, transact_items)
        shim.in_transaction = True
        try:
            return original(self, transact_items)
        except BaseException:
            put_back()  # all or nothing, whatever moto raised
            raise
        finally:
            shim.in_transaction = False

    transact_write_items.__wrapped__ = original
    DynamoDBBackend.transact_write_items = transact_write_items
    return shim


def _query_candidates(table, hash_key, index_name, hash_key_conditions):
    """The only items a Query can return, without reading (or sorting) the whole table; None: unknown.

    Exact for string and binary keys: moto compares those by type and value.
    """
    if not index_name:
        if hash_key is None or hash_key.type not in ("S", "B"):
            return None
        bucket = table.items.get(hash_key)
        if bucket is None:
            return []
        return list(bucket.values()) if table.range_key_attr else [bucket]
    conditions = list(hash_key_conditions or [])
    if not conditions or any(value.type not in ("S", "B") for _, value in conditions):
        return None
    found = []
    for hash_set in table.items.values():
        for item in hash_set.values() if table.range_key_attr else (hash_set,):
            attrs = item.attrs
            for name, value in conditions:
                attr = attrs.get(name)
                if attr is None or attr.type != value.type or attr.value != value.value:
                    break
            else:
                found.append(item)
    return found


def _query_reads_only_candidates():
    """moto's Table.query filters `self.all_items()`, which lists and sorts the whole table each
    time: a Query cost O(n log n) in the table's size. Here it sees only the items that can match
    (the partition's items; for an index, those with its key values); moto still filters, sorts
    (by the index's and the table's keys, a total order) and pages them as before."""
    from moto.dynamodb.models.table import Table

    source = _compact(inspect.getsource(Table.query))
    _require(source.count("self.all_items()") == 2, "Table.query no longer reads all_items() twice")
    for needle in (
        "foriteminself.all_items():",
        "foriteminself.all_items()ifisinstance(item,Item)anditem.hash_key==hash_key",
        "possible_results=self.sorted_items(hash_attrs,range_attrs,possible_results)",
        "possible_results.sort(key=lambdaitem:item.range_key)",
        "forattr_name,expected_valueinall_hash_conditions.items():",
    ):
        _require(needle in source, f"Table.query no longer has `{needle}`")
    sort_source = _compact(inspect.getsource(Table._generate_attr_to_sort_by))
    _require(
        "attrs_to_sort_by.append(table_hash_key)attrs_to_sort_by.append(table_range_key)" in sort_source,
        "index queries no longer sort by the table's keys last",
    )
    original = Table.query
    signature = inspect.signature(original)

    def query(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs).arguments
        candidates = _query_candidates(
            self,
            arguments.get("hash_key"),
            arguments.get("index_name"),
            arguments.get("hash_key_conditions"),
        )
        if candidates is None:
            return original(self, *args, **kwargs)
        self.all_items = lambda: candidates  # this call only (requests are served one at a time)
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items

    query.__wrapped__ = original
    Table.query = query


def _queue_counts_read_the_clock_once():
    """moto's SQS reads the clock (a datetime computation) once per message to count a queue's
    visible, in-flight and delayed messages, and it counts them for every SendMessage (through
    Queue.attributes). Locally nothing consumes the outbox queue, so each invoice.paid got slower
    with the messages of all earlier ones. Here a count reads the clock once; the tests per message
    are moto's own (visible: now > visible_at; delayed: now < delayed_until)."""
    from moto.sqs import models as sqs_models

    message, queue = sqs_models.Message, sqs_models.Queue
    for prop, needle in (
        (message.visible, "current_time=unix_time_millis()ifcurrent_time>self.visible_at:returnTrue"),
        (message.delayed, "current_time=unix_time_millis()ifcurrent_time<self.delayed_until:returnTrue"),
        (queue.messages, "formessageinself._messagesifmessage.visibleandnotmessage.delayed"),
        (queue.approximate_number_of_messages, "returnlen(self.messages)"),
        (queue.approximate_number_of_messages_delayed, "returnlen([mforminself._messagesifm.delayed])"),
        (queue.approximate_number_of_messages_not_visible,
         "returnlen([mforminself._messagesifnotm.visible])"),
    ):
        _require(isinstance(prop, property) and needle in _compact(inspect.getsource(prop.fget)),
                 f"SQS no longer has `{needle}`")

    def messages(self):
        now = sqs_models.unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self):
        now = sqs_models.unix_time_millis()
        return len([m for m in self._messages if now < m.delayed_until])

    def not_visible(self):
        now = sqs_models.unix_time_millis()
        return len([m for m in self._messages if not now > m.visible_at])

    queue.messages = property(messages)
    queue.approximate_number_of_messages = property(lambda self: len(self.messages))
    queue.approximate_number_of_messages_delayed = property(delayed)
    queue.approximate_number_of_messages_not_visible = property(not_visible)


def _self_test(shim):
    """One cancelled and one committed transaction on a private backend: patched path, moto's answers."""
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item

    backend = DynamoDBBackend("us-east-1", "000000000000")
    backend.create_table(
        "selftest",
        schema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        throughput=None,
        attr=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
        global_indexes=None,
        indexes=None,
        streams=None,
        billing_mode="PAY_PER_REQUEST",
        sse_specification=None,
        tags=None,
        deletion_protection_enabled=False,
        warm_throughput=None,
    )

    def key(pk):
        return {"PK": {"S": pk}, "SK": {"S": "x"}}

    backend.put_item("selftest", {**key("a"), "n": {"N": "1"}})
    tracked_before = len(Item.instances_tracked)
    copies_before = shim.tables_not_copied
    actions = [
        {"Put": {"TableName": "selftest", "Item": {**key("b"), "n": {"N": "5"}}}},
        {"Update": {"TableName": "selftest", "Key": key("a"), "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": "selftest", "Key": key("c"),
                            "ConditionExpression": "attribute_exists(PK)"}},
    ]
    try:
        backend.transact_write_items(actions)
        cancelled = None
    except TransactionCanceledException as e:
        cancelled = e
    _require(cancelled is not None, "self-test: a failed ConditionCheck did not cancel the transaction")
    _require("[None, None, ConditionalCheckFailed]" in str(cancelled.message),
             f"self-test: cancellation reasons changed: {cancelled.message}")
    table = backend.get_table("selftest")

    def n_of(pk):
        item = table.get_item(*backend.get_keys_value(table, key(pk)))
        return None if item is None else item.attrs["n"].value

    _require((n_of("a"), n_of("b")) == ("1", None), "self-test: a cancelled transaction left writes behind")
    _require(shim.tables_not_copied > copies_before, "self-test: the table-copy shim was not used")
    backend.transact_write_items(actions[:2])
    _require((n_of("a"), n_of("b")) == ("2", "5"), "self-test: a committed transaction did not apply")
    _require(len(Item.instances_tracked) == tracked_before, "self-test: DynamoDB items are still tracked")


_patched = None


def patch_moto():
    """Apply both patches (idempotent); raise MotoInternalsChanged if moto is not what they expect."""
    global _patched
    if _patched is not None:
        return _patched
    import moto

    _require(moto.__version__ == MOTO_VERSION, f"expected moto {MOTO_VERSION}")
    _stop_tracking_instances()
    shim = _roll_back_touched_items_only()
    _query_reads_only_candidates()
    _queue_counts_read_the_clock_once()
    _self_test(shim)
    _patched = shim
    return shim


class Serialized:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # Materialise the body inside the lock: the work happens while iterating.
            return list(self.app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if os.environ.get("MOTO_UNPATCHED") == "1":
            # Only to measure what the patches change (infra/bench-dev-growth.sh, docs/performance.md).
            print("infra/moto_serial.py: MOTO_UNPATCHED=1: moto as released, table copies and all", file=sys.stderr)
        else:
            patch_moto()
    except MotoInternalsChanged as e:
        print(f"infra/moto_serial.py: {e}", file=sys.stderr)
        sys.exit(3)

    from werkzeug.serving import run_simple

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
