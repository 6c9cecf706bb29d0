"""The Kamailio front's rendered files: what they say, what is refused, and Kamailio's own check.

The syntax check runs ``kamailio -c`` on each rendered variant (skipped without Kamailio); a
deliberately broken copy must fail it, so the check itself is known to bite.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sipvm.domain.peers import TrustedPeers
from sipvm.errors import InvalidInputError
from sipvm.front.kamailio import (
    SOURCE_HEADER,
    FrontConfig,
    FrontPaths,
    kamailio_command,
    render,
    render_cfg,
    render_dispatcher_list,
)

STATE = Path("/var/lib/sipvm/front")
WORKERS = [("127.0.0.1", 5071), ("127.0.0.1", 5072), ("10.0.0.7", 5060)]


def config(**changes: Any) -> FrontConfig:
    settings: dict[str, Any] = {
        "address": "203.0.113.5",
        "workers": WORKERS,
        "trusted_peers": ["198.51.100.7", "10.1.0.0/16"],
        "state_dir": STATE,
    }
    return FrontConfig(**{**settings, **changes})


def routes(cfg: str) -> dict[str, str]:
    """Each route block's body by its header (``request_route``, ``route[DISPATCH]``, ...)."""
    found = re.findall(r"^(\S+?)\s*\{\n(.*?)^\}", cfg, flags=re.MULTILINE | re.DOTALL)
    return dict(found)


# -- what is rendered -------------------------------------------------------------------------


def test_render_gives_the_script_and_the_dispatcher_list_under_the_state_directory() -> None:
    files = render(config())

    assert sorted(files) == [str(STATE / "dispatcher.list"), str(STATE / "kamailio.cfg")]
    assert files[str(STATE / "kamailio.cfg")] == render_cfg(config())
    assert files[str(STATE / "dispatcher.list")] == render_dispatcher_list(config())


def test_every_placeholder_is_filled() -> None:
    for variant in (config(), config(algorithm="round-robin", worker_side=("127.0.0.1", 5059))):
        cfg = render_cfg(variant)
        assert "{{" not in cfg and "}}" not in cfg


def test_the_dispatcher_list_names_each_worker_pinged_with_its_load_limit() -> None:
    lines = render_dispatcher_list(config(calls_per_worker=4)).splitlines()

    assert lines[0].startswith("#")
    assert lines[1:] == [
        "1 sip:127.0.0.1:5071 8 0 duid=w1;maxload=4",
        "1 sip:127.0.0.1:5072 8 0 duid=w2;maxload=4",
        "1 sip:10.0.0.7:5060 8 0 duid=w3;maxload=4",
    ]


def test_round_robin_and_unlimited_least_busy_have_no_load_limit() -> None:
    for variant in (config(algorithm="round-robin"), config(calls_per_worker=0)):
        assert "maxload" not in render_dispatcher_list(variant)


def test_listen_sockets_for_callers_and_the_optional_worker_side() -> None:
    plain = render_cfg(config(port=5080))
    assert re.findall(r"^listen=.*$", plain, flags=re.MULTILINE) == [
        "listen=udp:203.0.113.5:5080",
        "listen=tcp:203.0.113.5:5080",
    ]
    assert "ds_default_socket" not in plain
    assert '"ds_ping_from", "sip:sipvm-front@203.0.113.5"' in plain

    split = render_cfg(config(port=5080, worker_side=("127.0.0.1", 5059)))
    assert "listen=udp:127.0.0.1:5059" in split
    assert 'modparam("dispatcher", "ds_default_socket", "udp:127.0.0.1:5059")' in split
    assert '"ds_ping_from", "sip:sipvm-front@127.0.0.1"' in split


@pytest.mark.parametrize(("algorithm", "number"), [("least-busy", 10), ("round-robin", 4)])
def test_the_algorithm_picks_the_dispatcher_algorithm_and_the_load_bookkeeping(
    algorithm: str, number: int
) -> None:
    cfg = render_cfg(config(algorithm=algorithm))

    # The third parameter bounds the failover list: the 3 workers (max_attempts is 4).
    assert f'ds_select_dst("1", "{number}", "3")' in cfg
    assert ("#!define LEAST_BUSY" in cfg) is (algorithm == "least-busy")
    # The load bookkeeping is always written, switched on by the define.
    assert "ds_load_update();" in cfg and "ds_load_unset();" in cfg


