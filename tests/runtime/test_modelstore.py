"""Model sources and versions: listings, downloads through ``.partial`` folders, the disk tier,
and the client's live reload (a new version swapped in after one poll, a removed one drained).

Remote sources are fsspec's ``memory://`` file system (process-wide: each test has its own root).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import fsspec
import pytest

from cortex.errors import PredictorError
from cortex.runtime import modelstore
from cortex.runtime.modelclient import ModelClient, ModelNotFound, ModelRequestError
from cortex.spec import Models


@pytest.fixture
def remote() -> tuple[Any, str]:
    """A fresh ``memory://`` root: (the file system, its URL)."""
    root = f"/t-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    yield fs, f"memory://{root}"
    fs.rm(root, recursive=True)


def _put(fs: Any, url: str, path: str, data: bytes = b"w" * 10) -> None:
    fs.pipe(url.removeprefix("memory://") + "/" + path, data)


class Recorder:
    def __init__(self) -> None:
        self.evictions: list[tuple[Any, str]] = []
        self.disk: list[tuple[str, int]] = []

    def requested(self, key: Any, result: str) -> None:
        pass

    def loaded(self, key: Any, seconds: float, ok: bool) -> None:
        pass

    def evicted(self, key: Any, reason: str) -> None:
        self.evictions.append((key, reason))

    def over_budget(self) -> None:
        pass

    def evicted_disk(self, name: str, version: int) -> None:
        self.disk.append((name, version))


class Predictor:
    """Loads a model folder as the text of its files; counts loads and unloads."""

    def __init__(self) -> None:
        self.loads: Counter[str] = Counter()
        self.unloaded: list[str] = []

    def load_model(self, model_path: str) -> dict[str, Any]:
        self.loads[model_path] += 1
        files = sorted(p for p in Path(model_path).rglob("*") if p.is_file())
        return {"path": model_path, "files": [p.name for p in files]}

    def unload_model(self, model: dict[str, Any]) -> None:
        self.unloaded.append(model["path"])


@contextlib.contextmanager
def _request(client: ModelClient, query: bytes) -> Any:
    """What the prediction handler does around a request."""
    chosen = client.begin(query)
    try:
        yield chosen
    finally:
        client.end(chosen)


def _client(tmp_path: Path, **models: Any) -> tuple[ModelClient, Predictor, Recorder]:
    seen, predictor = Recorder(), Predictor()
    spec = Models.model_validate({"poll_interval": 0, **models})
    client = ModelClient(spec, tmp_path, tmp_path / "cache", seen)
    client.bind(predictor)
    return client, predictor, seen


def test_versions_are_integer_folders_and_a_partial_one_is_ignored(remote: Any) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    _put(fs, url, "a/2.partial/w.bin")
    _put(fs, url, "flat/weights.bin")
    source = modelstore.open_source(url, Path("/"), "predictor.models.dir")
    assert source.child("a").versions() == (1,)
    assert source.child("flat").versions() == (1,)  # a folder without versions is version 1
    assert source.child("missing").versions() == ()


