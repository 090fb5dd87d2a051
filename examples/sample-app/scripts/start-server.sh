#!/bin/sh
# Starts a background "server"; its output is redirected, as CodeDeploy's docs ask, so the hook ends at once.
sleep 1 > /dev/null 2>&1 < /dev/null &
echo "ApplicationStart: started background process $!"
