/* Temporary stubs until config.c and cmd_config.c land; delete this file then. */
#include <errno.h>
#include <stddef.h>
#include "commands.h"
#include "config.h"
int cmd_config(const struct ctx *ctx, int argc, char **argv) { (void)ctx; (void)argc; (void)argv; return -ENOSYS; }
int config_parse_file(const char *path, struct config **ret, struct diag *diag) { (void)path; (void)ret; (void)diag; return -ENOSYS; }
int config_apply_cmdline_file(struct config *c, const char *path, struct diag *diag) { (void)c; (void)path; (void)diag; return -ENOSYS; }
void diag_clear(struct diag *d) { (void)d; }
struct config *config_free(struct config *c) { (void)c; return NULL; }
