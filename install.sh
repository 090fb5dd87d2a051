#!/bin/sh
# Installs, upgrades or removes the CodeDeploy agent (the single executable) from an unpacked release. Run
# it as root from the release folder: sudo ./install.sh [options]. `./install.sh --help` lists the options.
#
# Promises (docs/packaging.md):
#  - an edited configuration is never overwritten (codedeployagent.yml is written only when absent);
#  - an upgrade never cuts an in-flight deployment: it waits until none is in flight (or gives up after
#    --wait-timeout seconds and changes nothing);
#  - re-running it is harmless: unchanged files stay untouched and the agent is not restarted;
#  - an upgrade does not start an agent that was not running (aws-codedeploy-agent #45).
set -eu
umask 022

PROGRAM=codedeploy-agent
PREFIX=/opt/codedeploy-agent
ROOT=
REGION=
ONPREM_SOURCE=
START=yes
ACTION=install
SYSTEMD=auto
WAIT_TIMEOUT=3600
FORCE=no
POLL_SECONDS=${CODEDEPLOY_INSTALL_POLL_SECONDS:-5}

usage() {
  cat <<'EOF'
Usage: sudo ./install.sh [options]

Installs the CodeDeploy agent from this release, or upgrades it in place.

  --region REGION            write AWS_REGION=REGION to /etc/default/codedeploy-agent (the service's
                             environment file) when that file does not exist yet; an existing file is
                             never changed. codedeployagent.yml has no region key and is not touched.
  --on-premises-config FILE  install FILE as the on-premises configuration
                             (/etc/codedeploy-agent/conf/codedeploy.onpremises.yml, or :on_premises_config_file:),
                             mode 0600; see also `codedeploy-agent register`
  --no-start                 install (and enable) but do not start or restart the agent
  --prefix DIR               install under DIR (default /opt/codedeploy-agent)
  --wait-timeout SECONDS     how long an upgrade or uninstall waits for an in-flight deployment (default 3600);
                             after that it stops with exit code 75 and changes nothing
  --force                    do not wait for an in-flight deployment (the agent's graceful stop still lets the
                             running lifecycle event finish)
  --uninstall                remove the agent; keeps the configuration, the deployment history and the logs
  --purge                    remove the agent and its configuration, deployment history and logs
  --root DIR                 install into DIR as if it were / (images, tests); systemctl only enables the unit
                             there (systemctl --root)
  --systemd auto|yes|no      manage the systemd unit: auto (default) when systemd runs this host
  -h, --help                 this text

Files: <prefix>/{bin/codedeploy-agent,bin/codedeploy-local,conf,.version}, /usr/bin/codedeploy-agent,
/usr/bin/codedeploy-local,
/etc/systemd/system/codedeploy-agent.service, /etc/codedeploy-agent/conf/codedeployagent.yml,
log dir and deployment root as the configuration names them.
EOF
}

ME=install.sh

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi
}

while [ "$#" -gt 0 ]; do
  case $1 in
    --*=*) opt=${1%%=*}; value=${1#*=}; shift; set -- "$opt" "$value" "$@"; continue ;;
  esac
  case $1 in
    --region) need_value "$@"; REGION=$2; shift 2 ;;
    --on-premises-config) need_value "$@"; ONPREM_SOURCE=$2; shift 2 ;;
    --no-start) START=no; shift ;;
    --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
    --wait-timeout) need_value "$@"; WAIT_TIMEOUT=$2; shift 2 ;;
    --force) FORCE=yes; shift ;;
    --uninstall) [ "$ACTION" = purge ] || ACTION=uninstall; shift ;;
    --purge) ACTION=purge; shift ;;
    --root) need_value "$@"; ROOT=$2; shift 2 ;;
    --systemd) need_value "$@"; SYSTEMD=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

