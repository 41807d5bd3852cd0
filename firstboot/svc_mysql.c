/* SPDX-License-Identifier: MIT */
/* MariaDB 10.11 (Debian's) or MySQL 8.0 on the mysql nodes: GTID replication from the
 * plan's primary (or the one `firstboot db promote` made), semi-synchronous, read_only
 * replicas, utf8mb4, TLS with the cluster PKI when its files exist, the Rainbond databases
 * and users (DESIGN.md section 5). The dialect comes from the installed server's version.
 * With external.mysql, only the databases are created there (step mysql-external). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json_util.h"
#include "log.h"
#include "svc_mysql.h"
#include "util.h"

#define REPL_USER "replicator"
#define RAINBOND_USER "rainbond"
#define SECRETS_FILE STEP_SECRETS_FILE
#define SETUP_SQL "secrets/mysql-setup.sql"
/* Under the state directory: this node's setup as primary succeeded once. */
#define SERVED_FILE "mysql-served-as-primary"
#define PKI_DIR       "/etc/rainboot/pki"
#define ADMIN_LABEL   "rainboot mysql admin v1"
/* Until the server answers after start: mariadbd's first start creates the InnoDB files. */
#define READY_TRIES 240
#define READY_SLEEP_MS 250
/* Before that, until its socket exists: a stat costs nothing, each client run a program
 * start (a second of CPU under emulation, taken from the starting server). */
#define SOCKET_TRIES 600
#define SOCKET_SLEEP_MS 100
/* A member that does not answer in this long counts as unreachable. */
#define CONNECT_TIMEOUT_S 3

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

const char *mysql_client_bin(enum mysql_dialect d) {
        return d == MYSQL_DIALECT_MARIADB ? "mariadb" : "mysql";
}

static int run(const struct step_ctx *c, char *const argv[], char **ret_output) {
        return c->run ? c->run(c->run_userdata, argv, ret_output) : run_command(argv, ret_output);
}

enum mysql_dialect mysql_probe_dialect(const struct step_ctx *c) {
        static const char *const bins[] = {"mariadbd", "mysqld"};
        enum mysql_dialect d = MYSQL_DIALECT_MARIADB;

        for (size_t i = 0; i < ELEMENTSOF(bins); i++) {
                char *argv[] = {(char *)bins[i], (char *)"--version", NULL};
                _cleanup_free_ char *out = NULL;

                if (run(c, argv, &out) == 0 && mysql_dialect_from_version(out, &d) >= 0)
                        return d;
        }
        return d;
}

static bool is_plan_primary(const struct node_plan *np) {
        return (np->roles & ROLE_MYSQL) && (np->flags & PLAN_MYSQL_PRIMARY);
}

static const struct node_plan *find_plan_primary(const struct role_plan *p) {
        for (size_t i = 0; i < p->n; i++)
                if (is_plan_primary(&p->nodes[i]))
                        return &p->nodes[i];
        return NULL;
}

