/* SPDX-License-Identifier: MIT */
/* MariaDB 10.11 / MySQL 8.0 replication step (DESIGN.md section 5): the pieces the step
 * renders, exposed so tests check them for both dialects, and what `firstboot db` shares
 * with it (the admin account, TLS files, the promotion record). */
#pragma once

#include <netinet/in.h>

#include "steps.h"

#define MYSQL_PORT 3306
/* A primary without any replica acknowledging falls back to asynchronous commits after
 * this long, instead of stalling every write while replicas are down. */
#define MYSQL_SEMI_SYNC_TIMEOUT_MS 1000
/* Created on the primary (and so on every replica) for `firstboot db`; its password is
 * derived from the sealed ca_seed (mysql_admin_password()). */
#define MYSQL_ADMIN_USER "rainboot_admin"
/* Under the state directory: the newest promotion this node knows of. */
#define MYSQL_PROMOTION_FILE "mysql-promotion.json"
/* Under the state directory, 0600: [client] options to reach members as the admin. */
#define MYSQL_ADMIN_CNF "secrets/mysql-admin.cnf"

enum mysql_dialect {
        MYSQL_DIALECT_MARIADB, /* CHANGE MASTER TO ... MASTER_USE_GTID, built-in semi-sync */
        MYSQL_DIALECT_MYSQL8,  /* CHANGE REPLICATION SOURCE TO ..., semisync plugins */
};

/* From `mariadbd --version`, `mysqld --version` or SELECT VERSION(). -EOPNOTSUPP for a
 * server older than MySQL 8 or unrecognised. */
int mysql_dialect_from_version(const char *version, enum mysql_dialect *ret);
/* What the installed server speaks (runs `mariadbd --version`...); MariaDB when none. */
enum mysql_dialect mysql_probe_dialect(const struct step_ctx *c);
const char *mysql_client_bin(enum mysql_dialect d);

/* The cluster PKI files for MySQL under the step root (the "pki" step's contract): 1 and
 * the three paths when ca.crt, mysql.crt and mysql.key all exist, 0 when not. */
struct mysql_tls {
        char *ca, *cert, *key;
};
void mysql_tls_done(struct mysql_tls *t);
int mysql_tls_get(const struct step_ctx *c, struct mysql_tls *ret);

/* BLAKE2b keyed with ca_seed over a fixed label, hex: the same on every node holding the
 * secrets, never stored by the servers in clear. -ENOENT without ca_seed. */
int mysql_admin_password(const struct step_ctx *c, char **ret);
/* The [client] file content for TCP access as the admin (TLS with the cluster CA and
 * server certificate check when the PKI files exist). */
int mysql_admin_cnf(const struct step_ctx *c, enum mysql_dialect d, char **ret);
/* Writes it (0600, atomically, when changed) and returns its path. */
int mysql_admin_cnf_write(const struct step_ctx *c, enum mysql_dialect d, char **ret_path);
/* Runs sql on the member at addr through the admin file: --batch, tab-separated, with
 * column names when with_names. Returns the client's exit status like run_command(). */
int mysql_remote_query(const struct step_ctx *c, enum mysql_dialect d, const char *admin_cnf,
                       const struct in_addr *addr, const char *sql, bool with_names,
                       char **ret_output);
/* The member's cluster address (first view address); -EADDRNOTAVAIL when unknown. */
int mysql_member_addr(const struct step_ctx *c, const struct node_plan *np, struct in_addr *ret);

/* `firstboot db promote` made primary a replica of the plan: generation counts
 * promotions, the newest wins. */
struct mysql_promotion {
        unsigned generation; /* 0: none */
        uint8_t primary[NODE_ID_LEN];
        uint8_t previous[NODE_ID_LEN];
        char gtid[256]; /* the new primary's position when promoted, for people */
        uint64_t time;
};
/* <state_dir>/MYSQL_PROMOTION_FILE; -ENOENT when there is none, -EBADMSG if damaged. */
int mysql_promotion_load(const char *state_dir, struct mysql_promotion *ret);
int mysql_promotion_save(const char *state_dir, const struct mysql_promotion *p);
/* The SQL that records p in the `rainboot`.`promotion` table (replicated to all). */
int mysql_promotion_sql(const struct mysql_promotion *p, char **ret);
/* SELECT of the newest row of that table: generation, primary, previous, gtid, time. */
#define MYSQL_PROMOTION_SELECT                                                                     \
        "SELECT generation, primary_id, previous_id, gtid, UNIX_TIMESTAMP(at) FROM "               \
        "rainboot.promotion ORDER BY generation DESC LIMIT 1"
/* Parses one tab-separated row of that SELECT. */
int mysql_promotion_from_row(const char *row, struct mysql_promotion *ret);

/* Who this node follows: the plan's primary, unless a promotion record names another. */
struct mysql_role {
        const struct node_plan *primary;
        bool promoted;       /* a promotion record decided it */
        bool former_primary; /* this node was a primary before: rejoin at current_pos */
        bool tls;            /* the PKI files exist */
};
int mysql_role_get(const struct step_ctx *c, const struct mysql_promotion *p,
                   struct mysql_role *ret);

struct mysql_secrets {
        const char *repl, *rainbond, *admin; /* admin may be NULL: no admin account */
};

/* The node's server options ([mysqld] and [client]); complete, so the direct supervisor
 * runs the server with --defaults-file on it. */
int mysql_render_cnf(const struct step_ctx *c, enum mysql_dialect d, const struct mysql_role *role,
                     char **ret);
/* What apply runs once the server answers: on the primary the databases and users, on a
 * replica the replication source. Passwords from the sealed secrets. */
int mysql_render_sql(const struct step_ctx *c, enum mysql_dialect d, const struct mysql_role *role,
                     const struct mysql_secrets *s, char **ret);
/* The whole step for a given dialect (render() probes the installed server and learns of
 * promotions first). */
int mysql_render(const struct step_ctx *c, enum mysql_dialect d, struct step_render *ret);

/* The external server's databases (external.mysql), on the bootstrap node. */
extern const struct step step_mysql_external;
/* CREATE DATABASE IF NOT EXISTS for console and region, utf8mb4. */
int mysql_external_sql(const struct config *cfg, char **ret);