def test_keepalive_timeout_and_thresholds_reach_their_parameters() -> None:
    cfg = render_cfg(
        config(
            keepalive_s=3,
            probing_threshold=4,
            recovery_threshold=2,
            worker_timeout_ms=1500,
            peer_timeout_ms=9000,
            answer_timeout_s=20,
        )
    )
    blocks = routes(cfg)

    assert 'modparam("dispatcher", "ds_ping_interval", 3)' in cfg
    assert 'modparam("dispatcher", "ds_probing_mode", 1)' in cfg
    assert 'modparam("dispatcher", "ds_probing_threshold", 4)' in cfg
    assert 'modparam("dispatcher", "ds_inactive_threshold", 2)' in cfg
    assert 'modparam("tm", "fr_timer", 1500)' in cfg
    assert 'modparam("tm", "fr_inv_timer", 20000)' in cfg
    # Requests from workers to the far side get the longer timeout.
    assert "t_set_fr(0, 9000);" in blocks["route[WITHINDLG]"]
    assert "t_set_fr(0, 9000);" in blocks["route[FROM_WORKER]"]
    assert 'modparam("dispatcher", "flags", 2)' in cfg  # failover to the next worker
    assert f'"list_file", "{STATE / "dispatcher.list"}"' in cfg
    assert f'"binrpc", "unix:{STATE / "kamailio.ctl"}"' in cfg


def test_trusted_peers_become_networks_checked_before_any_invite_is_dispatched() -> None:
    cfg = render_cfg(config())
    main = routes(cfg)["request_route"]

    assert 'is_in_subnet("$si", "198.51.100.7/32,10.1.0.0/16")' in main
    refused, dispatched = main.index('sl_send_reply("403"'), main.index("route(DISPATCH)")
    assert refused < dispatched
    # A caller's own X-Sipvm-Source is removed before anything else; the front's is added.
    assert main.index(f'remove_hf("{SOURCE_HEADER}")') < main.index("route(WITHINDLG)")
    assert f'append_hf("{SOURCE_HEADER}: $si:$sp\\r\\n")' in main


def test_the_front_and_the_router_read_trusted_peers_alike() -> None:
    """One parser (``domain.peers``) for both: the subnets Kamailio checks are the ones the
    single worker's router trusts."""
    entries = ["198.51.100.7", "10.1.0.0/16", "127.0.0.0/29"]
    main = routes(render_cfg(config(trusted_peers=entries)))["request_route"]

    assert f'is_in_subnet("$si", "{TrustedPeers.parse(entries)}")' in main


def test_refusals_carry_retry_after_and_busy_workers_are_skipped() -> None:
    cfg = render_cfg(config(retry_after_s=42))
    blocks = routes(cfg)

    assert 'append_to_reply("Retry-After: 42\\r\\n")' in blocks["route[UNAVAILABLE]"]
    assert 'send_reply("503"' in blocks["route[UNAVAILABLE]"]
    failure = blocks["failure_route[NEXT_WORKER]"]
    # Busy, timed out (also after ringing), draining or failing: the next worker.
    assert 't_check_status("408|486|5[0-9][0-9]")' in failure
    assert 'ds_mark_dst("ip")' in failure
    assert "ds_next_dst()" in failure
    assert 'append_to_reply("Retry-After: 42\\r\\n")' in blocks["route[OPTIONS]"]


def code_lines(block: str) -> list[str]:
    """The statements of a route block, comments left out."""
    return [line.strip() for line in block.splitlines() if not line.strip().startswith("#")]