static bool is_self(const struct step_ctx *c, const struct node_plan *np) {
        return np && node_id_cmp(np->id, c->self->id) == 0;
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

/* ---- TLS and the admin account ---- */

void mysql_tls_done(struct mysql_tls *t) {
        free(t->ca);
        free(t->cert);
        free(t->key);
        *t = (struct mysql_tls){};
}

int mysql_tls_get(const struct step_ctx *c, struct mysql_tls *ret) {
        _cleanup_(mysql_tls_done) struct mysql_tls t = {};
        int r;

        if ((r = step_path(c, PKI_DIR "/ca.crt", &t.ca)) < 0 ||
            (r = step_path(c, PKI_DIR "/mysql.crt", &t.cert)) < 0 ||
            (r = step_path(c, PKI_DIR "/mysql.key", &t.key)) < 0)
                return r;
        if (access(t.ca, F_OK) < 0 || access(t.cert, F_OK) < 0 || access(t.key, F_OK) < 0)
                return 0;
        *ret = t;
        t = (struct mysql_tls){};
        return 1;
}

int mysql_admin_password(const struct step_ctx *c, char **ret) {
        _cleanup_free_ char *hex = NULL;
        uint8_t seed[32], out[24];
        char *pw;
        int r;

        r = step_secret(c, "ca_seed", &hex);
        if (r < 0)
                return r;
        r = hex_decode(hex, seed, sizeof seed);
        explicit_bzero(hex, strlen(hex));
        if (r < 0)
                return log_error_errno(r, "ca_seed in %s/" SECRETS_FILE " is not 64 hex digits.",
                                       c->state_dir);
        crypto_generichash(out, sizeof out, (const uint8_t *)ADMIN_LABEL, strlen(ADMIN_LABEL), seed,
                           sizeof seed);
        sodium_memzero(seed, sizeof seed);
        pw = malloc(2 * sizeof out + 1);
        if (!pw) {
                sodium_memzero(out, sizeof out);
                return -ENOMEM;
        }
        hex_encode(out, sizeof out, pw);
        sodium_memzero(out, sizeof out);
        *ret = pw;
        return 0;
}

int mysql_admin_cnf(const struct step_ctx *c, enum mysql_dialect d, char **ret) {
        _cleanup_(mysql_tls_done) struct mysql_tls t = {};
        _cleanup_free_ char *pw = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = mysql_admin_password(c, &pw);
        if (r < 0)
                return r;
        r = mysql_tls_get(c, &t);
        if (r < 0)
                goto out;
        f = open_memstream(&buf, &size);
        if (!f) {
                r = -ENOMEM;
                goto out;
        }
        /* No quoting: the password is hex. */
        fprintf(f,
                "# Rendered by firstboot: `firstboot db` reaches the members with it.\n"
                "[client]\n"
                "user = " MYSQL_ADMIN_USER "\n"
                "password = %s\n"
                "port = %u\n"
                "connect_timeout = %u\n"
                "default_character_set = utf8mb4\n",
                pw, MYSQL_PORT, CONNECT_TIMEOUT_S);
        if (r > 0) {
                fprintf(f, "ssl_ca = %s\nssl_cert = %s\nssl_key = %s\n", t.ca, t.cert, t.key);
                fputs(d == MYSQL_DIALECT_MARIADB ? "ssl_verify_server_cert\n"
                                                 : "ssl_mode = VERIFY_IDENTITY\n",
                      f);
        }
        r = finish_memstream(f, &buf, ret);
out:
        explicit_bzero(pw, strlen(pw));
        return r;
}

int mysql_admin_cnf_write(const struct step_ctx *c, enum mysql_dialect d, char **ret_path) {
        _cleanup_free_ char *content = NULL, *path = NULL, *dir = NULL, *have = NULL;
        size_t size = 0;
        int r;

        if ((r = mysql_admin_cnf(c, d, &content)) < 0)
                return r;
        if ((r = secrets_path(c, MYSQL_ADMIN_CNF, &path)) < 0 ||
            (r = secrets_path(c, "secrets", &dir)) < 0)
                goto out;
        if (read_full_file(path, &have, &size) >= 0 && size == strlen(content) &&
            memcmp(have, content, size) == 0) {
                r = 0;
        } else {
                r = mkdir_parents(dir, 0700);
                if (r >= 0)
                        r = write_file_atomic(path, content, strlen(content), 0600);
                if (r < 0)
                        log_error_errno(r, "Cannot write %s: %m", path);
        }
        if (have)
                explicit_bzero(have, size);
        if (r >= 0)
                *ret_path = TAKE_PTR(path);
out:
        explicit_bzero(content, strlen(content));
        return r;
}

int mysql_member_addr(const struct step_ctx *c, const struct node_plan *np, struct in_addr *ret) {
        const struct node_info *ni = np ? step_node_info(c, np->id) : NULL;

        if (!ni || ni->n_addrs == 0)
                return -EADDRNOTAVAIL;
        *ret = ni->addrs[0];
        return 0;
}

int mysql_remote_query(const struct step_ctx *c, enum mysql_dialect d, const char *admin_cnf,
                       const struct in_addr *addr, const char *sql, bool with_names,
                       char **ret_output) {
        _cleanup_free_ char *defaults = NULL;
        char host[INET_ADDRSTRLEN];
        int r;

        if ((r = asprintf_safe(&defaults, "--defaults-file=%s", admin_cnf)) < 0)
                return r;
        inet_ntop(AF_INET, addr, host, sizeof host);
        char *argv[] = {(char *)mysql_client_bin(d),
                        defaults,
                        (char *)"-h",
                        host,
                        (char *)"--batch",
                        (char *)(with_names ? "--column-names" : "--skip-column-names"),
                        (char *)"-e",
                        (char *)sql,
                        NULL};
        return run(c, argv, ret_output);
}

/* ---- promotion record ---- */

int mysql_promotion_load(const char *state_dir, struct mysql_promotion *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        struct json_object *v;
        struct mysql_promotion p = {};
        int r;

        if ((r = asprintf_safe(&path, "%s/" MYSQL_PROMOTION_FILE, state_dir)) < 0)
                return r;
        r = read_full_file(path, &text, NULL);
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if (!json_object_object_get_ex(o, "generation", &v) ||
            !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
            json_object_get_int64(v) > UINT32_MAX)
                return -EBADMSG;
        p.generation = (unsigned)json_object_get_int64(v);
        if (!json_object_object_get_ex(o, "primary", &v) ||
            node_id_from_hex(json_object_get_string(v), p.primary) < 0)
                return -EBADMSG;
        if (!json_object_object_get_ex(o, "previous", &v) ||
            node_id_from_hex(json_object_get_string(v), p.previous) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "gtid", &v))
                snprintf(p.gtid, sizeof p.gtid, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "time", &v))
                p.time = (uint64_t)json_object_get_int64(v);
        *ret = p;
        return 0;
}

int mysql_promotion_save(const char *state_dir, const struct mysql_promotion *p) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (!o)
                return -ENOMEM;
        if ((r = json_add_u64(o, "generation", p->generation)) < 0 ||
            (r = json_add(o, "primary", json_new_hex(p->primary, NODE_ID_LEN))) < 0 ||
            (r = json_add(o, "previous", json_new_hex(p->previous, NODE_ID_LEN))) < 0 ||
            (r = json_add_str(o, "gtid", p->gtid)) < 0 ||
            (r = json_add_u64(o, "time", p->time)) < 0 || (r = json_to_string(o, &text)) < 0 ||
            (r = asprintf_safe(&path, "%s/" MYSQL_PROMOTION_FILE, state_dir)) < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0644);
}

int mysql_promotion_sql(const struct mysql_promotion *p, char **ret) {
        char primary[2 * NODE_ID_LEN + 1], previous[2 * NODE_ID_LEN + 1];
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        node_id_to_hex(p->primary, primary);
        node_id_to_hex(p->previous, previous);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "CREATE DATABASE IF NOT EXISTS `rainboot` CHARACTER SET utf8mb4;\n"
                "CREATE TABLE IF NOT EXISTS `rainboot`.`promotion` (generation INT UNSIGNED "
                "PRIMARY KEY, primary_id CHAR(32) NOT NULL, previous_id CHAR(32) NOT NULL, "
                "gtid VARCHAR(255) NOT NULL, at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n"
                "REPLACE INTO `rainboot`.`promotion` (generation, primary_id, previous_id, gtid, "
                "at) "
                "VALUES (%u, '%s', '%s', ",
                p->generation, primary, previous);
        sql_quoted(f, p->gtid);
        fprintf(f, ", FROM_UNIXTIME(%" PRIu64 "));\n", p->time);
        return finish_memstream(f, &buf, ret);
}

