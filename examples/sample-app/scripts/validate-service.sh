#!/bin/sh
echo "ValidateService: revision $(cat "$(dirname "$0")/../app/VERSION") is healthy"
