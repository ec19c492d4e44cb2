#!/bin/sh
# tools/vectorscan-check.sh - the YARA prefilter against Vectorscan, the Hyperscan fork the
# Makefile installs where Debian 12 builds no Hyperscan (arm64), on a machine that has
# Hyperscan: unpacks Debian's libvectorscan packages (apt-get download; not installed, they
# conflict with libhyperscan-dev) under build/vectorscan, builds test_yara against them and
# runs it. Where Vectorscan is the installed library already, `make test-unit` is this test.
# Used by `make test` (check-vectorscan).
set -eu
if [ "$(dpkg --print-architecture)" != amd64 ]; then
    echo "vectorscan: the installed libhs is Vectorscan here; test-unit covered it"
    exit 0
fi
d=$PWD/build/vectorscan
mkdir -p "$d/deb"
if ! ls "$d"/deb/libvectorscan-dev_*.deb >/dev/null 2>&1 ||
    ! ls "$d"/deb/libvectorscan5_*.deb >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    # the package lists may be missing (a machine whose packages were all present)
    (cd "$d/deb" && apt-get download -q libvectorscan-dev libvectorscan5 >/dev/null 2>&1) || {
        $SUDO apt-get update -qq
        (cd "$d/deb" && apt-get download -q libvectorscan-dev libvectorscan5 >/dev/null 2>&1)
    } || {
        echo "vectorscan: apt-get download libvectorscan-dev libvectorscan5 failed" >&2
        exit 1
    }
fi
rm -rf "$d/root"
for f in "$d"/deb/*.deb; do dpkg -x "$f" "$d/root"; done
lib=$(dirname "$(find "$d/root/usr/lib" -name 'libhs.so.5' | head -n 1)")
make --no-print-directory BUILD="$d/b" EXTRA_CFLAGS="-I$d/root/usr/include" LDFLAGS="-L$lib" \
    "$d/b/test/test_yara" >/dev/null
if ! LD_LIBRARY_PATH=$lib ldd "$d/b/test/test_yara" | grep -q "$lib/libhs.so"; then
    echo "vectorscan: test_yara is not linked with $lib/libhs.so" >&2
    exit 1
fi
echo "== test_yara against Vectorscan ($(basename "$(ls "$d"/deb/libvectorscan5_*.deb)"))"
LD_LIBRARY_PATH=$lib "$d/b/test/test_yara"
