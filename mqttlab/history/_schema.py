"""Arrow schemas shared by the stores, the HTTP API and the files."""

from __future__ import annotations

import pyarrow as pa

MESSAGES = pa.schema([("seq", pa.int64()), ("ts", pa.int64()), ("topic", pa.string()), ("device", pa.string()),
                      ("payload", pa.binary()), ("qos", pa.uint8()), ("retain", pa.bool_()), ("props", pa.string()),
                      ("client_id", pa.string())])
FIELDS = pa.schema([("seq", pa.int64()), ("ts", pa.int64()), ("topic", pa.string()), ("device", pa.string()),
                    ("field", pa.string()), ("value", pa.float64())])
