# What the .deb and .rpm maintainer scripts do (docs/packaging.md). scripts/package.mjs puts each script
# together from: the settings below, install.sh's shared block (configuration paths, in-flight check and
# wait), this file, and one line that calls the function for that script's moment.
#
# Package managers differ in when scripts run; the functions here are named for what they do:
#   wait_before_change  before files change on an upgrade: waits as install.sh does (exit 75 = nothing changed)
#   configure           after the files are in place: configuration, folders, the service
#   stop_before_remove  before a removal: waits, then stops and disables the service
#   purge               after `dpkg --purge`: configuration, logs, deployment root

PKG_STATE=/var/lib/codedeploy-agent-package

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# aws_agent_present: AWS's Ruby agent's files are (still) in the prefix.
aws_agent_present() { [ -f "$DEST/lib/codedeploy-agent.rb" ] || [ -d "$DEST/lib/instance_agent" ]; }

wait_before_change() {
  load_paths
  wait_for_idle
  # Remembered for configure: whether the agent ran before the upgrade, and whether it was AWS's.
  mkdir -p "$PKG_STATE"
  if systemd_running && systemctl is-active --quiet "$PROGRAM"; then : > "$PKG_STATE/was-active"; fi
  if aws_agent_present; then
    : > "$PKG_STATE/from-aws"
    # rpm removes the files of AWS's package after ours are in place, its configuration among them (or
    # renames it .rpmsave when edited): keep a copy to put back (dpkg keeps it as an obsolete conffile).
    if [ -f "$CONF" ]; then cp -p "$CONF" "$PKG_STATE/codedeployagent.yml"; fi
  fi
}

configure() {
  # An edited configuration is never overwritten and never asked about: the package ships the default
  # under the prefix and copies it to /etc only when there is none.
  if [ ! -f "$CONF" ] && [ -f "$PKG_STATE/codedeployagent.yml" ]; then
    mkdir_mode "$(dirname "$CONF")" 0755
    cp -p "$PKG_STATE/codedeployagent.yml" "$CONF"
    say "Restored the configuration $CONF kept from AWS's package."
  fi
  if [ ! -f "$CONF" ]; then
    mkdir_mode "$(dirname "$CONF")" 0755
    cp "$DEST/conf/codedeployagent.yml" "$CONF"
    chmod 0644 "$CONF"
    say "Wrote the default configuration $CONF."
  fi
  load_paths
  mkdir_mode "$LOG_DIR" 0750
  mkdir_mode "$ROOT_DIR" 0755
  mkdir_mode "$PID_DIR" 0755

  fresh=$1
  if [ -f "$PKG_STATE/from-aws" ]; then fresh=yes; fi
  if systemd_running; then
    systemctl daemon-reload
    if [ "$fresh" = yes ]; then
      systemctl enable "$PROGRAM"
      # Replacing AWS's agent: its service was just stopped by its own package's scripts, or still runs
      # the old program; a restart starts ours either way.
      systemctl restart "$PROGRAM"
      say "Started $PROGRAM.service. See it work: $PROGRAM status, journalctl -u $PROGRAM"
    elif [ -f "$PKG_STATE/was-active" ] || systemctl is-active --quiet "$PROGRAM"; then
      # Graceful: the agent lets a running lifecycle event finish before it exits.
      systemctl restart "$PROGRAM"
      say "Restarted $PROGRAM.service."
    else
      say "The agent was not running; it was not started (start it with: systemctl start $PROGRAM)."
    fi
  elif command -v systemctl >/dev/null 2>&1; then
    # An image being built (chroot, container build): nothing is started; a fresh install is enabled, so
    # systemd starts the agent when the image boots (systemctl only writes the link here).
    if [ "$fresh" = yes ]; then systemctl enable "$PROGRAM" >/dev/null 2>&1 || warn "could not enable $PROGRAM.service"; fi
    say "systemd does not run this host: nothing was started."
  else
    say "systemd does not run this host: nothing was started. Start the agent with: nohup $PROGRAM run >/dev/null 2>&1 &"
  fi
  rm -rf "$PKG_STATE"
}

stop_before_remove() {
  load_paths
  wait_for_idle
  if systemd_running; then
    # Graceful: the agent lets a running lifecycle event finish before it exits.
    systemctl disable --now "$PROGRAM" || warn "could not stop and disable $PROGRAM.service"
  elif command -v systemctl >/dev/null 2>&1; then
    systemctl disable "$PROGRAM" >/dev/null 2>&1 || true
  fi
  if [ -x "$DEST/bin/$PROGRAM" ] && "$DEST/bin/$PROGRAM" status -c "$CONF" >/dev/null 2>&1; then
    "$DEST/bin/$PROGRAM" stop -c "$CONF" || warn "could not stop the agent"
  fi
}

purge() {
  load_paths
  safe_remove "$ROOT_DIR"
  safe_remove "$LOG_DIR"
  safe_remove /etc/codedeploy-agent
  safe_remove "$DEST"
  rm -f "/etc/default/$PROGRAM"
  rm -rf "/etc/systemd/system/$PROGRAM.service.d"
  rm -rf "$PKG_STATE"
}
