"""The catalog: a searchable SQLite index of every stored image, rebuilt from the store.

One file, ``<store dir>/.catalog.sqlite3`` (WAL, so the MCP server and ``easel-mcp
gallery`` can share it). It is never the only copy of anything: every row comes
from a metadata record the store keeps beside its image, and ``Catalog.sync``
brings the catalog in step with those records (new and changed records read,
vanished ones dropped). A missing, corrupt or older-schema file is simply rebuilt.

* Search: FTS5 over the user's prompt and the prompt as sent. SQLite's tokenizers
  do not split Chinese, so the words column holds text already segmented with
  jieba (``cut_for_search``) and joined by spaces; queries are segmented the same
  way. The last English word matches as a prefix ("lighthouse dus").
* Paging: each row's key is its created time in milliseconds followed by 20 bits
  of its hash, and is also its FTS rowid. Listing and word searches both walk an
  index newest first and stop after one page; the cursor is the last key, so a
  page costs the same at row 100 and at row 100,000 and new images never shift it.
* Keeping in step: ``CatalogedStorage`` wraps the store, so each put and delete
  updates the catalog at once; ``sync`` runs at start-up and then every
  ``EASEL_CATALOG_SYNC`` seconds for shared stores (OSS), so every replica finds
  images other replicas made. A month whose cheap signature (local: size of its
  append-only index and the directory's mtime) has not changed is not re-read.
"""

from server.catalog.index import FILE_NAME, Catalog
from server.catalog.records import Filters, Page
from server.catalog.storage import CatalogedStorage
from server.catalog.text import segment

__all__ = ["FILE_NAME", "Catalog", "CatalogedStorage", "Filters", "Page", "segment"]
