from __future__ import annotations

import shutil
import subprocess

import pytest

from finetune.dataset.secrets import PLACEHOLDER, looks_random, scrub, scrub_record
from finetune.records import Block, Provenance, Record

# Test secrets are assembled from pieces so that this file itself does not trip secret scanners.
AWS_KEY_ID = "AKIA" + "Q3EGRHZV5LXN7T2D"
GITHUB_PAT = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
GITHUB_FINE = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
GITHUB_OAUTH = "gho_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
KEY_BASE = "kJ8s9dF3mQ2xV7nL0pR4tY6uW1zA5cE8gH3jK9mN2bV5xC7zL0qW4eR6tY8uI1oP"
HEX_KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
PEM = (
    "-----BEGIN RSA " + "PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6ZzNfRQjuOlo4qKjWWNpHQ2Xc\n"
    "aJ1Yw2b0qQ1cX7kV9hU5uD6eR7tY8wL3nM2bV5xC7zL0qW4eR6tY8uI1oPfG2h3j\n"
    "-----END RSA " + "PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("secret", "kind"),
    [
        (AWS_KEY_ID, "aws-access-key-id"),
        (GITHUB_PAT, "github-token"),
        (GITHUB_FINE, "github-token"),
        (GITHUB_OAUTH, "github-token"),
        (SLACK, "slack-token"),
        (STRIPE, "stripe-key"),
        (GOOGLE, "google-api-key"),
        (JWT, "jwt"),
    ],
)
def test_token_formats_are_scrubbed_inside_string_literals(secret: str, kind: str) -> None:
    text = f'defmodule Client do\n  @headers [{{"authorization", "Bearer {secret}"}}]\nend\n'
    result = scrub(text)
    assert secret not in result.text
    assert f'"Bearer {PLACEHOLDER}"' in result.text  # the quotes stay: still valid code
    assert result.counts == {kind: 1}


def test_private_key_blocks_are_scrubbed_whole() -> None:
    text = f'@key """\n{PEM}\n"""\ndef key, do: @key\n'
    result = scrub(text)
    assert result.text == f'@key """\n{PLACEHOLDER}\n"""\ndef key, do: @key\n'
    assert result.counts == {"private-key": 1}


def test_private_key_in_an_escaped_one_line_string() -> None:
    escaped = PEM.replace("\n", "\\n")
    result = scrub(f'config :app, key: "{escaped}"\n')
    assert result.text == f'config :app, key: "{PLACEHOLDER}"\n'


def test_a_cut_off_private_key_loses_its_body() -> None:
    cut = PEM.rsplit("\n", 1)[0]  # no END line
    result = scrub(cut + "\nend\n")
    assert "MIIEpAIBAAKCAQEA" not in result.text and result.text.endswith("\nend\n")


def test_phoenix_config_secrets_are_scrubbed_and_dev_defaults_stay() -> None:
    config = f'''import Config

config :my_app, MyApp.Repo,
  username: "postgres",
  password: "postgres",
  hostname: "localhost"

config :my_app, MyAppWeb.Endpoint,
  secret_key_base: "{KEY_BASE}",
  live_view: [signing_salt: "aB3dE5fG"]

config :my_app, :stripe, api_key: System.get_env("STRIPE_KEY")
'''
    result = scrub(config)
    assert f'secret_key_base: "{PLACEHOLDER}"' in result.text
    assert 'password: "postgres"' in result.text
    assert 'signing_salt: "aB3dE5fG"' in result.text
    assert 'api_key: System.get_env("STRIPE_KEY")' in result.text
    assert result.counts == {"secret-key-base": 1}


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        (f'@api_key "{HEX_KEY}"', f'@api_key "{PLACEHOLDER}"', "api-key"),
        (f'{{api_key, <<"{HEX_KEY}">>}}.', f'{{api_key, <<"{PLACEHOLDER}">>}}.', "api-key"),
        (f"export HEX_API_KEY={HEX_KEY}", f"export HEX_API_KEY={PLACEHOLDER}", "hex-api-key"),
        (f'hex_api_key = "{HEX_KEY}"', f'hex_api_key = "{PLACEHOLDER}"', "hex-api-key"),
        (f'%{{"password" => "{KEY_BASE[:20]}"}}', f'%{{"password" => "{PLACEHOLDER}"}}', "password"),
        (
            f'[{{:client_secret, ~s"{KEY_BASE[:24]}"}}]',
            f'[{{:client_secret, ~s"{PLACEHOLDER}"}}]',
            "named-secret",
        ),
        (f"access_token = '{KEY_BASE[10:40]}'", f"access_token = '{PLACEHOLDER}'", "token"),
    ],
)
def test_secret_named_assignments_with_random_values(text: str, expected: str, kind: str) -> None:
    result = scrub(text)
    assert result.text == expected
    assert result.counts == {kind: 1}