int mysql_promotion_from_row(const char *row, struct mysql_promotion *ret) {
        _cleanup_free_ char *copy = strndup(row, strcspn(row, "\n"));
        struct mysql_promotion p = {};
        char *field[5], *s, *end;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        /* Tab-separated, and a field may be empty: no scanf (it skips runs of blanks). */
        for (s = copy; n < ELEMENTSOF(field);)
                field[n++] = strsep(&s, "\t");
        if (n < 5 || !field[4] || s)
                return -EBADMSG;
        errno = 0;
        unsigned long g = strtoul(field[0], &end, 10);
        if (errno || end == field[0] || *end || g == 0 || g > UINT32_MAX ||
            node_id_from_hex(field[1], p.primary) < 0 || node_id_from_hex(field[2], p.previous) < 0)
                return -EBADMSG;
        p.generation = (unsigned)g;
        snprintf(p.gtid, sizeof p.gtid, "%s", field[3]);
        p.time = strtoull(field[4], NULL, 10);
        *ret = p;
        return 0;
}

int mysql_role_get(const struct step_ctx *c, const struct mysql_promotion *p,
                   struct mysql_role *ret) {
        struct mysql_role role = {};
        struct mysql_tls t = {};
        int r;

        role.primary = find_plan_primary(c->plan);
        if (p && p->generation > 0) {
                const struct node_plan *np = role_plan_find(c->plan, p->primary);

                if (!np || !(np->roles & ROLE_MYSQL))
                        return log_error_errno(-ENOENT,
                                               "The MySQL promotion record (generation %u) "
                                               "names a primary that is not a MySQL member "
                                               "of the plan; move %s/" MYSQL_PROMOTION_FILE
                                               " away if the plan changed.",
                                               p->generation, c->state_dir);
                role.promoted = true;
                role.primary = np;
                role.former_primary =
                        !is_self(c, np) &&
                        (is_plan_primary(c->self) || node_id_cmp(p->previous, c->self->id) == 0);
        }
        r = mysql_tls_get(c, &t);
        if (r < 0)
                return r;
        role.tls = r > 0;
        mysql_tls_done(&t);
        *ret = role;
        return 0;
}

/* ---- rendering ---- */

struct mysql_paths {
        char *cnf, *datadir, *sockdir, *socket, *pidfile, *sql, *admin;
};

static void mysql_paths_done(struct mysql_paths *p) {
        free(p->cnf);
        free(p->datadir);
        free(p->sockdir);
        free(p->socket);
        free(p->pidfile);
        free(p->sql);
        free(p->admin);
}

static int mysql_paths_get(const struct step_ctx *c, enum mysql_dialect d, struct mysql_paths *ret) {
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        _cleanup_free_ char *data = NULL;
        int r;

        /* Debian's my.cnf includes this directory last, so these options win under
         * systemd; the direct supervisor passes the file as --defaults-file. */
        if ((r = step_path(c,
                           d == MYSQL_DIALECT_MARIADB ? "/etc/mysql/mariadb.conf.d/60-rainboot.cnf"
                                                      : "/etc/mysql/mysql.conf.d/60-rainboot.cnf",
                           &p.cnf)) < 0 ||
            (r = asprintf_safe(&data, "%s/mysql", c->cfg->services_mount)) < 0 ||
            (r = step_path(c, data, &p.datadir)) < 0 ||
            (r = step_path(c, "/run/mysqld", &p.sockdir)) < 0 ||
            (r = asprintf_safe(&p.socket, "%s/mysqld.sock", p.sockdir)) < 0 ||
            (r = asprintf_safe(&p.pidfile, "%s/mysqld.pid", p.sockdir)) < 0 ||
            (r = secrets_path(c, SETUP_SQL, &p.sql)) < 0 ||
            (r = secrets_path(c, MYSQL_ADMIN_CNF, &p.admin)) < 0)
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

int mysql_render_cnf(const struct step_ctx *c, enum mysql_dialect d, const struct mysql_role *role,
                     char **ret) {
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        _cleanup_(mysql_tls_done) struct mysql_tls t = {};
        bool primary = is_self(c, role->primary), maria = d == MYSQL_DIALECT_MARIADB;
        char digest[2 * DIGEST_LEN + 1], addr[INET_ADDRSTRLEN] = "0.0.0.0";
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = mysql_paths_get(c, d, &p)) < 0)
                return r;
        if (role->tls && (r = mysql_tls_get(c, &t)) < 0)
                return r;
        if (c->self_info && c->self_info->n_addrs > 0)
                inet_ntop(AF_INET, &c->self_info->addrs[0], addr, sizeof addr);
        hex_encode(c->plan->digest, DIGEST_LEN, digest);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Rendered by firstboot from plan %.16s (epoch %u); `firstboot apply` rewrites "
                "it.\n"
                "# %s%s, %s.\n"
                "[mysqld]\n"
                "user = %s\n"
                "datadir = %s\n"
                "socket = %s\n"
                "pid_file = %s\n"
                "# Its own: a server clears #sql* files in its tmpdir when it starts.\n"
                "tmpdir = %s.tmp\n"
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
                role->promoted ? " (after `firstboot db promote`)" : "",
                maria ? "MariaDB" : "MySQL 8", c->supervisor == SVCMGR_DIRECT ? "root" : "mysql",
                p.datadir, p.socket, p.pidfile, p.datadir, MYSQL_PORT, addr, plan_index(c) + 1, p.datadir,
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
                fprintf(f,
                        primary ? "rpl_semi_sync_master_enabled = ON\n"
                                  "rpl_semi_sync_master_timeout = %u\n"
                                : "rpl_semi_sync_slave_enabled = ON\n",
                        MYSQL_SEMI_SYNC_TIMEOUT_MS);
        else
                /* loose-: the option belongs to the plugin loaded on the line before. */
                fprintf(f,
                        primary ? "plugin_load_add = semisync_source.so\n"
                                  "loose_rpl_semi_sync_source_enabled = ON\n"
                                  "loose_rpl_semi_sync_source_timeout = %u\n"
                                : "plugin_load_add = semisync_replica.so\n"
                                  "loose_rpl_semi_sync_replica_enabled = ON\n",
                        MYSQL_SEMI_SYNC_TIMEOUT_MS);
        if (!primary) {
                fputs("# Only the replication thread writes here.\n"
                      "read_only = ON\n", f);
                if (!maria)
                        fputs("super_read_only = ON\n", f);
        }
        if (role->tls)
                /* The pki step gives the key to group mysql under systemd. */
                fprintf(f,
                        "# The cluster PKI (step pki): clients and replicas may use TLS.\n"
                        "ssl_ca = %s\n"
                        "ssl_cert = %s\n"
                        "ssl_key = %s\n",
                        t.ca, t.cert, t.key);
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
                     const char *password, bool require_ssl) {
        for (int alter = 0; alter <= 1; alter++) {
                /* ALTER as well: a rerun after the secrets changed updates the password. */
                fprintf(f, "%s '%s'@'%%' IDENTIFIED ", alter ? "ALTER USER" : "CREATE USER IF NOT EXISTS",
                        user);
                if (d == MYSQL_DIALECT_MYSQL8)
                        fprintf(f, "WITH %s ", plugin);
                fputs("BY ", f);
                sql_quoted(f, password);
                if (alter)
                        fputs(require_ssl ? " REQUIRE SSL" : " REQUIRE NONE", f);
                fputs(";\n", f);
        }
}


