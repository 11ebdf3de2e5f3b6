#!/usr/bin/env bash
# dionysus 2.2.3 (the reference zigzag engine) compiles from source against
# Boost >= 1.81 headers; Debian 12's default Boost (1.74) fails to compile it.
# Installs libboost1.81-dev with apt-get when it can, or says what is missing.
set -euo pipefail
hdr=/usr/include/boost/version.hpp
have=$(sed -n 's/^#define BOOST_VERSION \([0-9]*\).*/\1/p' "$hdr" 2>/dev/null || true)
if [ -n "${have}" ] && [ "${have}" -ge 108100 ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[topovlm] installing Boost 1.81 headers for dionysus (apt-get install libboost1.81-dev)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq libboost1.81-dev >/dev/null
  exit 0
fi
cat >&2 <<MSG
error: dionysus (the reference zigzag engine) needs Boost >= 1.81 headers to compile,
       found ${have:-none} in ${hdr}. Install them, then rerun:
         Debian 12:  sudo apt-get install libboost1.81-dev
         conda:      conda install -c conda-forge 'boost-cpp>=1.81'
MSG
exit 1
