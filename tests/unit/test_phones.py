"""Provisioned desk phones: the directory's phone tables, the keys a phone gets, the files.

Golden files (``tests/golden/phones/``) are the example directory's phones rendered by the
shipped templates; ``SIPVM_UPDATE_GOLDEN=1`` writes them again after a deliberate change (then
read the diff). Every parameter in them is one ``provisioning/templates/parameters.toml`` lists
with its vendor source.
"""

from __future__ import annotations

import os
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sipvm.config import load_settings
from sipvm.domain.model import Directory, PhoneModel
from sipvm.domain.phones import file_names, phone_keys, provisioned_phones
from sipvm.errors import DirectoryError, InvalidInputError
from sipvm.provisioning.directory_file import dump_directory, parse_directory, read_directory_file
from sipvm.provisioning.phones import PhoneFiles, cfg_value
from tests.unit.test_phone_templates_sources import assert_documented, polycom_attributes

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "provisioning" / "examples" / "small-office.toml"
GOLDEN = REPO / "tests" / "golden" / "phones"

BASE = """
[[site]]
name = "HQ"
timezone = "UTC"

[[user]]
ext = "1001"
name = "Alice"
admin = true
{alice}

[[user]]
ext = "1002"
name = "Bob"
{bob}

[[call_queue]]
ext = "2001"
name = "Sales"
{sales}

[[shared_line_group]]
ext = "4001"
name = "Front desk"

[[role]]
name = "front desk"
members = ["1002"]
kinds = ["shared_line_group"]
rights = ["play"]
"""
PHONE = '[[user.phone]]\nuri = "{uri}"\nmac = "{mac}"\nmodel = "{model}"\n'


def directory(alice: str = "", bob: str = "", sales: str = "") -> Directory:
    text = BASE.format(alice=alice, bob=bob, sales=sales)
    return parse_directory(tomllib.loads(text), source="test.toml")


def problems(alice: str = "", bob: str = "") -> list[str]:
    with pytest.raises(DirectoryError) as caught:
        directory(alice, bob)
    return caught.value.problems


# --- the directory file --------------------------------------------------------------------------


def test_a_phone_table_gives_the_aor_and_what_provisioning_needs() -> None:
    d = directory(
        alice='phones = ["sip:1001@pbx"]\n'
        + PHONE.format(uri="sip:1001-2@pbx", mac="80-5E-C0-12-34-56", model="Yealink")
        + 'label = "Desk"\n'
    )
    alice = d.extensions["1001"]
    assert alice.phones == ("sip:1001@pbx", "sip:1001-2@pbx")  # lamps reach both
    (desk,) = alice.desk_phones
    assert (desk.mac, desk.model, desk.label) == ("805ec0123456", PhoneModel.YEALINK, "Desk")
    again = parse_directory(tomllib.loads(dump_directory(d)), source="export")
    assert again == d  # the export round-trips


def test_the_example_directory_round_trips_with_its_phones() -> None:
    d = read_directory_file(EXAMPLE)
    assert len(provisioned_phones(d)) == 3
    assert parse_directory(tomllib.loads(dump_directory(d)), source="export") == d


@pytest.mark.parametrize(
    ("alice", "words"),
    [
        (PHONE.format(uri="sip:1@p", mac="805ec012345", model="yealink"), "is not a MAC address"),
        (PHONE.format(uri="sip:1@p", mac="805ec012345g", model="yealink"), "is not a MAC"),
        (PHONE.format(uri="sip:1@p", mac="805ec0123456", model="cisco"), "unknown model 'cisco'"),
        (PHONE.format(uri="1001", mac="805ec0123456", model="yealink"), "is not a SIP URI"),
        ('[[user.phone]]\nuri = "sip:1@p"\nmac = "805ec0123456"\n', "give both 'mac' and"),
        ('[[user.phone]]\nuri = "sip:1@p"\nmodel = "polycom"\n', "give both 'mac' and"),
        ('[[user.phone]]\nuri = "sip:1@p"\nlabel = "a\\nb"\n', "printable characters"),
        ('[[user.phone]]\nuri = "sip:1@p"\nkey = 1\n', "unknown key 'key'"),
        ('phones = ["sip:1@p"]\n[[user.phone]]\nuri = "sip:1@p"\n', "is given twice"),
    ],
)
def test_a_bad_phone_table_is_named_with_what_to_do(alice: str, words: str) -> None:
    found = problems(alice=alice)
    assert any(words in p and "user 1001" in p for p in found), found


def test_one_phone_per_mac_across_the_directory() -> None:
    found = problems(
        alice=PHONE.format(uri="sip:1001@p", mac="805ec0123456", model="yealink"),
        bob=PHONE.format(uri="sip:1002@p", mac="80:5e:c0:12:34:56", model="polycom"),
    )
    assert found == [
        "test.toml: user 1002 phone #1: MAC 805ec0123456 is already the phone of "
        "user 1001 phone #1: one phone per MAC"
    ]


# --- which keys a phone gets -----------------------------------------------------------------


