/* SPDX-License-Identifier: MIT */
/* MySQL step: the rendered my.cnf and SQL checked field by field for both dialects
 * (MariaDB 10.11 and MySQL 8.0) from a fixture view, config and elected plan; the dialect
 * chosen from the server's version string (through a fake runner); skips. The MariaDB
 * config is also fed to `mariadbd --help` when installed, which rejects unknown options.
 * Writes only under a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/stat.h>

#include "config.h"
#include "elect.h"
#include "steps.h"
#include "svc_mysql.h"
#include "util.h"
#include "view_json.h"

#define PW "s3cret'pw\\x"
#define PW_SQL "'s3cret\\'pw\\\\x'"
#define SEED   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define SECRETS                                                                                    \
        "join_token=abc\nmysql_replication_password=" PW                                           \
        "\nmysql_rainbond_password=rb'pw\nca_seed=" SEED "\n"

static const char *const base_yaml = "cluster:\n"
                                     "  name: t\n"
                                     "  token: test-token-0123456789\n"
                                     "  expected_nodes: 3\n"
                                     "vip:\n"
                                     "  address: 192.0.2.100/24\n";

struct fixture {
        struct config *cfg;
        struct view view;
        struct role_plan *plan;
        char root[64];
        char *state_dir;
};

static void fixture_load(struct fixture *f, const char *extra_yaml, bool secrets) {
        _cleanup_free_ char *yaml = NULL, *err = NULL, *path = NULL, *env = NULL;
        struct diag d = {};

        assert_int_equal(asprintf_safe(&yaml, "%s%s", base_yaml, extra_yaml ?: ""), 0);
        assert_int_equal(config_parse_string(yaml, strlen(yaml), "test.yaml", &f->cfg, &d), 0);
        diag_clear(&d);
        assert_int_equal(view_from_json_file("data/views/three-nodes.json", &f->view, &err), 0);
        assert_int_equal(elect(&f->view, f->cfg, &f->plan), 0);
        strcpy(f->root, "/tmp/test-svc-mysql.XXXXXX");
        assert_non_null(mkdtemp(f->root));
        assert_int_equal(asprintf_safe(&f->state_dir, "%s/state", f->root), 0);
        assert_int_equal(asprintf_safe(&path, "%s/secrets", f->state_dir), 0);
        assert_int_equal(mkdir_parents(path, 0700), 0);
        if (secrets) {
                assert_int_equal(asprintf_safe(&env, "%s/cluster.env", path), 0);
                assert_int_equal(write_file_atomic(env, SECRETS, strlen(SECRETS), 0600), 0);
        }
}

static void fixture_done(struct fixture *f) {
        _cleanup_free_ char *cmd = NULL;

        assert_int_equal(asprintf_safe(&cmd, "rm -rf '%s'", f->root), 0);
        assert_int_equal(system(cmd), 0);
        free(f->state_dir);
        config_free(f->cfg);
        view_done(&f->view);
        role_plan_free(f->plan);
}

static void ctx_for(const struct fixture *f, size_t node, struct step_ctx *c) {
        struct bringup_state s = { .plan = f->plan, .view = f->view, .self = &f->plan->nodes[node] };

        s.self_info = step_node_info(&(struct step_ctx){ .view = &f->view }, s.self->id);
        step_ctx_init(c, f->cfg, &s, f->root, f->state_dir);
        c->view = &f->view;
        c->supervisor = SVCMGR_DIRECT;
}

static bool has_line(const char *text, const char *line) {
        size_t l = strlen(line);

        for (const char *p = text; p && *p;) {
                if (strncmp(p, line, l) == 0 && (p[l] == '\n' || p[l] == 0))
                        return true;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return false;
}

static void assert_line(const char *text, const char *line) {
        if (!has_line(text, line))
                fail_msg("no line '%s' in:\n%s", line, text);
}

static void assert_no_line(const char *text, const char *line) {
        if (has_line(text, line))
                fail_msg("unexpected line '%s' in:\n%s", line, text);
}

static void assert_contains(const char *text, const char *s) {
        if (!strstr(text, s))
                fail_msg("no '%s' in:\n%s", s, text);
}

static size_t primary_index(const struct role_plan *p) {
        size_t n = 0, idx = 0;

        for (size_t i = 0; i < p->n; i++)
                if ((p->nodes[i].roles & ROLE_MYSQL) && (p->nodes[i].flags & PLAN_MYSQL_PRIMARY)) {
                        n++;
                        idx = i;
                }
        assert_int_equal(n, 1);
        return idx;
}

static void test_dialect_from_version(void **state _unused_) {
        enum mysql_dialect d = MYSQL_DIALECT_MYSQL8;

        assert_int_equal(mysql_dialect_from_version(
                                 "mariadbd  Ver 10.11.14-MariaDB-0+deb12u2 for debian-linux-gnu on x86_64 (Debian 12)\n",
                                 &d),
                         0);
        assert_int_equal(d, MYSQL_DIALECT_MARIADB);
        assert_int_equal(mysql_dialect_from_version("/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 "
                                                    "(MySQL Community Server - GPL)\n",
                                                    &d),
                         0);
        assert_int_equal(d, MYSQL_DIALECT_MYSQL8);
        d = MYSQL_DIALECT_MARIADB;
        assert_int_equal(mysql_dialect_from_version("8.4.2", &d), 0); /* SELECT VERSION() */
        assert_int_equal(d, MYSQL_DIALECT_MYSQL8);
        assert_int_equal(mysql_dialect_from_version("10.11.6-MariaDB-log", &d), 0);
        assert_int_equal(d, MYSQL_DIALECT_MARIADB);
        /* 5.7 has neither dialect's statements; garbage is not guessed at. */
        assert_int_equal(mysql_dialect_from_version("mysqld  Ver 5.7.44 for Linux", &d), -EOPNOTSUPP);
        assert_int_equal(mysql_dialect_from_version("command not found", &d), -EOPNOTSUPP);
        assert_int_equal(d, MYSQL_DIALECT_MARIADB);
}

