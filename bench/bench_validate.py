"""Benchmark of ``reconciler validate`` (and validate + plan) on a 10,000-spec repo.

One run measures, each in a fresh process so that imports and start-up count:
  (a) PyYAML's CSafeLoader alone: ``yaml.load_all(..., Loader=yaml.CSafeLoader)`` over
      every file (the time inside the process, and the whole process);
  (b) cold ``python -m reconciler validate DIR``, and cold validate + plan (validate, then
      ``diff_states`` against an empty current state and ``plan_changes``: every object is
      a create, the largest plan there is);
  (c) our loader with ruamel.yaml's parser instead of libyaml, on every 10th file;
  (d) the peak RSS of each child (``os.wait4``'s rusage), and for the reconciler commands,
      which load on every core, the peak of the summed RSS and PSS of the whole process
      tree, sampled every 20 ms in one extra run (so sampling never slows a timed run).
Each figure is the median of ``--repeat`` runs. The goal: validate + plan within 2x the
CSafeLoader time, under 5 s on 2 cores, peak RSS under 300 MB.

    python bench/bench_validate.py [--repeat 3] [--write bench/results/validate.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_SPECS = HERE / "out" / "specs"

CSAFE_CHILD = """
import sys, time
start = time.perf_counter()
import yaml
from pathlib import Path
paths = sorted(p for p in Path(sys.argv[1]).rglob("*") if p.suffix in (".yaml", ".yml"))
loaded = 0
for path in paths:
    loaded += sum(1 for _ in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
print(time.perf_counter() - start, loaded)
"""

PLAN_CHILD = """
import gc, sys, time
start = time.perf_counter()
if sys.argv[2] == "one-shot-gc":  # what `reconciler validate` and `plan` do
    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
from pathlib import Path
from reconciler.core.diff import diff_states, states_by_key
from reconciler.core.plan import plan_changes
from reconciler.core.validation.repo import validate_sources
from reconciler.drivers.files import walk_spec_files
from reconciler.load.documents import SourceFile
imported = time.perf_counter()
walk = walk_spec_files(Path(sys.argv[1]))
result = validate_sources([SourceFile(f.path, f.data) for f in walk.files])
assert result.ok, result.diagnostics[:5]
validated = time.perf_counter()
if sys.argv[2] == "one-shot-gc":  # as `reconciler plan` does once the specs are loaded
    gc.freeze()
desired = states_by_key(result.objects)
stated = time.perf_counter()
plan = plan_changes(diff_states(desired, {}), desired=desired, current={}, revision="bench")
planned = time.perf_counter()
print(planned - start, len(result.objects), len(plan.items), imported - start,
      validated - imported, stated - validated, planned - stated)
"""

PARSER_CHILD = """
import sys, time
from pathlib import Path
from reconciler.load.documents import SourceFile, load_file
paths = sorted(p for p in Path(sys.argv[1]).rglob("*") if p.suffix in (".yaml", ".yml"))
sample = [SourceFile(str(p), p.read_bytes()) for p in paths[::10]]
out = {}
for parser in ("libyaml", "ruamel"):
    start = time.perf_counter()
    documents = sum(len(load_file(s, parser=parser).documents) for s in sample)
    out[parser] = [time.perf_counter() - start, documents]
print(out)
"""


@dataclass(frozen=True)
class ChildRun:
    wall_s: float
    peak_rss_mb: float
    stdout: str


def run_child(argv: list[str], *, ok: tuple[int, ...] = (0,)) -> ChildRun:
    """Run ``argv`` to completion; its wall time and its own peak RSS (wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stdout, stderr = child.stdout.read().decode(), child.stderr.read().decode()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}):\n{stdout}\n{stderr}")
    return ChildRun(wall, usage.ru_maxrss / 1024, stdout)


def tree_peak_mb(argv: list[str]) -> tuple[float, float]:
    """Peak summed RSS and PSS (MB) of ``argv`` and its children, sampled every 20 ms."""
    import psutil

    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(child.pid)
    peak_rss = peak_pss = 0
    while child.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak_rss = max(peak_rss, sum(p.memory_info().rss for p in tree))
            peak_pss = max(peak_pss, sum(p.memory_full_info().pss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.02)
    return peak_rss / 2**20, peak_pss / 2**20


def median_runs(
    argv: list[str], repeat: int, *, ok: tuple[int, ...] = (0,)
) -> tuple[float, float, list[ChildRun]]:
    runs = [run_child(argv, ok=ok) for _ in range(repeat)]
    return (
        statistics.median(r.wall_s for r in runs),
        max(r.peak_rss_mb for r in runs),
        runs,
    )


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import ruamel.yaml
    import yaml

    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, PyYAML {yaml.__version__} "
        f"(libyaml {yaml.__with_libyaml__ and yaml._yaml.get_version_string()}), "
        f"ruamel.yaml {ruamel.yaml.__version__}"
    )


