#!/bin/sh
# Login banner: node role and cluster status as firstboot last recorded them.
status=/run/rainboot/status
echo "rainboot node $(hostname)"
if [ -r "$status" ]; then cat "$status"; else echo "status: firstboot has not reported yet"; fi
