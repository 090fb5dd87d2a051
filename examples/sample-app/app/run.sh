#!/bin/sh
echo "the sample app"
