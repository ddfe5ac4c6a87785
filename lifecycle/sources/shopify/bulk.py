"""Shopify bulk operations: start one, ask how it is going, read its JSONL result a byte range at a time.

https://shopify.dev/docs/api/usage/bulk-operations/queries — the result is a JSONL file behind a signed URL on
Shopify's storage, one object per line, kept seven days. Our bulk queries nest no connection, so no line carries a
`__parentId` and each line stands alone: a byte offset is a complete checkpoint.
"""

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from lifecycle.sources.http import ShopHttp

logger = logging.getLogger(__name__)

GraphQL = Callable[[str, str, dict[str, Any]], dict[str, Any]]  # name, query, variables -> data

# One page of the history is what fits in one range of the file: about a thousand orders.
RANGE_BYTES = 1 << 20
RUNNING = ("CREATED", "RUNNING", "CANCELING")

BULK_RUN = """
mutation ($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

# node(id:) rather than currentBulkOperation: it reads our operation even if the app started another since.
BULK_STATE = """
query ($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url } }
}
"""


def bulk_start(graphql: GraphQL, query: str) -> str | None:
    """Start a bulk query; its operation id, or None when Shopify refuses it (e.g. one of this app is running)."""
    result = graphql("bulkOperationRunQuery", BULK_RUN, {"query": query})["bulkOperationRunQuery"]
    if result["userErrors"] or not result["bulkOperation"]:
        logger.warning("Shopify refused a bulk operation: %s", result["userErrors"])
        return None
    return str(result["bulkOperation"]["id"])


def bulk_state(graphql: GraphQL, operation_id: str) -> dict[str, Any]:
    """The operation's status, errorCode, objectCount and url (a fresh one each time it is asked)."""
    node = graphql("bulkOperation", BULK_STATE, {"id": operation_id})["node"]
    return node or {"status": "EXPIRED"}  # an operation Shopify no longer knows: start again


def _range_total(content_range: str | None) -> int | None:
    found = re.fullmatch(r"bytes \d+-\d+/(\d+)", (content_range or "").strip())
    return int(found[1]) if found else None


def jsonl_read(files: ShopHttp, url: str, offset: int) -> tuple[list[dict[str, Any]], int, bool]:
    """The whole lines from `offset` within one range of the file: (objects, the offset after them, end reached).

    A server that ignores Range answers 200 with the whole file; the range is then cut out here.
    """
    size = RANGE_BYTES
    while True:
        response = files.request("GET", url, headers={"Range": f"bytes={offset}-{offset + size - 1}"})
        if response.status_code == 206:
            chunk, total = response.content, _range_total(response.headers.get("Content-Range"))
        else:
            chunk, total = response.content[offset : offset + size], len(response.content)
        at_end = offset + len(chunk) >= total if total is not None else len(chunk) < size
        used = len(chunk) if at_end else chunk.rfind(b"\n") + 1
        if used or at_end:
            lines = (json.loads(line) for line in chunk[:used].splitlines() if line.strip())
            # A child row (`__parentId`) would only come from a nested connection, which our queries do not ask for.
            return [line for line in lines if "__parentId" not in line], offset + used, at_end
        size *= 2  # a single line longer than the range: ask for a longer one
