"""The Ray backend: byte-range counting and encoding, the sync, a local Ray instance, an actor
killed mid-run, and a cluster started with `ray start --head` on 127.0.0.1."""

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Before Ray is imported anywhere in this process: a one-machine cluster, every server on loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from w2v.cli import main  # noqa: E402
from w2v.config import Config, ConfigError, validate  # noqa: E402
from w2v.corpus import split_ranges  # noqa: E402
from w2v.dataset import prepare, shard_dataset, vocab_from_counts  # noqa: E402
from w2v.errors import TrainingError  # noqa: E402
from w2v.io import read_word2vec_text  # noqa: E402
from w2v.run import CHECKPOINT, Run, _train, load_checkpoint, resume, train  # noqa: E402
from w2v.vocab import build_vocab, count_ranges, count_words, merge_counts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def ray_cfg(**kw):
    base = dict(dim=16, window=3, min_count=1, epochs=4, workers=1, cache_dir="", num_sampled=5, seed=3,
                backend="ray", nodes=2, sync_interval=0.05)
    base.update(kw)
    return Config(**base)


def assert_groups_are_neighbours(words, vectors, groups, at_least: float = 1.0):
    """Each word's 5 nearest are of its planted group, for ``at_least`` of the words."""
    group_of = {w: g for g, ws in enumerate(groups) for w in ws}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    wrong = [w for i, w in enumerate(words)
             if not all(group_of[words[j]] == group_of[w] for j in np.argsort(-sims[i])[:5])]
    assert len(wrong) <= (1 - at_least) * len(words), f"{len(wrong)} of {len(words)}: {wrong[:10]}"


# --- without Ray -----------------------------------------------------------------------------

@pytest.fixture
def mixed_corpus(tmp_path):
    """Lines, a .gz file and a file that is one long line (text8-like)."""
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(300)]
    p = 1 / np.arange(1, 301)
    p /= p.sum()

    def text(lines, per_line):
        return "\n".join(" ".join(rng.choice(words, size=per_line, p=p)) for _ in range(lines)) + "\n"

    (tmp_path / "a.txt").write_text(text(400, 15))
    with gzip.open(tmp_path / "b.txt.gz", "wt") as fh:
        fh.write(text(200, 9))
    (tmp_path / "c.txt").write_text(text(1, 3000).strip())
    return [tmp_path / "a.txt", tmp_path / "b.txt.gz", tmp_path / "c.txt"]


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 256])
def test_byte_ranges_give_the_vocabulary_and_id_stream_of_the_whole_corpus(mixed_corpus, chunk_bytes):
    cfg = Config(min_count=2, cache_dir="", chunk_bytes=chunk_bytes)
    whole = prepare(mixed_corpus, cfg)
    for parts in (1, 2, 3, 5):
        shares = split_ranges(mixed_corpus, parts, chunk_bytes)
        assert len(shares) == parts
        vocab, stats = vocab_from_counts(*merge_counts(count_ranges(s, False, chunk_bytes) for s in shares), cfg)
        assert vocab.words == whole.vocab.words and np.array_equal(vocab.counts, whole.vocab.counts)
        assert stats["tokens"] == whole.stats["tokens"] and stats["files"] == 3
        ids = np.concatenate([shard_dataset(s, vocab, cfg).ids for s in shares])
        assert np.array_equal(ids, whole.ids), parts


def test_shares_cut_lines_only_when_they_run_on_and_never_cut_gz_files(mixed_corpus):
    shares = split_ranges(mixed_corpus, 7, 256)
    for share in shares:
        for r in share:
            if r.path.endswith(".gz"):
                assert (r.start, r.end) == (0, -1)
            elif r.start > 0:
                prev = Path(r.path).read_bytes()[r.start - 1:r.start]
                assert prev == b"\n" or (prev.isspace() and r.path.endswith("c.txt"))
    sizes = [sum((Path(r.path).stat().st_size if r.end < 0 else r.end - r.start) for r in s) for s in shares]
    assert sum(sizes) == sum(f.stat().st_size for f in mixed_corpus)


