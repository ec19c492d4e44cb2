"""fenghuo-console calendar: the official working-day calendar (issue 12's first piece).

The worked examples of ../shared/docs/rectification.md (Monday-Friday arithmetic gets
each wrong), a deadline on a make-up Saturday, a year without a calendar file (flagged
on stderr and with "guessed"), the year listing, and usage errors.
"""

import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(console, *args):
    return subprocess.run([console, *args], capture_output=True, text=True, timeout=30,
                          cwd=REPO)


@pytest.mark.parametrize("start,n,want", [
    ("2026-02-12", "5", "2026-02-26"),   # Spring Festival, make-up Saturday 02-14
    ("2026-09-30", "5", "2026-10-13"),   # National Day, make-up Saturday 10-10
    ("2026-04-30", "5", "2026-05-11"),   # Labour Day, make-up Saturday 05-09
    ("2026-02-12", "2", "2026-02-14"),   # lands on the make-up Saturday itself
    ("2025-01-27", "1", "2025-02-05"),
])
def test_add_working_days(console, start, n, want):
    p = run(console, "calendar", "--add", start, n)
    assert p.returncode == 0, p.stderr
    assert p.stdout == want + "\n"
    assert p.stderr == ""


def test_year_without_calendar_is_flagged(console):
    p = run(console, "calendar", "--add", "2026-12-30", "5")
    assert p.returncode == 0
    assert p.stdout == "2027-01-06 guessed\n"
    assert "no calendar for 2027" in p.stderr and "2027 年无节假日数据" in p.stderr
    p = run(console, "calendar", "2027")
    assert p.stdout.startswith("2027: 261 working days (工作日), guessed")
    assert "no calendar for 2027" in p.stderr


def test_year_listing(console):
    p = run(console, "calendar", "2026")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "2026: 248 working days (工作日)"
    assert "content_7047091" in lines[1]
    holidays = lines[lines.index("holidays (法定节假日):") + 1:
                     lines.index("make-up working days (调休上班):")]
    makeup = lines[lines.index("make-up working days (调休上班):") + 1:]
    assert len(holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert "  2026-02-16 Mon 周一  春节" in holidays
    assert makeup == ["  2026-01-04 Sun 周日  元旦", "  2026-02-14 Sat 周六  春节",
                      "  2026-02-28 Sat 周六  春节", "  2026-05-09 Sat 周六  劳动节",
                      "  2026-09-20 Sun 周日  国庆节", "  2026-10-10 Sat 周六  国庆节"]
    p = run(console, "calendar", "2025")
    assert p.stdout.startswith("2025: 248 working days (工作日)\n")


@pytest.mark.parametrize("args", [
    ["calendar"], ["calendar", "--add", "2026-02-30", "5"], ["calendar", "--add", "2026-02-01", "0"],
    ["calendar", "nineteen"], ["nosuchcommand"],
])
def test_usage_errors(console, args):
    p = run(console, *args)
    assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
    assert p.stderr


def test_bad_calendar_file_names_the_line(console, tmp_path):
    (tmp_path / "2030.yaml").write_text("year: 2030\nsource: x\nholidays:\n"
                                        "  - {name: a, from: 2030-01-05, to: 2030-01-06}\n"
                                        "workdays:\n  - {date: 2030-01-05, for: a}\n")
    p = run(console, "calendar", "--dir", str(tmp_path), "2030")
    assert p.returncode == 1
    assert "2030.yaml:6: a day given twice" in p.stderr


# ---- deadlines (rules/rectification.yaml) ----------------------------------------------------

@pytest.mark.parametrize("severity,first,want", [
    ("medium", "2026-02-12T10:00:00+08:00",
     "due 2026-02-27T00:00:00+08:00 (end of 2026-02-26, 5 working days from first_seen)\n"),
    ("medium", "2026-02-11T16:30:00Z",   # already 02-12 in Shanghai
     "due 2026-02-27T00:00:00+08:00 (end of 2026-02-26, 5 working days from first_seen)\n"),
    ("high", "2026-02-14T09:00:00+08:00", "due 2026-02-17T09:00:00+08:00 (72 h from first_seen)\n"),
    ("critical", "2026-02-12T10:00:00Z",
     "due 2026-02-13T18:00:00+08:00 (24 h from first_seen)\ncontainment 2026-02-12T20:00:00+08:00\n"),
    ("low", "2026-04-30T10:00:00+08:00",
     "due 2026-05-26T00:00:00+08:00 (end of 2026-05-25, 15 working days from first_seen)\n"),
])
def test_deadline(console, severity, first, want):
    p = run(console, "deadline", "--severity", severity, "--first-seen", first)
    assert p.returncode == 0, p.stderr
    assert p.stdout == want
    assert p.stderr == ""


def test_deadline_in_a_year_without_calendar(console):
    p = run(console, "deadline", "--severity", "medium", "--first-seen", "2026-12-28T10:00:00+08:00")
    assert p.returncode == 0
    assert p.stdout.endswith(" guessed\n")
    assert "year without calendar data" in p.stderr


@pytest.mark.parametrize("args", [
    ["deadline", "--severity", "urgent", "--first-seen", "2026-02-12T10:00:00Z"],
    ["deadline", "--severity", "low", "--first-seen", "yesterday"],
    ["deadline", "--severity", "low"],
])
def test_deadline_usage(console, args):
    p = run(console, *args)
    assert p.returncode == 2 and p.stderr
