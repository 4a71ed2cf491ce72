"""The emulator's rate mode throttles as Django REST Framework's AnonRateThrottle.

The window logic is pure, so it is checked against DRF's own
`SimpleRateThrottle` fed the same scripted request times (with a fake cache
and clock), and against waits worked out by hand. Then the emulator in rate
mode is checked on the wire: DRF's detail inside a 200 stream, one window per
client, reset, faults, the CLI. The tests that the emulator's 429s and
`ChatDfeHub`'s reading of them match a real DRF app's are in
test_drf_service.py, which runs them against both servers.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus, Throttle
from langchain_dfehub.testing import __main__ as cli
from langchain_dfehub.testing._faults import throttle_detail
from langchain_dfehub.testing._rate import (
    Rate,
    RateDecision,
    RateWindow,
    client_ident,
    drf_wait,
    rate_throttle,
)

REPO = Path(__file__).resolve().parents[1]
CHAT = {"messages": [{"role": "user", "content": "one two three"}]}
STREAM = {**CHAT, "stream": True}
_DETAIL = re.compile(r"Request was throttled\. Expected available in (\d+) seconds?\.")


# --- DRF itself, in this process ----------------------------------------------------


class _FakeCache:
    """Django's cache interface as DRF's throttle uses it; copies, as a real one."""

    def __init__(self) -> None:
        self._values: dict[str, list[float]] = {}

    def get(self, key: str, default: list[float]) -> list[float]:
        return list(self._values.get(key, default))

    def set(self, key: str, value: list[float], timeout: float) -> None:
        self._values[key] = list(value)


@pytest.fixture(scope="module")
def drf() -> SimpleNamespace:
    """DRF's throttle, exception and exception handler, with minimal settings."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(USE_I18N=False, DATABASES={}, REST_FRAMEWORK={})
    from rest_framework.exceptions import Throttled
    from rest_framework.throttling import SimpleRateThrottle
    from rest_framework.views import exception_handler

    return SimpleNamespace(
        SimpleRateThrottle=SimpleRateThrottle,
        Throttled=Throttled,
        exception_handler=exception_handler,
    )


class _DrfScript:
    """Requests at scripted times through DRF's `SimpleRateThrottle`."""

    def __init__(self, drf: SimpleNamespace, rate: str) -> None:
        class Scripted(drf.SimpleRateThrottle):  # type: ignore[name-defined,misc]
            cache = _FakeCache()

            def get_cache_key(self, request: Any, view: Any) -> str:
                return str(request)  # the "request" is the client's ident

        Scripted.rate = rate
        self._throttle_class = Scripted

    def check(self, client: str, now: float) -> RateDecision:
        # DRF builds a new throttle for every request, as here.
        throttle = self._throttle_class()
        throttle.timer = lambda: now
        if throttle.allow_request(client, None):
            return RateDecision(True)
        return RateDecision(False, throttle.wait())


def _scripted_times(seed: int, count: int, mean_gap: float) -> list[tuple[float, str]]:
    generator = random.Random(seed)
    now, script = 1_000.0, []
    for _ in range(count):
        now += generator.expovariate(1 / mean_gap)
        script.append((now, generator.choice(["10.0.0.1", "10.0.0.2"])))
    return script


@pytest.mark.parametrize(
    ("rate", "mean_gap"),
    [("3/min", 7.0), ("10/s", 0.06), ("1/s", 0.4), ("5/hour", 500.0), ("0/s", 0.5)],
)
def test_the_window_decides_and_waits_exactly_as_drf(
    drf: SimpleNamespace, rate: str, mean_gap: float
):
    script = _scripted_times(seed=13, count=300, mean_gap=mean_gap)
    theirs = _DrfScript(drf, rate)
    ours = RateWindow(Rate.parse(rate))

    decisions = [(ours.check(c, t), theirs.check(c, t)) for t, c in script]

    assert [mine for mine, _ in decisions] == [drfs for _, drfs in decisions]
    allowed = sum(mine.allowed for mine, _ in decisions)
    assert allowed < len(script)  # the script did provoke throttles
    assert allowed > 0 or rate == "0/s"


@pytest.mark.parametrize("wait", [0.2, 1.0, 1.0001, 2.5, 59.5, 60.0, 86399.9, None])
def test_the_throttle_text_and_retry_after_are_drfs(
    drf: SimpleNamespace, wait: float | None
):
    response = drf.exception_handler(drf.Throttled(wait), {})
    throttle = rate_throttle(RateDecision(False, wait), "status")

    assert throttle is not None
    assert {"detail": throttle_detail(throttle.wait)} == response.data
    assert throttle.retry_after == response.headers.get("Retry-After")


def test_the_window_by_hand_three_a_minute():
    window = RateWindow(Rate.parse("3/min"))

    assert [window.check("a", t).allowed for t in (0.0, 10.0, 20.0)] == [True] * 3
    assert window.check("a", 30.0) == RateDecision(False, 30.0)  # (60 - 30) / 1
    assert window.check("a", 59.0) == RateDecision(False, 1.0)  # not counted
    assert window.check("b", 30.0).allowed  # another client, another window
    assert window.check("a", 60.0).allowed  # the request at 0 has left the window
    assert window.check("a", 60.5) == RateDecision(False, 9.5)  # (60 - 50.5) / 1
    window.clear()
    assert window.check("a", 60.5).allowed


