"""Shared fixtures. Tests are CPU-only and offline; every test uses temporary folders for data and weights.

A plain ``pytest`` deselects the ``slow``, ``browser`` and ``gpu`` tests (``addopts`` in ``pyproject.toml``);
``make test`` runs all but ``gpu``. Tests that are not marked ``slow`` or ``browser`` cannot open a network
connection: :func:`_offline_unless_marked` fails them (loopback and Unix sockets stay allowed).
"""

from __future__ import annotations

import ipaddress
import socket

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Point every cache and weights location at a temporary folder so tests never touch a user's files."""
    from op4ksr_bench.paths import downloads_dir

    downloads = downloads_dir()  # the user's download cache stays shared: Debian packages are large
    root = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("OP4KSR_DOWNLOADS", str(downloads))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OP4KSR_WEIGHTS", str(root / "weights"))
    monkeypatch.setenv("OP4KSR_DATA", str(root / "data"))
    yield


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _offline_unless_marked(request, monkeypatch):
    """Fail a test that reaches for the network unless it is marked ``slow`` or ``browser``.

    Checks connections made in the test's own process (subprocesses are covered by running the default selection
    without a network, as the issue notes describe).
    """
    if request.node.get_closest_marker("slow") or request.node.get_closest_marker("browser"):
        yield
        return
    attempts: list[str] = []
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def refuse(where: str) -> OSError:
        attempts.append(where)
        return ConnectionRefusedError(f"network access to {where} in a test not marked slow")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise refuse(str(address))
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise refuse(str(address))
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host if not isinstance(host, bytes) else host.decode()):
            raise socket.gaierror(f"name lookup of {host!r} in a test not marked slow ({refuse(str(host))})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    if attempts:
        pytest.fail(f"the test reached for the network ({', '.join(attempts[:3])}); mark it @pytest.mark.slow")
