"""The options are declared once (``gradcheck.engine.options.Options``); everything that
lists them — the typed ``**options`` of every check, their docstrings, the plugin's flags and
ini keys, the CLI's flags — is made from that declaration."""

import subprocess
import sys
from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from gradcheck.engine.errors import CheckInputError, CheckTypeError
from gradcheck.engine.options import (
    METHODS,
    MODES,
    OPTION_NAMES,
    CheckOptions,
    Options,
    parse_text,
)

PUBLIC_CHECKS = ["check_grad", "check_jacobian", "check_hvp", "check_layer", "check_model",
                 "check_function", "check_pair", "check_loss", "check_object"]


def test_the_typed_keywords_are_the_fields_of_the_declaration():
    declared = {f.name: str(f.type) for f in fields(Options) if f.name in OPTION_NAMES}
    typed = {name: kind.__forward_arg__ for name, kind in CheckOptions.__annotations__.items()}
    assert list(typed) == list(declared)
    assert typed == declared


@pytest.mark.parametrize("check", PUBLIC_CHECKS)
def test_every_public_check_documents_every_option_from_the_declaration(check):
    doc = getattr(gradcheck, check).__doc__
    assert "Options\n    -------" in doc
    for name in OPTION_NAMES:
        assert f"\n    {name} : " in doc, (check, name)


def test_the_modes_and_methods_are_the_literal_types():
    assert MODES == ("auto", "full", "fast")
    assert METHODS == ("central", "richardson", "complex")


@given(st.sampled_from(["rtol", "atol", "eps"]),
       st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_number_text_round_trips(name, value):
    assert parse_text(name, repr(value)) == value


@pytest.mark.parametrize(("name", "text"), [("mode", "quick"), ("rtol", "-1"), ("eps", "inf"),
                                            ("seed", "-2"), ("directions", "0"),
                                            ("allow_unresolved", "maybe"), ("seed", "1.5")])
def test_bad_text_is_a_value_error(name, text):
    with pytest.raises(ValueError):
        parse_text(name, text)


@pytest.mark.parametrize(("given_", "error"), [({"mode": "quick"}, CheckInputError),
                                               ({"seed": -1}, CheckInputError),
                                               ({"allow_unresolved": 1}, CheckTypeError),
                                               ({"directions": True}, CheckTypeError)])
def test_bad_values_are_refused_by_the_declaration(given_, error):
    with pytest.raises(error, match=next(iter(given_))):
        Options.of("check_grad", given_)


def test_the_option_table_imports_no_numpy():
    """The pytest plugin reads it at start-up, which must stay cheap."""
    code = "import sys, gradcheck.engine.options; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
