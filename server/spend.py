"""Spend: what a call will cost, the day's budget shared by replicas, and the user's consent (docs/spend.md).

Every image tool calls ``admit`` once, after it has planned its work and before any provider request:

* **estimate** (``Quote``): each unit of work's images at its catalog price (``ModelSpec.price``), converted to
  USD at the configured rates; a per-megapixel price at the size the model is asked for. Once an image exists,
  ``image_cost`` prices it at its real size, and that figure is what results and metadata carry (``cost_usd``).
* **budget** (``EASEL_BUDGET_USD_PER_DAY``): a ledger of bookings in the store (``AppState.docs``), one document per
  booking under ``ledger/<UTC day>/``, its amount in its key so that ``list`` alone sums a day. Check and book
  are serialised per process; between replicas the check (a list) and the booking (a create) are not atomic, so
  concurrent replicas can overshoot by at most the estimates booked between one's list and its create.
* **consent** (``EASEL_CONFIRM_ABOVE_USD``): a call estimated above it asks the user (form elicitation) in both
  protocol eras, or is refused with a line telling the assistant to confirm and repeat with ``confirm_spend``.

A ``Booking`` is settled unit by unit as the work ends (``server.jobs``): a unit the vendor never accepted (its
error carries no provider task id) gives its estimate back; a unit that stored images is re-booked at their
cost; a unit that failed after the vendor accepted it keeps its estimate, since it may have been charged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from pydantic import BaseModel, Field

from providers.base import Price
from providers.errors import (
    AuthenticationError,
    ConfigError,
    ContentRejected,
    InsufficientCredit,
    InvalidInput,
    InvalidRequest,
    RateLimited,
    UnknownModel,
)
from server.config import Settings, SpendSettings
from server.results import money, total_cost
from server.storage import StorageError

if TYPE_CHECKING:
    from server.storage.docs import DocStore

__all__ = ["MICRO", "Booking", "Quote", "SpendApproval", "Unit", "admit", "book", "confirm", "image_cost",
           "refused_before_charge", "request_state_security", "spent_today", "units_of", "usd_text", "utc_day",
           "within_budget"]

log = logging.getLogger("easel.spend")

MICRO = 1_000_000                         # the ledger counts micro-USD: sums of floats drift
LEDGER = "ledger"
QUESTION_KEY = "easel_confirm_spend"      # the elicitation's key in input_requests / input_responses
_KEY = re.compile(r"^(?P<id>[0-9a-f]{32})\.(?P<rev>\d+)\.(?P<micro>\d+)\.json$")


# ------------------------------------------------------------------ estimates

@dataclass(frozen=True)
class Unit:
    """One unit of work as priced: ``images`` outputs of ``model`` (``price`` None: unpublished)."""

    model: str
    images: int
    price: Price | None
    label: str = ""


@dataclass(frozen=True)
class Quote:
    """A call's estimate: its units, priced at ``rates`` (USD per unit of each currency)."""

    tool: str
    units: tuple[Unit, ...]
    settings: SpendSettings

    def unitusd_text(self, unit: Unit) -> float | None:
        return None if unit.price is None else unit.price.usd(self.settings.rates) * unit.images

    @property
    def images(self) -> int:
        return sum(u.images for u in self.units)

    @property
    def total(self) -> float | None:
        """USD, or None when any unit's price is unknown."""
        return total_cost([self.unitusd_text(u) for u in self.units])

    @property
    def unpriced(self) -> list[str]:
        return list(dict.fromkeys(u.model for u in self.units if u.price is None))

    def bookedusd_text(self, unit: Unit) -> float | None:
        """What the ledger books for a unit: its estimate, or the assumed price of an unpriced model (None: none set)."""
        usd = self.unitusd_text(unit)
        if usd is None and self.settings.unknown_price_usd is not None:
            usd = self.settings.unknown_price_usd * unit.images
        return usd

    def models(self) -> str:
        return ", ".join(dict.fromkeys(u.model for u in self.units))

    def line(self) -> str:
        """One line for a result's text."""
        total = self.total
        if total is not None:
            return f"Estimated cost: {money(total)} for {self.images} image(s) with {self.models()}."
        known = [self.unitusd_text(u) for u in self.units if u.price is not None]
        part = f" (the priced part: {money(sum(k for k in known if k is not None))})" if known else ""
        return f"Estimated cost: unknown: no published price for {', '.join(self.unpriced)}{part}."


