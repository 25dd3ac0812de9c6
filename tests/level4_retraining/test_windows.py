"""Monitoring windows: months and ISO weeks of flights, by scheduled date."""

from __future__ import annotations

import pandas as pd
import pytest

from level4_retraining.windows import in_window, month_of, window_kind, windows_of

FLIGHTS = pd.DataFrame({"year": [2013, 2013, 2013, 2013], "month": [2, 3, 3, 12],
                        "day": [28, 3, 4, 30]})


def test_months_and_iso_weeks() -> None:
    assert list(windows_of(FLIGHTS, "monthly")) == ["2013-02", "2013-03", "2013-03", "2013-12"]
    # 2013-03-03 is the Sunday ending ISO week 9; 2013-12-30 is in week 1 of 2014.
    assert list(windows_of(FLIGHTS, "weekly")) == ["2013-W09", "2013-W09", "2013-W10", "2014-W01"]
    assert list(in_window(FLIGHTS, "2013-W09")) == [True, True, False, False]
    assert list(in_window(FLIGHTS, "2013-03")) == [False, True, True, False]


def test_a_weeks_retrain_certifies_on_the_month_it_ends_in() -> None:
    assert month_of("2013-07") == "2013-07"
    assert month_of("2013-W09") == "2013-03" and month_of("2014-W01") == "2014-01"


@pytest.mark.parametrize("bad", ["2013-7", "2013/07", "W10", "2013-W1", ""])
def test_a_malformed_window_says_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match="expected YYYY-MM .* or YYYY-Www"):
        window_kind(bad)
