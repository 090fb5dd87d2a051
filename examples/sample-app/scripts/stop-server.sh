#!/bin/sh
# Runs from the PREVIOUS revision (the last successful install), never on a first deployment.
echo "ApplicationStop from revision $(cat "$(dirname "$0")/../app/VERSION" 2>/dev/null || echo unknown) for $DEPLOYMENT_ID"