ORDINARY = [
    # Hashes in tests are checksums, not credentials.
    'assert :crypto.hash(:sha256, "") |> Base.encode16(case: :lower) ==\n'
    '  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
    # UUIDs identify things.
    'user = %User{id: "6f1c2b9e-3d4a-4c8e-9b7f-2a1d5e6c8f90", name: "Ann"}',
    # Base64 fixtures.
    'png = Base.decode64!("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"'
    ' <> "60e6kgAAAABJRU5ErkJggg==")',
    # Secret-named, but dictionary-like, spaced or too short values.
    'password: "correct horse battery staple"',
    'Repo.insert!(%User{password: "this_is_my_dev_password"})',
    '@secret "shh"',
    'password: "Passw0rd!"',
    # Secret-named, but not a literal.
    'secret_key_base: System.fetch_env!("SECRET_KEY_BASE")',
    'token: "#{prefix}_#{random}_suffix_long_enough"',
    # Stripe publishable keys are public.
    'publishable_key = "pk_live_' + '4eC39HqLyjWDarjtT1zdp7dc"',
    # Module names and atoms that contain secret-like words.
    "alias MyApp.Accounts.PasswordResetToken\ndef token_length, do: 32",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_code_is_left_alone(text: str) -> None:
    result = scrub(text)
    assert result.text == text
    assert not result.counts


def test_randomness_rule() -> None:
    assert looks_random(KEY_BASE)
    assert looks_random(HEX_KEY)
    assert not looks_random("aaaaaaaaaaaaaaaaaaaaaaaa1")
    assert not looks_random("short1A")
    assert not looks_random("with spaces 1234567890 ABC")


def test_counts_add_up_by_kind() -> None:
    text = f'a = "{AWS_KEY_ID}"\nb = "{AWS_KEY_ID}"\nsecret_key_base: "{KEY_BASE}"\n'
    assert scrub(text).counts == {"aws-access-key-id": 2, "secret-key-base": 1}


def test_scrub_record_covers_text_blocks_and_meta() -> None:
    text = f'token = "{GITHUB_PAT}"'
    record = Record(
        "book",
        "markdown",
        "Set it up:\n" + text,
        Provenance("books", "Deploying Elixir"),
        meta={"section_title": "Secrets", "examples": [text]},
        blocks=(Block("prose", "Set it up:"), Block("code", text, "elixir")),
    )
    scrubbed, counts = scrub_record(record)
    assert counts == {"github-token": 3}
    assert GITHUB_PAT not in repr(scrubbed)
    assert scrubbed.blocks[1].text == f'token = "{PLACEHOLDER}"'
    assert scrubbed.meta["examples"] == [f'token = "{PLACEHOLDER}"']
    untouched = Record("code", "elixir", "x = 1", Provenance("local"))
    assert scrub_record(untouched) == (untouched, {})


@pytest.mark.skipif(
    shutil.which("elixir") is None, reason="needs Elixir to check that scrubbed code still parses"
)
def test_scrubbed_code_still_parses() -> None:
    source = f'''defmodule Config do
  @key """
{PEM}
"""
  def all do
    [aws: "{AWS_KEY_ID}", github: ~s"{GITHUB_PAT}", secret_key_base: "{KEY_BASE}",
     hex: {{:api_key, <<"{HEX_KEY}">>}}, headers: %{{"password" => "{KEY_BASE[:20]}"}}, key: @key]
  end
end
'''
    scrubbed = scrub(source)
    assert sum(scrubbed.counts.values()) == 6
    check = subprocess.run(
        ["elixir", "-e", "IO.read(:stdio, :eof) |> Code.string_to_quoted!() |> then(fn _ -> :ok end)"],
        input=scrubbed.text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr


def test_code_that_handles_pem_headers_is_not_a_key() -> None:
    text = (
        '-define(PEM_HEADER, <<"-----BEGIN OPENSSH PRIVATE KEY-----">>).\n'
        '%%     <<"-----BEGIN OPENSSH PRIVATE KEY-----\\n....">> (openssh_key_v1)\n'
        'decode(<<"-----BEGIN RSA PRIVATE KEY-----", Rest/binary>>) -> pem(Rest).\n'
    )
    result = scrub(text)
    assert result.text == text and not result.counts


def test_text_whose_lower_case_changes_length_is_still_scrubbed() -> None:
    # "İ" lower-cases to two characters, which forces the case-insensitive scan.
    text = f'# İstanbul office\nconfig :app, Secret_Key_Base: "{KEY_BASE}"\n'
    assert len(text.lower()) != len(text)
    result = scrub(text)
    assert result.text == f'# İstanbul office\nconfig :app, Secret_Key_Base: "{PLACEHOLDER}"\n'
    assert result.counts == {"secret-key-base": 1}


def test_word_like_values_under_secret_names_are_kept():
    # OTP's megaco defines `?PrettyEmergencyOffToken` as "EmergencyOffToken": a protocol keyword.
    source = '-define(PrettyEmergencyOffToken          , "EmergencyOffToken"     ).\nconfig :app, api_key: "Zq8vR2mX7pL4wK9tY3nB6cF1"\n'
    result = scrub(source)
    assert '"EmergencyOffToken"' in result.text
    assert "Zq8vR2mX7pL4wK9tY3nB6cF1" not in result.text
