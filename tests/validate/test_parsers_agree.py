"""libyaml and ruamel.yaml read every fixture the same: same values, same diagnostics.

Only the wording of a YAML syntax error is each parser's own; its position is not.
"""

from __future__ import annotations

import os

import pytest
from validate_fixtures import EXAMPLES, FIXTURES, lines_of, validate_fixture, validate_folder

from reconciler.core.diagnostics import Diagnostic
from reconciler.load.nodes import available_parsers

pytestmark = pytest.mark.skipif(
    available_parsers() != ("libyaml", "ruamel"), reason="PyYAML built without libyaml"
)


def _comparable(diagnostic: Diagnostic) -> tuple[object, ...]:
    message = diagnostic.message
    if message.startswith("invalid YAML:"):
        message = "invalid YAML:"
    return (diagnostic.path, diagnostic.line, diagnostic.col, diagnostic.severity, message)


@pytest.mark.parametrize("fixture", sorted(os.listdir(FIXTURES)))
def test_both_parsers_give_the_same_diagnostics(fixture: str) -> None:
    fast = validate_fixture(fixture, parser="libyaml")
    pure = validate_fixture(fixture, parser="ruamel")
    assert [_comparable(d) for d in fast.diagnostics] == [_comparable(d) for d in pure.diagnostics]
    assert [o.doc.value for o in fast.objects] == [o.doc.value for o in pure.objects]


def test_both_parsers_read_the_examples_alike() -> None:
    fast = validate_folder(EXAMPLES, parser="libyaml")
    pure = validate_folder(EXAMPLES, parser="ruamel")
    assert lines_of(fast) == lines_of(pure) == []
    assert [o.doc.value for o in fast.objects] == [o.doc.value for o in pure.objects]
