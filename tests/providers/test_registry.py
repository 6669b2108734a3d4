"""Which provider serves a model name, and what a server without the right keys says."""

from __future__ import annotations

import pytest

from providers import EDIT, GENERATE, Registry
from providers.base import ProviderConfig
from providers.errors import ConfigError


def registry(**keys: str) -> Registry:
    secrets = {k: v for k, v in keys.items() if k == "OPENAI_API_KEY"}
    names = {"replicate": "REPLICATE_API_TOKEN", "modelscope": "MODELSCOPE_API_KEY", "ideogram": "IDEOGRAM_API_KEY"}
    return Registry({p: ProviderConfig(api_key=keys.get(var), secrets=secrets if p == "replicate" else {})
                     for p, var in names.items()})


def test_qwen_image_edit_prefers_replicate_and_falls_back_to_modelscope() -> None:
    assert registry(REPLICATE_API_TOKEN="r", MODELSCOPE_API_KEY="m").preferred("Qwen Image Edit", EDIT).provider \
        == "replicate"
    spec, _ = registry(MODELSCOPE_API_KEY="m").resolve("Qwen Image Edit", EDIT)
    assert spec.provider == "modelscope" and spec.max_input_images == 1
    with pytest.raises(ConfigError, match="REPLICATE_API_TOKEN or MODELSCOPE_API_KEY"):
        registry().resolve("Qwen Image Edit", EDIT)


def test_the_ideogram_tiers_run_on_ideogram_when_its_key_is_set_else_on_replicate() -> None:
    for tier in ("Ideogram v3", "Ideogram v3 Balanced", "Ideogram v3 Quality"):
        assert registry(REPLICATE_API_TOKEN="r", IDEOGRAM_API_KEY="i").preferred(tier, GENERATE).provider == "ideogram"
        assert registry(REPLICATE_API_TOKEN="r").preferred(tier, GENERATE).provider == "replicate"


def test_a_model_that_requires_a_second_key_is_usable_only_with_both() -> None:
    assert "GPT Image 1.5" not in registry(REPLICATE_API_TOKEN="r").usable(GENERATE)
    assert registry(REPLICATE_API_TOKEN="r").missing(registry().preferred("GPT Image 1.5", GENERATE)) == \
        ["OPENAI_API_KEY"]
    with pytest.raises(ConfigError, match=r"set OPENAI_API_KEY in the server's environment"):
        registry(REPLICATE_API_TOKEN="r").resolve("GPT Image 1.5", EDIT)
    with pytest.raises(ConfigError, match="REPLICATE_API_TOKEN and OPENAI_API_KEY"):
        registry().resolve("GPT Image 1.5")
    assert "GPT Image 1.5" in registry(REPLICATE_API_TOKEN="r", OPENAI_API_KEY="sk").usable(EDIT)


def test_the_openai_key_is_read_from_the_environment_and_never_shown() -> None:
    from server.config import Settings

    settings = Settings.from_env({"REPLICATE_API_TOKEN": "r8", "OPENAI_API_KEY": "sk-hidden"})
    assert settings.providers.configs["replicate"].secrets == {"OPENAI_API_KEY": "sk-hidden"}
    assert settings.providers.configs["dashscope"].secrets == {}
    assert "sk-hidden" not in repr(settings) and "sk-hidden" not in repr(settings.providers.configs["replicate"])


def test_each_provider_declares_its_settings_and_the_server_reads_them_without_naming_a_vendor() -> None:
    from pathlib import Path

    from providers import VENDORS, provider_classes
    from server.config import Settings

    assert [c.name for c in provider_classes().values()] == ["replicate", "dashscope", "ideogram", "modelscope"]
    assert [m.PROVIDER for m in VENDORS] == list(provider_classes().values())
    env = {}
    for cls in provider_classes().values():
        env[cls.key_env] = f"key-of-{cls.name}"
        env[cls.url_env] = f"https://{cls.name}.example.com/api/v1"
    settings = Settings.from_env({**env, "EASEL_MODELSCOPE_RATE": "0.5", "EASEL_IDEOGRAM_RENDERING_SPEED": "Quality"})
    configs = settings.providers.configs
    for cls in provider_classes().values():
        cfg = configs[cls.name]
        assert (cfg.api_key, cfg.base_url) == (env[cls.key_env], env[cls.url_env])
        assert cfg.concurrency == cls.default_concurrency
        assert cfg.rate == (0.5 if cls.name == "modelscope" else cls.default_rate)
        assert settings.fetch.trusts("https", f"{cls.name}.example.com", 443)   # every base URL's origin
    assert (configs["dashscope"].concurrency, configs["dashscope"].rate) == (2, 2.0)   # the Wan models' account limits
    assert configs["ideogram"].extra == {"rendering_speed": "QUALITY"}
    assert settings.providers.keyed() == list(provider_classes())

    root = Path(__file__).resolve().parents[2]
    vendor_words = {cls.key_env for cls in provider_classes().values()} | {
        cls.url_env for cls in provider_classes().values()} | {
        opt.env for cls in provider_classes().values() for opt in cls.options} | {"OPENAI_API_KEY"}
    for path in (root / "server").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not [w for w in vendor_words if w in text], path
    assert "providers.ideogram" not in (root / "providers" / "replicate.py").read_text(encoding="utf-8")
