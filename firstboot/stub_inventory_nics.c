/* Temporary stubs until inventory_nics.c, inventory_host.c, inventory_output.c and
 * cmd_inventory.c land; delete this file then. */
#include <errno.h>
#include "commands.h"
#include "inventory.h"
int inventory_probe_nics(struct inventory *inv) { (void)inv; return -ENOSYS; }
int inventory_probe_host(struct inventory *inv) { (void)inv; return -ENOSYS; }
int inventory_to_json(const struct inventory *inv, bool all_nics, char **ret) { (void)inv; (void)all_nics; (void)ret; return -ENOSYS; }
void inventory_print(const struct inventory *inv, bool all_nics, FILE *f) { (void)inv; (void)all_nics; (void)f; }
int cmd_inventory(const struct ctx *ctx, int argc, char **argv) { (void)ctx; (void)argc; (void)argv; return -ENOSYS; }