def test_merged_counts_prune_as_counting_does(mixed_corpus):
    exact, _ = count_words(mixed_corpus)
    shares = split_ranges(mixed_corpus, 4, 1 << 20)
    merged, stats = merge_counts((count_ranges(s, max_vocab_size=20) for s in shares), max_vocab_size=20)
    assert stats.pruned_below > 1 and len(merged) <= 2 * 20 + max(len(count_ranges(s)[0]) for s in shares)
    assert all(merged[w] <= exact[w] for w in merged)
    assert {w for w, _ in exact.most_common(5)} <= set(build_vocab(merged, 1, 10).words)  # frequent words stay


def test_sync_merge_kernel_matches_its_reference_and_keeps_changes_made_meanwhile():
    from w2v.distributed import merge_sync, merge_sync_reference

    rng = np.random.default_rng(0)
    synced = rng.standard_normal((50, 8)).astype(np.float32)
    params = synced + rng.standard_normal((50, 8)).astype(np.float32)
    sent = (params - synced)[:20]
    params[:20] += 0.25  # the threads went on after the delta was taken
    total = rng.standard_normal((20, 8)).astype(np.float32)
    a, sa = params.copy(), synced.copy()
    b, sb = params.copy(), synced.copy()
    merge_sync(a, sa, sent, total)
    merge_sync_reference(b, sb, sent, total)
    assert np.array_equal(a, b) and np.array_equal(sa, sb)
    assert np.allclose(a[:20], sa[:20] + 0.25, atol=1e-5) and np.array_equal(a[20:], params[20:])
    idle, s_idle = synced + 1, synced.copy()  # nothing changed meanwhile: exactly the synced rows
    merge_sync(idle, s_idle, (idle - synced)[:20], total)
    assert np.array_equal(idle[:20], s_idle[:20])


def test_changes_add_up_except_on_the_most_frequent_rows_which_move_at_most_twice_the_mean():
    from w2v.distributed import combine_changes

    rng = np.random.default_rng(1)
    changes = rng.standard_normal((4, 6, 3)).astype(np.float32)  # 4 actors, 6 rows
    changes[1:, 1] = 0  # row 1: only actor 0 moved it
    changes[2:, 2] = 0  # row 2: actors 0 and 1
    (total,) = combine_changes([[c] for c in changes], damped_rows=3)
    added = changes.sum(0)
    assert np.allclose(total[3:], added[3:])  # past the damped rows: the sum
    assert np.allclose(total[0], added[0] / 2)  # moved by all 4: twice their mean
    assert np.array_equal(total[1], changes[0, 1]) and np.allclose(total[2], added[2])  # one or two: the sum
    (summed,) = combine_changes([[c] for c in changes], damped_rows=0)
    assert np.allclose(summed, added)


def test_sync_schedule_moves_frequent_rows_every_time_and_all_rows_now_and_then():
    from w2v.distributed import sync_rows

    assert [sync_rows(k, 1024, 5000) for k in range(1, 9)] == [1024, 2048, 1024, 4096, 1024, 2048, 1024, 5000]
    assert max(sync_rows(k, 10, 100) for k in range(1, 17)) == 100
    assert all(sync_rows(k, 7, 3) == 3 for k in range(1, 5))
    # Ray's syncs call the plain-Python function under the kernel the hot rows' syncs use
    assert all(sync_rows.py_func(k, 128, 1024) == sync_rows(k, 128, 1024) for k in range(1, 70))


def test_ray_options_are_validated():
    with pytest.raises(ConfigError, match="backend ray"):
        validate(Config(address="127.0.0.1:6379"))
    with pytest.raises(ConfigError, match="backend ray"):
        validate(Config(nodes=2))
    with pytest.raises(ConfigError, match="sync_interval"):
        validate(Config(backend="ray", sync_interval=0))
    with pytest.raises(ConfigError, match="nodes"):
        validate(Config(backend="ray", nodes=-1))


