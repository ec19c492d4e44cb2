#!/usr/bin/python3
"""tools/alert-lines.py - alerts (the correlator's NDJSON, as on topic fenghuo.alerts) as one
readable line each, for `make run`'s terminal: time (Asia/Shanghai), level, title, source ->
target (with asset names), department. An alert prints once, when it opens; later updates of
the same alert are counted, not printed. Levels in Chinese unless LANG starts with "en".

    kcat -C -b BROKERS -t fenghuo.alerts -u -q | tools/alert-lines.py
"""
import datetime
import json
import os
import sys

ZH = {"critical": "严重", "high": "高危", "medium": "中危", "low": "低危", "informational": "提示"}
EN = {"critical": "CRIT", "high": "HIGH", "medium": "MED ", "low": "LOW ", "informational": "INFO"}
CST = datetime.timezone(datetime.timedelta(hours=8))


def side(s):
    if not s or not s.get("ip"):
        return "-"
    return "%s (%s)" % (s["ip"], s["asset"]) if s.get("asset") else s["ip"]


def clean(text):
    """Attacker-controlled text on a terminal: no control characters (escape sequences)."""
    return "".join(c if c.isprintable() else "\ufffd" for c in str(text))


def main():
    levels = EN if os.environ.get("LANG", "").startswith("en") else ZH
    for line in sys.stdin:
        try:
            a = json.loads(line)
        except ValueError:
            continue
        if a.get("update") != "opened":
            continue
        try:
            t = datetime.datetime.fromisoformat(a["first_seen"].replace("Z", "+00:00"))
            when = t.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
        except (KeyError, ValueError):
            when = "-"
        print("%s [%s] %s  %s → %s  %s" % (
            when, levels.get(a.get("level"), a.get("level")), clean(a.get("rule", {}).get("title", "")),
            clean(side(a.get("src"))), clean(side(a.get("dest"))), clean(a.get("department") or "")),
            flush=True)


if __name__ == "__main__":
    main()