def test_a_remote_version_is_downloaded_through_a_partial_folder(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/3/sub/w.bin", b"abc")
    disk = modelstore.DiskCache(tmp_path, None, lambda name, version: False)
    source = modelstore.open_source(url, tmp_path, "predictor.models.dir").child("a")
    seen_partial: list[bool] = []
    original = source.fs.get_file

    def spy(remote_path: str, local: str, **kwargs: Any) -> None:
        seen_partial.append(".partial" in local)
        original(remote_path, local, **kwargs)

    source.fs.get_file = spy
    try:
        path = disk.fetch("a", 3, source)
    finally:
        del source.fs.get_file
    assert path == tmp_path / "a" / "3"
    assert (path / "sub" / "w.bin").read_bytes() == b"abc"
    assert seen_partial == [True] and not (tmp_path / "a" / "3.partial").exists()


def test_a_download_cut_short_never_looks_complete_and_is_cleaned_at_start(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/one.bin")
    _put(fs, url, "a/1/two.bin")
    source = modelstore.open_source(url, tmp_path, "predictor.models.dir").child("a")
    calls = 0
    original = source.fs.get_file

    def crash_on_second(remote_path: str, local: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("connection reset")
        original(remote_path, local, **kwargs)

    source.fs.get_file = crash_on_second
    try:
        with pytest.raises(ConnectionError):
            modelstore.DiskCache(tmp_path, None, lambda n, v: False).fetch("a", 1, source)
    finally:
        del source.fs.get_file
    assert not (tmp_path / "a" / "1").exists() and (tmp_path / "a" / "1.partial").exists()
    modelstore.DiskCache(tmp_path, None, lambda n, v: False)  # a restarted process
    assert not (tmp_path / "a" / "1.partial").exists()


def test_the_disk_tier_keeps_disk_cache_size_versions_never_one_in_use(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    for name in ("a", "b", "c"):
        _put(fs, url, f"{name}/1/w.bin")
    parent = modelstore.open_source(url, tmp_path, "predictor.models.dir")
    evicted: list[tuple[str, int]] = []
    disk = modelstore.DiskCache(
        tmp_path, 2, lambda name, version: name == "a", lambda n, v: evicted.append((n, v))
    )
    for name in ("a", "b", "c"):
        disk.fetch(name, 1, parent.child(name))
    assert evicted == [("b", 1)]  # a is older, but in memory
    assert (tmp_path / "a" / "1").is_dir() and not (tmp_path / "b" / "1").exists()
    assert disk.usage() == (2, 20)


def test_a_local_model_is_loaded_where_it_lies(tmp_path: Path) -> None:
    (tmp_path / "models" / "iris" / "1").mkdir(parents=True)
    (tmp_path / "models" / "iris" / "1" / "w.bin").write_bytes(b"x")
    client, _predictor, _ = _client(tmp_path, dir="models")
    model = client.get_model("iris")
    assert model["path"] == str(tmp_path / "models" / "iris" / "1")
    assert not (tmp_path / "cache" / "iris").exists()


def test_a_protocol_without_its_package_names_the_field_and_the_package(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401

        pytest.skip("s3fs is installed")
    except ImportError:
        pass
    with pytest.raises(PredictorError) as caught:
        _client(tmp_path, dir="s3://bucket/models")
    assert "predictor.models.dir 's3://bucket/models' cannot be read: Install s3fs" in str(
        caught.value
    )


def test_get_model_names_the_models_when_asked_for_an_unknown_one(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    _put(fs, url, "b/1/w.bin")
    client, _, _ = _client(tmp_path, dir=url)
    with pytest.raises(ModelNotFound) as unknown:
        client.get_model("zebra")
    with pytest.raises(ModelRequestError) as unnamed:
        client.get_model()
    with pytest.raises(ModelNotFound) as version:
        client.get_model("a", "7")
    with pytest.raises(ModelRequestError) as bad:
        client.get_model("a", "newest")
    assert str(unknown.value) == "unknown model 'zebra'; models: a, b"
    assert str(unnamed.value) == "choose a model with ?model=NAME; models: a, b"
    assert str(version.value) == "model 'a' has no version 7; versions: 1"
    assert str(bad.value) == "version 'newest' must be an integer or 'latest'"


def test_one_model_of_path_is_the_default(remote: Any, tmp_path: Path) -> None:
    fs, url = remote
    _put(fs, url, "only/w.bin")
    client, _, _ = _client(tmp_path, path=f"{url}/only")
    assert client.get_model()["files"] == ["w.bin"]
    assert client.names() == ["default"]


def test_a_new_version_is_latest_after_one_poll_without_dropped_requests(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    client, _predictor, seen = _client(tmp_path, dir=url)
    assert client.get_model("a")["path"].endswith("/a/1")
    _put(fs, url, "a/2.partial/w.bin")
    client.poll_once()
    assert client.describe()[0]["latest"] == 1  # a partial version is no version
    _put(fs, url, "a/2/w.bin")
    failures: list[BaseException] = []
    answered = 0
    stop = threading.Event()

    def requests() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                with client.model("a") as model:
                    assert model["path"].endswith(("/a/1", "/a/2"))
                answered += 1
            except BaseException as exc:
                failures.append(exc)
                return

    thread = threading.Thread(target=requests)
    thread.start()
    client.poll_once()
    stop.set()
    thread.join(30)
    assert failures == [] and answered > 0
    assert client.get_model("a")["path"].endswith("/a/2")
    assert client.describe() == [{"name": "a", "versions": [1, 2], "latest": 2, "loaded": [2]}]
    assert seen.evictions == [(("a", 1), "replaced")]
    assert client.get_model("a", 1)["path"].endswith("/a/1")  # still listed: loads again


def test_a_removed_version_finishes_in_flight_requests_and_takes_no_new_ones(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    _put(fs, url, "a/2/w.bin")
    client, predictor, _seen = _client(tmp_path, dir=url)
    with client.model("a", 2) as held:
        fs.rm(url.removeprefix("memory://") + "/a/2", recursive=True)
        client.poll_once()
        with pytest.raises(ModelNotFound):
            client.get_model("a", 2)
        assert held["path"].endswith("/a/2") and predictor.unloaded == []
    assert predictor.unloaded == [str(tmp_path / "cache" / "a" / "2")]
    assert client.describe()[0]["latest"] == 1
    assert not (tmp_path / "cache" / "a" / "2").exists()


def test_get_model_in_a_request_pins_the_model_until_the_request_ends(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    _put(fs, url, "b/1/w.bin")
    client, predictor, _ = _client(tmp_path, dir=url, cache_size=1)
    with _request(client, b"model=a"):
        held = client.get_model()
        assert client.get_model("b")["path"].endswith("/b/1")  # admitted over budget
        assert predictor.unloaded == []  # a is pinned by this request, b too
        assert held["path"].endswith("/a/1") and ("a", 1) in client.cache
    assert predictor.unloaded == [str(tmp_path / "cache" / "a" / "1")]  # then LRU goes
    assert [key for key, _, _ in client.cache.stats().entries] == [("b", 1)]


def test_a_request_for_an_unknown_model_fails_before_anything_runs(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    client, predictor, _ = _client(tmp_path, dir=url)
    with pytest.raises(ModelNotFound) as caught:
        client.begin(b"model=zebra&version=2")
    assert caught.value.models == ["a"] and predictor.loads == {}


def test_a_thread_still_running_after_its_request_ended_pins_nothing(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    client, _, _ = _client(tmp_path, dir=url)
    with _request(client, b"model=a"):
        context = contextvars.copy_context()  # what a predict thread runs in
    assert context.run(client.get_model)["path"].endswith("/a/1")  # the request timed out
    assert client.cache.stats().entries == ((("a", 1), 10, 0),)  # served, not pinned


def test_a_sibling_process_neither_removes_nor_repeats_a_download_under_way(
    remote: Any, tmp_path: Path
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    source = modelstore.open_source(url, tmp_path, "predictor.models.dir").child("a")
    downloading, finish = threading.Event(), threading.Event()
    calls = 0
    original = source.fs.get_file

    def held_open(remote_path: str, local: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        downloading.set()
        assert finish.wait(30)
        original(remote_path, local, **kwargs)

    source.fs.get_file = held_open
    try:
        first = modelstore.DiskCache(tmp_path, None, lambda n, v: False)
        worker = threading.Thread(target=first.fetch, args=("a", 1, source))
        worker.start()
        assert downloading.wait(30)
        sibling = modelstore.DiskCache(tmp_path, None, lambda n, v: False)  # a reload's worker
        assert (tmp_path / "a" / "1.partial").is_dir()  # not taken for a crash's leftover
        finish.set()
        assert sibling.fetch("a", 1, source) == tmp_path / "a" / "1"  # waited, then reused
        worker.join(30)
    finally:
        del source.fs.get_file
    assert calls == 1 and (tmp_path / "a" / "1" / "w.bin").exists()


@pytest.mark.parametrize(
    ("query", "chosen"),
    [
        (b"", (None, "latest")),
        (b"xmodel=a", (None, "latest")),
        (b"other=1&model=a&version=1", ("a", "1")),
        (b"version=1&model=a", ("a", "1")),
        (b"model=b&model=a", ("a", "latest")),  # the last one, as a dict of the pairs says
        (b"model=%61", ("a", "latest")),
    ],
)
def test_the_query_string_chooses_model_and_version(
    remote: Any, tmp_path: Path, query: bytes, chosen: tuple[str | None, str]
) -> None:
    fs, url = remote
    _put(fs, url, "a/1/w.bin")
    _put(fs, url, "b/1/w.bin")
    client, _, _ = _client(tmp_path, dir=url)
    request = client.begin(query)
    client.end(request)
    assert (request.name, request.version) == chosen