static void check_cnf(const struct fixture *f, size_t i, enum mysql_dialect d) {
        _cleanup_free_ char *cnf = NULL, *want = NULL;
        const struct node_plan *np = &f->plan->nodes[i];
        bool primary = np->flags & PLAN_MYSQL_PRIMARY, maria = d == MYSQL_DIALECT_MARIADB;
        struct mysql_role role;
        struct step_ctx c;

        ctx_for(f, i, &c);
        assert_int_equal(mysql_role_get(&c, NULL, &role), 0);
        assert_false(role.tls);
        assert_int_equal(mysql_render_cnf(&c, d, &role, &cnf), 0);
        assert_int_equal(asprintf_safe(&want, "server_id = %zu", i + 1), 0);
        assert_line(cnf, want);
        free(want);
        assert_int_equal(asprintf_safe(&want, "datadir = %s/var/lib/rainboot/data/mysql", f->root), 0);
        assert_line(cnf, want);
        free(want);
        assert_int_equal(asprintf_safe(&want, "socket = %s/run/mysqld/mysqld.sock", f->root), 0);
        assert_line(cnf, want);
        free(want);
        assert_int_equal(asprintf_safe(&want, "bind_address = 192.0.2.%zu", 11 + i), 0);
        assert_line(cnf, want);
        assert_line(cnf, "user = root");
        assert_line(cnf, "port = 3306");
        assert_line(cnf, "binlog_format = ROW");
        assert_line(cnf, "character_set_server = utf8mb4");
        assert_line(cnf, "default_character_set = utf8mb4");
        /* No pki files in the fixture: no TLS options, the server starts without them. */
        assert_false(strstr(cnf, "ssl_"));
        if (maria) {
                assert_line(cnf, "gtid_strict_mode = ON");
                assert_line(cnf, "log_slave_updates = ON");
                assert_line(cnf, "collation_server = utf8mb4_unicode_ci");
                assert_no_line(cnf, "gtid_mode = ON");
                assert_false(strstr(cnf, "plugin_load"));
                assert_line(cnf, primary ? "rpl_semi_sync_master_enabled = ON"
                                         : "rpl_semi_sync_slave_enabled = ON");
                assert_no_line(cnf, primary ? "rpl_semi_sync_slave_enabled = ON"
                                            : "rpl_semi_sync_master_enabled = ON");
        } else {
                assert_line(cnf, "gtid_mode = ON");
                assert_line(cnf, "enforce_gtid_consistency = ON");
                assert_line(cnf, "log_replica_updates = ON");
                assert_line(cnf, "collation_server = utf8mb4_0900_ai_ci");
                assert_no_line(cnf, "gtid_strict_mode = ON");
                assert_line(cnf, primary ? "plugin_load_add = semisync_source.so"
                                         : "plugin_load_add = semisync_replica.so");
                assert_line(cnf, primary ? "loose_rpl_semi_sync_source_enabled = ON"
                                         : "loose_rpl_semi_sync_replica_enabled = ON");
        }
        if (primary) {
                assert_no_line(cnf, "read_only = ON");
                assert_no_line(cnf, "super_read_only = ON");
        } else {
                assert_line(cnf, "read_only = ON");
                if (maria)
                        assert_no_line(cnf, "super_read_only = ON");
                else
                        assert_line(cnf, "super_read_only = ON");
        }
}

