#!/usr/bin/env bash
# Debian packages the project needs, installed with apt-get when it can:
# - libboost1.81-dev: dionysus 2.2.3 (the reference zigzag engine) compiles from
#   source against Boost >= 1.81 headers; Debian 12's default Boost (1.74) fails.
# - fortunes-min, fortunes: the text calibration set (topovlm/calibration.py).
# Otherwise says what is missing.
set -euo pipefail
hdr=/usr/include/boost/version.hpp
have=$(sed -n 's/^#define BOOST_VERSION \([0-9]*\).*/\1/p' "$hdr" 2>/dev/null || true)
need=()
if [ -z "${have}" ] || [ "${have}" -lt 108100 ]; then need+=(libboost1.81-dev); fi
if [ ! -f /usr/share/games/fortunes/science ] || [ ! -f /usr/share/games/fortunes/wisdom ]; then
  need+=(fortunes-min fortunes)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[topovlm] apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
  exit 0
fi
cat >&2 <<MSG
error: missing system packages: ${need[*]}
       Debian 12:  sudo apt-get install ${need[*]}
       conda:      conda install -c conda-forge 'boost-cpp>=1.81'  (fortunes: copy the BSD
                   fortune files to /usr/share/games/fortunes or use your own prompts file)
MSG
exit 1
