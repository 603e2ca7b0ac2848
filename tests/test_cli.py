"""tinyconv/cli.py: the error policy (TINYCONV_DEBUG), the checked number types, help that shows defaults."""
import argparse

import pytest

from tinyconv.cli import (ERROR, NO, USAGE, YES, HelpFormatter, finite_float, nonnegative_float, nonnegative_int,
                          positive_float, positive_int, run_command)


def fails(message):
    raise ValueError(message)


def test_exit_statuses_and_error_line(capsys, monkeypatch):
    assert (YES, ERROR, USAGE, NO) == (0, 1, 2, 3)
    assert run_command(lambda: None) == YES and run_command(lambda: NO) == NO
    monkeypatch.delenv("TINYCONV_DEBUG", raising=False)
    assert run_command(fails, "bad input") == ERROR
    assert capsys.readouterr().err == "error: bad input\n"
    monkeypatch.setenv("TINYCONV_DEBUG", "1")  # the traceback behind the line, then the line
    assert run_command(fails, "a bug") == ERROR
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "in fails" in err and err.endswith("error: a bug\n")


@pytest.mark.parametrize("kind, good, bad", [
    (positive_int, {"1": 1, "20": 20}, ["0", "-1", "1.5", "nan", "x", ""]),
    (nonnegative_int, {"0": 0, "7": 7}, ["-1", "inf", "2.0"]),
    (positive_float, {"1e-5": 1e-5, "0.7": 0.7}, ["0", "-0.1", "nan", "inf", "-inf", "x"]),
    (nonnegative_float, {"0": 0.0, "0.5": 0.5}, ["-1e-9", "nan", "inf"]),
    (finite_float, {"-2.5": -2.5, "0": 0.0}, ["nan", "inf", "-inf", "NaN", "one"])])
def test_number_types_refuse_nan_inf_and_out_of_range(kind, good, bad):
    for text, value in good.items():
        assert kind(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected .*, got '{text}'"):
            kind(text)


def test_help_shows_defaults_once():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--steps", type=positive_int, default=20, help="training steps")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed")
    parser.add_argument("--cache", help="cache folder (default: $HOME/cache)")
    parser.add_argument("--flag", action="store_true", help="a switch")
    text = " ".join(parser.format_help().split())
    assert "training steps (default: 20)" in text and "random seed (default: 0)" in text
    assert text.count("default") == 3 and "a switch" in text
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--steps", "-1"])
    assert exit_.value.code == USAGE