case $WAIT_TIMEOUT in ''|*[!0-9]*) die "--wait-timeout takes a whole number of seconds, not '$WAIT_TIMEOUT'" ;; esac
case $POLL_SECONDS in ''|*[!0-9]*|0) POLL_SECONDS=5 ;; esac
case $SYSTEMD in auto|yes|no) ;; *) die "--systemd takes auto, yes or no, not '$SYSTEMD'" ;; esac
case $PREFIX in
  /*) ;;
  *) die "--prefix must be an absolute path, not '$PREFIX'" ;;
esac
# Paths end up in the status output that is parsed and in messages with quotes.
case $PREFIX$ROOT in *\'*|*'
'*) die "paths with quotes or newlines are not supported" ;; esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "--prefix / is not supported"
if [ -n "$ROOT" ]; then
  case $ROOT in /*) ;; *) ROOT=$(pwd)/$ROOT ;; esac
  ROOT=${ROOT%/}
fi
if [ -n "$REGION" ] && ! printf '%s' "$REGION" | grep -Eq '^[a-z]{2}(-[a-z]+)+-[0-9]+$'; then
  die "--region '$REGION' does not look like an AWS region (e.g. us-east-1)"
fi

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  die "run this as root (sudo $0 ...)"
fi

SRC=$(cd "$(dirname "$0")" && pwd)
DEST=$ROOT$PREFIX                       # where files go, as this script sees them
CONF_DIR=$ROOT/etc/codedeploy-agent/conf
CONF=$CONF_DIR/codedeployagent.yml
UNIT_DIR=$ROOT/etc/systemd/system
UNIT=$UNIT_DIR/$PROGRAM.service
DROPIN_DIR=$UNIT_DIR/$PROGRAM.service.d
BIN_DIR=$ROOT/usr/bin
ENV_FILE=$ROOT/etc/default/$PROGRAM
CHANGED=no
UNIT_CHANGED=no

# ---- shared block: scripts/package.mjs copies everything up to the end marker into the packages'
# ---- maintainer scripts, which set PROGRAM, PREFIX, ROOT, DEST, CONF, ME, WAIT_TIMEOUT, FORCE,
# ---- POLL_SECONDS, WAIT_OPTION and WAIT_ADVICE first. One home for these rules.
say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$ME" "$*" >&2; }
die() { printf '%s: %s\n' "$ME" "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# Configuration values (paths in the configuration name the target system; $ROOT is prepended to use them).

# conf_value KEY: the last `:KEY:` or `KEY:` value in codedeployagent.yml, unquoted, without a trailing slash.
conf_value() {
  [ -f "$CONF" ] || return 0
  sed -n "s/^[[:space:]]*:\{0,1\}$1:[[:space:]]*//p" "$CONF" | tail -n 1 |
    sed -e 's/[[:space:]]#.*$//' -e 's/[[:space:]]*$//' -e "s/^['\"]//" -e "s/['\"]\$//" -e 's:/*$::'
}

load_paths() {
  ROOT_DIR=$(conf_value root_dir); ROOT_DIR=${ROOT_DIR:-$PREFIX/deployment-root}
  LOG_DIR=$(conf_value log_dir); LOG_DIR=${LOG_DIR:-/var/log/aws/codedeploy-agent}
  PID_DIR=$(conf_value pid_dir); PID_DIR=${PID_DIR:-$PREFIX/state/.pid}
  TRACKING=$(conf_value ongoing_deployment_tracking); TRACKING=${TRACKING:-ongoing-deployment}
  ONPREM_FILE=$(conf_value on_premises_config_file)
  ONPREM_FILE=${ONPREM_FILE:-/etc/codedeploy-agent/conf/codedeploy.onpremises.yml}
}

# ---------------------------------------------------------------------------------------------------------
# In-flight deployments (a tracking file younger than 24 h means a command is running, for this agent and
# for AWS's alike: docs/packaging.md).