/* The replication TLS options; kw is MASTER (MariaDB) or SOURCE (MySQL 8). */
static void tls_clause(FILE *f, const char *kw, const struct mysql_tls *t) {
        if (!t || !t->ca) {
                fprintf(f, ", %s_SSL=0", kw);
                return;
        }
        fprintf(f, ", %s_SSL=1, %s_SSL_CA=", kw, kw);
        sql_quoted(f, t->ca);
        fprintf(f, ", %s_SSL_CERT=", kw);
        sql_quoted(f, t->cert);
        fprintf(f, ", %s_SSL_KEY=", kw);
        sql_quoted(f, t->key);
        fprintf(f, ", %s_SSL_VERIFY_SERVER_CERT=1", kw);
}
static void sql_source(FILE *f, enum mysql_dialect d, const char *addr, const char *repl_password,
                       const struct mysql_tls *t, bool former_primary) {
        bool maria = d == MYSQL_DIALECT_MARIADB;

        if (maria) {
                fprintf(f,
                        "STOP SLAVE;\n"
                        "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, MASTER_USER='" REPL_USER
                        "', MASTER_PASSWORD=",
                        addr, MYSQL_PORT);
                sql_quoted(f, repl_password);
                /* A former primary's own transactions are in its binlog, not its slave
                 * position: current_pos, so it asks only for what it lacks, and the new
                 * primary refuses it (strict mode) if it wrote something nobody else has. */
                fprintf(f, ", MASTER_USE_GTID=%s, MASTER_CONNECT_RETRY=2",
                        former_primary ? "current_pos" : "slave_pos");
                tls_clause(f, "MASTER", t);
                fputs(";\nSTART SLAVE;\n", f);
                return;
        }
        fprintf(f,
                "STOP REPLICA;\n"
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST='%s', SOURCE_PORT=%u, "
                "SOURCE_USER='" REPL_USER "', SOURCE_PASSWORD=",
                addr, MYSQL_PORT);
        sql_quoted(f, repl_password);
        /* caching_sha2 over plain TCP needs the source's RSA key. */
        fputs(", SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=2", f);
        tls_clause(f, "SOURCE", t);
        fputs(";\nSTART REPLICA;\n", f);
}

