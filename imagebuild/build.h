/* SPDX-License-Identifier: MIT */
/* `imagebuild build`: stages from the spec to the outputs (rootfs, overlay, bundle,
 * squashfs + ISO, qcow2), each logged to DIR/build.log with its name. */
#pragma once

int cmd_build(int argc, char **argv);
int cmd_packages(int argc, char **argv);