#: Errors that mean the vendor refused the request before running anything (with no task id): nothing was charged.
_REFUSED = (ToolError, ConfigError, InvalidRequest, AuthenticationError, InsufficientCredit, UnknownModel, InvalidInput,
            ContentRejected, RateLimited)   # ToolError: the tool refused its own arguments before sending them


def refused_before_charge(error: BaseException | None) -> bool:
    """True when a failed unit cost nothing: it was refused by us or by the vendor before any task existed.
    A failure after the vendor accepted the work (a task id), a timeout or an unreachable vendor may have
    been charged, so those keep their booking (docs/spend.md)."""
    return isinstance(error, _REFUSED) and getattr(error, "job_id", None) is None


def units_of(work: Iterable[Any]) -> list[Unit]:
    """``server.jobs.Work`` items as priced units."""
    return [Unit(w.spec.name, w.request.count, w.spec.price, w.label) for w in work]


def image_cost(price: Price | None, width: int, height: int, settings: SpendSettings) -> float | None:
    """One stored image's cost in USD (None: unpublished price); per-megapixel prices at its real size."""
    if price is None:
        return None
    if price.per != "megapixel":
        return round(price.usd(settings.rates), 6)
    return round(price.usd(settings.rates, megapixels=width * height / 1e6), 6)


# ------------------------------------------------------------------ the ledger