static void check_sql(const struct fixture *f, size_t i, enum mysql_dialect d) {
        _cleanup_free_ char *sql = NULL;
        const struct node_plan *np = &f->plan->nodes[i];
        bool maria = d == MYSQL_DIALECT_MARIADB;
        struct mysql_role role;
        struct step_ctx c;

        ctx_for(f, i, &c);
        assert_int_equal(mysql_role_get(&c, NULL, &role), 0);
        assert_int_equal(mysql_render_sql(&c, d, &role,
                                          &(struct mysql_secrets){.repl = PW,
                                                                  .rainbond = "rb'pw",
                                                                  .admin = "adminpw"},
                                          &sql),
                         0);
        if (np->flags & PLAN_MYSQL_PRIMARY) {
                const char *coll = maria ? "utf8mb4_unicode_ci" : "utf8mb4_0900_ai_ci";
                _cleanup_free_ char *db1 = NULL, *db2 = NULL;

                assert_int_equal(asprintf_safe(&db1, "CREATE DATABASE IF NOT EXISTS `console` "
                                                     "CHARACTER SET utf8mb4 COLLATE %s;", coll), 0);
                assert_int_equal(asprintf_safe(&db2, "CREATE DATABASE IF NOT EXISTS `region` "
                                                     "CHARACTER SET utf8mb4 COLLATE %s;", coll), 0);
                assert_line(sql, db1);
                assert_line(sql, db2);
                assert_line(sql, maria ? "CREATE USER IF NOT EXISTS 'replicator'@'%' IDENTIFIED BY " PW_SQL ";"
                                       : "CREATE USER IF NOT EXISTS 'replicator'@'%' IDENTIFIED WITH "
                                         "caching_sha2_password BY " PW_SQL ";");
                assert_line(sql, "GRANT REPLICATION SLAVE ON *.* TO 'replicator'@'%';");
                assert_line(sql, maria ? "CREATE USER IF NOT EXISTS 'rainbond'@'%' IDENTIFIED BY 'rb\\'pw';"
                                       : "CREATE USER IF NOT EXISTS 'rainbond'@'%' IDENTIFIED WITH "
                                         "mysql_native_password BY 'rb\\'pw';");
                assert_line(
                        sql,
                        maria ? "ALTER USER 'rainbond'@'%' IDENTIFIED BY 'rb\\'pw' REQUIRE NONE;"
                              : "ALTER USER 'rainbond'@'%' IDENTIFIED WITH "
                                "mysql_native_password BY 'rb\\'pw' REQUIRE NONE;");
                assert_line(
                        sql,
                        maria ? "CREATE USER IF NOT EXISTS 'rainboot_admin'@'%' IDENTIFIED BY "
                                "'adminpw';"
                              : "CREATE USER IF NOT EXISTS 'rainboot_admin'@'%' IDENTIFIED WITH "
                                "caching_sha2_password BY 'adminpw';");
                assert_line(sql, "GRANT ALL PRIVILEGES ON *.* TO 'rainboot_admin'@'%';");
                assert_false(strstr(sql, "RESET "));
                assert_line(sql, "GRANT ALL PRIVILEGES ON `console`.* TO 'rainbond'@'%';");
                assert_line(sql, "GRANT ALL PRIVILEGES ON `region`.* TO 'rainbond'@'%';");
                assert_false(strstr(sql, "CHANGE "));
                assert_false(strstr(sql, "START "));
        } else {
                _cleanup_free_ char *want = NULL;
                size_t p = primary_index(f->plan);

                if (maria)
                        assert_int_equal(
                                asprintf_safe(&want,
                                              "CHANGE MASTER TO MASTER_HOST='192.0.2.%zu', "
                                              "MASTER_PORT=3306, MASTER_USER='replicator', "
                                              "MASTER_PASSWORD=" PW_SQL
                                              ", MASTER_USE_GTID=slave_pos, "
                                              "MASTER_CONNECT_RETRY=2, MASTER_SSL=0;",
                                              11 + p),
                                0);
                else
                        assert_int_equal(
                                asprintf_safe(
                                        &want,
                                        "CHANGE REPLICATION SOURCE TO SOURCE_HOST='192.0.2.%zu', "
                                        "SOURCE_PORT=3306, SOURCE_USER='replicator', "
                                        "SOURCE_PASSWORD=" PW_SQL ", SOURCE_AUTO_POSITION=1, "
                                        "GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=2, "
                                        "SOURCE_SSL=0;",
                                        11 + p),
                                0);
                assert_line(sql, want);
                assert_line(sql, maria ? "STOP SLAVE;" : "STOP REPLICA;");
                assert_line(sql, maria ? "START SLAVE;" : "START REPLICA;");
                assert_false(strstr(sql, "CREATE "));
                /* STOP, CHANGE, START in that order. */
                assert_true(strstr(sql, "STOP ") < strstr(sql, "CHANGE ") &&
                            strstr(sql, "CHANGE ") < strstr(sql, "START "));
        }
}

