#!/usr/bin/python3
"""Embeds correlator/migrations/NNNN_name.sql in correlator/store.c, between
/* BEGIN MIGRATIONS */ and /* END MIGRATIONS */ (test_alerts fails when they differ).
Run from the repository root after adding or editing a migration; a new file also
needs its entry in the migrations[] table."""
import glob
import os
import re

p = 'correlator/store.c'
out = []
for f in sorted(glob.glob('correlator/migrations/[0-9][0-9][0-9][0-9]_*.sql')):
    out.append('static const char MIGRATION_%s[] =' % os.path.basename(f)[:4])
    out += ['    "%s\\n"' % l.replace('\\', '\\\\').replace('"', '\\"')
            for l in open(f, encoding='utf-8').read().rstrip('\n').split('\n')]
    out[-1] += ';'
    out.append('')
s = open(p, encoding='utf-8').read()
s = re.sub(r'(/\* BEGIN MIGRATIONS \*/\n).*?(/\* END MIGRATIONS \*/)',
           lambda m: m.group(1) + '\n'.join(out) + m.group(2), s, flags=re.S)
open(p, 'w', encoding='utf-8').write(s)