def test_the_front_itself_answers_only_503_with_retry_after_never_500() -> None:
    """tm's own replies to relay errors (a 500 such as "Forking capacity exceeded") are
    switched off; every error reply the script sends is the 503 of UNAVAILABLE."""
    cfg = render_cfg(config(retry_after_s=42))
    blocks = routes(cfg)
    code = "\n".join(code_lines(cfg))

    relay = "\n".join(code_lines(blocks["route[RELAY]"]))
    assert relay.index("t_set_disable_internal_reply(1);") < relay.index("if (!t_relay())")
    assert "route(UNAVAILABLE);" in relay
    assert "sl_reply_error" not in code and "t_reply_error" not in code
    replies = re.findall(r'(?:sl_send_reply|send_reply|t_reply)\("(\d+)"', code)
    assert set(replies) <= {"200", "403", "404", "405", "483", "503"}, replies
    for name, block in blocks.items():
        if '"503"' in block:
            assert 'append_to_reply("Retry-After: 42\\r\\n")' in block, name


@pytest.mark.parametrize(("attempts", "workers", "listed"), [(4, 3, 3), (4, 50, 4), (2, 50, 2)])
def test_failover_is_bounded_by_max_attempts(attempts: int, workers: int, listed: int) -> None:
    many = [("127.0.0.1", 6000 + k) for k in range(workers)]
    cfg = render_cfg(config(workers=many, max_attempts=attempts))

    assert f'ds_select_dst("1", "10", "{listed}")' in routes(cfg)["route[DISPATCH]"]


def test_a_call_counts_on_its_worker_until_it_has_ended_there() -> None:
    """least-busy bookkeeping: the count is added by ds_select_dst, moved by ds_next_dst,
    confirmed by the INVITE's 2xx, and given back once: when a BYE is answered or times
    out, on CANCEL, on a final refusal, on a relay error; never when a BYE passes by."""
    blocks = routes(render_cfg(config()))
    in_dialog = "\n".join(code_lines(blocks["route[WITHINDLG]"]))
    release = "\n".join(code_lines(blocks["route[RELEASE]"]))
    failure = "\n".join(code_lines(blocks["failure_route[NEXT_WORKER]"]))

    assert "ds_load_update" not in in_dialog and "ds_load_unset" not in in_dialog
    assert 't_on_reply("BYE_REPLY");' in in_dialog and 't_on_failure("BYE_FAILED");' in in_dialog
    assert "route(RELEASE);" in blocks["onreply_route[BYE_REPLY]"]
    assert "route(RELEASE);" in blocks["failure_route[BYE_FAILED]"]
    assert "ds_load_update();" in blocks["onreply_route[WORKER_REPLY]"]
    # Given back once per transaction: a second unset would find nothing and log an error.
    assert release.index("$avp(released) == $null") < release.index("ds_load_unset();")
    # Canceled, a worker's own answer, nobody left: each gives the count back.
    assert failure.count("route(RELEASE);") == 3
    # The last worker tried is known before ds_next_dst drops its record (ds_load_unset
    # needs the record of an INVITE's destination).
    assert "$xavp(_dsdst_[1]=>uri) != $null && ds_next_dst()" in failure
    assert failure.rindex("route(RELEASE);") < failure.rindex("route(UNAVAILABLE);")
    assert "route(RELEASE);" in blocks["route[RELAY]"]


def test_the_module_directory_is_only_named_when_given() -> None:
    assert "loadpath" not in render_cfg(config())
    cfg = render_cfg(config(module_dir=Path("/opt/kamailio/lib/modules")))
    assert 'loadpath "/opt/kamailio/lib/modules"' in cfg


def test_the_command_runs_kamailio_in_the_foreground_on_the_rendered_files() -> None:
    paths = FrontPaths(STATE)

    command = kamailio_command(paths, executable="/usr/sbin/kamailio", shm_mb=32, pkg_mb=4)

    assert command == [
        "/usr/sbin/kamailio",
        "-DD",
        "-E",
        "-f",
        str(STATE / "kamailio.cfg"),
        "-P",
        str(STATE / "kamailio.pid"),
        "-Y",
        str(STATE),
        "-w",
        str(STATE),
        "-m",
        "32",
        "-M",
        "4",
    ]
    assert kamailio_command(paths)[0] == "kamailio"
    assert config().paths == paths


