"""Loading many spec files on every core a one-shot command has.

Loading (YAML to plain values) is pure and per file, so ``reconciler validate`` and
``plan`` split a large repo into one chunk per job: forked workers load all chunks but
the last, which this process loads and parses meanwhile; it then parses the workers'
files too, in file order. Workers return plain values only (a third of the bytes a
parsed object would cost to send back, and far less memory held twice). The results are
exactly those of a serial run (tests compare the two); only the time changes: about 0.5 s
less on 2 cores for 1,000 files. Below a few hundred files a fork costs more than it saves.

The load limits are flags here (``--max-file-bytes`` ...): the loader names each limit by
its daemon config key (``load.max_file_bytes``), which :func:`name_cli_flags` turns into
the flag that raises it on the command line.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import multiprocessing
import os
import re
from collections.abc import Iterable, Sequence

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.repo import ParsedFile, load_and_parse, parse_file
from reconciler.load.documents import FileLoad, SourceFile, load_file
from reconciler.load.limits import LoadLimits
from reconciler.load.nodes import ParserName

PARALLEL_FROM_FILES = 300

LIMIT_FLAGS: dict[str, str] = {
    "max_file_bytes": "refuse spec files larger than N bytes",
    "max_documents": "refuse files holding more than N YAML documents",
    "max_depth": "refuse values nested deeper than N levels",
    "max_nodes": "refuse documents of more than N YAML nodes",
    "max_alias_expansion": "refuse documents whose aliases expand to more than N values",
}
"""Each :class:`LoadLimits` field the command line can set, with its help."""

_CONFIG_KEY = re.compile(r"\(load\.(" + "|".join(LIMIT_FLAGS) + r")\)")


def flag_of(limit: str) -> str:
    """``--max-file-bytes`` for ``max_file_bytes``."""
    return "--" + limit.replace("_", "-")


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--max-...`` flag per load limit, defaulting to the daemon's default."""
    defaults = LoadLimits()
    for limit, text in LIMIT_FLAGS.items():
        parser.add_argument(
            flag_of(limit),
            dest=limit,
            type=int,
            default=getattr(defaults, limit),
            metavar="N",
            help=f"{text} (default {getattr(defaults, limit)})",
        )


def limits_from(args: argparse.Namespace) -> LoadLimits:
    """The limits the flags give; raise ValueError naming a flag that is not positive."""
    values = {limit: getattr(args, limit) for limit in LIMIT_FLAGS}
    for limit, value in values.items():
        if value <= 0:
            raise ValueError(f"{flag_of(limit)} must be a positive number, got {value}")
    return LoadLimits(**values)


def name_cli_flags(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics whose ``(load.max_x)`` becomes ``(--max-x)``: on the command line, the
    flag is what raises a limit."""
    return [
        dataclasses.replace(d, message=_CONFIG_KEY.sub(lambda m: f"({flag_of(m[1])})", d.message))
        if "(load." in d.message
        else d
        for d in diagnostics
    ]


def default_jobs(file_count: int) -> int:
    """Two or more jobs only when there are cores to use and files enough to pay a fork."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8)) if file_count >= PARALLEL_FROM_FILES else 1


def _parse_chunk(
    chunk: Sequence[SourceFile], limits: LoadLimits, parser: ParserName | None
) -> list[ParsedFile]:
    return [load_and_parse(source, limits=limits, parser=parser) for source in chunk]


def _load_chunk(
    chunk: Sequence[SourceFile], limits: LoadLimits, parser: ParserName | None
) -> list[FileLoad]:
    return [load_file(source, limits=limits, parser=parser) for source in chunk]


def _chunks(sources: Sequence[SourceFile], jobs: int) -> list[list[SourceFile]]:
    """``jobs`` chunks of about equal bytes, each keeping the files' order."""
    total = sum(len(s.data) for s in sources) or 1
    chunks: list[list[SourceFile]] = [[] for _ in range(jobs)]
    seen = 0
    for source in sources:
        chunks[min(jobs - 1, seen * jobs // total)].append(source)
        seen += len(source.data)
    return chunks


def parse_sources(
    sources: Sequence[SourceFile],
    *,
    limits: LoadLimits,
    parser: ParserName | None = None,
    jobs: int | None = None,
) -> list[ParsedFile]:
    """Every source loaded and parsed, in the order given, on ``jobs`` processes."""
    count = default_jobs(len(sources)) if jobs is None else max(1, jobs)
    if count == 1 or len(sources) < 2:
        return _parse_chunk(sources, limits, parser)
    chunks = _chunks(sources, count)
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(count - 1, mp_context=context) as pool:
        pending = [pool.submit(_load_chunk, chunk, limits, parser) for chunk in chunks[:-1]]
        last = _parse_chunk(chunks[-1], limits, parser)
        loads = [load for future in pending for load in future.result()]
    blobs = {source.path: source.blob for source in sources}
    return [parse_file(load, blob=blobs[load.path]) for load in loads] + last
