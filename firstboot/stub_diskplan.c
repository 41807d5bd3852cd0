/* Temporary stub until cmd_disks.c lands; delete this file then. */
#include <errno.h>
#include "commands.h"
int cmd_disks(const struct ctx *ctx, int argc, char **argv) { (void)ctx; (void)argc; (void)argv; return -ENOSYS; }