static void test_cnf_and_sql_fields(void **state _unused_) {
        struct fixture f = {};
        size_t n_replicas = 0;

        fixture_load(&f, NULL, true);
        (void)primary_index(f.plan);
        for (size_t i = 0; i < f.plan->n; i++) {
                assert_true(f.plan->nodes[i].roles & ROLE_MYSQL);
                n_replicas += !(f.plan->nodes[i].flags & PLAN_MYSQL_PRIMARY);
                check_cnf(&f, i, MYSQL_DIALECT_MARIADB);
                check_cnf(&f, i, MYSQL_DIALECT_MYSQL8);
                check_sql(&f, i, MYSQL_DIALECT_MARIADB);
                check_sql(&f, i, MYSQL_DIALECT_MYSQL8);
        }
        assert_int_equal(n_replicas, 2);
        fixture_done(&f);
}

static void test_render_step(void **state _unused_) {
        struct fixture f = {};

        fixture_load(&f, NULL, true);
        for (int d = MYSQL_DIALECT_MARIADB; d <= MYSQL_DIALECT_MYSQL8; d++) {
                _cleanup_(step_render_done) struct step_render r = {};
                _cleanup_free_ char *cnf = NULL, *sql = NULL, *defaults = NULL, *source = NULL;
                bool maria = d == MYSQL_DIALECT_MARIADB;
                struct step_ctx c;

                ctx_for(&f, primary_index(f.plan), &c);
                assert_int_equal(mysql_render(&c, d, &r), 0);
                assert_int_equal(asprintf_safe(&cnf, "%s/etc/mysql/%s/60-rainboot.cnf", f.root,
                                               maria ? "mariadb.conf.d" : "mysql.conf.d"), 0);
                assert_int_equal(asprintf_safe(&sql, "%s/secrets/mysql-setup.sql", f.state_dir), 0);
                assert_int_equal(asprintf_safe(&defaults, "--defaults-file=%s", cnf), 0);
                assert_int_equal(asprintf_safe(&source, "source %s", sql), 0);
                assert_int_equal(r.n_files, 3);
                assert_string_equal(r.files[0].path, cnf);
                assert_int_equal(r.files[0].mode, 0644);
                /* The SQL holds the passwords. */
                assert_string_equal(r.files[1].path, sql);
                assert_int_equal(r.files[1].mode, 0600);
                assert_contains(r.files[1].content, PW_SQL);
                assert_false(strstr(r.files[0].content, "s3cret"));
                /* The admin's client file holds its derived password. */
                assert_true(endswith(r.files[2].path, "/state/secrets/mysql-admin.cnf"));
                assert_int_equal(r.files[2].mode, 0600);
                assert_contains(r.files[2].content, "user = rainboot_admin\n");
                assert_false(strstr(r.files[2].content, "ssl"));
                assert_int_equal(r.n_commands, 2);
                assert_string_equal(r.commands[0][0], "sh");
                /* Initialised beside the datadir, renamed into place once complete. */
                assert_contains(r.commands[0][2], maria ? "mariadb-install-db \"$3\" --datadir=\"$1.init\""
                                                        : "mysqld \"$3\" --datadir=\"$1.init\"");
                /* MariaDB: the system tables straight from the distribution's SQL,
                 * without the help tables and the sys schema. */
                if (maria) {
                        assert_contains(r.commands[0][2], "mariadbd \"$3\" --bootstrap --datadir=\"$1.init\"");
                        assert_false(strstr(r.commands[0][2], "fill_help_tables"));
                        assert_false(strstr(r.commands[0][2], "mysql_sys_schema"));
                }
                assert_contains(r.commands[0][2], "[ -d \"$1/mysql\" ] && exit 0;");
                assert_contains(r.commands[0][2], "exec mv -T \"$1.init\" \"$1\"");
                assert_string_equal(r.commands[0][6], defaults);
                assert_string_equal(r.commands[1][0], maria ? "mariadb" : "mysql");
                assert_string_equal(r.commands[1][1], defaults);
                assert_string_equal(r.commands[1][4], source);
                /* No password on any command line (they end up in the journal). */
                for (size_t k = 0; k < r.n_commands; k++)
                        for (char **a = r.commands[k]; *a; a++)
                                assert_false(strstr(*a, "s3cret"));
                assert_int_equal(r.n_services, 1);
                assert_string_equal(r.services[0].unit, maria ? "mariadb.service" : "mysql.service");
                assert_string_equal(r.services[0].argv[0], maria ? "mariadbd" : "mysqld");
                assert_string_equal(r.services[0].argv[1], defaults);
                assert_null(r.services[0].argv[2]);
        }
        fixture_done(&f);
}