def test_the_wait_shares_what_is_left_among_the_free_slots_plus_one():
    rate = Rate(3, 60)

    assert drf_wait([0.0], 30.0, rate) == 10.0  # (60 - 30) / (2 + 1)
    assert drf_wait([], 30.0, rate) == 15.0  # 60 / (3 + 1)
    assert drf_wait([0.0, 1.0, 2.0, 3.0], 30.0, rate) is None  # overfull window


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/s", Rate(10, 1)),
        ("3/min", Rate(3, 60)),
        ("100/hour", Rate(100, 3600)),
        ("1/d", Rate(1, 86400)),
        ("2/second", Rate(2, 1)),
        ("0/m", Rate(0, 60)),
    ],
)
def test_rates_are_read_in_drfs_syntax(text: str, expected: Rate):
    assert Rate.parse(text) == expected


@pytest.mark.parametrize("text", ["10", "ten/s", "10/x", "-1/s", "10/", "/s", "1.5/s"])
def test_a_rate_drf_cannot_read_is_refused(text: str):
    with pytest.raises(ValueError, match="N/period"):
        Rate.parse(text)


@pytest.mark.parametrize(
    ("headers", "peer", "expected"),
    [
        ({}, ("127.0.0.1", 5555), "127.0.0.1"),
        ({}, ("::1", 5555, 0, 0), "::1"),
        ({"x-forwarded-for": "10.0.0.7"}, ("127.0.0.1", 5555), "10.0.0.7"),
        ({"x-forwarded-for": "10.0.0.7, 10.0.0.8"}, None, "10.0.0.7,10.0.0.8"),
    ],
)
def test_a_client_is_known_as_drf_knows_it(
    headers: dict[str, str], peer: Any, expected: str
):
    assert client_ident(headers, peer) == expected


# --- The emulator in rate mode, on the wire -------------------------------------------


def url(emulator: DfeHubEmulator) -> str:
    return emulator.base_url + "/chat/completions"


def whole_seconds(detail: str) -> int:
    match = _DETAIL.fullmatch(detail)
    assert match is not None, detail
    return int(match.group(1))


@pytest.mark.dfehub_emulator(throttle_rate="1/min", throttle_as="stream")
def test_rate_mode_as_stream_puts_drfs_detail_inside_a_200_stream(
    dfehub_emulator: DfeHubEmulator,
):
    assert httpx.post(url(dfehub_emulator), json=STREAM).status_code == 200

    throttled = httpx.post(url(dfehub_emulator), json=STREAM)
    plain = httpx.post(url(dfehub_emulator), json=CHAT)

    assert throttled.status_code == 200
    events = throttled.text.split("\n\n")
    assert events.pop() == ""
    role = json.loads(events[0].removeprefix("data: "))["choices"][0]["delta"]
    assert role == {"role": "assistant", "content": ""}
    detail = json.loads(events[-1])["detail"]
    assert 0 < whole_seconds(detail) <= 60
    assert "data: [DONE]" not in events
    assert plain.status_code == 200
    assert 0 < whole_seconds(plain.json()["detail"]) <= 60


@pytest.mark.dfehub_emulator(throttle_rate="2/min")
def test_rate_mode_keeps_one_window_per_client(dfehub_emulator: DfeHubEmulator):
    def status(client: str) -> int:
        headers = {"X-Forwarded-For": client}
        return httpx.post(url(dfehub_emulator), json=CHAT, headers=headers).status_code

    assert [status("10.0.0.1") for _ in range(3)] == [200, 200, 429]
    assert [status("10.0.0.2") for _ in range(3)] == [200, 200, 429]


@pytest.mark.dfehub_emulator(throttle_rate="1/min")
def test_reset_forgets_the_rate_history(dfehub_emulator: DfeHubEmulator):
    assert httpx.post(url(dfehub_emulator), json=CHAT).status_code == 200
    assert httpx.post(url(dfehub_emulator), json=CHAT).status_code == 429

    dfehub_emulator.reset()
    assert httpx.post(url(dfehub_emulator), json=CHAT).status_code == 200

    root = dfehub_emulator.base_url.removesuffix("/api/openai/v1")
    assert httpx.post(root + "/_emulator/reset").status_code == 200
    assert httpx.post(url(dfehub_emulator), json=CHAT).status_code == 200


@pytest.mark.dfehub_emulator(throttle_rate="1/min")
def test_queued_faults_come_first_and_do_not_count_against_the_rate(
    dfehub_emulator: DfeHubEmulator,
):
    dfehub_emulator.add_faults(ErrorStatus(500), Throttle(0.5))
    statuses = [httpx.post(url(dfehub_emulator), json=CHAT) for _ in range(4)]

    assert [reply.status_code for reply in statuses] == [500, 429, 200, 429]
    assert "0.5 seconds" in statuses[1].json()["detail"]


def test_the_emulator_refuses_a_bad_rate_and_two_throttle_modes():
    with pytest.raises(ValueError, match="N/period"):
        DfeHubEmulator(throttle_rate="fast")
    with pytest.raises(ValueError, match="set one"):
        DfeHubEmulator(throttle_every=2, throttle_rate="1/s")


def test_the_cli_refuses_a_bad_rate(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--throttle-rate", "10/x"])
    assert exit_info.value.code == 2
    assert "--throttle-rate" in capsys.readouterr().err


def test_the_cli_serves_rate_mode():
    command = [sys.executable, "-m", "langchain_dfehub.testing"]
    arguments = ["--throttle-rate", "1/min"]
    process = subprocess.Popen(
        [*command, *arguments], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        chat = process.stdout.readline().strip() + "/chat/completions"
        assert httpx.post(chat, json=CHAT).status_code == 200
        throttled = httpx.post(chat, json=CHAT)
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == str(
        whole_seconds(throttled.json()["detail"])
    )
