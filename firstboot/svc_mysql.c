/* SPDX-License-Identifier: MIT */
/* MariaDB 10.11 (Debian's) or MySQL 8.0 on the mysql nodes: GTID replication from the
 * plan's primary, semi-synchronous, read_only replicas, utf8mb4, the Rainbond databases
 * and users (DESIGN.md section 5). The dialect comes from the installed server's version.
 * Promotion (`firstboot db promote`) is not part of this step. */
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "svc_mysql.h"
#include "util.h"

#define MYSQL_PORT 3306
#define REPL_USER "replicator"
#define RAINBOND_USER "rainbond"
#define SECRETS_FILE STEP_SECRETS_FILE
#define SETUP_SQL "secrets/mysql-setup.sql"
/* A primary without any replica acknowledging falls back to asynchronous commits after
 * this long, instead of stalling every write while replicas are down. */
#define SEMI_SYNC_TIMEOUT_MS 1000
/* Until the server answers after start: mariadbd's first start creates the InnoDB files. */
#define READY_TRIES 240
#define READY_SLEEP_MS 250

int mysql_dialect_from_version(const char *version, enum mysql_dialect *ret) {
        const char *v;
        unsigned long major;
        char *end;

        if (!version)
                return -EINVAL;
        if (strstr(version, "MariaDB")) {
                *ret = MYSQL_DIALECT_MARIADB;
                return 0;
        }
        v = strstr(version, "Ver ");
        v = v ? v + 4 : version;
        v += strspn(v, " \t\n");
        major = strtoul(v, &end, 10);
        if (end == v || *end != '.')
                return -EOPNOTSUPP;
        if (major < 8)
                return -EOPNOTSUPP;
        *ret = MYSQL_DIALECT_MYSQL8;
        return 0;
}

static bool is_primary(const struct node_plan *np) {
        return (np->roles & ROLE_MYSQL) && (np->flags & PLAN_MYSQL_PRIMARY);
}

static const struct node_plan *find_primary(const struct role_plan *p) {
        for (size_t i = 0; i < p->n; i++)
                if (is_primary(&p->nodes[i]))
                        return &p->nodes[i];
        return NULL;
}

static int secrets_path(const struct step_ctx *c, const char *name, char **ret) {
        return asprintf_safe(ret, "%s/%s", c->state_dir, name);
}

static const char *mysql_skip(const struct step_ctx *c) {
        _cleanup_free_ char *path = NULL;

        if (c->cfg->ext_mysql)
                return "external.mysql is set: the databases live there";
        if (!(c->self->roles & ROLE_MYSQL))
                return "not a mysql node";
        /* The passwords are sealed by discovery; without them there is nothing to set up
         * the users with (a node given a plan by hand, as in the VIP harness). */
        if (c->state_dir && secrets_path(c, SECRETS_FILE, &path) >= 0 && access(path, F_OK) < 0)
                return "no sealed secrets (" SECRETS_FILE ") in the state directory";
        return NULL;
}

