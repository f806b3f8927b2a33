"""Detection over a Ray cluster: the local pipeline, one Detector per Ray actor.

The image list becomes a Ray Data dataset of paths, cut into blocks; ``map_batches`` sends each
block to a pool of actors (``DetectWorker``), each holding one :class:`Detector` built on its
own node (``auto`` picks that node's best engine, a GPU when ``gpus_per_worker`` gives it one).
An actor runs the block through :func:`Detector.detect_many`, the same decode-ahead pipeline
as a local run, and sends back small results (boxes, scores, classes; the image only when it
is to be drawn). The caller writes them with the local run's writers, in input order, so the
outputs equal a local run's.

Model files travel through Ray's object store, so only the images need shared storage (a path
every node can read). Failures: an unreadable image is one skipped result, as locally; a lost
actor (process or node gone) is restarted by Ray Data and its unfinished blocks run again
(``max_restarts=-1``, ``max_task_retries=-1``, Ray Data's defaults for actor pools); an
exception escaping a block fails the job.

Ray is imported only here, and only when ``workbench detect --ray`` runs.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from workbench.darknet.bundle import ModelBundle, find_bundle, read_model_defaults
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS, DetectConfig
from workbench.detect.detector import Detector
from workbench.errors import WorkbenchError

INSTALL_HINT = 'pip install -e ".[cluster]"'
BLOCK_IMAGES = 16  # images per Ray task: big enough to hide the task overhead, small to retry


@dataclass
class RaySettings:
    """Where and how wide: ``address`` None starts a local Ray (or joins RAY_ADDRESS)."""

    address: str | None = None
    workers: int | None = None  # actors; None: one per CPU (per GPU share with GPUs)
    gpus_per_worker: float = 0.0
    block_images: int = BLOCK_IMAGES
    num_cpus: int | None = None  # a local Ray's CPUs (None: all cores)
    verbose: bool = False  # Ray's own log lines (C++ core, Ray Data, the actors') shown

    def __post_init__(self) -> None:
        if self.gpus_per_worker < 0:
            raise WorkbenchError("--gpus-per-worker must be 0 or more")
        if self.workers is not None and self.workers < 1:
            raise WorkbenchError("--workers must be at least 1")


@dataclass
class RaySummary:
    """What ran where: images per (node, engine), actors seen, and the cluster's address."""

    address: str = ""
    workers: int = 0
    engines: Counter = field(default_factory=Counter)  # (node, engine, reason) -> images
    actors: set = field(default_factory=set)  # (node, pid) of every actor that sent results
    seconds: float = 0.0
    actor_seconds: float = 0.0  # time the actors spent detecting (their share of each block)

    def lines(self) -> list[str]:
        nodes = sorted({node for node, _, _ in self.engines})
        out = [f"ray: {self.address}, {self.workers} workers asked, {len(self.actors)} actors "
               f"answered on {len(nodes)} node{'s' * (len(nodes) != 1)}; detecting took them "
               f"{self.actor_seconds:.1f} s of the job's {self.seconds:.1f} s"]
        for (node, engine, reason), images in sorted(self.engines.items()):
            actors = sum(1 for n, _ in self.actors if n == node)
            out.append(f"  node {node}: {engine} ({reason}), {actors} actor"
                       f"{'s' * (actors != 1)}, {images} images")
        return out


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise WorkbenchError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def pack_bundle(bundle: ModelBundle) -> dict[str, bytes]:
    """The bundle's three files by name, to ship to every node through the object store."""
    return {p.name: p.read_bytes() for p in (bundle.cfg, bundle.weights, bundle.names)}


def unpack_bundle(files: dict[str, bytes], folder: Path) -> ModelBundle:
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return find_bundle(folder)


