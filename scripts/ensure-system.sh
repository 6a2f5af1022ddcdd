#!/usr/bin/env bash
# Installs the system tools the tests need when missing, and starts dockerd when it is not
# running. Idempotent: on a machine that has everything it only checks.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have dockerd || need+=(docker.io)
have htpasswd || need+=(apache2-utils)
have nginx || [ -x /usr/sbin/nginx ] || need+=(nginx)
have wrk || need+=(wrk)
have git || need+=(git)
[ -x /bin/busybox ] || need+=(busybox-static)
have docker-compose || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
have vagrant || need+=(vagrant)
have ip || need+=(iproute2)
have openssl || need+=(openssl)  # a self-signed certificate for the TLS tests
# `make native` compiles the per-request modules: a C compiler and the Python headers
have gcc || need+=(gcc libc6-dev)
"${PYTHON:-python3}" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ||
  need+=(python3-dev)

if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-system: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "ensure-system: starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/vhostd-dockerd.log 2>&1 &
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/vhostd-dockerd.log"; exit 1; }
fi