in_flight() {
  tracking_dir=$ROOT$ROOT_DIR/$TRACKING
  if [ -d "$tracking_dir" ]; then
    young=$(find "$tracking_dir" -type f -mmin -1440 2>/dev/null | head -n 1)
    if [ -n "$young" ]; then
      printf 'deployment %s is in progress (tracking file %s)' "$(basename "$young")" "$young"
      return 0
    fi
  fi
  # The installed agent's own view (exit 3/4 when it is not running: nothing in flight). Its JSON is
  # indented by two spaces a level; the in-flight commands are the objects of the top-level inFlight list.
  if [ -x "$DEST/bin/$PROGRAM" ]; then
    commands=$("$DEST/bin/$PROGRAM" status --json -c "$CONF" 2>/dev/null | awk '
      /^  "status": "running"/ { running = 1 }
      /^  "inFlight": \[$/ { inside = 1; next }
      inside && /^  \]/ { inside = 0 }
      inside && /^      "deploymentId": "/ { id = $0; sub(/^      "deploymentId": "/, "", id); sub(/",?$/, "", id) }
      inside && /^      "event": "/ { ev = $0; sub(/^      "event": "/, "", ev); sub(/",?$/, "", ev); list = list sep id " " ev; sep = ", " }
      END { if (running) printf "%s", list }' || true)
    if [ -n "$commands" ]; then
      printf 'the agent reports in-flight commands: %s' "$commands"
      return 0
    fi
  fi
  return 1
}

wait_for_idle() {
  reason=$(in_flight) || return 0
  if [ "$FORCE" = yes ]; then
    warn "$reason; going ahead because of --force"
    return 0
  fi
  say "Waiting for the in-flight deployment to finish before changing anything: $reason (up to ${WAIT_TIMEOUT}s, $WAIT_OPTION)"
  started=$(date +%s)
  while reason=$(in_flight); do
    now=$(date +%s)
    if [ $((now - started)) -ge "$WAIT_TIMEOUT" ]; then
      printf '%s: a deployment is still in progress after %ss: %s.\nNothing was changed. %s\n' "$ME" "$WAIT_TIMEOUT" "$reason" "$WAIT_ADVICE" >&2
      exit 75
    fi
    sleep "$POLL_SECONDS"
  done
  say "No deployment is in flight any more; going on."
}

# ---------------------------------------------------------------------------------------------------------
# Folders.

# mkdir_mode DIR MODE: create DIR (and parents) with MODE; an existing DIR keeps the mode its owner gave it.
mkdir_mode() {
  if [ ! -d "$1" ]; then
    mkdir -p "$1"
    chmod "$2" "$1"
  fi
}

# safe_remove PATH: rm -rf, but only folders that are recognisably CodeDeploy's own: a configuration naming
# root_dir: / or log_dir: /var/log must not wipe the host. Others are left with a note.
safe_remove() {
  target=${1%/}
  inner=${target#"$ROOT"}
  case $inner in
    /*[Cc]ode[Dd]eploy*) rm -rf -- "$target" ;;
    *) warn "not removing $target: it does not look like a folder of CodeDeploy's own; remove it yourself if you mean to" ;;
  esac
}

# ---- end of the shared block

# ---------------------------------------------------------------------------------------------------------
# Checks.

# check_executable: the release's program runs on this host (architecture, C library); sets VERSION.
check_executable() {
  run_error=$(mktemp "${TMPDIR:-/tmp}/codedeploy-agent-run.XXXXXX")
  if ! VERSION=$("$SRC/bin/$PROGRAM" --version 2>"$run_error"); then
    error=$(cat "$run_error"); rm -f "$run_error"
    arch=$(uname -m)
    die "$SRC/bin/$PROGRAM does not run on this $arch host${error:+: $error}
  This release is for $(release_arch). The agent needs Linux with glibc 2.28 or newer (ldd --version shows
  yours) and libstdc++: Amazon Linux 2023, Ubuntu 20.04+, Debian 10+ and RHEL 8+ have them (Amazon Linux 2 does not)."
  fi
  rm -f "$run_error"
}

# release_arch: the CPU the release's program is built for, from its ELF header.
release_arch() {
  case $(od -An -tx1 -j18 -N2 "$SRC/bin/$PROGRAM" 2>/dev/null | tr -d ' \n') in
    3e00) echo x86_64 ;;
    b700) echo aarch64 ;;
    *) echo "an unknown CPU" ;;
  esac
}

detect_systemd() {
  HAVE_SYSTEMCTL=no
  SYSTEMD_RUNNING=no
  [ "$SYSTEMD" = no ] && return 0
  if command -v systemctl >/dev/null 2>&1; then HAVE_SYSTEMCTL=yes; fi
  if [ "$SYSTEMD" = yes ]; then
    [ "$HAVE_SYSTEMCTL" = yes ] || die "--systemd yes, but there is no systemctl on PATH"
    SYSTEMD_RUNNING=yes
  elif [ -z "$ROOT" ] && [ -d /run/systemd/system ] && [ "$HAVE_SYSTEMCTL" = yes ]; then
    SYSTEMD_RUNNING=yes
  fi
}

# AWS's Ruby agent in the same place: its package owns these files and its service would fight ours.
refuse_ruby_agent() {
  if [ -f "$DEST/lib/codedeploy-agent.rb" ] || [ -d "$DEST/lib/instance_agent" ]; then
    die "AWS's CodeDeploy agent (Ruby) is installed in $PREFIX by its package. Install this agent's .deb or .rpm
  instead: it replaces that package in place and keeps /etc/codedeploy-agent/conf/codedeployagent.yml,
  $PREFIX/deployment-root and the service (docs/packaging.md). Or remove AWS's package first (dpkg -r or
  yum remove codedeploy-agent, not --purge) and run this installer again."
  fi
}

# ---------------------------------------------------------------------------------------------------------
# Files.

# put SOURCE TARGET MODE: replace TARGET atomically when its content differs; record that something changed.
put() {
  if [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$1" "$2"; then
    chmod "$3" "$2"
    return 0
  fi
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.new.$$"
  chmod "$3" "$2.new.$$"
  mv -f "$2.new.$$" "$2"
  CHANGED=yes
}

# link TARGET LINK: a symlink LINK -> TARGET.
link() {
  if [ -L "$2" ] && [ "$(readlink "$2")" = "$1" ]; then return 0; fi
  if [ -e "$2" ] && [ ! -L "$2" ]; then warn "replacing $2 (not a link) with a link to $1"; fi
  mkdir -p "$(dirname "$2")"
  ln -sfn "$1" "$2"
  CHANGED=yes
}

install_files() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/codedeploy-agent-install.XXXXXX")
  trap 'rm -rf "$work"' EXIT

  # The executable is replaced by a rename: an agent still running keeps its own (now unlinked) file.
  put "$SRC/bin/$PROGRAM" "$DEST/bin/$PROGRAM" 0755
  # codedeploy-local is the same program reached by another name (it dispatches on its own name). Until
  # the single executable it was a launcher script, as were the Node.js bundle's files removed here.
  if [ -f "$DEST/bin/codedeploy-local" ] && [ ! -L "$DEST/bin/codedeploy-local" ]; then rm -f "$DEST/bin/codedeploy-local"; fi
  link "$PROGRAM" "$DEST/bin/codedeploy-local"
  if [ -e "$DEST/dist" ] || [ -e "$DEST/package.json" ] || [ -e "$DEST/bin/$PROGRAM.mjs" ]; then
    rm -rf "${DEST:?}/dist" "${DEST:?}/package.json" "${DEST:?}/bin/$PROGRAM.mjs" "${DEST:?}/bin/codedeploy-local.mjs"
    CHANGED=yes
  fi
  # The pristine default configuration, with this prefix, for reference (and the anchor's fallback path).
  sed "s:/opt/codedeploy-agent:$PREFIX:g" "$SRC/conf/codedeployagent.yml" > "$work/codedeployagent.yml"
  put "$work/codedeployagent.yml" "$DEST/conf/codedeployagent.yml" 0644
  # What the commands client sends as x-amz-codedeploy-agent-version (agent-spec §1.1).
  printf 'agent_version: %s\n' "$VERSION" > "$work/version"
  put "$work/version" "$DEST/.version" 0444

  link "$PREFIX/bin/$PROGRAM" "$BIN_DIR/$PROGRAM"
  link "$PREFIX/bin/codedeploy-local" "$BIN_DIR/codedeploy-local"

  if [ -f "$CONF" ]; then
    say "Kept your configuration $CONF (the new default is $DEST/conf/codedeployagent.yml, for comparison)."
  else
    mkdir_mode "$CONF_DIR" 0755
    put "$work/codedeployagent.yml" "$CONF" 0644
    say "Wrote the default configuration $CONF."
  fi
  load_paths

  if [ -n "$ONPREM_SOURCE" ]; then
    [ -r "$ONPREM_SOURCE" ] || die "--on-premises-config: cannot read $ONPREM_SOURCE"
    mkdir_mode "$(dirname "$ROOT$ONPREM_FILE")" 0755
    put "$ONPREM_SOURCE" "$ROOT$ONPREM_FILE" 0600
    say "Installed the on-premises configuration $ROOT$ONPREM_FILE (mode 0600)."
  fi

  if [ -n "$REGION" ]; then
    if [ ! -e "$ENV_FILE" ]; then
      mkdir_mode "$(dirname "$ENV_FILE")" 0755
      {
        printf '# Environment of codedeploy-agent.service (EnvironmentFile=). Written by install.sh --region; yours to edit.\n'
        printf 'AWS_REGION=%s\n' "$REGION"
        printf '# HTTPS_PROXY=http://proxy.example.com:3128\n# NO_PROXY=169.254.169.254\n'
      } > "$work/env"
      put "$work/env" "$ENV_FILE" 0644
      say "Wrote AWS_REGION=$REGION to $ENV_FILE."
    elif grep -qx "AWS_REGION=$REGION" "$ENV_FILE"; then
      :
    else
      warn "$ENV_FILE exists and is not changed; to use region $REGION, set AWS_REGION=$REGION in it."
    fi
  fi

  mkdir_mode "$ROOT$LOG_DIR" 0750
  mkdir_mode "$ROOT$ROOT_DIR" 0755   # runas users must reach their scripts in it
  mkdir_mode "$ROOT$PID_DIR" 0755    # `codedeploy-agent status` works for any user

  if [ "$HAVE_SYSTEMCTL" = yes ] || [ "$SYSTEMD_RUNNING" = yes ]; then
    before=$CHANGED
    CHANGED=no
    put "$SRC/systemd/$PROGRAM.service" "$UNIT" 0644
    UNIT_CHANGED=$CHANGED
    [ "$before" = no ] || CHANGED=yes
  fi
}

remove_files() {
  for name in "$PROGRAM" codedeploy-local; do
    if [ -L "$BIN_DIR/$name" ]; then
      case $(readlink "$BIN_DIR/$name") in "$PREFIX"/*) rm -f "$BIN_DIR/$name" ;; esac
    fi
  done
  rm -rf "${DEST:?}/bin" "${DEST:?}/dist" "${DEST:?}/conf" "${DEST:?}/state"
  rm -f "${DEST:?}/.version" "${DEST:?}/package.json" "${DEST:?}/LICENSE" "${DEST:?}/LICENSE.node"
  if [ -f "$UNIT" ]; then rm -f "$UNIT"; UNIT_CHANGED=yes; fi
}

# ---------------------------------------------------------------------------------------------------------
# The service.

systemctl_root() {
  if [ -n "$ROOT" ]; then systemctl --root="$ROOT" "$@"; else systemctl "$@"; fi
}

how_to_start() {
  env_prefix=
  if [ -f "$ENV_FILE" ]; then env_prefix="set -a; . /etc/default/$PROGRAM; set +a; "; fi
  say "systemd does not run this host, so nothing was started. Start the agent in the background with:"
  say "  ${env_prefix}nohup /usr/bin/$PROGRAM run >/dev/null 2>&1 &"
  say "and from your init system at boot. It logs to $LOG_DIR/$PROGRAM.log; \`$PROGRAM status\` shows what it does, \`$PROGRAM stop\` stops it."
}

agent_running_without_systemd() {
  "$DEST/bin/$PROGRAM" status -c "$CONF" >/dev/null 2>&1
}

start_or_restart() {
  fresh=$1
  if [ "$SYSTEMD_RUNNING" = yes ]; then
    if [ "$UNIT_CHANGED" = yes ]; then systemctl daemon-reload; fi
    if [ "$fresh" = yes ]; then
      systemctl_root enable "$PROGRAM"
      if [ "$START" = yes ]; then
        systemctl start "$PROGRAM"
        say "Started $PROGRAM.service. See it work: $PROGRAM status, journalctl -u $PROGRAM"
      else
        say "Enabled $PROGRAM.service (starts at boot); start it now with: systemctl start $PROGRAM"
      fi
    elif [ "$CHANGED" = no ]; then
      say "Already up to date ($VERSION); the agent was left as it was."
    elif systemctl is-active --quiet "$PROGRAM"; then
      if [ "$START" = yes ]; then
        systemctl restart "$PROGRAM"
          say "Restarted $PROGRAM.service on version $VERSION."
      else
        say "The agent still runs the old version; restart it when convenient: systemctl restart $PROGRAM"
      fi
    else
      say "The agent was not running; it was not started (start it with: systemctl start $PROGRAM)."
    fi
  else
    if [ "$HAVE_SYSTEMCTL" = yes ] && [ "$fresh" = yes ]; then
      # An image being built (chroot, container build): enable now, systemd starts it at boot.
      systemctl_root enable "$PROGRAM" || warn "could not enable $PROGRAM.service"
    fi
    if [ "$fresh" = no ] && [ "$CHANGED" = yes ] && agent_running_without_systemd; then
      say "The agent still runs the old version; restart it: $PROGRAM stop, then start it again as before."
    elif [ "$fresh" = no ] && [ "$CHANGED" = no ]; then
      say "Already up to date ($VERSION)."
    else
      how_to_start
    fi
  fi
}

stop_service() {
  if [ "$SYSTEMD_RUNNING" = yes ] && [ -f "$UNIT" ]; then
    # Graceful: the agent lets a running lifecycle event finish before it exits.
    systemctl disable --now "$PROGRAM" || warn "could not stop and disable $PROGRAM.service"
  elif [ "$HAVE_SYSTEMCTL" = yes ] && [ -f "$UNIT" ]; then
    systemctl_root disable "$PROGRAM" || true
  fi
  # Without systemd (the pid file names the agent). Not with --root: that agent is not running here.
  if [ -z "$ROOT" ] && [ -x "$DEST/bin/$PROGRAM" ]; then
    "$DEST/bin/$PROGRAM" stop -c "$CONF" || warn "could not stop the agent"
  fi
}

# ---------------------------------------------------------------------------------------------------------

WAIT_OPTION=--wait-timeout
WAIT_ADVICE='Run install.sh again when it has finished, give it longer with --wait-timeout, or use --force.'
detect_systemd
refuse_ruby_agent
load_paths

if [ "$ACTION" = install ]; then
  for file in bin/$PROGRAM systemd/$PROGRAM.service conf/codedeployagent.yml; do
    [ -f "$SRC/$file" ] || die "$SRC/$file is missing: run install.sh from an unpacked release (npm run package builds one)"
  done
  check_executable
  if [ -f "$DEST/.version" ]; then
    fresh=no
    old_version=$(sed -n 's/^agent_version: *//p' "$DEST/.version")
    if [ "$old_version" = "$VERSION" ]; then
      say "Re-installing $PROGRAM $VERSION in $DEST"
    else
      say "Upgrading $PROGRAM ${old_version:-?} to $VERSION in $DEST"
    fi
  else
    fresh=yes
    say "Installing $PROGRAM $VERSION in $DEST"
  fi
  wait_for_idle
  install_files
  start_or_restart "$fresh"
  exit 0
fi

# --uninstall / --purge
if [ "$ACTION" = uninstall ] && [ ! -e "$DEST/.version" ] && [ ! -e "$UNIT" ] && [ ! -L "$BIN_DIR/$PROGRAM" ]; then
  say "$PROGRAM is not installed in $DEST; nothing to remove."
  exit 0
fi
wait_for_idle
stop_service
remove_files
if [ "$ACTION" = purge ]; then
  safe_remove "$ROOT$ROOT_DIR"
  safe_remove "$ROOT$LOG_DIR"
  safe_remove "$ROOT/etc/codedeploy-agent"
  rm -f "$ENV_FILE"
  rm -rf "$DROPIN_DIR"
  safe_remove "$DEST"
  say "Removed $PROGRAM with its configuration, deployment history and logs."
else
  rmdir "$DEST" 2>/dev/null || true
  say "Removed $PROGRAM. Kept the configuration ($CONF_DIR), the deployment history ($ROOT$ROOT_DIR) and the logs ($ROOT$LOG_DIR); --purge removes them."
fi
if [ "$SYSTEMD_RUNNING" = yes ] && [ "$UNIT_CHANGED" = yes ]; then systemctl daemon-reload; fi
exit 0