def test_cli_says_in_one_line_how_to_install_ray(planted_corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    path, _ = planted_corpus
    result = CliRunner().invoke(main, ["train", str(path), "--backend", "ray", "-o", str(tmp_path / "r"), "-q"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["w2v: error: backend ray needs Ray, which is not installed: "
                                                  "pip install 'w2v[ray]'"]


# --- a local Ray instance ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray(short_temp_root):
    ray = pytest.importorskip("ray")
    temp = tempfile.mkdtemp(prefix="w2v-ray-", dir=short_temp_root)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=200 << 20, _temp_dir=temp)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def test_ray_backend_learns_planted_groups_in_a_run_directory(local_ray, planted_corpus, tmp_path):
    path, groups = planted_corpus
    out = tmp_path / "run"
    # checkpoints every 0.3 s: the actors pause at job boundaries and all rows meet each time
    model = train([path], ray_cfg(cache_dir=str(tmp_path / "cache"), checkpoint_interval=0.3), out,
                  show_progress=False)
    assert {p.name for p in out.iterdir()} == {"vectors.txt", "vocab.txt", "config.yaml", "log.jsonl", CHECKPOINT}
    words, vectors = read_word2vec_text(out / "vectors.txt")
    assert words == model.words and np.array_equal(vectors, model.emb_in)
    assert_groups_are_neighbours(words, vectors, groups)
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    ck = load_checkpoint(out / CHECKPOINT)
    assert [r["words"] for r in records] == sorted(r["words"] for r in records)
    assert records[-1]["words"] == int(ck["words_done"]) == 4 * 36000 and records[-1]["epoch"] == 4
    assert ck["cursors"].shape == (2, 4) and ck["epochs"].tolist() == [4, 4]
    assert "backend: ray" in (out / "config.yaml").read_text() and model.epoch_loss[4] < model.epoch_loss[1]


def test_actors_on_a_small_corpus_wait_for_syncs_so_their_changes_do_not_cancel(local_ray, tmp_path):
    """360k words, 3 epochs, 2 actors: each trains an epoch in ~0.1 s, so syncs every 0.05 s came
    3 times a run and the two actors' changes, from opposite solutions, cancelled (18-26 of the 30
    words beside another group in 4 seeds of 6). An actor now waits once it is 1/64 of its part
    of the run past the last sync."""
    from w2v.distributed import RayTrainer

    rng = np.random.default_rng(0)
    groups = [[f"g{g}w{i}" for i in range(6)] for g in range(5)]
    path = tmp_path / "planted.txt"
    path.write_text("\n".join(" ".join(rng.choice(groups[rng.integers(5)], size=12)) for _ in range(30000)) + "\n")
    trainer = RayTrainer([path], ray_cfg(epochs=3), lambda m: None)
    try:
        assert trainer.run(show_progress=False, stop_signals=False)
        assert trainer.syncs["rounds"] >= 48  # 1/64 of a part, rounded up to whole jobs
        assert_groups_are_neighbours(trainer.model.words, trainer.model.emb_in, groups, at_least=0.9)
    finally:
        trainer.close()


def kill_when(trainer, fraction, index=1):
    """SIGKILL actor ``index``'s process once the run is ``fraction`` done."""
    pid = trainer.actor_pids()[index]

    def wait_and_kill():
        while trainer.progress.words_done < fraction * trainer.progress.total_words:
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=wait_and_kill, daemon=True)
    thread.start()
    return thread


def test_an_actor_killed_mid_run_is_restarted_and_the_run_ends_complete(local_ray, planted_corpus):
    from w2v.distributed import RayTrainer

    path, groups = planted_corpus
    logs = []
    # 24 epochs for margin: the groups check below failed once in six full suites at 16
    trainer = RayTrainer([path], ray_cfg(epochs=24), logs.append)
    try:
        killer = kill_when(trainer, 0.3)
        assert trainer.run(show_progress=False, stop_signals=False)
        killer.join(1)
        p = trainer.progress
        assert p.words_done == p.total_words and trainer.syncs["restarts"] == 1
        assert any("actor 1" in m and "died" in m for m in logs)
        # the last sync moved all rows with every actor idle: each holds exactly the model
        model = trainer.model
        for emb_in, emb_out, bias in trainer.actor_parameters():
            assert np.array_equal(emb_in, model.emb_in) and np.array_equal(emb_out, model.emb_out)
            assert np.array_equal(bias, model.bias)
        # an actor's work since the last sync is lost with it: a word or two may still sit apart
        assert_groups_are_neighbours(model.words, model.emb_in, groups, at_least=0.9)
    finally:
        trainer.close()


def test_an_actor_that_cannot_be_restarted_leaves_a_checkpoint_to_resume(local_ray, planted_corpus, tmp_path,
                                                                         monkeypatch):
    import w2v.distributed as distributed

    monkeypatch.setattr(distributed, "_RESTARTS", 0)
    path, _ = planted_corpus
    out = tmp_path / "run"
    out.mkdir()
    cfg = ray_cfg(epochs=40)  # long enough that the actor is still training when it is killed
    trainer = distributed.RayTrainer([str(path)], cfg)
    try:
        kill_when(trainer, 0.3, index=0)
        with pytest.raises(TrainingError, match=f"actor 0 .* died .* w2v train --resume {out}"):
            _train(trainer, Run(out, trainer.cfg, [str(path)]), False, lambda m: None)
    finally:
        trainer.close()
    saved = load_checkpoint(out / CHECKPOINT)
    assert 0 < int(saved["words_done"]) < 40 * 36000 and (out / "vectors.partial.txt").exists()
    model = resume(out, show_progress=False)
    ck = load_checkpoint(out / CHECKPOINT)
    assert int(ck["words_done"]) == 40 * 36000 and ck["epochs"].tolist() == [40, 40]
    assert np.isfinite(model.emb_in).all() and (out / "vectors.txt").exists()


def test_sigint_stops_the_actors_saves_and_resume_finishes(local_ray, planted_corpus, tmp_path):
    from w2v.train import Interrupted

    path, _ = planted_corpus
    out = tmp_path / "run"

    def interrupt_when_training():
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "log.jsonl").exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_training, daemon=True).start()
    with pytest.raises(Interrupted) as stopped:
        train([path], ray_cfg(epochs=40), out, show_progress=False)  # still training at the signal
    assert stopped.value.code == 130 and stopped.value.run_dir == out
    ck = load_checkpoint(out / CHECKPOINT)
    assert 0 < int(ck["words_done"]) < 40 * 36000 and int(ck["totals"][:, 0].sum()) == int(ck["words_done"])
    assert (out / "vectors.partial.txt").exists() and not (out / "vectors.txt").exists()
    resume(out, show_progress=False)
    assert int(load_checkpoint(out / CHECKPOINT)["words_done"]) == 40 * 36000 and (out / "vectors.txt").exists()


