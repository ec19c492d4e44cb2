#!/bin/sh
# tools/web/build.sh - the dashboard's third-party assets, from the npm registry at build
# time (government networks are closed: nothing is fetched when the dashboard runs).
#   npm ci in tools/web (package-lock.json pins every version), then copies ECharts'
#   minified build with its LICENSE and NOTICE into dashboards/vendor/echarts/.
# Idempotent: does nothing when the copies are newer than the lock file.
set -eu
cd "$(dirname "$0")"
out=../../dashboards/vendor/echarts
if [ -f "$out/echarts.min.js" ] && [ "$out/echarts.min.js" -nt package-lock.json ] &&
    [ -d node_modules/playwright-core ]; then
    exit 0
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p "$out"
cp node_modules/echarts/dist/echarts.min.js node_modules/echarts/LICENSE \
    node_modules/echarts/NOTICE "$out/"
echo "web: dashboards/vendor/echarts $(node -p 'require("./node_modules/echarts/package.json").version')"