class DetectWorker:
    """A Ray Data actor: one Detector, fed blocks of image paths, answering one row per image.

    Each row carries the pickled ImageResult (detections, size, error; the image only when
    ``keep_images``), its index in the input and who computed it (node, engine, pid).
    """

    def __init__(self, model_files: dict[str, bytes], backend: str,
                 size: tuple[int, int] | None, letterbox: bool, conf: float, nms: float,
                 batch: int, keep_images: bool, precision: str = "auto",
                 full_decode: bool = False, merge_boxes: bool = False) -> None:
        import ray

        if isinstance(model_files, ray.ObjectRef):
            model_files = ray.get(model_files)
        self._folder = tempfile.TemporaryDirectory(prefix="workbench-ray-model-")
        bundle = unpack_bundle(model_files, Path(self._folder.name))
        self.detector = Detector(bundle, backend, size, letterbox, precision=precision,
                                 merge_boxes=merge_boxes)
        self.conf, self.nms, self.batch, self.keep_images = conf, nms, batch, keep_images
        self.full_decode = full_decode
        self.node = ray.util.get_node_ip_address()
        self.pid = os.getpid()

    def __call__(self, block: dict) -> dict:
        start = time.perf_counter()
        results = list(self.detector.detect_many(
            [Path(p) for p in block["path"]], self.conf, self.nms, batch=self.batch,
            keep_images=self.keep_images, full_decode=self.full_decode))
        backend = self.detector.backend
        n = len(results)
        seconds = (time.perf_counter() - start) / max(n, 1)
        return {"index": block["index"],
                "result": [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in results],
                "node": [self.node] * n, "engine": [backend.name] * n,
                "reason": [backend.reason] * n, "pid": [self.pid] * n,
                "seconds": [seconds] * n}


