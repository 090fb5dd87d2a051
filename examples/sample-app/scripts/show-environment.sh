#!/bin/sh
# Shows what every hook receives from the agent.
echo "event=$LIFECYCLE_EVENT deployment=$DEPLOYMENT_ID application=$APPLICATION_NAME"
echo "group=$DEPLOYMENT_GROUP_NAME ($DEPLOYMENT_GROUP_ID) user=$(id -un) cwd=$(pwd)"