int mysql_render_sql(const struct step_ctx *c, enum mysql_dialect d, const struct mysql_role *role,
                     const struct mysql_secrets *s, char **ret) {
        _cleanup_(mysql_tls_done) struct mysql_tls t = {};
        bool maria = d == MYSQL_DIALECT_MARIADB;
        const char *collation = maria ? "utf8mb4_unicode_ci" : "utf8mb4_0900_ai_ci";
        char addr[INET_ADDRSTRLEN];
        struct in_addr a;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (role->tls && (r = mysql_tls_get(c, &t)) < 0)
                return r;
        if (!is_self(c, role->primary)) {
                r = mysql_member_addr(c, role->primary, &a);
                if (r < 0)
                        return log_error_errno(r,
                                               "The committed %s has no address for the MySQL "
                                               "primary to replicate from.",
                                               role->primary ? "view" : "plan");
                inet_ntop(AF_INET, &a, addr, sizeof addr);
        }
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("-- Rendered by firstboot; `firstboot apply` runs it again on every change.\n", f);
        if (!is_self(c, role->primary)) {
                sql_source(f, d, addr, s->repl, role->tls ? &t : NULL, role->former_primary);
                return finish_memstream(f, &buf, ret);
        }
        if (role->promoted)
                /* Promoted by `firstboot db promote`: it no longer follows anyone. */
                fputs(maria ? "STOP SLAVE;\nRESET SLAVE ALL;\n"
                            : "STOP REPLICA;\nRESET REPLICA ALL;\n",
                      f);
        /* Replicas apply all of this from the binlog: they start at an empty GTID
         * position. */
        fprintf(f,
                "CREATE DATABASE IF NOT EXISTS `console` CHARACTER SET utf8mb4 COLLATE %s;\n"
                "CREATE DATABASE IF NOT EXISTS `region` CHARACTER SET utf8mb4 COLLATE %s;\n",
                collation, collation);
        sql_user(f, d, REPL_USER, "caching_sha2_password", s->repl, role->tls);
        fputs("GRANT REPLICATION SLAVE ON *.* TO '" REPL_USER "'@'%';\n", f);
        /* Rainbond's Go MySQL driver setup predates caching_sha2 on MySQL 8. */
        sql_user(f, d, RAINBOND_USER, "mysql_native_password", s->rainbond, false);
        fputs("GRANT ALL PRIVILEGES ON `console`.* TO '" RAINBOND_USER "'@'%';\n"
              "GRANT ALL PRIVILEGES ON `region`.* TO '" RAINBOND_USER "'@'%';\n",
              f);
        if (s->admin) {
                sql_user(f, d, MYSQL_ADMIN_USER, "caching_sha2_password", s->admin, role->tls);
                fputs("GRANT ALL PRIVILEGES ON *.* TO '" MYSQL_ADMIN_USER "'@'%';\n", f);
        }
        return finish_memstream(f, &buf, ret);
}

/* The system tables as mariadb-install-db makes them, less its help tables and sys
 * schema: 0.9 of its SQL, 128 MB written and a thousand fsyncs, 80 s of a first boot under
 * emulation, for the client's HELP and DBA views nobody here uses (mariadb-upgrade adds
 * the sys schema should it be wanted). Without the distribution's SQL files, the tool
 * itself. mysql_upgrade_info as the tool writes it: debian-start's upgrade check then
 * finds nothing to do. */
#define MARIADB_SQL_DIR "/usr/share/mysql"
#define MARIADB_BOOTSTRAP                                                                          \
        "s=" MARIADB_SQL_DIR "; set -- \"$@\" \"$s/mysql_system_tables.sql\" "                      \
        "\"$s/mysql_performance_tables.sql\" \"$s/mysql_system_tables_data.sql\" "                \
        "\"$s/maria_add_gis_sp_bootstrap.sql\"; "                                                   \
        "if [ -f \"$5\" ] && [ -f \"$6\" ] && [ -f \"$7\" ] && [ -f \"$8\" ]; then "                  \
        "[ \"$4\" = root ] || chown \"$4:\" \"$1.init\"; "                                          \
        "{ printf \"CREATE DATABASE IF NOT EXISTS mysql;\\nUSE mysql;\\n"                           \
        "SET @auth_root_socket='%s';\\n\" \"$4\"; "                                                  \
        "cat \"$5\" \"$6\" \"$7\" \"$8\"; } | "                                                     \
        "mariadbd \"$3\" --bootstrap --datadir=\"$1.init\" --log-warnings=0 "                       \
        "--enforce-storage-engine= --max_allowed_packet=8M --net_buffer_length=16K; "            \
        "v=$(mariadbd --version | sed -n 's/.* Ver \\([0-9.]*-MariaDB\\).*/\\1/p'); "                 \
        "printf %s \"$v\" >\"$1.init/mysql_upgrade_info\"; "                                         \
        "else mariadb-install-db \"$3\" --datadir=\"$1.init\" "                                      \
        "--auth-root-authentication-method=socket --skip-test-db --skip-name-resolve; fi; "

static void wipe_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

static void wipe_freep(char **s) {
        wipe_free(*s);
}

