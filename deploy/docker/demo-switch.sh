#!/bin/sh
# Entry point of the compose `producers` service: `demo-switch.sh COMMAND...` runs COMMAND, first pointing
# the producers at the simulator when the compose `demo` profile is active.
#
# Compose cannot give a service different environment per profile, so the switch happens here. The
# `instabase-sim` service exists only under `docker compose --profile demo`, and so does its name in the
# compose network: when the host of DEMO_SIM_URL resolves, INSTABASE_API_URL and INSTABASE_API_TOKEN are
# replaced by DEMO_SIM_URL and DEMO_SIM_TOKEN (the simulator's token, which guards nothing real, so the
# real token from .env is never sent to it). Otherwise nothing changes and the real API is polled.
set -eu

if [ -n "${DEMO_SIM_URL:-}" ]; then
  host=${DEMO_SIM_URL#*://}
  host=${host%%/*}
  host=${host%:*}
  if getent hosts "$host" >/dev/null 2>&1; then
    echo "demo profile: polling the simulator at $DEMO_SIM_URL instead of ${INSTABASE_API_URL:-the real API}" >&2
    INSTABASE_API_URL=$DEMO_SIM_URL
    INSTABASE_API_TOKEN=${DEMO_SIM_TOKEN:-}
    export INSTABASE_API_URL INSTABASE_API_TOKEN
    unset INSTABASE_API_TOKEN_FILE
  fi
fi
unset DEMO_SIM_URL DEMO_SIM_TOKEN

exec "$@"
