#!/usr/bin/python3
"""tools/alert-lines.py - alerts (the correlator's NDJSON, as on topic fenghuo.alerts) as one
readable line each, for `make run`'s terminal: time (Asia/Shanghai), level, title, source ->
target (with asset names), department. An alert prints once, when it opens; later updates of
the same alert are counted, not printed. Levels and rule titles (the rule files' title_zh)
in Chinese unless LANG starts with "en".

    kcat -C -b BROKERS -t fenghuo.alerts -u -q | tools/alert-lines.py [RULE_DIR...]

RULE_DIR defaults to rules/level3; a rule without title_zh (or without PyYAML) shows the
title the alert carries.
"""
import datetime
import glob
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


def zh_titles(dirs):
    """{rule id: title_zh} from the Sigma files in dirs (detection and correlation rules)."""
    try:
        import yaml
    except ImportError:
        return {}
    out = {}
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.yml")) + glob.glob(os.path.join(d, "*.yaml"))):
            try:
                with open(path, encoding="utf-8") as f:
                    docs = list(yaml.safe_load_all(f))
            except (OSError, yaml.YAMLError):
                continue
            for doc in docs:
                if isinstance(doc, dict) and doc.get("title_zh"):
                    rid = doc.get("id") or doc.get("name") or doc.get("title")
                    out[str(rid)] = str(doc["title_zh"])
    return out


def main():
    english = os.environ.get("LANG", "").startswith("en")
    levels = EN if english else ZH
    titles = {} if english else zh_titles(sys.argv[1:] or ["rules/level3"])
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
            when, levels.get(a.get("level"), a.get("level")),
            clean(titles.get(a.get("rule", {}).get("id"), a.get("rule", {}).get("title", ""))),
            clean(side(a.get("src"))), clean(side(a.get("dest"))), clean(a.get("department") or "")),
            flush=True)


if __name__ == "__main__":
    main()
