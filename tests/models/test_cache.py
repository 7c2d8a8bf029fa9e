"""The opt-in cache: what the key covers, sample indices, SQLite as JSON, coalescing."""

from __future__ import annotations

import json
import logging
import pickle
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import xcs
from xcs.models import Cache, Completion, MockProvider, Request, mark, models, set_cache


def counting_provider() -> MockProvider:
    mock = MockProvider(lambda r: f"answer {len(mock.requests)}")
    models.register_provider("mock", mock)
    return mock


def test_no_cache_unless_asked() -> None:
    counting_provider()
    assert models("mock:m", "q") == "answer 1"
    assert models("mock:m", "q") == "answer 2"
    assert models.statistics()["cache"] is None


def test_a_hit_returns_the_stored_answer_marked_cached() -> None:
    with Cache() as cache:
        first = models("sim:echo?price_in=1&price_out=1", "a b c")
        again = models("sim:echo?price_in=1&price_out=1", "a b c")
    assert (first.cached, again.cached) == (False, True)
    assert again == first
    assert again.usage == first.usage
    assert first.cost_usd is not None
    assert first.cost_usd > 0
    assert again.cost_usd == 0.0  # a hit costs nothing
    assert (again.model, again.finish_reason) == (first.model, first.finish_reason)
    stats = cache.statistics()
    assert (stats.hits, stats.misses, stats.stores) == (1, 1, 1)
    assert models.statistics()["models"]["sim:echo"].cache_hits == 1


BASE = {"temperature": 0.5, "max_tokens": 10, "stop": ["x"], "seed": 1, "sample": 0}


@pytest.mark.parametrize(
    ("model_id", "prompt", "params"),
    [
        ("mock:other", "q", BASE),
        ("mock:m", "q2", BASE),
        ("mock:m", [{"role": "user", "content": "q"}, {"role": "user", "content": "q"}], BASE),
        ("mock:m", "q", {**BASE, "system": "s"}),
        ("mock:m", "q", {**BASE, "temperature": 0.6}),
        ("mock:m", "q", {**BASE, "max_tokens": 11}),
        ("mock:m", "q", {**BASE, "stop": ["y"]}),
        ("mock:m", "q", {**BASE, "seed": 2}),
        ("mock:m", "q", {**BASE, "sample": 1}),
    ],
)
def test_the_key_covers_model_messages_and_every_parameter(
    model_id: str, prompt: str, params: dict[str, object]
) -> None:
    mock = counting_provider()
    with Cache():
        models("mock:m", "q", **BASE)  # type: ignore[arg-type]
        models(model_id, prompt, **params)  # type: ignore[arg-type]
    assert len(mock.requests) == 2


def test_the_key_leaves_out_how_the_call_is_made() -> None:
    mock = counting_provider()
    with Cache():
        models("mock:m", "q", **BASE)  # type: ignore[arg-type]
        models("mock:m", "q", **BASE, timeout=3, max_attempts=1)  # type: ignore[arg-type]
    assert len(mock.requests) == 1


def test_the_key_covers_the_server_but_not_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from xcs.models._base import EndpointConfig
    from xcs.models._cache import cache_key
    from xcs.models._params import parse_model_id
    from xcs.models._types import Message

    model = parse_model_id("openai:gpt-4o-mini", ["openai"])
    request = Request("gpt-4o-mini", (Message("user", "q"),))
    one = cache_key(model, EndpointConfig("openai", None, "sk-1", "a"), request)
    assert one == cache_key(model, EndpointConfig("openai", None, "sk-2", "b"), request)
    assert one != cache_key(model, EndpointConfig("openai", "http://h/v1", "sk-1", "a"), request)


def test_cache_false_bypasses() -> None:
    mock = counting_provider()
    with Cache():
        models("mock:m", "q")
        models("mock:m", "q", cache=False)
    assert len(mock.requests) == 2


def test_lru_keeps_maxsize_entries_in_memory() -> None:
    mock = counting_provider()
    with Cache(maxsize=2) as cache:
        for prompt in ("a", "b", "c", "a"):  # "a" was evicted by "c"
            models("mock:m", prompt)
        assert len(cache) == 2
    assert len(mock.requests) == 4


