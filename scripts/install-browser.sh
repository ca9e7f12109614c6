#!/usr/bin/env bash
# Chromium and ChromeDriver for the browser tests (tests/report/test_browser.py), from Debian's packages.
#
# Idempotent: does nothing when both are already at /usr/bin (or at $ATHANOR_CHROMIUM / $ATHANOR_CHROMEDRIVER).
# As root with apt-get, installs the packages chromium and chromium-driver; otherwise prints the command to
# run. It never fails `make test`: without a browser the browser tests skip (and fail under CI, where a browser
# is required). No browser is ever downloaded any other way.
set -u

chromium="${ATHANOR_CHROMIUM:-/usr/bin/chromium}"
chromedriver="${ATHANOR_CHROMEDRIVER:-/usr/bin/chromedriver}"
install="apt-get update && apt-get install -y chromium chromium-driver"

if [ -x "$chromium" ] && [ -x "$chromedriver" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no Chromium/ChromeDriver at $chromium, $chromedriver and no apt-get here;" \
         "install both and set ATHANOR_CHROMIUM / ATHANOR_CHROMEDRIVER, or the browser tests skip" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: Chromium and ChromeDriver are not installed; the browser tests will skip." >&2
    echo "  to run them:  sudo sh -c '$install'" >&2
    exit 0
fi
echo "install-browser: installing chromium and chromium-driver (Debian packages) for the browser tests" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }; then
    echo "install-browser: the install failed (see above); the browser tests will skip, or fail under CI" >&2
fi
exit 0
