"""Every write to stock (SPEC §4.3): the only place inventory rows change.

One module per concern, re-exported here, so callers write ``inventory.services.stock_reserve``:

- ``ledger``: the one primitive that changes counters (a conditional UPDATE) and writes its
movement;
- ``locations``, ``items``: locations and inventory rows;
- ``moves``: receive, adjust, transfer, return;
- ``bulk``: the bulk adjustment;
- ``counts``: imports of stock counts and receipts;
- ``reservations``: reserve (all or nothing), release, fulfil, expire — what orders, fulfillment and
  returns call, joining their transaction;
- ``reconcile``: counters against reservations and the ledger.

Locks (``inventory.locks``) follow the global order of ``stateset/locking.py``: reservations by
primary key, then inventory rows by primary key. A change of one row relies on the row lock its own
UPDATE takes. So concurrent calls never deadlock, provided a caller changes stock **once** per
transaction (one ``stock_reserve`` with every line, one ``stock_release``, ``stock_fulfil_many`` for
a shipment). Entry points only the API, admin and commands call are durable transactions themselves.
"""

from inventory.models import MAX_QUANTITY
from inventory.services.backorders import (
    Demand,
    allocate_backorders,
    backorders_record,
    backorders_reduce,
)
from inventory.services.bulk import (
    BulkAdjustResult,
    stock_bulk_adjust,
)
from inventory.services.common import (
    LOCATION_CODE_RE,
    MAX_LINES,
    MAX_REASON,
    MAX_REFERENCE_ID,
    MAX_REFERENCE_TYPE,
    ProductRef,
    location_ref,
)
from inventory.services.counts import (
    stock_import,
)
from inventory.services.items import (
    inventory_item_create,
    inventory_item_update,
)
from inventory.services.ledger import (
    Counters,
)
from inventory.services.locations import (
    location_create,
    location_update,
)
from inventory.services.moves import (
    StockLine,
    stock_adjust,
    stock_receive,
    stock_receive_many,
    stock_return,
    stock_return_many,
    stock_transfer,
)
from inventory.services.reconcile import (
    Drift,
    Stranded,
    backorders_stranded,
    inventory_ledger_drift,
    inventory_reconcile,
)
from inventory.services.reservations import (
    MAX_EXPIRES_IN,
    LineChange,
    Queue,
    Reserved,
    ReserveLine,
    StockRaced,
    reservation_extend,
    reservations_expire,
    stock_fulfil,
    stock_fulfil_many,
    stock_rebalance,
    stock_release,
    stock_reserve,
    stock_reserve_for_order,
)

__all__ = [
    "StockRaced",
    "LineChange",
    "stock_rebalance",
    "MAX_EXPIRES_IN",
    "reservation_extend",
    "Demand",
    "Queue",
    "Reserved",
    "allocate_backorders",
    "backorders_record",
    "backorders_reduce",
    "backorders_stranded",
    "stock_reserve_for_order",
    "MAX_QUANTITY",
    "LOCATION_CODE_RE",
    "BulkAdjustResult",
    "Counters",
    "Drift",
    "Stranded",
    "MAX_LINES",
    "MAX_REASON",
    "MAX_REFERENCE_ID",
    "MAX_REFERENCE_TYPE",
    "ProductRef",
    "ReserveLine",
    "StockLine",
    "inventory_item_create",
    "inventory_item_update",
    "inventory_ledger_drift",
    "inventory_reconcile",
    "location_create",
    "location_ref",
    "location_update",
    "reservations_expire",
    "stock_adjust",
    "stock_bulk_adjust",
    "stock_fulfil",
    "stock_import",
    "stock_fulfil_many",
    "stock_receive",
    "stock_receive_many",
    "stock_release",
    "stock_reserve",
    "stock_return",
    "stock_return_many",
    "stock_transfer",
]