/* Answers `<server> --version` as the installed server would. */
static int fake_version(void *userdata, char *const argv[], char **ret_output) {
        const char *const *v = userdata; /* [0] mariadbd's answer, [1] mysqld's; NULL: absent */
        const char *ans = streq(argv[0], "mariadbd") ? v[0] : streq(argv[0], "mysqld") ? v[1] : NULL;

        /* Anything else (the client asking servers about promotions): nobody answers. */
        if (!streq(argv[1], "--version"))
                return 1;
        if (!ans)
                return 127;
        *ret_output = strdup(ans);
        return *ret_output ? 0 : -ENOMEM;
}

static void test_dialect_probe(void **state _unused_) {
        static const char *const cases[][3] = {
                { "mariadbd  Ver 10.11.14-MariaDB-0+deb12u2 for debian-linux-gnu", NULL, "mariadbd" },
                { NULL, "/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64", "mysqld" },
                /* Debian's mysqld is MariaDB too. */
                { NULL, "mysqld  Ver 10.11.14-MariaDB-0+deb12u2", "mariadbd" },
                /* Nothing installed: Debian's MariaDB. */
                { NULL, NULL, "mariadbd" },
        };
        struct fixture f = {};

        fixture_load(&f, NULL, true);
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                _cleanup_(step_render_done) struct step_render r = {};
                struct step_ctx c;

                ctx_for(&f, 0, &c);
                c.run = fake_version;
                c.run_userdata = (void *)cases[k];
                assert_null(step_mysql.skip_reason(&c));
                assert_int_equal(step_mysql.render(&c, &r), 0);
                assert_string_equal(r.services[0].argv[0], cases[k][2]);
        }
        fixture_done(&f);
}

static void test_skips(void **state _unused_) {
        struct fixture f = {};
        struct step_ctx c;
        struct node_plan np;

        fixture_load(&f, NULL, false);
        ctx_for(&f, 0, &c);
        assert_non_null(strstr(step_mysql.skip_reason(&c), "secrets"));
        fixture_done(&f);

        fixture_load(&f, "external:\n  mysql:\n    host: db.example.com\n    username: rb\n"
                         "    password: x\n", true);
        ctx_for(&f, 0, &c);
        assert_non_null(strstr(step_mysql.skip_reason(&c), "external.mysql"));
        fixture_done(&f);

        fixture_load(&f, NULL, true);
        ctx_for(&f, 0, &c);
        assert_null(step_mysql.skip_reason(&c));
        np = f.plan->nodes[0];
        np.roles &= ~ROLE_MYSQL;
        c.self = &np;
        assert_non_null(strstr(step_mysql.skip_reason(&c), "not a mysql node"));
        fixture_done(&f);
}

/* mariadbd refuses unknown options in its config: the rendered one must pass. */
static void test_mariadbd_accepts_cnf(void **state _unused_) {
        struct fixture f = {};

        if (run_command((char *const[]){ (char *)"mariadbd", (char *)"--version", NULL }, NULL) != 0)
                skip();
        fixture_load(&f, NULL, true);
        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_free_ char *cnf = NULL, *path = NULL, *arg = NULL, *out = NULL;
                struct step_ctx c;

                ctx_for(&f, i, &c);
                struct mysql_role role;

                assert_int_equal(mysql_role_get(&c, NULL, &role), 0);
                assert_int_equal(mysql_render_cnf(&c, MYSQL_DIALECT_MARIADB, &role, &cnf), 0);
                assert_int_equal(asprintf_safe(&path, "%s/my.cnf", f.root), 0);
                assert_int_equal(write_file_atomic(path, cnf, strlen(cnf), 0644), 0);
                assert_int_equal(asprintf_safe(&arg, "--defaults-file=%s", path), 0);
                if (run_command((char *const[]){ (char *)"mariadbd", arg, (char *)"--verbose",
                                                 (char *)"--help", NULL },
                                &out) != 0 ||
                    strstr(out, "unknown"))
                        fail_msg("mariadbd rejects the rendered config:\n%s", out);
        }
        fixture_done(&f);
}