# --- a cluster started by `ray start --head` on 127.0.0.1 ------------------------------------------

def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def listening_addresses(session: int) -> set[str]:
    """Local addresses of the listening TCP sockets of the processes in a session."""
    inodes = set()
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or os.getsid(int(proc.name)) != session:
                continue
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except (OSError, ProcessLookupError):
            continue
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                found.add(fields[1].split(":")[0][:width])
    return found


@pytest.fixture
def ray_cluster(tmp_path, short_temp_root):
    """`ray start --head` on loopback in a session of its own, stopped (that session only) after."""
    pytest.importorskip("ray")
    port, agent = free_ports(2)
    temp = tempfile.mkdtemp(prefix="w2v-cl-", dir=short_temp_root)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--dashboard-agent-listen-port", str(agent),
         "--include-dashboard=false", "--disable-usage-stats", "--num-cpus", "2", "--object-store-memory",
         str(200 << 20), "--temp-dir", temp],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        # `ray stop` would stop every Ray of this user: stop this session's processes only
        proc.terminate()  # `ray start --block` then stops the processes it started
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)


def test_cli_trains_on_a_cluster_started_with_ray_start(ray_cluster, planted_corpus, tmp_path):
    address, session = ray_cluster
    path, groups = planted_corpus
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "w2v.cli", "train", str(path), "--backend", "ray", "--address", address,
           "--nodes", "2", "--workers", "1", "--epochs", "4", "--dim", "16", "--window", "3", "--min-count", "1",
           "--no-cache", "-o", str(out)]
    done = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"joined the Ray cluster at {address}" in done.stderr and "2 Ray actor(s) x 1 worker(s)" in done.stderr
    words, vectors = read_word2vec_text(out / "vectors.txt")
    assert_groups_are_neighbours(words, vectors, groups)
    listening = listening_addresses(session)
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    assert listening and listening <= loopback, listening