def utc_day(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


def usd_text(micro: int) -> str:
    return money(micro / MICRO)


_locks: weakref.WeakKeyDictionary[Any, anyio.Lock] = weakref.WeakKeyDictionary()


def _lock(docs: DocStore) -> anyio.Lock:
    """One lock per store per process: check-and-book never interleaves inside one process."""
    if docs not in _locks:
        _locks[docs] = anyio.Lock()
    return _locks[docs]


async def spent_today(docs: DocStore, day: str) -> int:
    """Micro-USD booked on ``day``: the newest revision of each booking, read from the keys alone."""
    latest: dict[str, tuple[int, int]] = {}
    for key in await docs.list(f"{LEDGER}/{day}/"):
        m = _KEY.match(key.rsplit("/", 1)[-1])
        if m and int(m["rev"]) >= latest.get(m["id"], (-1, 0))[0]:
            latest[m["id"]] = (int(m["rev"]), int(m["micro"]))
    return sum(micro for _, micro in latest.values())


@dataclass
class Booking:
    """A call's estimate booked in the day's ledger (a no-op without a budget); settled unit by unit."""

    quote: Quote
    docs: DocStore | None = None
    day: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    amounts: list[int] = field(default_factory=list)    # micro-USD per unit, as now booked
    rev: int = 0
    _key: str | None = None

    @property
    def micro(self) -> int:
        return sum(self.amounts)

    def _body(self) -> bytes:
        return json.dumps({"tool": self.quote.tool, "models": self.quote.models(), "images": self.quote.images,
                           "usd": self.micro / MICRO, "revision": self.rev,
                           "at": datetime.now(UTC).isoformat(timespec="seconds")}).encode()

    def _next_key(self) -> str:
        return f"{LEDGER}/{self.day}/{self.id}.{self.rev}.{self.micro}.json"

    async def create(self) -> None:
        assert self.docs is not None
        key = self._next_key()
        if not await self.docs.create(key, self._body()):
            raise StorageError("a ledger booking with this id already exists")
        self._key = key

    async def settle(self, index: int, *, costs: Sequence[float | None], error: BaseException | None) -> None:
        """Unit ``index`` ended: re-book it at its images' cost, or at nothing when the vendor never accepted it.
        A unit that failed after the vendor accepted it keeps its estimate, even when some of its images were
        stored (the rest were made and billed). Best effort: a store error is logged."""
        if self.docs is None or index >= len(self.amounts):
            return
        if costs and all(c is not None for c in costs):
            micro = round(sum(c for c in costs if c is not None) * MICRO)
            if error is not None:   # some images stored, the rest made and billed but lost (a download that failed)
                micro = max(micro, self.amounts[index])
        elif not costs and refused_before_charge(error):
            micro = 0
        else:
            return
        async with _lock(self.docs):
            if micro == self.amounts[index]:
                return
            self.amounts[index] = micro
            self.rev += 1
            old, key = self._key, self._next_key()
            try:
                await self.docs.create(key, self._body())     # the newer revision counts from here on
                self._key = key
                if old is not None:
                    await self.docs.delete(old)
            except StorageError as exc:
                log.warning("could not update ledger booking %s: %s", self.id, exc)


def _booking(settings: SpendSettings, docs: DocStore, quote: Quote) -> Booking:
    """The booking ``quote`` would make today; ToolError when a model has no price to count."""
    amounts = [quote.bookedusd_text(u) for u in quote.units]
    if any(a is None for a in amounts):
        raise ToolError(f"{quote.tool}: refused before anything was spent: {', '.join(quote.unpriced)} has no "
                        "published price, so its cost cannot be counted against EASEL_BUDGET_USD_PER_DAY. Choose a "
                        "model with a price (see the tool description), or have the operator set "
                        "EASEL_UNKNOWN_PRICE_USD (an assumed price per image).")
    return Booking(quote, docs, utc_day(), amounts=[round((a or 0.0) * MICRO) for a in amounts])


async def _within_budget(booking: Booking, limit: int) -> None:
    """ToolError, saying spent, remaining and the variable, when ``booking`` would pass the day's budget."""
    assert booking.docs is not None
    try:
        spent = await spent_today(booking.docs, booking.day)
    except StorageError as exc:
        raise ToolError(f"{booking.quote.tool}: refused before anything was spent: the spend ledger could not be "
                        f"read ({exc}), and EASEL_BUDGET_USD_PER_DAY needs it.") from None
    if spent + booking.micro > limit:
        raise ToolError(
            f"{booking.quote.tool}: refused before anything was spent: this call is estimated at "
            f"{usd_text(booking.micro)}; {usd_text(spent)} of today's {usd_text(limit)} budget (UTC day {booking.day}) is "
            f"already spent or booked, so {usd_text(max(0, limit - spent))} remains. Ask for fewer or cheaper images, "
            "wait for the next UTC day, or have the operator raise EASEL_BUDGET_USD_PER_DAY.")


async def book(settings: SpendSettings, docs: DocStore, quote: Quote) -> Booking:
    """Book ``quote`` in today's ledger, or refuse it (ToolError) when it would pass the day's budget. The check
    and the create run under this process's lock, so calls in one process never overshoot together."""
    if settings.budget_usd_per_day is None:
        return Booking(quote)
    booking = _booking(settings, docs, quote)
    async with _lock(docs):
        await _within_budget(booking, round(settings.budget_usd_per_day * MICRO))
        try:
            await booking.create()
        except StorageError as exc:
            raise ToolError(f"{quote.tool}: refused before anything was spent: the spend ledger could not be "
                            f"written ({exc}), and EASEL_BUDGET_USD_PER_DAY needs it.") from None
    return booking


# ------------------------------------------------------------------ consent

class SpendApproval(BaseModel):
    """The form the user sees when a call costs more than EASEL_CONFIRM_ABOVE_USD."""

    approve: bool = Field(description="Yes to go ahead and spend it; no to cancel the call.")


def _question(quote: Quote, threshold: float) -> str:
    total = quote.total
    cost = f"about {money(total)}" if total is not None else "an unknown amount (no published price)"
    return (f"{quote.tool} will make {quote.images} image(s) with {quote.models()}, costing {cost} "
            f"(calls over {money(threshold)} need your confirmation). Go ahead?")


def _can_elicit(ctx: Any) -> bool:
    """The client declared form elicitation (a bare ``elicitation: {}`` means form, as the SDK reads it)."""
    try:
        caps = ctx.client_capabilities
    except Exception:  # no request context (a direct call): nobody to ask
        return False
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _modern(ctx: Any) -> bool:
    from mcp_types.version import is_version_at_least

    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, "2026-07-28")


