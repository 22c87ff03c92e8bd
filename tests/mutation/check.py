"""The mutation check: break each line that carries a guarantee, one at a time, and run the tests
that must notice. A script, like the benchmark, not a test:

    python -m tests.mutation.check              # every mutation on the list (about 20 minutes)
    python -m tests.mutation.check --list       # the list: name, guarantee, file, killing tests
    python -m tests.mutation.check --verify     # only check that every snippet and test still exists
    python -m tests.mutation.check --only NAME  # one mutation (repeatable)
    python -m tests.mutation.check --markdown   # the result as the README's table
    python -m tests.mutation.check --json > run.json; python -m tests.mutation.check --render run.json

Why not mutmut or cosmic-ray: most tests that guard an invariant run the drainer as operators do,
as a `python -m drainer` child process against the real RabbitMQ and MariaDB. mutmut 3 decides which
tests cover a mutant from trampoline hits recorded inside the pytest process, so code run in a child
counts as untested and its mutants are never run; cosmic-ray mutates the working tree in place with a
fixed set of operators and runs one test command for every mutant (the whole suite, ~10 minutes,
times hundreds of mutants). Neither can take "this snippet becomes that, and these tests must fail".

So each mutation here is a list of exact (file, snippet, replacement) edits, never line numbers: a
snippet that is no longer found exactly once stops the run before anything is mutated (exit 2), and
tells you the list needs updating. Each mutant lives in a fresh scratch copy of the tree (tracked and
untracked files, as they are now), its tests run there with `CI` set (an unreachable service fails
instead of skipping) and the copy is put first on PYTHONPATH and used as the working directory, so
the `python -m drainer` children import the mutant too. The working tree is never written; the
scratch copies are removed at the end, also after an error, Ctrl-C or SIGTERM, and the whole process
group of a test run is killed when it outlives its budget.

Exit status: 0 when every mutation was killed; 1 when one survived, timed out or the unmutated tests
failed; 2 when the list no longer matches the code.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.mutation.mutations import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]
# A test run that outlives this is stopped and the mutant counts as not killed: every test that
# guards a bounded wait must bound its own time, well inside this.
DEFAULT_BUDGET_S = 300.0
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "build", "dist"}


class StaleList(Exception):
    """The mutation list no longer matches the code or the tests."""


@dataclass
class Outcome:
    name: str
    verdict: str  # killed | survived | timeout | error
    killed_by: list[str] = field(default_factory=list)
    seconds: float = 0.0
    detail: str = ""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the list against the tree ---------------------------------------------------------------------


def apply(mutation: Mutation, root: Path) -> None:
    """Apply the mutation's edits under `root`; raise StaleList unless each snippet occurs exactly once."""
    for edit in mutation.edits:
        path = root / edit.path
        if not path.is_file():
            raise StaleList(f"{mutation.name}: {edit.path} does not exist")
        text = path.read_text(encoding="utf-8")
        found = text.count(edit.find)
        if found != 1:
            where = "is no longer in" if found == 0 else f"occurs {found} times in"
            raise StaleList(f"{mutation.name}: the snippet {edit.find!r} {where} {edit.path}")
        path.write_text(text.replace(edit.find, edit.replace), encoding="utf-8")


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def verify(mutations: Sequence[Mutation], root: Path = ROOT) -> list[str]:
    """Every problem with the list: snippets not found exactly once, killing tests that do not exist."""
    problems = []
    names = [m.name for m in mutations]
    problems += [f"{n}: the name is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    with tempfile.TemporaryDirectory(prefix="drainer-mutation-verify-") as tmp:
        for mutation in mutations:
            if not mutation.tests:
                problems.append(f"{mutation.name}: names no test that should kill it")
            for node in mutation.tests:
                file, _, function = node.partition("::")
                function = function.split("[", 1)[0]
                if not (root / file).is_file() or function not in _test_functions(root / file):
                    problems.append(f"{mutation.name}: no test {node}")
            scratch = Path(tmp) / mutation.name
            for path in {e.path for e in mutation.edits}:
                if (root / path).is_file():
                    (scratch / path).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(root / path, scratch / path)
            try:
                apply(mutation, scratch)
            except StaleList as exc:
                problems.append(str(exc))
    return problems


# -- scratch copies --------------------------------------------------------------------------------


def tree_files(root: Path) -> list[Path]:
    """Tracked and untracked (not ignored) files of the work tree, as they are now."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
        return [Path(p) for p in listed.decode().split("\0") if p and (root / p).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): walk the tree
        return [
            p.relative_to(root)
            for p in root.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts)
        ]


def copy_tree(files: Sequence[Path], source: Path, target: Path) -> None:
    for rel in files:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target / rel)


@contextmanager
def scratch_area() -> Iterator[Path]:
    """A temporary directory removed whatever happens, SIGTERM included."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    area = Path(tempfile.mkdtemp(prefix="drainer-mutants-"))
    try:
        yield area
    finally:
        shutil.rmtree(area, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# -- running tests ---------------------------------------------------------------------------------


def child_env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAINER_") or k.startswith("DRAINER_TEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["CI"] = "1"  # an unreachable service must fail the run, not skip the test into a "survivor"
    return env


def imported_from(tree: Path) -> str:
    """Where `import drainer` resolves for a child of the scratch tree (must be inside it)."""
    return subprocess.run(
        [sys.executable, "-c", "import drainer; print(drainer.__file__)"],
        cwd=tree,
        env=child_env(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@dataclass
class TestRun:
    exit_code: int | None  # None: stopped at the budget
    failed: list[str]
    skipped: list[str]
    passed: int
    seconds: float
    output: str


def run_tests(tree: Path, tests: Sequence[str], budget_s: float, stop_at_first: bool) -> TestRun:
    """pytest on `tests` inside `tree`, in its own process group (killed whole at the budget)."""
    report = tree / ".mutation-junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "-o"]
    argv += ["junit_family=xunit2", *(["-x"] if stop_at_first else []), *tests]
    started = time.monotonic()
    code: int | None = None
    output = ""
    proc = subprocess.Popen(
        argv,
        cwd=tree,
        env=child_env(tree),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=budget_s)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        pass
    finally:
        if code is None:  # the budget passed, or Ctrl-C/SIGTERM: stop the whole group
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # pytest and every drainer child it started
            except ProcessLookupError:
                pass
            output = proc.communicate()[0] or output
    failed, skipped, passed = _junit(report)
    return TestRun(code, failed, skipped, passed, time.monotonic() - started, output)


def _junit(report: Path) -> tuple[list[str], list[str], int]:
    if not report.is_file():
        return [], [], 0
    failed, skipped, passed = [], [], 0
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        node = f"{module}.py::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(node)
        elif case.find("skipped") is not None:
            skipped.append(node)
        else:
            passed += 1
    report.unlink()
    return failed, skipped, passed


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_mutant(mutation: Mutation, base: Path, files: Sequence[Path], area: Path, budget_s: float) -> Outcome:
    tree = area / "mutant"
    shutil.rmtree(tree, ignore_errors=True)
    copy_tree(files, base, tree)
    try:
        apply(mutation, tree)
        run = run_tests(tree, mutation.tests, mutation.budget_s or budget_s, stop_at_first=True)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    if run.exit_code is None:
        return Outcome(mutation.name, "timeout", run.failed, run.seconds, f"no verdict within {budget_s:g}s")
    if run.exit_code == 1 and run.failed:
        return Outcome(mutation.name, "killed", run.failed, run.seconds)
    if run.exit_code == 0 and not run.skipped:
        return Outcome(mutation.name, "survived", [], run.seconds)
    detail = f"pytest exited {run.exit_code}\n{_tail(run.output)}"
    return Outcome(mutation.name, "error", run.failed, run.seconds, detail)


def baseline(base: Path, mutations: Sequence[Mutation], budget_s: float) -> TestRun:
    """The union of the killing tests on the unmutated copy: they must all pass, none skipped."""
    tests = sorted({t for m in mutations for t in m.tests})
    return run_tests(base, tests, budget_s * 4, stop_at_first=False)


# -- reporting -------------------------------------------------------------------------------------


def render(outcomes: Sequence[Outcome], by_name: dict[str, Mutation]) -> str:
    lines = []
    for o in outcomes:
        m = by_name[o.name]
        lines.append(f"{o.verdict.upper():<9} {o.name}  ({o.seconds:.0f} s)")
        lines.append(f"          {m.guarantee}; {', '.join(sorted({e.path for e in m.edits}))}")
        for node in o.killed_by:
            lines.append(f"          killed by {node}")
        if o.detail:
            lines.extend("          " + line for line in o.detail.splitlines())
    killed = sum(o.verdict == "killed" for o in outcomes)
    lines.append(f"{killed} of {len(outcomes)} mutations killed")
    return "\n".join(lines)


def markdown(outcomes: Sequence[Outcome], by_name: dict[str, Mutation]) -> str:
    rows = ["| mutation | guarantee broken | result | killed by |", "|---|---|---|---|"]
    for o in outcomes:
        m = by_name[o.name]
        killers = ", ".join(f"`{n.split('::', 1)[1]}`" for n in o.killed_by) or "–"
        rows.append(f"| `{o.name}`: {m.what} | {m.guarantee} | {o.verdict} | {killers} |")
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation.check", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the list and exit")
    parser.add_argument("--verify", action="store_true", help="check snippets and test names only, run nothing")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds per mutant's test run")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the tests")
    parser.add_argument("--json", action="store_true", help="the outcomes as JSON on stdout")
    parser.add_argument("--markdown", action="store_true", help="the outcomes as a Markdown table on stdout")
    parser.add_argument("--render", metavar="JSON", help="print the Markdown table of a saved --json run, run nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    by_name = {m.name: m for m in MUTATIONS}
    unknown = sorted(set(args.only or []) - set(by_name))
    if unknown:
        say(f"no such mutation: {', '.join(unknown)}")
        return 2
    chosen = [by_name[n] for n in args.only] if args.only else list(MUTATIONS)
    if args.render:
        saved = [Outcome(**o) for o in json.loads(Path(args.render).read_text(encoding="utf-8"))]
        print(markdown([o for o in saved if o.name in by_name], by_name))
        return 0
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.what}\n  guarantee: {m.guarantee}")
            for edit in m.edits:
                print(f"  {edit.path}: {edit.find.strip()!r} -> {edit.replace.strip()!r}")
            print("  killed by: " + ", ".join(m.tests))
        return 0
    problems = verify(chosen)
    if problems:
        say("the mutation list no longer matches the code; update tests/mutation/mutations.py:")
        for problem in problems:
            say(f"  {problem}")
        return 2
    if args.verify:
        say(f"{len(chosen)} mutations apply, and every test they name exists")
        return 0
    outcomes: list[Outcome] = []
    began = time.monotonic()
    try:
        with scratch_area() as area:
            files = tree_files(ROOT)
            base = area / "base"
            copy_tree(files, ROOT, base)
            where = imported_from(base)
            if not where.startswith(str(base)):
                say(f"a child of the scratch tree imports drainer from {where}, not from the copy: stopping")
                return 1
            if not args.no_baseline:
                say(f"unmutated run of the {len({t for m in chosen for t in m.tests})} killing tests")
                clean = baseline(base, chosen, args.budget)
                if clean.exit_code != 0 or clean.skipped:
                    say("the tests do not pass on the unmutated tree, so no verdict would mean anything:")
                    say("\n".join(f"  failed: {n}" for n in clean.failed) or _tail(clean.output))
                    say("\n".join(f"  skipped: {n}" for n in clean.skipped))
                    return 1
                say(f"  {clean.passed} passed in {clean.seconds:.0f} s")
            for i, mutation in enumerate(chosen, 1):
                say(f"[{i}/{len(chosen)}] {mutation.name}")
                outcome = run_mutant(mutation, base, files, area, args.budget)
                say(f"  {outcome.verdict} ({outcome.seconds:.0f} s) {' '.join(outcome.killed_by)}")
                outcomes.append(outcome)
    except KeyboardInterrupt:
        say("stopped; the scratch copies are removed")
        return 1
    say(f"{len(outcomes)} mutations in {time.monotonic() - began:.0f} s")
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes], indent=2))
    elif args.markdown:
        print(markdown(outcomes, by_name))
    else:
        print(render(outcomes, by_name))
    return 0 if all(o.verdict == "killed" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