# --- Ctrl-C while Ray starts --------------------------------------------------------------------

def test_signals_deferred_while_ray_starts_are_delivered_once_it_has():
    from w2v.distributed import _signals_deferred

    done = []
    with pytest.raises(KeyboardInterrupt):
        with _signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a handler that raised would have raised by now
            done.append(True)
    assert done == [True] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def session_processes(sid: int) -> list[str]:
    """The names of the processes in session ``sid``."""
    names = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                head, tail = fh.read().rsplit(")", 1)
        except OSError:
            continue
        if int(tail.split()[3]) == sid:
            names.append(head.split("(", 1)[1])
    return names


@pytest.mark.parametrize("started", ["gcs_server", "ray::"])  # inside ray.init; once the raylet's agents run
def test_ctrl_c_again_and_again_while_ray_starts_is_one_line_130_and_leaves_no_process(planted_corpus, tmp_path,
                                                                                        started):
    pytest.importorskip("ray")
    path, _ = planted_corpus
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "w2v.cli", "train", str(path), "--backend", "ray", "--nodes", "2", "--workers", "1",
           "--epochs", "4", "--dim", "16", "--min-count", "1", "--no-cache", "-o", str(out)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own session and group, as a terminal's job
    try:
        deadline = time.monotonic() + 90
        while proc.poll() is None and not any(n.startswith(started) for n in session_processes(proc.pid)):
            assert time.monotonic() < deadline, f"no {started} process ever started"
            time.sleep(0.005)
        while proc.poll() is None and time.monotonic() < deadline:  # Ctrl-C, again and again, as from a terminal
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.02)
        stderr = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == \
        "w2v: error: interrupted before training started: nothing was written", stderr[-3000:]
    assert not out.exists()
    deadline = time.monotonic() + 30  # Ray's processes (raylet, gcs_server, its agents) end with the run
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = session_processes(proc.pid)
    for pid in [p for p in os.listdir("/proc") if p.isdigit()] if left else []:
        try:
            if os.getsid(int(pid)) == proc.pid:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"left running after the run's exit: {left}"


def test_a_local_ray_instance_gets_a_short_temporary_directory_under_a_long_tmpdir(monkeypatch, tmp_path):
    """Ray's sockets sit ~70 bytes below its temporary root: under a long TMPDIR their paths passed
    AF_UNIX's 107 bytes and `w2v train --backend ray` failed to start Ray (an OSError)."""
    from w2v.distributed import _local_temp_dir

    monkeypatch.delenv("RAY_TMPDIR", raising=False)
    monkeypatch.setenv("TMPDIR", "/tmp/a")
    assert _local_temp_dir() == {}
    monkeypatch.setenv("TMPDIR", "/tmp/" + "a-much-longer-directory-name" * 2)
    assert _local_temp_dir() == {"_temp_dir": "/tmp/ray"}
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # the user's choice stands
    assert _local_temp_dir() == {}
