from lsp.config import Settings, parse_settings


def test_defaults_when_nothing_is_given():
    settings, problems = parse_settings(None)
    assert settings == Settings()
    assert problems == []


def test_camel_case_keys_and_nested_section():
    settings, problems = parse_settings(
        {"devstralElixir": {"completion": {"debounceMs": 40, "maxTokens": 16}, "model": {"nCtx": 2048}}}
    )
    assert problems == []
    assert settings.completion.debounce_ms == 40
    assert settings.completion.max_tokens == 16
    assert settings.model.n_ctx == 2048


def test_bad_values_are_reported_by_name_and_replaced_by_defaults():
    settings, problems = parse_settings(
        {
            "completion": {"debounceMs": "fast", "temperature": 7},
            "model": {"backend": "magic"},
            "logLevel": "loud",
            "colour": "blue",
            "context": 3,
        }
    )
    assert settings.completion.debounce_ms == Settings().completion.debounce_ms
    assert settings.completion.temperature == 0.0
    assert settings.model.backend == "llama_cpp"
    assert settings.log_level == "info"
    text = "\n".join(problems)
    for name in (
        "completion.debounceMs",
        "completion.temperature",
        "model.backend",
        "logLevel",
        "colour",
        "context",
    ):
        assert name in text


def test_non_object_settings_are_reported():
    settings, problems = parse_settings(["nope"])
    assert settings == Settings()
    assert "must be an object" in problems[0]


def test_booleans_are_not_numbers():
    settings, problems = parse_settings({"completion": {"maxTokens": True, "prefill": 1}})
    assert settings.completion.max_tokens == Settings().completion.max_tokens
    assert settings.completion.prefill is True
    assert len(problems) == 2


def test_registry_settings_are_typed_and_checked():
    settings, problems = parse_settings(
        {"model": {"registry": "~/reg", "channel": "beta", "registryPollMs": 250, "pin": "abc1"}}
    )
    assert problems == []
    assert (settings.model.registry, settings.model.channel) == ("~/reg", "beta")
    assert (settings.model.registry_poll_ms, settings.model.pin) == (250, "abc1")

    settings, problems = parse_settings({"model": {"channel": "../x", "registryPollMs": 0, "registry": 3}})
    assert (settings.model.channel, settings.model.registry_poll_ms, settings.model.registry) == ("stable", 1000, "")
    text = "\n".join(problems)
    for name in ("model.channel", "model.registryPollMs", "model.registry"):
        assert name in text
