#!/usr/bin/env bash
# Create the narrow-permission user that the perm_* scenarios of scripts/compare_rabbitmq.py
# log in as. Run it once against each broker before comparing them:
#
#   scripts/compare-permissions-setup.sh bash /work/shared/tools/rabbitmq-oracle.sh ctl
#   scripts/compare-permissions-setup.sh target/release/warrenctl -n 127.0.0.1:25692 --data-dir DIR
#
# The arguments are a rabbitmqctl-like command prefix (rabbitmqctl itself or warrenctl).
# The user cmp-narrow (password cmp-narrow) is deleted if it exists and created again, with
# these permissions on vhost /: configure ^cmp-c, write ^cmp-w, read ^cmp-r, and no tags.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CTL-COMMAND [ARGS...]   (e.g. rabbitmqctl, or warrenctl -n HOST:PORT --data-dir DIR)" >&2
  exit 2
fi

USER_NAME=cmp-narrow
PASSWORD=cmp-narrow

"$@" delete_user "$USER_NAME" >/dev/null 2>&1 || true
"$@" add_user "$USER_NAME" "$PASSWORD"
"$@" set_permissions -p / "$USER_NAME" '^cmp-c' '^cmp-w' '^cmp-r'
"$@" list_user_permissions "$USER_NAME"
