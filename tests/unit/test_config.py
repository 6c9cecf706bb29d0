"""The server's settings file: every key optional, unknown keys and wrong types refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipvm.config import MwiSettings, Settings, SmtpSettings, load_settings
from sipvm.errors import InvalidInputError


def settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "sipvm.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_no_file_and_an_empty_file_give_the_defaults(tmp_path: Path) -> None:
    assert load_settings(None) == Settings() == settings(tmp_path, "")
    assert Settings().mwi == MwiSettings(enabled=True, coalesce_s=0.2, refresh_s=3600.0)
    assert Settings().smtp.host == ""  # no email until configured


def test_sections_are_read(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        'workers = 2\n[sip]\nproxy = "sip:10.0.0.2:5080"\ntrusted_peers = ["10.0.0.2"]\n'
        '[smtp]\nhost = "mail.example.com"\nport = 587\nstarttls = true\nusername = "vm"\n'
        'password = "s3cret"\nretry_s = 5\n[mwi]\nrefresh_s = 600\ncoalesce_s = 0.5\n',
    )
    assert s.workers == 2
    assert s.sip.proxy == "sip:10.0.0.2:5080" and s.sip.trusted_peers == ("10.0.0.2",)
    assert s.smtp == SmtpSettings(
        host="mail.example.com", port=587, starttls=True, username="vm", password="s3cret",
        retry_s=5.0,
    )  # fmt: skip
    assert s.mwi == MwiSettings(refresh_s=600.0, coalesce_s=0.5)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "colour = 1\n",
            "unknown key 'colour'; allowed: data, directory, workers, [sip], [smtp], [mwi]",
        ),
        ("[mwi]\nlamps = true\n", "unknown key 'lamps' in [mwi]; allowed: enabled, coalesce_s"),
        ('[smtp]\nport = "25"\n', "[smtp] port must be a int"),
        ("[mwi]\nenabled = 1\n", "[mwi] enabled must be a bool"),
        ('[sip]\nproxy = "sip:pbx.example.com:5060"\n', "must be sip:ADDRESS[:PORT] with an IP"),
        ('[sip]\nproxy = "10.0.0.2:5060"\n', "must be sip:ADDRESS[:PORT] with an IP"),
        ("[sip\n", "is not valid TOML"),
        (
            '[menu]\nenvelope = "first"\n',
            "[menu] envelope 'first' must be one of before, after, key",
        ),
        ("[menu]\nenvelope = 3\n", "[menu] envelope must be a str"),
        ('[menu]\nspoken_names = "no"\n', "[menu] spoken_names must be a bool"),
        ('[menu]\nvoice = "en"\n', "unknown key 'voice' in [menu]; allowed: envelope"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        settings(tmp_path, text)
    assert fragment in str(info.value)
    assert str(tmp_path / "sipvm.toml") in str(info.value)


@pytest.mark.parametrize(
    "proxy",
    ["sip:127.0.0.1", "sip:10.0.0.2:5080", "sip:10.0.0.2:5080;transport=tcp", "sip:[::1]:5060"],
)
def test_proxies_with_an_address_are_accepted(tmp_path: Path, proxy: str) -> None:
    assert settings(tmp_path, f'[sip]\nproxy = "{proxy}"\n').sip.proxy == proxy


@pytest.mark.parametrize("envelope", ["before", "after", "key"])
def test_menu_envelope_is_read(tmp_path: Path, envelope: str) -> None:
    assert settings(tmp_path, f'[menu]\nenvelope = "{envelope}"\n').menu.envelope == envelope


def test_menu_envelope_defaults_to_after() -> None:
    assert Settings().menu.envelope == "after"


def test_menu_spoken_names_are_on_unless_turned_off(tmp_path: Path) -> None:
    assert Settings().menu.spoken_names is True
    assert settings(tmp_path, "[menu]\nspoken_names = false\n").menu.spoken_names is False