static void write_under(const struct fixture *f, const char *path, const char *content) {
        _cleanup_free_ char *full = NULL, *dir = NULL;

        assert_int_equal(asprintf_safe(&full, "%s%s", f->root, path), 0);
        dir = strdup(full);
        assert_non_null(dir);
        *strrchr(dir, '/') = 0;
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        assert_int_equal(write_file_atomic(full, content, strlen(content), 0600), 0);
}

/* With the pki step's files: the server offers TLS, replicas use it and check the
 * primary's certificate, the replication and admin accounts require it. */
static void test_tls(void **state _unused_) {
        struct fixture f = {};
        size_t pi;

        fixture_load(&f, NULL, true);
        pi = primary_index(f.plan);
        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_free_ char *cnf = NULL, *ca = NULL, *want = NULL;
                struct mysql_role role;
                struct step_ctx c;

                ctx_for(&f, i, &c);
                if (i == 0) {
                        assert_int_equal(mysql_role_get(&c, NULL, &role), 0);
                        assert_false(role.tls);
                        /* Two of three files: still off. */
                        write_under(&f, "/etc/rainboot/pki/ca.crt", "CA");
                        write_under(&f, "/etc/rainboot/pki/mysql.crt", "CERT");
                        assert_int_equal(mysql_role_get(&c, NULL, &role), 0);
                        assert_false(role.tls);
                        write_under(&f, "/etc/rainboot/pki/mysql.key", "KEY");
                }
                assert_int_equal(mysql_role_get(&c, NULL, &role), 0);
                assert_true(role.tls);
                assert_int_equal(asprintf_safe(&ca, "%s/etc/rainboot/pki/ca.crt", f.root), 0);
                for (int d = MYSQL_DIALECT_MARIADB; d <= MYSQL_DIALECT_MYSQL8; d++) {
                        _cleanup_free_ char *sql = NULL;
                        bool maria = d == MYSQL_DIALECT_MARIADB;

                        free(cnf);
                        cnf = NULL;
                        assert_int_equal(mysql_render_cnf(&c, d, &role, &cnf), 0);
                        free(want);
                        assert_int_equal(asprintf_safe(&want, "ssl_ca = %s", ca), 0);
                        assert_line(cnf, want);
                        free(want);
                        assert_int_equal(asprintf_safe(&want,
                                                       "ssl_key = %s/etc/rainboot/pki/mysql.key",
                                                       f.root),
                                         0);
                        assert_line(cnf, want);
                        assert_int_equal(mysql_render_sql(&c, d, &role,
                                                          &(struct mysql_secrets){.repl = PW,
                                                                                  .rainbond = "rb",
                                                                                  .admin = "ad"},
                                                          &sql),
                                         0);
                        if (i == pi) {
                                assert_contains(sql, "'replicator'@'%' IDENTIFIED ");
                                assert_contains(sql, " REQUIRE SSL;\nGRANT REPLICATION SLAVE");
                                assert_contains(sql, "BY 'ad' REQUIRE SSL;");
                                assert_contains(sql, "BY 'rb' REQUIRE NONE;");
                        } else {
                                free(want);
                                assert_int_equal(
                                        asprintf_safe(
                                                &want,
                                                maria ? ", MASTER_SSL=1, MASTER_SSL_CA='%s', "
                                                      : ", SOURCE_SSL=1, SOURCE_SSL_CA='%s', ",
                                                ca),
                                        0);
                                assert_contains(sql, want);
                                assert_contains(sql, maria ? "MASTER_SSL_VERIFY_SERVER_CERT=1;"
                                                           : "SOURCE_SSL_VERIFY_SERVER_CERT=1;");
                        }
                }
        }
        /* The admin's client file checks the server certificate. */
        {
                _cleanup_free_ char *adm = NULL;
                struct step_ctx c;

                ctx_for(&f, 0, &c);
                assert_int_equal(mysql_admin_cnf(&c, MYSQL_DIALECT_MARIADB, &adm), 0);
                assert_line(adm, "ssl_verify_server_cert");
                free(adm);
                adm = NULL;
                assert_int_equal(mysql_admin_cnf(&c, MYSQL_DIALECT_MYSQL8, &adm), 0);
                assert_line(adm, "ssl_mode = VERIFY_IDENTITY");
        }
        fixture_done(&f);
}

