"""Pure parts of lab/stack: apt mirror discovery, content keys, error sentences. No Docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import RuntimeUnavailable
from lab.stack.apt_mirror import apt_mirror
from lab.stack.engine import _explain_compose_failure, read_env_file, service_kind, write_env_file
from lab.stack.image_keys import digest, file_digest
from lab.stack.wheelhouse import manylinux_platforms


def _apt(tmp_path: Path, sources: str = "", listing: str = "") -> Path:
    (tmp_path / "sources.list.d").mkdir()
    if sources:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(sources)
    if listing:
        (tmp_path / "sources.list").write_text(listing)
    return tmp_path


def test_apt_mirror_prefers_the_bookworm_archive_over_security(tmp_path: Path) -> None:
    etc = _apt(
        tmp_path,
        sources=(
            "Types: deb\nURIs: http://security.example/debian-security\n"
            "Suites: bookworm-security\nComponents: main\n\n"
            "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
            "Suites: bookworm bookworm-updates\nComponents: main\n"
        ),
    )
    assert apt_mirror(etc) == "http://mirror.example/debian"


def test_apt_mirror_reads_one_line_sources_list(tmp_path: Path) -> None:
    etc = _apt(tmp_path, listing="deb [arch=amd64] http://m.example/debian bookworm main contrib\n")
    assert apt_mirror(etc) == "http://m.example/debian"


def test_apt_mirror_skips_third_party_and_disabled(tmp_path: Path) -> None:
    etc = _apt(
        tmp_path,
        sources=(
            "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"
            "Components: main\n\nEnabled: no\nTypes: deb\nURIs: http://off.example/debian\n"
            "Suites: bookworm\nComponents: main\n"
        ),
    )
    with pytest.raises(RuntimeUnavailable, match="LAB_DEBIAN_MIRROR"):
        apt_mirror(etc)


def test_content_keys_change_with_content_and_only_then(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text("FROM scratch\n")
    k1 = file_digest([f], tmp_path, ["base-id"])
    assert file_digest([f], tmp_path, ["base-id"]) == k1
    assert file_digest([f], tmp_path, ["other-base"]) != k1
    f.write_text("FROM scratch\nCOPY x /x\n")
    assert file_digest([f], tmp_path, ["base-id"]) != k1
    assert len(digest(["a"])) == 12


def test_manylinux_platforms_reach_down_to_manylinux2014() -> None:
    flags = manylinux_platforms("x86_64")
    tags = flags[1::2]
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags and "manylinux2014_x86_64" in tags
    assert set(flags[0::2]) == {"--platform"}


def test_port_clash_is_one_sentence_naming_the_port() -> None:
    stderr = (
        "Error response from daemon: driver failed programming external connectivity: "
        "Bind for 127.0.0.1:8474 failed: port is already allocated"
    )
    msg = _explain_compose_failure(stderr)
    assert "127.0.0.1:8474 is taken" in msg and "lab down" in msg


def test_disk_full_names_the_fix() -> None:
    assert "docker system prune" in _explain_compose_failure("write /x: no space left on device")


def test_env_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    write_env_file(path, {"LAB_SERVICES_IMAGE": "grenache-lab/services:abc", "B": "x=y"})
    assert read_env_file(path) == {"LAB_SERVICES_IMAGE": "grenache-lab/services:abc", "B": "x=y"}


@pytest.mark.parametrize(
    ("service", "kind"),
    [("grape-2", "grape"), ("client-round_robin", "client"), ("toxiproxy", "toxiproxy")],
)
def test_service_kind(service: str, kind: str) -> None:
    assert service_kind(service) == kind


@pytest.mark.parametrize(("text", "ok"), [("2.12.0", True), ("2.5.0", True), ("2.1.4", False)])
def test_toxiproxy_versions_below_2_5_are_refused(
    monkeypatch: pytest.MonkeyPatch, text: str, ok: bool
) -> None:
    from lab.stack import toxiapi

    monkeypatch.setattr(toxiapi, "version", lambda api=toxiapi.DEFAULT_API: text)
    if ok:
        assert toxiapi.check_version() == text
    else:
        with pytest.raises(RuntimeUnavailable, match="too old"):
            toxiapi.check_version()