def test_sqlite_file_persists_json(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    mock = counting_provider()
    with Cache(path) as cache:
        first = models("mock:m", "q", temperature=0)
    cache.close()
    with Cache(path, maxsize=1) as reopened:
        again = models("mock:m", "q", temperature=0)
        assert len(reopened) == 1
    assert again == first
    assert again.cached
    assert len(mock.requests) == 1
    # The file holds JSON text, never a pickle.
    (value,) = sqlite3.connect(path).execute("SELECT value FROM responses").fetchone()
    stored = json.loads(value)
    assert stored["text"] == "answer 1"
    assert not value.startswith("\x80")  # not a pickle stream
    reopened.clear()
    assert len(reopened) == 0


def test_a_file_that_is_not_a_cache_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "not.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(xcs.ValidationError, match="cannot use"):
        Cache(bad)
    with pytest.raises(xcs.ValidationError, match="maxsize"):
        Cache(maxsize=0)


def test_process_wide_cache_and_with_blocks() -> None:
    mock = counting_provider()
    outer, inner = Cache(), Cache()
    set_cache(outer)
    models("mock:m", "q")
    models("mock:m", "q")
    with inner:
        models("mock:m", "q")  # a miss: the block uses its own cache
        assert models.current_cache() is inner
    assert models.current_cache() is outer
    assert len(mock.requests) == 2
    with pytest.raises(xcs.ValidationError):
        set_cache("yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Sample indices: NOTE [Sample indices] in xcs/models/_cache.py


def ensemble(question: str) -> list[str]:
    return [models("sim:chat", question, temperature=0.8, sample=i) for i in range(5)]


def test_an_ensemble_gets_distinct_samples() -> None:
    with Cache():
        answers = ensemble("q")
    assert len(set(answers)) == 5


def test_sequential_and_jitted_runs_use_the_same_keys() -> None:
    jitted = xcs.jit(ensemble)
    with Cache() as sequential_cache:
        sequential = ensemble("q")
    with Cache() as jit_cache:
        parallel = jitted("q")
        parallel_again = jitted("q")
    assert parallel == sequential
    assert parallel_again == sequential
    assert set(jit_cache._memory) == set(sequential_cache._memory)
    with sequential_cache:  # the jitted program is answered by the sequential run's cache
        from_cache = jitted("q")
    assert from_cache == sequential
    assert all(a.cached for a in from_cache)


def test_a_repeated_sample_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="xcs.models"), Cache():
        for _ in range(3):
            models("sim:chat", "q", temperature=0.8)
        models("sim:chat", "q", temperature=0.8, sample=0)  # explicit: not warned about
    warnings = [r for r in caplog.records if "sample=" in r.getMessage()]
    assert len(warnings) == 1


# ---------------------------------------------------------------------------
# Coalescing


def wait_until(condition: object, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


def test_identical_concurrent_calls_coalesce() -> None:
    release = threading.Event()

    def handler(request: Request) -> str:
        assert release.wait(10)
        return "the answer"

    mock = MockProvider(handler)
    models.register_provider("mock", mock)
    results: list[str] = []
    cache = Cache()
    set_cache(cache)  # process-wide: plain threads do not inherit a `with` block's context
    threads = [
        threading.Thread(target=lambda: results.append(models("mock:m", "q"))) for _ in range(6)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: cache.waiting() == 5)  # one leader, five waiting for it
    release.set()
    for t in threads:
        t.join(10)
    assert results == ["the answer"] * 6
    assert len(mock.requests) == 1
    assert cache.statistics().coalesced == 5
    assert sorted(r.cached for r in results) == [False] + [True] * 5


def test_coalescing_inside_jit() -> None:
    mock = counting_provider()

    @xcs.jit
    def same_question_five_times(q: str) -> list[str]:
        return [models("mock:m", q, temperature=0) for _ in range(5)]

    with Cache():
        assert same_question_five_times("q") == ["answer 1"] * 5
    assert len(mock.requests) == 1


def test_when_the_leader_fails_a_waiter_calls_again() -> None:
    release = threading.Event()
    outcomes = iter(["fail", "ok"])

    def handler(request: Request) -> str:
        if next(outcomes) == "fail":
            assert release.wait(10)
            raise mark(xcs.ProviderError("HTTP 400"), retryable=False)
        return "second try"

    models.register_provider("mock", MockProvider(handler))
    errors: list[BaseException] = []
    results: list[str] = []

    def leader() -> None:
        try:
            models("mock:m", "q")
        except xcs.ProviderError as exc:
            errors.append(exc)

    cache = Cache()
    set_cache(cache)
    first = threading.Thread(target=leader)
    first.start()
    wait_until(lambda: cache._inflight)
    second = threading.Thread(target=lambda: results.append(models("mock:m", "q")))
    second.start()
    wait_until(lambda: cache.waiting() == 1)
    release.set()
    first.join(10)
    second.join(10)
    assert len(errors) == 1
    assert results == ["second try"]


def test_waiting_for_an_identical_call_is_bounded_by_the_deadline() -> None:
    release = threading.Event()
    models.register_provider("mock", MockProvider(lambda r: "x" if release.wait(10) else "y"))
    cache = Cache()
    set_cache(cache)
    leader = threading.Thread(target=lambda: models("mock:m", "q"))
    leader.start()
    wait_until(lambda: cache._inflight)
    with pytest.raises(xcs.ExecutionTimeout, match="identical call"), xcs.deadline(0.05):
        models("mock:m", "q")
    release.set()
    leader.join(10)


def test_cache_is_not_picklable_by_accident() -> None:
    # A Cache holds a database connection and locks; bindings and responses are
    # what travel between processes.
    with pytest.raises(TypeError):
        pickle.dumps(Cache())


def test_a_cache_hit_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from xcs.models import EndpointConfig
    from xcs.models._openai import OpenAIProvider

    answers = iter(["from the provider"])

    class Offline(OpenAIProvider):  # OpenAI's key rules, no network
        def __init__(self, endpoint: EndpointConfig) -> None:
            self.endpoint = endpoint

        def complete(self, request: Request) -> Completion:
            return Completion(next(answers))

        def close(self) -> None:
            pass

    models.register_provider("openai", Offline)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-was-set-then")
    with Cache() as cache:
        assert models("openai:gpt-4o-mini", "q", temperature=0) == "from the provider"
        monkeypatch.delenv("OPENAI_API_KEY")
        again = models("openai:gpt-4o-mini", "q", temperature=0)
        assert again.cached
        with pytest.raises(xcs.AuthenticationError, match="OPENAI_API_KEY"):
            models("openai:gpt-4o-mini", "not cached", temperature=0)
    assert cache.statistics().hits == 1


def test_a_broken_cache_file_never_loses_an_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    counting_provider()
    cache = Cache(tmp_path / "c.sqlite")
    cache._db.execute("DROP TABLE responses")  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING, logger="xcs.models"), cache:
        assert models("mock:m", "q") == "answer 1"  # the write fails, the answer is kept
        cache._memory.clear()
        assert models("mock:m", "q") == "answer 2"  # the read fails: a miss
    assert "writing" in caplog.text
    assert "reading" in caplog.text


# ---------------------------------------------------------------------------
# Rows XCS did not write, answers SQLite cannot hold (issue 14 item 11)

BAD_ROWS = [
    "{not json",  # JSONDecodeError
    "[1, 2, 3]",  # JSON, not an object
    '"just a string"',
    '{"text": "hi"}',  # KeyError: no token counts
    '{"text": 5, "prompt_tokens": 1, "completion_tokens": 1, "model": "m"}',  # TypeError
    '{"text": "x", "prompt_tokens": "many", "completion_tokens": 1, "model": "m"}',
    '{"text": "x", "prompt_tokens": 1, "completion_tokens": 1, "model": "m", "cost_usd": "$"}',
]


@pytest.mark.parametrize("row", BAD_ROWS)
def test_a_row_xcs_did_not_write_is_a_miss_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, row: str
) -> None:
    mock = counting_provider()
    path = tmp_path / "c.sqlite"
    with Cache(path):
        assert models("mock:m", "q", temperature=0) == "answer 1"
        assert models("mock:m", "r", temperature=0) == "answer 2"
    db = sqlite3.connect(path)
    db.execute("UPDATE responses SET value = ?", (row,))  # both rows spoiled
    db.commit()
    db.close()
    cache = Cache(path)
    with caplog.at_level(logging.WARNING, logger="xcs.models"), cache:
        assert models("mock:m", "q", temperature=0) == "answer 3"  # a miss: called again
        assert models("mock:m", "r", temperature=0) == "answer 4"
        assert models("mock:m", "q", temperature=0) == "answer 3"  # and stored anew
    assert len(mock.requests) == 4
    logged = [r for r in caplog.records if "treated as a miss" in r.getMessage()]
    assert len(logged) == 1  # once per cache, not once per row


def test_an_answer_sqlite_cannot_store_is_returned_not_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A lone surrogate is a valid Python str (a provider's JSON may carry "\ud800")
    # but not UTF-8: SQLite cannot store it. The paid answer is returned all the same.
    mock = MockProvider(lambda r: "half a pair: \ud800")
    models.register_provider("mock", mock)
    with caplog.at_level(logging.WARNING, logger="xcs.models"), Cache(tmp_path / "c.sqlite"):
        assert models("mock:m", "q", temperature=0) == "half a pair: \ud800"
        assert models("mock:m", "q", temperature=0) == "half a pair: \ud800"
    assert len(mock.requests) == 2  # not stored, so asked again
    assert "not stored" in caplog.text
