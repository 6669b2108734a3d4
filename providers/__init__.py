"""The model catalog and the provider registry.

``VENDORS`` is the explicit, ordered list of vendor modules: each defines ``PROVIDER``
(an ``ImageProvider`` subclass that declares its settings) and ``MODELS`` (a list of
``ModelSpec``). A new vendor is one new module plus one line here. Order is catalog
order: Replicate first (its models are the seed's five, and the first model is the
tools' default). A model name served by several vendors (say, Ideogram v3 directly and
on Replicate) resolves to the most preferred vendor that has a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from providers import dashscope, ideogram, modelscope, replicate
from providers.base import EDIT, GENERATE, ImageProvider, ModelSpec, ProviderConfig
from providers.errors import ConfigError, InvalidRequest

__all__ = ["EDIT", "GENERATE", "VENDORS", "Registry", "all_specs", "model_names", "provider_classes"]

VENDORS = (replicate, dashscope, ideogram, modelscope)


@cache
def provider_classes() -> dict[str, type[ImageProvider]]:
    """Provider name -> class, in ``VENDORS`` order."""
    return {module.PROVIDER.name: module.PROVIDER for module in VENDORS}


@cache
def all_specs() -> tuple[ModelSpec, ...]:
    return tuple(spec for module in VENDORS for spec in module.MODELS)


def model_names(use: str) -> list[str]:
    """Public model names for a tool, in catalog order, each once."""
    names: list[str] = []
    for spec in all_specs():
        if use in spec.uses and spec.name not in names:
            names.append(spec.name)
    return names


class Registry:
    """Resolves model names to (spec, provider); builds providers on first use."""

    def __init__(self, configs: Mapping[str, ProviderConfig]) -> None:
        self._configs = dict(configs)
        self._providers: dict[str, ImageProvider] = {}

    def has_key(self, provider: str) -> bool:
        cfg = self._configs.get(provider)
        return bool(cfg and cfg.api_key)

    def missing(self, spec: ModelSpec) -> list[str]:
        """Environment variables still unset for this spec: its provider's key, then what it ``requires``."""
        cfg = self._configs.get(spec.provider)
        unset = [] if self.has_key(spec.provider) else [provider_classes()[spec.provider].key_env]
        return unset + [var for var in spec.requires if not (cfg and cfg.secrets.get(var))]

    def candidates(self, name: str, use: str) -> list[ModelSpec]:
        specs = [s for s in all_specs() if s.name == name and use in s.uses]
        return sorted(specs, key=lambda s: s.preference)

    def preferred(self, name: str, use: str) -> ModelSpec:
        """The spec a call would run: the most preferred configured one, else the most preferred."""
        specs = self.candidates(name, use)
        return next((s for s in specs if not self.missing(s)), specs[0])

    def resolve(self, name: str, use: str = GENERATE) -> tuple[ModelSpec, ImageProvider]:
        specs = self.candidates(name, use)
        if not specs:
            allowed = ", ".join(model_names(use))
            raise InvalidRequest(f"model: unknown model {name!r}; choose one of: {allowed}.")
        for spec in specs:
            if not self.missing(spec):
                return spec, self.provider(spec.provider)
        raise ConfigError(f"{name} is not configured: set {self.needed(name, use)} in the server's environment.")

    def needed(self, name: str, use: str) -> str:
        """What to set so that ``name`` can run ("A or B and C"); empty when it can run already."""
        specs = self.candidates(name, use)
        if any(not self.missing(s) for s in specs):
            return ""
        return " or ".join(" and ".join(self.missing(s)) for s in specs)

    def usable(self, use: str) -> list[str]:
        return [n for n in model_names(use) if any(not self.missing(s) for s in self.candidates(n, use))]

    def provider(self, name: str) -> ImageProvider:
        if name not in self._providers:
            cls = provider_classes()[name]
            self._providers[name] = cls(self._configs.get(name) or ProviderConfig(api_key=None))
        return self._providers[name]

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