# -- what is refused --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"address": "::1"}, "not IPv4"),
        ({"address": "0.0.0.0"}, "concrete address"),
        ({"address": "sip.example.com"}, "not an IP address"),
        ({"port": 70000}, "out of range"),
        ({"workers": []}, "at least one worker"),
        ({"workers": [("127.0.0.1", 5071)] * 2}, "listed twice"),
        ({"workers": [("203.0.113.5", 5060)]}, "front's own address"),
        ({"worker_side": ("127.0.0.1", 5071)}, "front's own address"),
        ({"trusted_peers": []}, "trusted_peers is empty"),
        ({"trusted_peers": ["10.1.0.1/16"]}, 'host bits set: write the network "10.1.0.0/16"'),
        ({"trusted_peers": ["pbx.example.com"]}, "'pbx.example.com' is not an IP address"),
        ({"trusted_peers": ["10.0.0.0/33"]}, "/33 is longer than an IPv4 address"),
        ({"trusted_peers": ["2001:db8::1"]}, "IPv6, but the front takes calls over IPv4 only"),
        ({"algorithm": "random"}, "algorithm must be"),
        ({"keepalive_s": 0}, "keepalive_s must be at least 1"),
        ({"worker_timeout_ms": 2000}, "shorter than keepalive_s"),
        ({"peer_timeout_ms": 0}, "peer_timeout_ms must be at least 100"),
        ({"probing_threshold": 0}, "probing_threshold must be at least 1"),
        ({"retry_after_s": 0}, "retry_after_s must be at least 1"),
        ({"log_level": 9}, "log_level"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_attempts": 9}, "max_attempts must be at most 8"),
        ({"setup_expire_s": 30}, "setup_expire_s must be longer than answer_timeout_s"),
        ({"state_dir": Path("relative/dir")}, "absolute path"),
        ({"state_dir": Path('/tmp/a"b')}, "absolute path"),
        ({"state_dir": Path("/tmp") / ("x" * 120)}, "too long for a unix socket"),
    ],
)
def test_invalid_settings_are_refused_with_the_reason(changes: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(said)):
        config(**changes)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(InvalidInputError) as caught:
        config(address="::1", keepalive_s=0, workers=[])
    assert str(caught.value).count(";") >= 2


def test_workers_and_peers_given_as_lists_are_stored_as_tuples() -> None:
    made = config()
    assert made.workers == tuple(WORKERS)
    assert made.trusted_peers == ("198.51.100.7", "10.1.0.0/16")
    assert hash(made)


# -- Kamailio's own syntax check --------------------------------------------------------------

needs_kamailio = pytest.mark.skipif(
    shutil.which("kamailio") is None, reason="kamailio is not installed"
)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A short directory (the control socket path must fit a unix socket address)."""
    path = Path(tempfile.mkdtemp(prefix="kcfg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def kamailio_check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False
    )


@needs_kamailio
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"algorithm": "round-robin"},
        {"worker_side": ("127.0.0.1", 5059), "calls_per_worker": 0},
    ],
    ids=["least-busy", "round-robin", "worker-side"],
)
def test_kamailio_accepts_the_rendered_config(state_dir: Path, changes: dict[str, Any]) -> None:
    front = config(address="127.0.0.1", state_dir=state_dir, **changes)
    for path, text in render(front).items():
        Path(path).write_text(text)

    checked = kamailio_check(front.paths.cfg)

    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "config file ok" in checked.stderr


@needs_kamailio
def test_the_syntax_check_catches_a_broken_config(state_dir: Path) -> None:
    front = config(address="127.0.0.1", state_dir=state_dir)
    for path, text in render(front).items():
        Path(path).write_text(text)
    broken = front.paths.cfg.read_text().replace("&& ds_next_dst())", "&& ds_next_dst()", 1)
    front.paths.cfg.write_text(broken)

    assert kamailio_check(front.paths.cfg).returncode != 0