int mysql_render(const struct step_ctx *c, enum mysql_dialect d, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        _cleanup_(wipe_freep) char *repl = NULL, *rb = NULL, *admin = NULL, *admin_cnf = NULL;
        _cleanup_(wipe_freep) char *sql = NULL;
        _cleanup_free_ char *cnf = NULL, *defaults = NULL, *source = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        struct mysql_promotion prom = {};
        struct mysql_role role;
        bool maria = d == MYSQL_DIALECT_MARIADB;
        int r;

        if ((r = mysql_paths_get(c, d, &p)) < 0)
                return r;
        r = step_secret(c, "mysql_replication_password", &repl);
        if (r < 0)
                return log_error_errno(r,
                                       "No mysql_replication_password in %s/" SECRETS_FILE
                                       ": rerun discovery to seal the secrets.",
                                       c->state_dir);
        r = step_secret(c, "mysql_rainbond_password", &rb);
        if (r < 0)
                return log_error_errno(r,
                                       "No mysql_rainbond_password in %s/" SECRETS_FILE
                                       ": rerun discovery to seal the secrets.",
                                       c->state_dir);
        /* Without ca_seed (secrets sealed before it existed) there is no admin account,
         * and so no `firstboot db`; replication itself does not need it. */
        r = mysql_admin_password(c, &admin);
        if (r < 0 && r != -ENOENT)
                return r;
        if (admin && (r = mysql_admin_cnf(c, d, &admin_cnf)) < 0)
                return r;
        r = mysql_promotion_load(c->state_dir, &prom);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Cannot read %s/" MYSQL_PROMOTION_FILE ": %m",
                                       c->state_dir);
        if ((r = mysql_role_get(c, &prom, &role)) < 0)
                return r;
        if ((r = mysql_render_cnf(c, d, &role, &cnf)) < 0 ||
            (r = mysql_render_sql(
                     c, d, &role,
                     &(struct mysql_secrets){.repl = repl, .rainbond = rb, .admin = admin}, &sql)) <
                    0)
                return r;
        if ((r = asprintf_safe(&defaults, "--defaults-file=%s", p.cnf)) < 0 ||
            (r = asprintf_safe(&source, "source %s", p.sql)) < 0)
                return r;
        if ((r = step_render_add_file(&rd, p.cnf, TAKE_PTR(cnf), 0644)) < 0 ||
            (r = step_render_add_file(&rd, p.sql, TAKE_PTR(sql), 0600)) < 0)
                return r;
        if (admin_cnf && (r = step_render_add_file(&rd, p.admin, TAKE_PTR(admin_cnf), 0600)) < 0)
                return r;
        /* Before the first start: the system tables, once. Built beside the datadir and
         * renamed into place when complete: a crash halfway through must not leave a
         * datadir that looks initialised (its mysql/ exists) and never starts. */
        r = step_render_add_command(
                &rd, "sh", "-c",
                maria ? "set -e; mkdir -p \"$2\" \"$1.tmp\"; [ \"$4\" = root ] || chown \"$4:\" \"$2\" \"$1.tmp\"; "
                        "[ -d \"$1/mysql\" ] && exit 0; rm -rf \"$1.init\"; mkdir -p \"$1.init\"; "
                        MARIADB_BOOTSTRAP
                        "rmdir \"$1\" 2>/dev/null || true; exec mv -T \"$1.init\" \"$1\""
                      : "set -e; mkdir -p \"$2\" \"$1.tmp\"; [ \"$4\" = root ] || chown \"$4:\" \"$2\" \"$1.tmp\"; "
                        "[ -d \"$1/mysql\" ] && exit 0; rm -rf \"$1.init\"; "
                        "mysqld \"$3\" --datadir=\"$1.init\" --initialize-insecure; "
                        "rmdir \"$1\" 2>/dev/null || true; exec mv -T \"$1.init\" \"$1\"",
                "sh", p.datadir, p.sockdir, defaults,
                c->supervisor == SVCMGR_DIRECT ? "root" : "mysql", NULL);
        if (r < 0)
                return r;
        /* After the server answers (apply waits for it): databases, users, replication. */
        if ((r = step_render_add_command(&rd, mysql_client_bin(d), defaults, "--batch", "-e",
                                         source, NULL)) < 0)
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

/* The client on the node's socket: argv[1] of the setup command is --defaults-file=. */
static int query(const struct step_ctx *c, const struct step_render *r, const char *sql,
                 char **ret_output);

static enum mysql_dialect render_dialect(const struct step_render *r) {
        return r->n_services > 0 && streq(r->services[0].argv[0], "mysqld") ? MYSQL_DIALECT_MYSQL8
                                                                            : MYSQL_DIALECT_MARIADB;
}

/* The newest promotion the members know of (the replicated `rainboot`.`promotion` table
 * on this node's server and on the others'), saved here when newer than ours: a former
 * primary coming back learns that it was replaced before it accepts a write, a replica
 * that was down during the promotion follows the new primary. Returns 1 if this node
 * has served as primary and would again, its server is stopped and no other member
 * answers. */
static int learn_promotion(const struct step_ctx *c, enum mysql_dialect d) {
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        _cleanup_free_ char *defaults = NULL, *out = NULL, *admin_cnf = NULL, *served = NULL;
        struct mysql_promotion have = {}, got;
        const struct node_plan *primary;
        unsigned asked = 0, answered = 0;
        bool local_up = false;
        int r;

        r = mysql_promotion_load(c->state_dir, &have);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r,
                                       "Cannot read %s/" MYSQL_PROMOTION_FILE ": %m (move it "
                                       "away to fall back to the plan's primary)",
                                       c->state_dir);
        if ((r = mysql_paths_get(c, d, &p)) < 0 ||
            (r = asprintf_safe(&defaults, "--defaults-file=%s", p.cnf)) < 0)
                return r;
        if (access(p.cnf, F_OK) >= 0) {
                char *argv[] = {(char *)mysql_client_bin(d),
                                defaults,
                                (char *)"--batch",
                                (char *)"--skip-column-names",
                                (char *)"-e",
                                (char *)"SELECT 1; " MYSQL_PROMOTION_SELECT,
                                NULL};

                /* Exit status 1 with "1" printed: up, but no table yet. */
                if (run(c, argv, &out) >= 0 && out && startswith(out, "1\n")) {
                        local_up = true;
                        if (mysql_promotion_from_row(out + 2, &got) >= 0 &&
                            got.generation > have.generation)
                                have = got;
                }
        }
        if (mysql_admin_cnf_write(c, d, &admin_cnf) >= 0) {
                for (size_t i = 0; i < c->plan->n; i++) {
                        const struct node_plan *np = &c->plan->nodes[i];
                        struct in_addr a;

                        if (!(np->roles & ROLE_MYSQL) || is_self(c, np) ||
                            mysql_member_addr(c, np, &a) < 0)
                                continue;
                        asked++;
                        free(out);
                        out = NULL;
                        if (mysql_remote_query(c, d, admin_cnf, &a,
                                               "SELECT 1; " MYSQL_PROMOTION_SELECT, false,
                                               &out) < 0 ||
                            !out || !startswith(out, "1\n"))
                                continue;
                        answered++;
                        if (mysql_promotion_from_row(out + 2, &got) >= 0 &&
                            got.generation > have.generation)
                                have = got;
                }
        }
        r = mysql_promotion_load(c->state_dir, &got);
        if (have.generation > 0 && (r < 0 || got.generation < have.generation)) {
                const struct node_plan *np = role_plan_find(c->plan, have.primary);
                char hex[2 * NODE_ID_LEN + 1];

                node_id_to_hex(have.primary, hex);
                log_info("MySQL: promotion %u (`firstboot db promote`) made %s the primary; "
                         "following it.",
                         have.generation, np && *np->hostname ? np->hostname : hex);
                r = mysql_promotion_save(c->state_dir, &have);
                if (r < 0)
                        return log_error_errno(r, "Cannot write %s/" MYSQL_PROMOTION_FILE ": %m",
                                               c->state_dir);
        }
        primary = have.generation > 0 ? role_plan_find(c->plan, have.primary)
                                      : find_plan_primary(c->plan);
        if (!is_self(c, primary) || local_up || asked == 0 || answered > 0)
                return 0;
        /* Not at the first bring-up, when the replicas are not up yet. */
        if ((r = secrets_path(c, SERVED_FILE, &served)) < 0)
                return r;
        return access(served, F_OK) >= 0 ? 1 : 0;
}

