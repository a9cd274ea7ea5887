"""Tests."""


def test_json_logs_carry_the_request_id() -> None:
    import json
    import logging

    from app.services.observability import JsonFormatter, request_id_var

    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord("aeseek", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello world" and line["request_id"] == "req-42" and line["level"] == "info"
