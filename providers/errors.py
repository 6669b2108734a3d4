"""One exception tree for everything that can go wrong making an image.

::

    ImageGenError                      base; its message is safe to show (no secrets)
    ├── ConfigError                    missing or invalid setting (names the variable)
    ├── InvalidRequest                 refused before any money is spent (names the field)
    └── ProviderError                  the provider said no, or failed
        ├── AuthenticationError        bad or missing key (names the variable)
        ├── InsufficientCredit         out of credit / billing not set up
        ├── UnknownModel               the provider does not know the model
        ├── InvalidInput               the provider rejected the input (``fields``)
        ├── RateLimited                still throttled after bounded retries
        ├── ContentRejected            a safety filter refused the prompt or image
        ├── GenerationFailed           the model ran and failed (its own error text)
        ├── GenerationTimeout          waited too long (says how long, and the job id)
        ├── OutputRefused              an output URL the fetch guard will not fetch (``url``)
        └── ProviderUnavailable        5xx, connection errors, bad output

Providers translate their SDK's and HTTP errors into this tree in one place each;
the MCP layer turns any ``ImageGenError`` into a ``ToolError`` the assistant reads.
Nothing here imports MCP.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ContentRejected",
    "FieldError",
    "GenerationFailed",
    "GenerationTimeout",
    "ImageGenError",
    "InsufficientCredit",
    "InvalidInput",
    "InvalidRequest",
    "OutputRefused",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "UnknownModel",
]


class ImageGenError(Exception):
    """Base of the tree. ``str(e)`` is a complete, secret-free sentence."""


class ConfigError(ImageGenError):
    """A setting is missing or invalid; the message names the variable."""


class InvalidRequest(ImageGenError):
    """Refused before anything is spent; the message names the field and what is allowed."""


class ProviderError(ImageGenError):
    """The provider refused or failed. ``provider`` names it; ``status`` is the HTTP status if any."""

    def __init__(self, message: str, *, provider: str, status: int | None = None,
                 job_id: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.job_id = job_id


class AuthenticationError(ProviderError):
    pass


class InsufficientCredit(ProviderError):
    pass


class UnknownModel(ProviderError):
    pass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(ProviderError):
    def __init__(self, message: str, *, provider: str, status: int | None = None,
                 fields: tuple[FieldError, ...] = (), job_id: str | None = None) -> None:
        super().__init__(message, provider=provider, status=status, job_id=job_id)
        self.fields = fields


class RateLimited(ProviderError):
    def __init__(self, message: str, *, provider: str, status: int | None = 429,
                 retry_after: float | None = None, job_id: str | None = None) -> None:
        super().__init__(message, provider=provider, status=status, job_id=job_id)
        self.retry_after = retry_after


class ContentRejected(ProviderError):
    pass


class GenerationFailed(ProviderError):
    pass


class GenerationTimeout(ProviderError):
    pass


class OutputRefused(ProviderError):
    """An output points at an address the fetch guard refuses (private, loopback, metadata …).
    Not retried: the answer will not change. ``url`` is where the output was said to be."""

    def __init__(self, message: str, *, provider: str, url: str, job_id: str | None = None) -> None:
        super().__init__(message, provider=provider, job_id=job_id)
        self.url = url


class ProviderUnavailable(ProviderError):
    pass
