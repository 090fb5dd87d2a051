#!/bin/sh
set -e
echo "AfterInstall: revision $(cat "$(dirname "$0")/../app/VERSION") is in place"
echo "a line on stderr from $DEPLOYMENT_ID" >&2