static const char *mysql_after[] = {"pki", NULL};

static int mysql_step_render(const struct step_ctx *c, struct step_render *ret) {
        enum mysql_dialect d = mysql_probe_dialect(c);
        int r;

        /* Only when applying: `firstboot plan` renders every node's steps from anywhere,
         * and must not talk to the members. */
        r = c->svc ? learn_promotion(c, d) : 0;
        if (r < 0)
                return r;
        if (r > 0)
                /* It served as primary before and its server is down: a replica may have
                 * been promoted meanwhile. Starting it writable could make two primaries. */
                return log_error_errno(-EHOSTUNREACH,
                                       "This node was the MySQL primary and its server is down, "
                                       "but no other MySQL member answers, so it cannot tell "
                                       "whether one of them was promoted meanwhile (`firstboot "
                                       "db promote`). Not starting it as primary: bring another "
                                       "MySQL member up (or restore its network), then rerun "
                                       "`firstboot apply`.");
        return mysql_render(c, d, ret);
}

static int query(const struct step_ctx *c, const struct step_render *r, const char *sql,
                 char **ret_output) {
        enum mysql_dialect d = render_dialect(r);
        char *argv[] = {(char *)mysql_client_bin(d),
                        r->commands[1][1],
                        (char *)"--batch",
                        (char *)"--skip-column-names",
                        (char *)"-e",
                        (char *)sql,
                        NULL};

        return run(c, argv, ret_output);
}

/* A replica's SQL starts with STOP. */
static bool renders_replica(const struct step_render *r) {
        return r->n_files > 1 && strstr(r->files[1].content, "\nSTOP ") &&
               !strstr(r->files[1].content, "\nRESET ");
}

static int mysql_check(const struct step_ctx *c, const struct step_render *r) {
        _cleanup_free_ char *out = NULL;
        bool maria = render_dialect(r) == MYSQL_DIALECT_MARIADB, replica = renders_replica(r);
        int k;

        k = step_check_default(c, r);
        if (k <= 0)
                return k;
        if (!replica)
                k = query(c, r,
                          "SELECT COUNT(*) FROM mysql.user WHERE user = '" RAINBOND_USER "'", &out);
        else
                k = query(c, r, maria ? "SHOW SLAVE STATUS" : "SHOW REPLICA STATUS", &out);
        if (k != 0 || !out)
                return 0;
        return !replica ? startswith(out, "1") : out[0] != 0;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int mysql_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                       struct cmd_failure *f) {
        struct step_render before_start = *r;
        _cleanup_(mysql_paths_done) struct mysql_paths p = {};
        _cleanup_free_ char *out = NULL;
        int k, status = -EIO;

        /* Files, the one-time initialisation, and the service; the setup SQL needs it up. */
        before_start.n_commands = 1;
        k = step_apply_default(c, &before_start, resumed, f);
        if (k < 0)
                return k;
        /* systemd's start returns once mariadbd is ready (Type=notify); the direct
         * supervisor's as soon as it runs. A stale socket only ends this wait early. */
        if (mysql_paths_get(c, render_dialect(r), &p) >= 0)
                for (unsigned i = 0; i < SOCKET_TRIES && access(p.socket, F_OK) < 0; i++)
                        sleep_ms(SOCKET_SLEEP_MS);
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
        if (!renders_replica(r)) {
                _cleanup_free_ char *served = NULL;
                char digest[2 * DIGEST_LEN + 2];

                hex_encode(c->plan->digest, DIGEST_LEN, digest);
                strcat(digest, "\n");
                if ((k = secrets_path(c, SERVED_FILE, &served)) < 0 ||
                    (k = write_file_atomic(served, digest, strlen(digest), 0644)) < 0)
                        return log_error_errno(k, "Cannot write %s/" SERVED_FILE ": %m",
                                               c->state_dir);
        }
        return 0;
}

const struct step step_mysql = {
        .name = "mysql",
        .after = mysql_after,
        .skip_reason = mysql_skip,
        .render = mysql_step_render,
        .check = mysql_check,
        .apply = mysql_apply,
};

/* ---- external.mysql ---- */

#define EXT_CNF "secrets/mysql-external.cnf"

static const char *external_skip(const struct step_ctx *c) {
        if (!c->cfg->ext_mysql)
                return "no external.mysql: the databases are on the cluster's MySQL";
        if (!(c->self->flags & PLAN_BOOTSTRAP))
                return "the bootstrap node creates the external databases";
        return NULL;
}