def _connect(ray, settings: RaySettings) -> tuple[bool, str]:
    """Join the cluster (or start a local Ray); True when this call started the connection."""
    if ray.is_initialized():
        return False, _address(ray)
    if settings.address:
        check_reachable(settings.address)
    quiet_ray(settings.verbose)
    if not settings.verbose:
        _RAY_LOGS.start()  # until _run_job's end, after ray.shutdown
    try:
        ray.init(address=settings.address or None, num_cpus=settings.num_cpus,
                 include_dashboard=False,
                 logging_level=logging.INFO if settings.verbose else logging.ERROR,
                 log_to_driver=settings.verbose, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        _RAY_LOGS.stop()
        where = settings.address or "a local Ray"
        raise WorkbenchError(f"cannot start or reach {where}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None
    except BaseException:
        _RAY_LOGS.stop()
        raise
    started_here = settings.address is None and "RAY_ADDRESS" not in os.environ
    return True, (f"local Ray started here, {int(ray.cluster_resources().get('CPU', 0))} CPUs"
                  if started_here else _address(ray))


def quiet_ray(verbose: bool) -> None:
    """Keep Ray's Python log lines out of the terminal unless ``verbose``: they are advice for
    Ray's developers (token set-up, progress bars off) printed between our lines; failures
    still reach the user as one line each. The actors' output reaches us only with
    ``log_to_driver``, the C++ core's lines only past :class:`_RayLogs`."""
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("ray").setLevel(level)
    # Ray Data's INFO lines (plan, "execution finished") would bury the summary even then
    logging.getLogger("ray.data").setLevel(logging.WARNING if verbose else logging.ERROR)


class _RayLogs:
    """fd 2 into a scratch file while Ray runs in this process (not with --verbose).

    Ray's C++ core writes its lines straight to fd 2, at any moment of the job (one when it
    starts, advice on actor restarts...), and no setting silences all of them (even
    RAY_BACKEND_LOG_LEVEL announces itself there). Meanwhile ``sys.stderr`` writes to a copy
    of the terminal's descriptor, so our own lines and the progress bar still show.
    """

    def __init__(self) -> None:
        # (terminal fd, the sys.stderr we replaced, scratch file)
        self._saved: tuple[int, TextIO, IO[bytes]] | None = None

    def start(self) -> None:
        if self._saved is not None:
            return
        sys.stderr.flush()
        scratch = tempfile.TemporaryFile(prefix="workbench-ray-log-")
        terminal = os.dup(2)
        os.dup2(scratch.fileno(), 2)
        self._saved = (terminal, sys.stderr, scratch)
        sys.stderr = open(terminal, "w", buffering=1, closefd=False,  # noqa: SIM115
                          encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                          errors="backslashreplace")

    def stop(self) -> None:
        if self._saved is None:
            return
        terminal, stderr, scratch = self._saved
        self._saved = None
        try:
            sys.stderr.flush()
        finally:
            sys.stderr = stderr
            os.dup2(terminal, 2)
            os.close(terminal)
            scratch.close()


_RAY_LOGS = _RayLogs()


#: the HTTP/2 client preface and an empty SETTINGS frame: what a gRPC client sends first
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS_FRAME = 0x04


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, where Ray would retry a head for minutes, printing its
    own warnings: nothing listens there, or something listens that is not a gRPC server.

    Ray's GCS (HOST:6379) and its client server (ray://HOST:10001) both speak gRPC, whose
    server answers the HTTP/2 preface with a SETTINGS frame at once; a port that accepts and
    stays silent (or answers something else) is not a Ray head, whatever ray.init would try.
    With RAY_USE_TLS the handshake is TLS's, so only the connection is checked.
    """
    hostport = address.removeprefix("ray://")
    if address == "auto" or ":" not in hostport:
        return  # "auto" and bare names are Ray's to resolve
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            answer = _http2_answer(sock, timeout)
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"cannot reach the Ray cluster at {address}: {exc} (is `ray start "
                             "--head` running there, and the port open?)") from None
    if answer is None or len(answer) < 9 or answer[3] != _SETTINGS_FRAME:
        what = ("it accepts connections but did not answer within "
                f"{timeout:g} s" if answer is None else "it answers, but not as a gRPC server")
        raise WorkbenchError(f"no Ray cluster answers at {address}: {what} (is that the "
                             "port of a Ray head, `ray start --head`?)")


def _http2_answer(sock, timeout: float) -> bytes | None:
    """The first 9 bytes the server sends after our HTTP/2 hello (a frame header), fewer
    when it closes first, None when it says nothing within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    sock.sendall(_HTTP2_HELLO)
    answer = b""
    while len(answer) < 9:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(9 - len(answer))
        except TimeoutError:
            return None
        if not chunk:
            break
        answer += chunk
    return answer


def _address(ray) -> str:
    context = ray.get_runtime_context()
    return getattr(context, "gcs_address", "") or "local"


def default_workers(ray, gpus_per_worker: float) -> int:
    """One actor per CPU of the cluster, or per GPU share when actors take GPUs."""
    resources = ray.cluster_resources()
    if gpus_per_worker > 0:
        return max(int(resources.get("GPU", 0) // gpus_per_worker), 1)
    return max(int(resources.get("CPU", 1)), 1)


def detect_on_ray(paths: Sequence[Path], bundle: ModelBundle, settings: RaySettings, *,
                  backend: str = "auto", size: tuple[int, int] | None = None,
                  letterbox: bool = False, conf: float = DEFAULT_CONF, nms: float = DEFAULT_NMS,
                  batch: int = 1, keep_images: bool = False, precision: str = "auto",
                  summary: RaySummary | None = None,
                  worker_class: type = DetectWorker) -> Iterator:
    """One ImageResult per path, in input order, computed by Ray actors (a generator).

    Joins the cluster (or starts a local Ray) at once, so a bad address fails before anything
    is written; the job starts with the first result asked for. ``summary`` is filled in as
    results arrive. Closing the generator (or an exception, such as KeyboardInterrupt, in the
    consumer) stops the job; a cluster this call joined keeps running, a local Ray it started
    is shut down. ``worker_class`` is the actor class (a subclass of DetectWorker).
    """
    runner = RayRunner(bundle, settings, worker_class)
    if summary is not None:
        runner.summary = summary
    runner.connect()
    config = DetectConfig(model=bundle, engine=backend, precision=precision, size=size,
                          letterbox=letterbox, conf=conf, nms=nms, batch=batch,
                          keep_images=keep_images)
    return runner(config, paths)


class RayRunner:
    """``run_detection``'s runner on a Ray cluster: the config's model and settings, one
    Detector per actor. ``connect()`` joins the cluster (or starts a local Ray) before the
    caller opens its outputs, so a bad address fails before anything is written; otherwise
    the run connects. ``keep_partial``: a run stopped on the way (Ctrl+C, a failed job) keeps
    what the finished images gave (its sinks are closed, not aborted). ``summary`` says
    what ran where."""

    keep_partial = True

    def __init__(self, bundle: ModelBundle, settings: RaySettings,
                 worker_class: type = DetectWorker) -> None:
        self.bundle, self.settings, self.worker_class = bundle, settings, worker_class
        self.summary = RaySummary()
        self._ray = None
        self._started = False

    def connect(self) -> None:
        if self._ray is None:
            ray = import_ray()
            self._started, self.summary.address = _connect(ray, self.settings)
            self._ray = ray

    def __call__(self, config: DetectConfig, paths: Sequence[Path]) -> Iterator:
        self.connect()
        # the actors get the model's files without its thresholds.json: its choice goes along
        merge = config.merge_boxes
        if merge is None:
            merge = bool(read_model_defaults(self.bundle).merge_boxes)
        return _run_job(self._ray, self._started, paths, self.bundle, self.settings,
                        self.summary, self.worker_class,
                        (config.engine, config.size, config.letterbox, config.conf, config.nms,
                         config.batch, config.keep_images, config.precision,
                         config.full_decode, merge))


def _run_job(ray, started: bool, paths: Sequence[Path], bundle: ModelBundle,
             settings: RaySettings, summary: RaySummary, worker_class: type,
             worker_args: tuple) -> Iterator:
    from ray.data import DataContext

    start = time.perf_counter()
    rows = None
    try:
        workers = settings.workers or default_workers(ray, settings.gpus_per_worker)
        summary.workers = workers
        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # the writers see the local order
        context.enable_progress_bars = False  # ours is drawn by the caller
        context.print_on_execution_start = False
        items = [{"index": i, "path": str(p)} for i, p in enumerate(paths)]
        # small jobs still spread over every actor
        block = max(1, min(settings.block_images, -(-len(items) // workers)))
        ds = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // block)))
        ds = ds.map_batches(
            worker_class, batch_size=block, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1 if settings.gpus_per_worker == 0 else 0,
            num_gpus=settings.gpus_per_worker or None,
            # by reference: inlined, the model would make a UDF of over 100 MB
            fn_constructor_args=(ray.put(pack_bundle(bundle)), *worker_args))
        expected = 0
        rows = iter(ds.iter_rows())
        while True:
            try:
                row = next(rows, None)
            except ray.exceptions.RayError as exc:  # a block raised: the job cannot finish
                lines = [line for line in str(exc).splitlines() if line.strip()]
                raise WorkbenchError(f"the Ray job failed after {expected} of {len(items)} "
                                     f"images: {lines[-1] if lines else type(exc).__name__}") \
                    from None
            if row is None:
                break
            if int(row["index"]) != expected:  # preserve_order makes this a broken promise
                raise WorkbenchError(f"ray returned image {row['index']} where {expected} was "
                                     "due")
            expected += 1
            summary.engines[(row["node"], row["engine"], row["reason"])] += 1
            summary.actors.add((row["node"], int(row["pid"])))
            summary.actor_seconds += float(row["seconds"])
            summary.seconds = time.perf_counter() - start
            yield pickle.loads(row["result"])
    finally:
        summary.seconds = time.perf_counter() - start
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # Ray Data's own clean-up, while Ray is still connected
        if started:
            try:
                ray.shutdown()
            finally:
                _RAY_LOGS.stop()

