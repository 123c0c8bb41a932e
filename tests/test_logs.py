import json
import logging

from reliq.cli.logs import JsonFormatter


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord(
        "reliq.worker", logging.WARNING, __file__, 1, "released %d of %s", (2, "orders"), None
    )
    doc = json.loads(JsonFormatter().format(record))
    assert (
        doc["level"] == "warning" and doc["logger"] == "reliq.worker" and doc["msg"] == "released 2 of orders"
    )
    assert doc["ts"].endswith("Z")