/* A single-quoted SQL string literal. */
static void sql_quoted(FILE *f, const char *s) {
        fputc('\'', f);
        for (; *s; s++) {
                if (*s == '\'' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('\'', f);
}

/* buf is the open_memstream() target: fclose() sets it. */
static int finish_memstream(FILE *f, char **buf, char **ret) {
        if (fclose(f) != 0) {
                free(*buf);
                return -ENOMEM;
        }
        *ret = *buf;
        return 0;
}

struct mysql_paths {
        char *cnf, *datadir, *sockdir, *socket, *pidfile, *sql;
};

static void mysql_paths_done(struct mysql_paths *p) {
        free(p->cnf);
        free(p->datadir);
        free(p->sockdir);
        free(p->socket);
        free(p->pidfile);
        free(p->sql);
}

static int mysql_paths_get(const struct step_ctx *c, enum mysql_dialect d, struct mysql_paths *ret) {
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        _cleanup_free_ char *data = NULL;
        int r;

        /* Debian's my.cnf includes this directory last, so these options win under
         * systemd; the direct supervisor passes the file as --defaults-file. */
        if ((r = step_path(c, d == MYSQL_DIALECT_MARIADB ? "/etc/mysql/mariadb.conf.d/60-rainboot.cnf"
                                                         : "/etc/mysql/mysql.conf.d/60-rainboot.cnf",
                           &p.cnf)) < 0 ||
            (r = asprintf_safe(&data, "%s/mysql", c->cfg->services_mount)) < 0 ||
            (r = step_path(c, data, &p.datadir)) < 0 ||
            (r = step_path(c, "/run/mysqld", &p.sockdir)) < 0 ||
            (r = asprintf_safe(&p.socket, "%s/mysqld.sock", p.sockdir)) < 0 ||
            (r = asprintf_safe(&p.pidfile, "%s/mysqld.pid", p.sockdir)) < 0 ||
            (r = secrets_path(c, SETUP_SQL, &p.sql)) < 0)
                return r;
        *ret = p;
        p = (struct mysql_paths){};
        return 0;
}

static size_t plan_index(const struct step_ctx *c) {
        for (size_t i = 0; i < c->plan->n; i++)
                if (node_id_cmp(c->plan->nodes[i].id, c->self->id) == 0)
                        return i;
        return c->plan->n;
}

int mysql_render_cnf(const struct step_ctx *c, enum mysql_dialect d, char **ret) {
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        bool primary = is_primary(c->self), maria = d == MYSQL_DIALECT_MARIADB;
        char digest[2 * DIGEST_LEN + 1], addr[INET_ADDRSTRLEN] = "0.0.0.0";
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = mysql_paths_get(c, d, &p)) < 0)
                return r;
        if (c->self_info && c->self_info->n_addrs > 0)
                inet_ntop(AF_INET, &c->self_info->addrs[0], addr, sizeof addr);
        hex_encode(c->plan->digest, DIGEST_LEN, digest);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Rendered by firstboot from plan %.16s (epoch %u); `firstboot apply` rewrites it.\n"
                "# %s, %s.\n"
                "[mysqld]\n"
                "user = %s\n"
                "datadir = %s\n"
                "socket = %s\n"
                "pid_file = %s\n"
                "port = %u\n"
                "bind_address = %s\n"
                "skip_name_resolve = ON\n"
                "# Unique in the cluster: the node's place in the plan.\n"
                "server_id = %zu\n"
                "log_bin = %s/binlog\n"
                "relay_log = %s/relay-bin\n"
                "binlog_format = ROW\n"
                "# Replicas keep a binlog of what they apply, so any of them can be promoted.\n"
                "%s = ON\n",
                digest, c->plan->epoch, primary ? "primary" : "replica",
                maria ? "MariaDB" : "MySQL 8", c->supervisor == SVCMGR_DIRECT ? "root" : "mysql",
                p.datadir, p.socket, p.pidfile, MYSQL_PORT, addr, plan_index(c) + 1, p.datadir,
                p.datadir, maria ? "log_slave_updates" : "log_replica_updates");
        if (maria)
                fprintf(f, "gtid_domain_id = 0\n"
                           "gtid_strict_mode = ON\n");
        else
                fprintf(f, "gtid_mode = ON\n"
                           "enforce_gtid_consistency = ON\n");
        fprintf(f,
                "character_set_server = utf8mb4\n"
                "collation_server = %s\n",
                maria ? "utf8mb4_unicode_ci" : "utf8mb4_0900_ai_ci");
        if (maria)
                fprintf(f, primary ? "rpl_semi_sync_master_enabled = ON\n"
                                     "rpl_semi_sync_master_timeout = %u\n"
                                   : "rpl_semi_sync_slave_enabled = ON\n",
                        SEMI_SYNC_TIMEOUT_MS);
        else
                /* loose-: the option belongs to the plugin loaded on the line before. */
                fprintf(f, primary ? "plugin_load_add = semisync_source.so\n"
                                     "loose_rpl_semi_sync_source_enabled = ON\n"
                                     "loose_rpl_semi_sync_source_timeout = %u\n"
                                   : "plugin_load_add = semisync_replica.so\n"
                                     "loose_rpl_semi_sync_replica_enabled = ON\n",
                        SEMI_SYNC_TIMEOUT_MS);
        if (!primary) {
                fputs("# Only the replication thread writes here.\n"
                      "read_only = ON\n", f);
                if (!maria)
                        fputs("super_read_only = ON\n", f);
        }
        fprintf(f,
                "\n"
                "[client]\n"
                "socket = %s\n"
                "user = root\n"
                "default_character_set = utf8mb4\n",
                p.socket);
        return finish_memstream(f, &buf, ret);
}

