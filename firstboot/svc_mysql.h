/* SPDX-License-Identifier: MIT */
/* MariaDB 10.11 / MySQL 8.0 replication step (DESIGN.md section 5): the pieces the step
 * renders, exposed so tests check them for both dialects. */
#pragma once

#include "steps.h"

enum mysql_dialect {
        MYSQL_DIALECT_MARIADB, /* CHANGE MASTER TO ... MASTER_USE_GTID, built-in semi-sync */
        MYSQL_DIALECT_MYSQL8,  /* CHANGE REPLICATION SOURCE TO ..., semisync plugins */
};

/* From `mariadbd --version`, `mysqld --version` or SELECT VERSION(). -EOPNOTSUPP for a
 * server older than MySQL 8 or unrecognised. */
int mysql_dialect_from_version(const char *version, enum mysql_dialect *ret);

/* The node's server options ([mysqld] and [client]); complete, so the direct supervisor
 * runs the server with --defaults-file on it. */
int mysql_render_cnf(const struct step_ctx *c, enum mysql_dialect d, char **ret);
/* What apply runs once the server answers: on the primary the databases and users, on a
 * replica the replication source. Passwords from the sealed secrets. */
int mysql_render_sql(const struct step_ctx *c, enum mysql_dialect d, const char *repl_password,
                     const char *rainbond_password, char **ret);
/* The whole step for a given dialect (render() probes the installed server). */
int mysql_render(const struct step_ctx *c, enum mysql_dialect d, struct step_render *ret);