int mysql_external_sql(const struct config *cfg, char **ret) {
        /* utf8mb4_unicode_ci: known to MySQL 5.7, 8.x and MariaDB alike. */
        return asprintf_safe(ret,
                             "SELECT VERSION();\n"
                             "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE "
                             "utf8mb4_unicode_ci;\n"
                             "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE "
                             "utf8mb4_unicode_ci;\n",
                             cfg->ext_mysql->console_database, cfg->ext_mysql->region_database);
}

static int external_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_free_ char *path = NULL, *defaults = NULL, *sql = NULL;
        const struct external_mysql *m = c->cfg->ext_mysql;
        char *cnf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = secrets_path(c, EXT_CNF, &path)) < 0 ||
            (r = asprintf_safe(&defaults, "--defaults-file=%s", path)) < 0 ||
            (r = mysql_external_sql(c->cfg, &sql)) < 0)
                return r;
        f = open_memstream(&cnf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Rendered by firstboot from external.mysql in %s.\n"
                "[client]\n"
                "host = %s\n"
                "port = %u\n"
                "user = %s\n"
                "password = \"",
                c->cfg->path ?: "the config", m->host, m->port, m->username);
        /* Option files unescape \\ and \" inside double quotes. */
        for (const char *s = m->password; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fprintf(f,
                "\"\n"
                "connect_timeout = %u\n"
                "default_character_set = utf8mb4\n"
                "protocol = tcp\n",
                CONNECT_TIMEOUT_S);
        if ((r = finish_memstream(f, &cnf, &cnf)) < 0)
                return r;
        if ((r = step_render_add_file(&rd, path, cnf, 0600)) < 0 ||
            (r = step_render_add_command(&rd, "mysql", defaults, "--batch", "--skip-column-names",
                                         "-e", sql, NULL)) < 0)
                return r;
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static int external_query(const struct step_ctx *c, const struct step_render *r, const char *sql,
                          char **ret_output) {
        char *argv[] = {(char *)"mysql",
                        r->commands[0][1],
                        (char *)"--batch",
                        (char *)"--skip-column-names",
                        (char *)"-e",
                        (char *)sql,
                        NULL};

        return run(c, argv, ret_output);
}

static int external_check(const struct step_ctx *c, const struct step_render *r) {
        const struct external_mysql *m = c->cfg->ext_mysql;
        _cleanup_free_ char *sql = NULL, *out = NULL;
        int k;

        k = step_check_default(c, r);
        if (k <= 0)
                return k;
        if (asprintf_safe(&sql,
                          "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                          "SCHEMA_NAME IN ('%s', '%s') AND DEFAULT_CHARACTER_SET_NAME = 'utf8mb4'",
                          m->console_database, m->region_database) < 0)
                return -ENOMEM;
        k = external_query(c, r, sql, &out);
        return k == 0 && out && startswith(out, "2");
}

/* MySQL 5.7+ or MariaDB 10.2+: utf8mb4 with 3072-byte index prefixes by default. */
static bool external_version_ok(const char *v) {
        unsigned major = 0, minor = 0;

        if (sscanf(v, "%u.%u", &major, &minor) != 2)
                return false;
        if (strstr(v, "MariaDB"))
                return major > 10 || (major == 10 && minor >= 2);
        return major > 5 || (major == 5 && minor >= 7);
}

static int external_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                          struct cmd_failure *f) {
        const struct external_mysql *m = c->cfg->ext_mysql;
        struct step_render files_only = *r;
        _cleanup_free_ char *out = NULL, *dir = NULL;
        char *nl;
        int k;

        files_only.n_commands = 0;
        /* The client file holds the password: its directory is private too. */
        if (secrets_path(c, "secrets", &dir) >= 0 && (k = mkdir_parents(dir, 0700)) < 0)
                return log_error_errno(k, "Cannot create %s: %m", dir);
        k = step_apply_default(c, &files_only, resumed, f);
        if (k < 0)
                return k;
        k = external_query(c, r, "SELECT VERSION()", &out);
        if (k != 0) {
                const char *msg = out ? out + strspn(out, " \n") : "";

                (void)cmd_failure_set(f, r->commands[0], k, out);
                return log_error_errno(
                        k < 0 ? k : -ECONNREFUSED,
                        "Cannot use the external MySQL server at %s port %u as user "
                        "'%s': %s%sCheck external.mysql (host, port, username, "
                        "password) in %s and that the server accepts this node.",
                        m->host, m->port, m->username, *msg ? msg : "(no message from the client)",
                        *msg && !endswith(msg, "\n") ? "\n" : " ", c->cfg->path ?: "the config");
        }
        nl = out ? strchr(out, '\n') : NULL;
        if (nl)
                *nl = 0;
        if (!out || !external_version_ok(out)) {
                (void)cmd_failure_set(f, r->commands[0], 0, out);
                return log_error_errno(
                        -EPROTONOSUPPORT,
                        "The external MySQL server at %s port %u is version '%s': "
                        "Rainbond needs MySQL 5.7 or later or MariaDB 10.2 or later.",
                        m->host, m->port, out ?: "?");
        }
        log_info("External MySQL at %s port %u: version %s.", m->host, m->port, out);
        free(out);
        out = NULL;
        k = run(c, r->commands[0], &out);
        if (k != 0) {
                (void)cmd_failure_set(f, r->commands[0], k, out);
                return log_error_errno(k < 0 ? k : -EIO,
                                       "Cannot create the databases `%s` and `%s` on the external "
                                       "MySQL server at %s port %u as '%s': %sGrant the user "
                                       "CREATE on them, or create them (utf8mb4).",
                                       m->console_database, m->region_database, m->host, m->port,
                                       m->username, out ?: "");
        }
        return 0;
}

const struct step step_mysql_external = {
        .name = "mysql-external",
        .skip_reason = external_skip,
        .render = external_render,
        .check = external_check,
        .apply = external_apply,
};