static void sql_user(FILE *f, enum mysql_dialect d, const char *user, const char *plugin,
                     const char *password) {
        for (int alter = 0; alter <= 1; alter++) {
                /* ALTER as well: a rerun after the secrets changed updates the password. */
                fprintf(f, "%s '%s'@'%%' IDENTIFIED ", alter ? "ALTER USER" : "CREATE USER IF NOT EXISTS",
                        user);
                if (d == MYSQL_DIALECT_MYSQL8)
                        fprintf(f, "WITH %s ", plugin);
                fputs("BY ", f);
                sql_quoted(f, password);
                fputs(";\n", f);
        }
}

int mysql_render_sql(const struct step_ctx *c, enum mysql_dialect d, const char *repl_password,
                     const char *rainbond_password, char **ret) {
        bool maria = d == MYSQL_DIALECT_MARIADB;
        const char *collation = maria ? "utf8mb4_unicode_ci" : "utf8mb4_0900_ai_ci";
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("-- Rendered by firstboot; `firstboot apply` runs it again on every change.\n", f);
        if (is_primary(c->self)) {
                /* Replicas apply all of this from the binlog: they start at an empty GTID
                 * position. */
                fprintf(f,
                        "CREATE DATABASE IF NOT EXISTS `console` CHARACTER SET utf8mb4 COLLATE %s;\n"
                        "CREATE DATABASE IF NOT EXISTS `region` CHARACTER SET utf8mb4 COLLATE %s;\n",
                        collation, collation);
                sql_user(f, d, REPL_USER, "caching_sha2_password", repl_password);
                fputs("GRANT REPLICATION SLAVE ON *.* TO '" REPL_USER "'@'%';\n", f);
                /* Rainbond's Go MySQL driver setup predates caching_sha2 on MySQL 8. */
                sql_user(f, d, RAINBOND_USER, "mysql_native_password", rainbond_password);
                fputs("GRANT ALL PRIVILEGES ON `console`.* TO '" RAINBOND_USER "'@'%';\n"
                      "GRANT ALL PRIVILEGES ON `region`.* TO '" RAINBOND_USER "'@'%';\n",
                      f);
                return finish_memstream(f, &buf, ret);
        }

        const struct node_plan *pp = find_primary(c->plan);
        const struct node_info *pi = pp ? step_node_info(c, pp->id) : NULL;
        char addr[INET_ADDRSTRLEN];

        if (!pi || pi->n_addrs == 0) {
                fclose(f);
                free(buf);
                return log_error_errno(-EADDRNOTAVAIL, "The committed %s has no address for the "
                                                       "MySQL primary to replicate from.",
                                       pp ? "view" : "plan");
        }
        inet_ntop(AF_INET, &pi->addrs[0], addr, sizeof addr);
        if (maria) {
                fprintf(f,
                        "STOP SLAVE;\n"
                        "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, MASTER_USER='" REPL_USER
                        "', MASTER_PASSWORD=",
                        addr, MYSQL_PORT);
                sql_quoted(f, repl_password);
                fputs(", MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=2;\n"
                      "START SLAVE;\n",
                      f);
        } else {
                fprintf(f,
                        "STOP REPLICA;\n"
                        "CHANGE REPLICATION SOURCE TO SOURCE_HOST='%s', SOURCE_PORT=%u, "
                        "SOURCE_USER='" REPL_USER "', SOURCE_PASSWORD=",
                        addr, MYSQL_PORT);
                sql_quoted(f, repl_password);
                /* caching_sha2 over plain TCP needs the source's RSA key. */
                fputs(", SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=2;\n"
                      "START REPLICA;\n",
                      f);
        }
        return finish_memstream(f, &buf, ret);
}

