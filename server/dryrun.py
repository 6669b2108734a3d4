"""Dry runs: what a call would send to its vendors and what it would cost, with nothing sent and nothing booked.

Each unit of work's provider describes its requests (``ImageProvider.describe_calls``, vendor knowledge);
here they are redacted (every secret the server holds, any field named like a key or token, inline data
shortened) and priced with the call's ``server.spend.Quote``, and the text says what the day's budget and
the confirmation threshold would do with the real call (docs/spend.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from providers.base import REDACTED
from server.config import Settings, SpendSettings
from server.results import money
from server.spend import MICRO, Quote, spent_today, usd_text, utc_day
from server.storage import StorageError

if TYPE_CHECKING:
    from providers.base import ImageProvider
    from providers.types import GenerationRequest

__all__ = ["DryRun", "describe_work", "dry_run", "redact", "secret_values"]


def secret_values(settings: Settings) -> list[str]:
    """Every secret the server holds: the values of settings fields declared ``repr=False``, at any depth (vendor
    keys, the keys a model requires (ModelSpec.requires), the bearer token, the link secret, the OSS secret)."""
    found: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str) and value:
            found.append(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                collect(v)

    def walk(obj: Any) -> None:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for f in dataclasses.fields(obj):
                (walk if f.repr else collect)(getattr(obj, f.name))
        elif isinstance(obj, Mapping):
            for v in obj.values():
                walk(v)

    walk(settings)
    return sorted(set(found), key=len, reverse=True)   # longest first: a key inside another is replaced whole


_SECRET_FIELD = re.compile(r"(?:^|[_-])(?:api[_-]?key|access[_-]?key|token|secret|password|authorization)$",
                           re.IGNORECASE)


def redact(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` as a dry run may show it: every configured secret replaced wherever it appears, any field named
    like a key or token blanked, and inline data (data: URIs) shortened to their type and size."""
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(v, str) and v and _SECRET_FIELD.search(str(k)) else redact(v, secrets)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        if value.startswith("data:") and len(value) > 120:
            head = value.split(",", 1)[0]
            return f"<{head}, {len(value.split(',', 1)[-1]) * 3 // 4} bytes>"
        for secret in secrets:
            if len(secret) >= 4 and secret in value:
                value = value.replace(secret, REDACTED)
    return value


def describe_work(work: Iterable[Any]) -> list[list[dict[str, Any]]]:
    """What each unit of ``server.jobs.Work`` would send (its provider's ``describe_calls``)."""
    described = []
    for w in work:
        provider: ImageProvider = w.provider
        request: GenerationRequest = w.request
        described.append(provider.describe_calls(w.spec, request))
    return described


@dataclass(frozen=True)
class DryRun:
    """What a dry run answers: the requests (redacted), the estimate, and the text that says both."""

    calls: list[dict[str, Any]]
    cost_usd: float | None
    detail: str     # the requests, the estimate, what the budget and the threshold would do

    @property
    def text(self) -> str:
        return f"Dry run: nothing was sent and nothing was spent. {self.detail}"


async def dry_run(state: Any, quote: Quote, described: Sequence[Sequence[dict[str, Any]]]) -> DryRun:
    """The dry-run answer for ``quote``, whose unit i would send ``described[i]``: nothing is sent or booked."""
    secrets = secret_values(state.settings)
    calls: list[dict[str, Any]] = []
    for unit, requests in zip(quote.units, described, strict=True):
        usd = quote.unitusd_text(unit)
        for request in requests:
            calls.append(redact({"unit": unit.label or unit.model, **request, "images": unit.images,
                                 "cost_usd": None if usd is None else round(usd / len(requests), 6)}, secrets))
    lines = [f"{quote.tool} would make {len(calls)} request(s):"] if calls else []
    for n, call in enumerate(calls, 1):
        body = call.get("json", call.get("form"))
        text = json.dumps(body, ensure_ascii=False)
        lines.append(f"Request {n} ({call['unit']}): {call['method']} {call['url']}")
        lines.append("  " + (text if len(text) <= 1500 else text[:1500] + "… [the whole payload is in calls]"))
    lines.append(quote.line())
    lines += await _limits_text(state, quote)
    return DryRun(calls, quote.total, "\n".join(lines))


async def _limits_text(state: Any, quote: Quote) -> list[str]:
    """What the budget and the confirmation threshold would do with the real call."""
    spend: SpendSettings = state.settings.spend
    lines = []
    if spend.budget_usd_per_day is not None and any(quote.bookedusd_text(u) is None for u in quote.units):
        lines.append(f"Budget: the real call would be refused: {', '.join(quote.unpriced)} has no published price "
                     "to count against EASEL_BUDGET_USD_PER_DAY (unless EASEL_UNKNOWN_PRICE_USD is set).")
    elif spend.budget_usd_per_day is not None:
        limit = round(spend.budget_usd_per_day * MICRO)
        try:
            spent = await spent_today(state.docs, utc_day())
            booked = round(sum(quote.bookedusd_text(u) or 0.0 for u in quote.units) * MICRO)
            verdict = " The real call would be refused." if spent + booked > limit else ""
            lines.append(f"Budget: {usd_text(max(0, limit - spent))} of today's {usd_text(limit)} remains "
                         f"(EASEL_BUDGET_USD_PER_DAY, UTC day).{verdict}")
        except StorageError as exc:
            lines.append(f"Budget: the ledger could not be read ({exc}).")
    threshold, total = spend.confirm_above_usd, quote.total
    if threshold is not None and (total is None or total > threshold):
        lines.append(f"Over {money(threshold)} (EASEL_CONFIRM_ABOVE_USD): the real call asks the user first, or "
                     "needs confirm_spend: true.")
    return lines