def plan_repo(specs: Path) -> tuple[Path, str]:
    """A git repo whose base commit is empty and whose work tree holds every spec."""
    repo = specs.parent / "plan-repo"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(specs, repo)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
    }
    for argv in (["init", "--quiet"], ["commit", "--quiet", "--allow-empty", "-m", "base"]):
        subprocess.run(["git", *argv], cwd=repo, env=env, check=True)
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    return repo, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--write", type=Path, default=None, help="write the markdown here")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    import gen_specs

    if args.regenerate or not args.specs.is_dir():
        gen_specs.generate(args.specs)
    files = sorted(p for p in args.specs.rglob("*") if p.suffix in (".yaml", ".yml"))
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    python = sys.executable
    specs = str(args.specs)

    csafe_wall, csafe_rss, csafe_runs = median_runs([python, "-c", CSAFE_CHILD, specs], args.repeat)
    csafe_inner = statistics.median(float(r.stdout.split()[0]) for r in csafe_runs)
    loaded = int(csafe_runs[0].stdout.split()[1])
    validate_wall, validate_rss, _ = median_runs(
        [python, "-m", "reconciler", "validate", specs], args.repeat
    )
    plan_wall, plan_rss, plan_runs = median_runs(
        [python, "-c", PLAN_CHILD, specs, "default-gc"], args.repeat
    )
    tuned_wall, tuned_rss, _ = median_runs(
        [python, "-c", PLAN_CHILD, specs, "one-shot-gc"], args.repeat
    )
    repo, base = plan_repo(args.specs)
    plan_cli = [
        "sh",
        "-c",
        'exec "$0" -m reconciler plan "$1" --base "$2" --format json > /dev/null',
        python,
        str(repo),
        base,
    ]
    cli_wall, cli_rss, _ = median_runs(plan_cli, args.repeat, ok=(2,))
    validate_tree = tree_peak_mb([python, "-m", "reconciler", "validate", specs])
    plan_tree = tree_peak_mb(plan_cli)
    planned = plan_runs[0].stdout.split()
    phases = [statistics.median(float(r.stdout.split()[i]) for r in plan_runs) for i in range(3, 7)]
    parsers = json.loads(run_child([python, "-c", PARSER_CHILD, specs]).stdout.replace("'", '"'))
    ratio = parsers["ruamel"][0] / parsers["libyaml"][0]

    rows = [
        ("(a) CSafeLoader load_all, inside the process", csafe_inner, csafe_rss),
        ("(a) CSafeLoader load_all, whole process", csafe_wall, csafe_rss),
        ("(b) cold `python -m reconciler validate DIR`", validate_wall, validate_rss),
        ("(b) cold validate + plan (all creates)", plan_wall, plan_rss),
        ("(b) same, with the one-shot GC setting of validate and plan", tuned_wall, tuned_rss),
        (
            "(b) cold `reconciler plan DIR --base EMPTY` (the real CLI, json to /dev/null)",
            cli_wall,
            cli_rss,
        ),
    ]
    lines = [
        f"Specs: {loaded} documents in {len(files)} files, {size_mb:.1f} MB "
        f"(bench/gen_specs.py, seed 7); median of {args.repeat} runs.",
        f"Machine: {machine()}.",
        "",
        "| measurement | wall s | peak RSS MB |",
        "|---|---:|---:|",
        *(f"| {name} | {wall:.2f} | {rss:.0f} |" for name, wall, rss in rows),
        f"| (c) our loader, libyaml, 1/10 sample ({len(files[::10])} files) | "
        f"{parsers['libyaml'][0]:.2f} | |",
        f"| (c) our loader, ruamel.yaml, same sample | {parsers['ruamel'][0]:.2f} "
        f"({ratio:.1f}x; about {parsers['ruamel'][0] * 10:.0f} s for all) | |",
        "",
        f"validate + plan / CSafeLoader: {plan_wall / csafe_wall:.2f}x the whole CSafeLoader "
        f"process, {plan_wall / csafe_inner:.2f}x its load time; with the one-shot GC "
        f"setting {tuned_wall / csafe_wall:.2f}x and {tuned_wall / csafe_inner:.2f}x "
        f"({planned[1]} objects, {planned[2]} plan items). The real `reconciler plan` CLI "
        f"(validates both sides, renders json): {cli_wall / csafe_wall:.2f}x and "
        f"{cli_wall / csafe_inner:.2f}x.",
        "",
        f"Process trees (the reconciler commands load on both cores): `validate` peak "
        f"summed RSS {validate_tree[0]:.0f} MB (PSS {validate_tree[1]:.0f} MB), `plan` "
        f"{plan_tree[0]:.0f} MB (PSS {plan_tree[1]:.0f} MB).",
        "",
        f"Inside the validate + plan process: imports {phases[0]:.2f} s, walk + validate "
        f"{phases[1]:.2f} s, `states_by_key` {phases[2]:.2f} s, `diff_states` + "
        f"`plan_changes` {phases[3]:.2f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
