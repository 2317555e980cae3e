"""The exception tree: one root to catch, and messages that say what and where."""

from __future__ import annotations

import pytest

from sluicegate import SluicegateError
from sluicegate.errors import (
    AuthError,
    ConfigFileError,
    ConflictError,
    NotFoundError,
    Problem,
    RouterUnavailableError,
    SpecError,
    TransientError,
)


@pytest.mark.parametrize(
    "error",
    [
        SpecError([Problem("a", "b")]),
        ConfigFileError("f.yaml", "bad"),
        NotFoundError("x"),
        ConflictError("x"),
        AuthError("x"),
        TransientError("x"),
        RouterUnavailableError("x"),
    ],
)
def test_every_error_is_caught_by_the_one_root(error: Exception) -> None:
    with pytest.raises(SluicegateError):
        raise error


def test_the_tree_has_the_documented_shape() -> None:
    assert issubclass(ConfigFileError, SpecError)
    assert issubclass(RouterUnavailableError, TransientError)
    for cls in (SpecError, NotFoundError, ConflictError, AuthError, TransientError):
        assert cls.__bases__ == (SluicegateError,)


def test_a_problem_prints_as_path_colon_message() -> None:
    problem = Problem("listeners[0].port", "must be above 0")
    assert str(problem) == "listeners[0].port: must be above 0"


def test_a_problem_without_a_path_prints_only_its_message() -> None:
    assert str(Problem("", "expected a mapping")) == "expected a mapping"


def test_problems_compare_by_value() -> None:
    assert Problem("a", "b") == Problem("a", "b")
    assert Problem("a", "b") != Problem("a", "c")


def test_a_spec_error_lists_each_problem_on_its_own_line_after_the_source() -> None:
    error = SpecError(
        [Problem("admin.port", "taken"), Problem("listeners", "empty")], source="router.yaml"
    )
    assert str(error) == "router.yaml: 2 problems:\n  - admin.port: taken\n  - listeners: empty"
    assert error.source == "router.yaml"


def test_a_spec_error_with_one_problem_and_no_source_says_problem_in_the_singular() -> None:
    error = SpecError([Problem("x", "y")])
    assert str(error) == "1 problem:\n  - x: y"
    assert error.source is None


def test_a_spec_error_keeps_its_problems_as_an_immutable_tuple() -> None:
    problems = [Problem("x", "y")]
    error = SpecError(problems)
    problems.append(Problem("z", "w"))
    assert error.problems == (Problem("x", "y"),)


def test_a_config_file_error_is_one_pathless_problem_about_the_file() -> None:
    error = ConfigFileError("router.yaml", "not valid YAML at line 3, column 1")
    assert error.problems == (Problem("", "not valid YAML at line 3, column 1"),)
    assert error.source == "router.yaml"
    assert str(error) == "router.yaml: 1 problem:\n  - not valid YAML at line 3, column 1"


def test_error_answers_of_our_apis_become_the_matching_errors() -> None:
    from sluicegate.errors import (
        AuthError,
        ConflictError,
        NotFoundError,
        RouterUnavailableError,
        SpecError,
        error_from_response,
    )

    problems = {"error": "invalid", "problems": [{"path": "weights.blue", "message": "bad"}]}
    spec = error_from_response(422, problems, "router PUT /x")
    assert isinstance(spec, SpecError) and spec.problems[0].path == "weights.blue"
    assert isinstance(
        error_from_response(403, {"error": "no"}, "w", auth_hint=" (hint)"), AuthError
    )
    assert str(error_from_response(401, {"error": "no"}, "w", auth_hint=" (hint)")) == "no (hint)"
    assert isinstance(error_from_response(404, {"error": "x"}, "w"), NotFoundError)
    assert isinstance(error_from_response(409, {"error": "x"}, "w"), ConflictError)
    assert isinstance(
        error_from_response(503, {}, "w", transient=RouterUnavailableError), RouterUnavailableError
    )
    assert "answered 500" in str(error_from_response(500, "boom", "server GET /v1/x"))