def test_keys_are_the_grants_other_than_the_own_inbox() -> None:
    d = directory(sales='[[call_queue.members]]\nmember = "1002"\nrights = ["play", "delete"]')
    assert [(k.position, k.ext, k.name, k.dial) for k in phone_keys(d, "1002", "*97")] == [
        (1, "2001", "Sales", "*97*2001"),  # the member list
        (2, "4001", "Front desk", "*97*4001"),  # the role
    ]
    # Alice is an admin: she may open every queue from the menu, but was granted none
    assert phone_keys(d, "1001", "*97") == []


def test_file_names_are_what_each_vendor_asks_for() -> None:
    d = read_directory_file(EXAMPLE)
    names = {p.model: file_names(p) for p in provisioned_phones(d)}
    assert names == {
        PhoneModel.YEALINK: ("805ec0123456.cfg",),
        PhoneModel.POLYCOM: ("0004f2a1b2c3.cfg", "0004f2a1b2c3-sipvm.cfg"),
        PhoneModel.GRANDSTREAM: ("cfg000b82d4e5f6.xml",),
    }


# --- the files -------------------------------------------------------------------------------


def test_the_example_directorys_files_match_the_golden_files() -> None:
    files = PhoneFiles("*97").render_all(read_directory_file(EXAMPLE))
    if os.environ.get("SIPVM_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for f in files:
            (GOLDEN / f.name).write_bytes(f.content)
    assert sorted(f.name for f in files) == sorted(p.name for p in GOLDEN.iterdir())
    for f in files:
        assert f.content == (GOLDEN / f.name).read_bytes(), f.name


def test_golden_files_parse_and_use_only_documented_parameters() -> None:
    yealink = (GOLDEN / "805ec0123456.cfg").read_text()
    settings = [
        line.partition(" = ")[0]
        for line in yealink.splitlines()[1:]
        if line.strip() and not line.startswith("#")
    ]
    assert_documented("yealink", settings)
    for name in ("0004f2a1b2c3.cfg", "0004f2a1b2c3-sipvm.cfg"):
        assert_documented("polycom", list(polycom_attributes((GOLDEN / name).read_text())))
    root = ET.fromstring((GOLDEN / "cfg000b82d4e5f6.xml").read_bytes())
    config = root.find("config")
    assert config is not None
    assert_documented("grandstream", [child.tag for child in config])


def test_names_are_escaped_in_xml_and_kept_to_one_line_in_a_cfg() -> None:
    sales = '[[call_queue.members]]\nmember = "1002"\nrights = ["play"]'
    bob = "\n".join(
        PHONE.format(uri=f"sip:1002-{m}@pbx", mac=mac, model=m)
        for m, mac in (("polycom", "0004f2000001"), ("grandstream", "000b82000001"))
    )
    text = BASE.format(alice="", bob=bob, sales=sales).replace(
        'name = "Sales"', 'name = "R&D <lab> \\"x\\""'
    )
    d = parse_directory(tomllib.loads(text), source="t")
    files = {f.name: f.content.decode() for f in PhoneFiles("*97").render_all(d)}
    poly = polycom_attributes(files["0004f2000001-sipvm.cfg"])
    assert poly["efk.efklist.1.label"] == 'R&D <lab> "x"'
    gs = ET.fromstring(files["cfg000b82000001.xml"])
    assert 'R&D <lab> "x"' in [e.text for e in gs.iter()]
    assert cfg_value("Sales\r\naccount.1.x = 1\x00") == "Sales account.1.x = 1"


def test_an_admins_template_replaces_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "yealink.cfg.j2").write_text(
        "#!version:1.0.0.1\n{% for k in keys %}linekey.{{ k.position + 1 }}.value = "
        "{{ k.dial }}\n{% endfor %}",
        encoding="utf-8",
    )
    d = read_directory_file(EXAMPLE)
    found = PhoneFiles("*97", tmp_path).file(d, "805ec0123456.cfg")
    assert found is not None
    assert found.content.decode().splitlines()[1] == "linekey.2.value = *97*1002"
    polycom = PhoneFiles("*97", tmp_path).file(d, "0004f2a1b2c3.cfg")
    assert polycom is not None and b"APPLICATION" in polycom.content  # others: shipped


def test_a_broken_template_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "yealink.cfg.j2").write_text("{{ phone.nope }}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"phone template yealink.cfg.j2.*nope"):
        PhoneFiles("*97", tmp_path).render_all(read_directory_file(EXAMPLE))


def test_only_a_configured_phones_name_is_a_file() -> None:
    d = read_directory_file(EXAMPLE)
    files = PhoneFiles("*97")
    assert files.file(d, "805ec0123456.cfg") is not None
    for name in ("805EC0123456.cfg", "000000000000.cfg", "cfg805ec0123456.xml", "../x", ""):
        assert files.file(d, name) is None, name


def test_provisioning_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[provisioning]\nnetworks = ["10.0.0.0/33"]\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="is not a network"):
        load_settings(path)
    path.write_text('[provisioning]\nusername = "phones"\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="give both username and password"):
        load_settings(path)
    path.write_text(
        '[provisioning]\nnetworks = ["10.1.0.0/16", "192.0.2.7"]\nvoicemail_number = "*98"\n',
        encoding="utf-8",
    )
    prov = load_settings(path).provisioning
    assert prov.networks == ("10.1.0.0/16", "192.0.2.7") and prov.voicemail_number == "*98"