static void test_admin_password(void **state _unused_) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct fixture f = {};
        struct step_ctx c;

        fixture_load(&f, NULL, true);
        ctx_for(&f, 0, &c);
        assert_int_equal(mysql_admin_password(&c, &a), 0);
        ctx_for(&f, 1, &c);
        assert_int_equal(mysql_admin_password(&c, &b), 0);
        /* Same on every node, hex, and not the seed itself. */
        assert_string_equal(a, b);
        assert_int_equal(strlen(a), 48);
        assert_int_equal(strspn(a, "0123456789abcdef"), 48);
        assert_false(strstr(SEED, a));
        fixture_done(&f);
}

/* No fallback to the replication password: a missing Rainbond password is an error. */
static void test_rainbond_password_required(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *env = NULL;
        static const char text[] = "mysql_replication_password=x\n";
        struct fixture f = {};
        struct step_ctx c;

        fixture_load(&f, NULL, true);
        assert_int_equal(asprintf_safe(&env, "%s/secrets/cluster.env", f.state_dir), 0);
        assert_int_equal(write_file_atomic(env, text, strlen(text), 0600), 0);
        ctx_for(&f, 0, &c);
        assert_int_equal(mysql_render(&c, MYSQL_DIALECT_MARIADB, &r), -ENOENT);
        fixture_done(&f);
}

static void test_promotion_record(void **state _unused_) {
        struct fixture f = {};
        struct mysql_promotion p = {.generation = 2, .gtid = "0-2-17", .time = 1700000000}, q;
        _cleanup_free_ char *sql = NULL;
        size_t pi, np = SIZE_MAX, other = SIZE_MAX;

        fixture_load(&f, NULL, true);
        pi = primary_index(f.plan);
        for (size_t i = 0; i < f.plan->n; i++)
                if (i != pi) {
                        if (np == SIZE_MAX)
                                np = i;
                        else
                                other = i;
                }
        assert_int_equal(mysql_promotion_load(f.state_dir, &q), -ENOENT);
        memcpy(p.primary, f.plan->nodes[np].id, NODE_ID_LEN);
        memcpy(p.previous, f.plan->nodes[pi].id, NODE_ID_LEN);
        assert_int_equal(mysql_promotion_save(f.state_dir, &p), 0);
        assert_int_equal(mysql_promotion_load(f.state_dir, &q), 0);
        assert_int_equal(q.generation, 2);
        assert_memory_equal(q.primary, p.primary, NODE_ID_LEN);
        assert_memory_equal(q.previous, p.previous, NODE_ID_LEN);
        assert_string_equal(q.gtid, "0-2-17");
        assert_int_equal(q.time, 1700000000);

        assert_int_equal(mysql_promotion_sql(&p, &sql), 0);
        assert_contains(sql, "CREATE TABLE IF NOT EXISTS `rainboot`.`promotion`");
        assert_contains(sql, "REPLACE INTO `rainboot`.`promotion`");
        assert_contains(sql, "'0-2-17', FROM_UNIXTIME(1700000000));");
        {
                char prim[33], prev[33], row[160];

                node_id_to_hex(p.primary, prim);
                node_id_to_hex(p.previous, prev);
                snprintf(row, sizeof row, "2\t%s\t%s\t0-2-17\t1700000000\n", prim, prev);
                memset(&q, 0, sizeof q);
                assert_int_equal(mysql_promotion_from_row(row, &q), 0);
                assert_int_equal(q.generation, 2);
                assert_memory_equal(q.primary, p.primary, NODE_ID_LEN);
                assert_string_equal(q.gtid, "0-2-17");
                snprintf(row, sizeof row, "3\t%s\t%s\t\t1700000001\n", prim, prev);
                assert_int_equal(mysql_promotion_from_row(row, &q), 0);
                assert_int_equal(q.generation, 3);
                assert_string_equal(q.gtid, "");
                assert_int_equal(mysql_promotion_from_row("garbage", &q), -EBADMSG);
        }

        /* The promoted replica renders as primary, leaves replication; the old primary
         * follows it as a former primary; the other replica follows it too. */
        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_free_ char *cnf = NULL, *s2 = NULL, *want = NULL;
                struct mysql_role role;
                struct step_ctx c;

                ctx_for(&f, i, &c);
                assert_int_equal(mysql_role_get(&c, &p, &role), 0);
                assert_true(role.promoted);
                assert_memory_equal(role.primary->id, f.plan->nodes[np].id, NODE_ID_LEN);
                assert_int_equal(mysql_render_cnf(&c, MYSQL_DIALECT_MARIADB, &role, &cnf), 0);
                assert_int_equal(
                        mysql_render_sql(&c, MYSQL_DIALECT_MARIADB, &role,
                                         &(struct mysql_secrets){.repl = PW, .rainbond = "rb"},
                                         &s2),
                        0);
                if (i == np) {
                        assert_no_line(cnf, "read_only = ON");
                        assert_line(cnf, "rpl_semi_sync_master_enabled = ON");
                        assert_contains(s2, "STOP SLAVE;\nRESET SLAVE ALL;\n");
                        assert_contains(s2, "CREATE DATABASE IF NOT EXISTS `console`");
                        continue;
                }
                assert_line(cnf, "read_only = ON");
                assert_false(strstr(s2, "CREATE "));
                assert_int_equal(asprintf_safe(&want, "MASTER_HOST='192.0.2.%zu'", 11 + np), 0);
                assert_contains(s2, want);
                assert_int_equal(role.former_primary, i == pi);
                assert_contains(s2, i == pi ? "MASTER_USE_GTID=current_pos"
                                            : "MASTER_USE_GTID=slave_pos");
        }
        (void)other;

        /* The whole step reads the record from the state directory. */
        {
                _cleanup_(step_render_done) struct step_render r = {};
                struct step_ctx c;

                ctx_for(&f, pi, &c);
                assert_int_equal(mysql_render(&c, MYSQL_DIALECT_MARIADB, &r), 0);
                assert_contains(r.files[1].content, "MASTER_USE_GTID=current_pos");
                assert_contains(r.files[0].content, "read_only = ON");
        }
        fixture_done(&f);
}