static const char *client_bin(enum mysql_dialect d) {
        return d == MYSQL_DIALECT_MARIADB ? "mariadb" : "mysql";
}

int mysql_render(const struct step_ctx *c, enum mysql_dialect d, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        _cleanup_free_ char *cnf = NULL, *sql = NULL, *repl = NULL, *rb = NULL, *defaults = NULL;
        _cleanup_free_ char *source = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        bool maria = d == MYSQL_DIALECT_MARIADB;
        int r;

        if ((r = mysql_paths_get(c, d, &p)) < 0)
                return r;
        r = step_secret(c, "mysql_replication_password", &repl);
        if (r < 0)
                return log_error_errno(r, "No mysql_replication_password in %s/" SECRETS_FILE ".",
                                       c->state_dir);
        /* A separate Rainbond password when the secrets carry one; older sealed secrets
         * have only the replication one. */
        r = step_secret(c, "mysql_rainbond_password", &rb);
        if (r == -ENOENT)
                r = step_secret(c, "mysql_replication_password", &rb);
        if (r < 0)
                return r;
        if ((r = mysql_render_cnf(c, d, &cnf)) < 0 ||
            (r = mysql_render_sql(c, d, repl, rb, &sql)) < 0)
                return r;
        explicit_bzero(repl, strlen(repl));
        explicit_bzero(rb, strlen(rb));
        if ((r = asprintf_safe(&defaults, "--defaults-file=%s", p.cnf)) < 0 ||
            (r = asprintf_safe(&source, "source %s", p.sql)) < 0)
                return r;
        if ((r = step_render_add_file(&rd, p.cnf, TAKE_PTR(cnf), 0644)) < 0 ||
            (r = step_render_add_file(&rd, p.sql, TAKE_PTR(sql), 0600)) < 0)
                return r;
        /* Before the first start: the system tables, once. */
        r = step_render_add_command(
                &rd, "sh", "-c",
                maria ? "set -e; mkdir -p \"$1\" \"$2\"; [ \"$4\" = root ] || chown \"$4:\" \"$2\"; "
                        "[ -d \"$1/mysql\" ] || exec mariadb-install-db \"$3\" "
                        "--auth-root-authentication-method=socket --skip-test-db"
                      : "set -e; mkdir -p \"$2\"; [ \"$4\" = root ] || chown \"$4:\" \"$2\"; "
                        "[ -d \"$1/mysql\" ] || exec mysqld \"$3\" --initialize-insecure",
                "sh", p.datadir, p.sockdir, defaults,
                c->supervisor == SVCMGR_DIRECT ? "root" : "mysql", NULL);
        if (r < 0)
                return r;
        /* After the server answers (apply waits for it): databases, users, replication. */
        if ((r = step_render_add_command(&rd, client_bin(d), defaults, "--batch", "-e", source,
                                         NULL)) < 0)
                return r;
        if ((r = strv_push(&argv, maria ? "mariadbd" : "mysqld")) < 0 ||
            (r = strv_push(&argv, defaults)) < 0)
                return r;
        r = step_render_add_service(&rd, "mysql", maria ? "mariadb.service" : "mysql.service", 0,
                                    TAKE_PTR(argv));
        if (r < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static int run(const struct step_ctx *c, char *const argv[], char **ret_output) {
        return c->run ? c->run(c->run_userdata, argv, ret_output) : run_command(argv, ret_output);
}

/* What the installed server speaks; MariaDB (Debian's) when none is found. */
static enum mysql_dialect probe_dialect(const struct step_ctx *c) {
        static const char *const bins[] = { "mariadbd", "mysqld" };
        enum mysql_dialect d = MYSQL_DIALECT_MARIADB;

        for (size_t i = 0; i < ELEMENTSOF(bins); i++) {
                char *argv[] = { (char *)bins[i], (char *)"--version", NULL };
                _cleanup_free_ char *out = NULL;

                if (run(c, argv, &out) == 0 && mysql_dialect_from_version(out, &d) >= 0)
                        return d;
        }
        return d;
}

static int mysql_step_render(const struct step_ctx *c, struct step_render *ret) {
        return mysql_render(c, probe_dialect(c), ret);
}

static enum mysql_dialect render_dialect(const struct step_render *r) {
        return r->n_services > 0 && streq(r->services[0].argv[0], "mysqld") ? MYSQL_DIALECT_MYSQL8
                                                                            : MYSQL_DIALECT_MARIADB;
}

/* The client on the node's socket: argv[1] of the setup command is --defaults-file=. */
static int query(const struct step_ctx *c, const struct step_render *r, const char *sql,
                 char **ret_output) {
        enum mysql_dialect d = render_dialect(r);
        char *argv[] = { (char *)client_bin(d), r->commands[1][1], (char *)"--batch",
                         (char *)"--skip-column-names", (char *)"-e", (char *)sql, NULL };

        return run(c, argv, ret_output);
}

static int mysql_check(const struct step_ctx *c, const struct step_render *r) {
        _cleanup_free_ char *out = NULL;
        bool maria = render_dialect(r) == MYSQL_DIALECT_MARIADB;
        int k;

        k = step_check_default(c, r);
        if (k <= 0)
                return k;
        if (is_primary(c->self))
                k = query(c, r,
                          "SELECT COUNT(*) FROM mysql.user WHERE user = '" RAINBOND_USER "'", &out);
        else
                k = query(c, r, maria ? "SHOW SLAVE STATUS" : "SHOW REPLICA STATUS", &out);
        if (k != 0 || !out)
                return 0;
        return is_primary(c->self) ? startswith(out, "1") : out[0] != 0;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int mysql_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                       struct cmd_failure *f) {
        struct step_render before_start = *r;
        _cleanup_free_ char *out = NULL;
        int k, status = -EIO;

        /* Files, the one-time initialisation, and the service; the setup SQL needs it up. */
        before_start.n_commands = 1;
        k = step_apply_default(c, &before_start, resumed, f);
        if (k < 0)
                return k;
        for (unsigned i = 0; i < READY_TRIES; i++) {
                free(out);
                out = NULL;
                status = query(c, r, "SELECT 1", &out);
                if (status == 0)
                        break;
                sleep_ms(READY_SLEEP_MS);
        }
        if (status != 0) {
                (void)cmd_failure_set(f, r->commands[1], status, out);
                return log_error_errno(-ETIMEDOUT, "The MySQL server did not answer on its socket "
                                                   "after it was started:\n%s", out ?: "");
        }
        free(out);
        out = NULL;
        status = run(c, r->commands[1], &out);
        if (status != 0) {
                (void)cmd_failure_set(f, r->commands[1], status, out);
                return log_error_errno(status < 0 ? status : -EIO,
                                       "The MySQL setup failed (exit status %d):\n%s", status,
                                       out ?: "");
        }
        return 0;
}

const struct step step_mysql = {
        .name = "mysql",
        .skip_reason = mysql_skip,
        .render = mysql_step_render,
        .check = mysql_check,
        .apply = mysql_apply,
};