async def confirm(ctx: Any, quote: Quote, settings: SpendSettings, *,
                  confirm_spend: bool) -> InputRequiredResult | None:
    """None when the call may go on; an InputRequiredResult to return (2026-07-28: the question rides it);
    ToolError when the user said no or cannot be asked. ``confirm_spend`` stands for the user only where the
    client cannot ask them: an assistant that can reach the user does not answer for them."""
    threshold = settings.confirm_above_usd
    total = quote.total
    if threshold is None or (total is not None and total <= threshold):
        return None
    message = _question(quote, threshold)
    cost = money(total) if total is not None else "an unknown amount"
    cannot_ask = ToolError(f"{quote.tool}: not run, nothing spent: it is estimated at {cost}, above the "
                           f"{money(threshold)} that needs the user's confirmation, and this client cannot ask the "
                           "user. Ask the user whether to spend it; if they agree, repeat the same call with "
                           "confirm_spend: true.")
    if not _can_elicit(ctx) or not (_modern(ctx) or ctx.session.can_send_request):
        if confirm_spend:
            return None
        raise cannot_ask
    if _modern(ctx):
        digest = hashlib.sha256(message.encode()).hexdigest()[:32]
        answer = (ctx.input_responses or {}).get(QUESTION_KEY)
        if answer is None or ctx.request_state != digest:   # first round, or the question changed since
            from mcp.server.elicitation import render_elicitation_schema

            ask = ElicitRequest(params=ElicitRequestFormParams(
                message=message, requested_schema=render_elicitation_schema(SpendApproval)))
            return InputRequiredResult(input_requests={QUESTION_KEY: ask}, request_state=digest)
        if not isinstance(answer, ElicitResult):
            raise ToolError(f"{quote.tool}: the answer to the spend question was not a form answer; nothing spent.")
        action = answer.action
        approved = action == "accept" and bool((answer.content or {}).get("approve"))
    else:
        try:
            outcome = await ctx.elicit(message, SpendApproval)
        except Exception as exc:   # the question did not reach the user (or the answer was malformed)
            log.info("spend question failed: %s", type(exc).__name__)
            if confirm_spend:
                return None
            raise cannot_ask from None
        action = outcome.action
        approved = action == "accept" and bool(outcome.data.approve)
    if not approved:
        said = {"accept": "said no", "decline": "declined", "cancel": "cancelled"}.get(action, action)
        raise ToolError(f"{quote.tool}: not run, nothing spent: the user {said} spending {cost} on "
                        f"{quote.images} image(s) with {quote.models()}.")
    return None


async def within_budget(ctx: Any, tool: str, units: Sequence[Unit]) -> None:
    """Refuse (ToolError) a call the day's budget cannot take, without booking it: for a check before any request
    is made for the call, e.g. illustrate_content's scene-writing model (``admit`` checks again and books)."""
    state = ctx.request_context.lifespan_context
    spend: SpendSettings = state.settings.spend
    if spend.budget_usd_per_day is not None:
        quote = Quote(tool, tuple(units), spend)
        await _within_budget(_booking(spend, state.docs, quote), round(spend.budget_usd_per_day * MICRO))


async def admit(ctx: Any, tool: str, units: Sequence[Unit], *, confirm_spend: bool) -> Booking | InputRequiredResult:
    """The one gate before a call spends: the budget first (nobody is asked about a call that cannot run), then
    the user's consent, then the booking. An InputRequiredResult is returned by the tool as it is."""
    state = ctx.request_context.lifespan_context
    spend: SpendSettings = state.settings.spend
    quote = Quote(tool, tuple(units), spend)
    if spend.confirm_above_usd is not None:
        await within_budget(ctx, tool, units)
    asked = await confirm(ctx, quote, spend, confirm_spend=confirm_spend)
    if asked is not None:
        return asked
    return await book(spend, state.docs, quote)


def request_state_security(settings: Settings) -> Any:
    """The SDK's request-state protection under the shared key (any replica can take the user's answer), or None
    for the SDK's per-process default when no key is configured (docs/spend.md)."""
    key = settings.spend.request_state_key
    if key is None:
        return None
    from mcp.server.request_state import RequestStateSecurity

    return RequestStateSecurity(keys=[key])