static void test_external(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *sql = NULL;
        struct fixture f = {};
        struct step_ctx c;
        size_t boot = SIZE_MAX;

        fixture_load(&f,
                     "external:\n  mysql:\n    host: db.example.com\n    port: 3307\n"
                     "    username: rb\n    password: 'p\"w\\x'\n    console_database: c1\n",
                     true);
        for (size_t i = 0; i < f.plan->n; i++) {
                ctx_for(&f, i, &c);
                if (f.plan->nodes[i].flags & PLAN_BOOTSTRAP) {
                        boot = i;
                        assert_null(step_mysql_external.skip_reason(&c));
                } else {
                        assert_non_null(strstr(step_mysql_external.skip_reason(&c), "bootstrap"));
                }
        }
        assert_int_not_equal(boot, SIZE_MAX);
        assert_int_equal(mysql_external_sql(f.cfg, &sql), 0);
        assert_line(sql, "CREATE DATABASE IF NOT EXISTS `c1` CHARACTER SET utf8mb4 COLLATE "
                         "utf8mb4_unicode_ci;");
        assert_line(sql, "CREATE DATABASE IF NOT EXISTS `region` CHARACTER SET utf8mb4 COLLATE "
                         "utf8mb4_unicode_ci;");
        ctx_for(&f, boot, &c);
        assert_int_equal(step_mysql_external.render(&c, &r), 0);
        assert_int_equal(r.n_files, 1);
        assert_int_equal(r.files[0].mode, 0600);
        assert_line(r.files[0].content, "host = db.example.com");
        assert_line(r.files[0].content, "port = 3307");
        assert_line(r.files[0].content, "password = \"p\\\"w\\\\x\"");
        /* The password is in the 0600 file only, never on a command line. */
        for (size_t k = 0; k < r.n_commands; k++)
                for (char **a = r.commands[k]; *a; a++)
                        assert_false(strstr(*a, "p\"w"));
        fixture_done(&f);

        fixture_load(&f, NULL, true);
        ctx_for(&f, 0, &c);
        assert_non_null(strstr(step_mysql_external.skip_reason(&c), "no external.mysql"));
        fixture_done(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dialect_from_version),
                cmocka_unit_test(test_cnf_and_sql_fields),
                cmocka_unit_test(test_render_step),
                cmocka_unit_test(test_dialect_probe),
                cmocka_unit_test(test_skips),
                cmocka_unit_test(test_mariadbd_accepts_cnf),
                cmocka_unit_test(test_tls),
                cmocka_unit_test(test_admin_password),
                cmocka_unit_test(test_rainbond_password_required),
                cmocka_unit_test(test_promotion_record),
                cmocka_unit_test(test_external),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
