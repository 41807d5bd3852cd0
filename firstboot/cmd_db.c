/* SPDX-License-Identifier: MIT */
/* `firstboot db status|promote`: the MySQL members of the plan as their servers report
 * them, and the promotion of the most advanced replica when the primary is gone.
 *
 * Every member is reached over TCP as the admin account the mysql step creates (its
 * password derived from the sealed ca_seed, TLS with the cluster CA when the pki files
 * exist), so the command works from any node holding the secrets.
 *
 * promote refuses unless a majority of the MySQL members agree the primary is gone: this
 * node (its own probe) when it is a member, and every other reachable replica whose
 * replication IO thread reports that it cannot reach the primary. The primary counts as
 * not agreeing; an unreachable replica too. The promotion is recorded in the state
 * directory and in the new primary's `rainboot`.`promotion` table (replicated), which is
 * how `firstboot apply` on every node, the old primary included, learns of it. */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <time.h>

#include "commands.h"
#include "config.h"
#include "json_util.h"
#include "log.h"
#include "node_self.h"
#include "steps.h"
#include "svc_mysql.h"
#include "util.h"

#define DEFAULT_STATE_DIR  "/var/lib/rainboot"
#define DEFAULT_MACHINE_ID "/etc/machine-id"
/* How long a replica may take to apply what it already received before positions are
 * compared. */
#define CATCH_UP_S    30
#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

struct db_opts {
        const char *state_dir;
        const char *root;
        const char *machine_id;
        bool json;
        bool dry_run;
};

struct member {
        const struct node_plan *np;
        struct in_addr addr;
        bool has_addr;
        bool reachable;
        bool expected_primary; /* per the plan or the newest promotion */
        char *error;           /* the client's message when not reachable */
        int read_only;         /* -1 unknown */
        char *gtid;            /* MariaDB gtid_current_pos, MySQL gtid_executed */
        bool replica;          /* has a replication source configured */
        char *io_running, *sql_running, *source_host, *io_error, *received;
        long io_errno;
};

static void member_done(struct member *m) {
        free(m->error);
        free(m->gtid);
        free(m->io_running);
        free(m->sql_running);
        free(m->source_host);
        free(m->io_error);
        free(m->received);
}

struct db {
        struct step_ctx c;
        enum mysql_dialect d;
        char *admin_cnf;
        struct mysql_promotion prom; /* generation 0: none */
        struct member *m;
        size_t n;
};

static void db_done(struct db *db) {
        for (size_t i = 0; i < db->n; i++)
                member_done(&db->m[i]);
        free(db->m);
        free(db->admin_cnf);
}

static void db_help(FILE *f) {
        fprintf(f, "Usage: firstboot [-c CONFIG] db status|promote [OPTIONS]\n"
                   "\n"
                   "  status    each MySQL member: role, reachability, read_only, GTID position,\n"
                   "            replication threads (read-only)\n"
                   "  promote   make the most advanced replica the primary when the primary is\n"
                   "            gone, and point the other replicas at it. Refused while the\n"
                   "            primary answers or unless a majority of the MySQL members agree\n"
                   "            that it is gone.\n"
                   "\n"
                   "      --json                  status: machine-readable output\n"
                   "      --dry-run               promote: decide and print, change nothing\n"
                   "      --state-dir DIR         state directory (default " DEFAULT_STATE_DIR ")\n"
                   "      --root DIR              where the step's files are (default /)\n"
                   "      --machine-id-file FILE  this node's id (default " DEFAULT_MACHINE_ID ")\n"
                   "  -h, --help                  this text\n");
}

static int parse_opts(int argc, char **argv, struct db_opts *o, bool *ret_done) {
        enum { ARG_JSON = 0x100, ARG_DRY_RUN, ARG_STATE_DIR, ARG_ROOT, ARG_MACHINE_ID };
        static const struct option options[] = {
                {"json", no_argument, NULL, ARG_JSON},
                {"dry-run", no_argument, NULL, ARG_DRY_RUN},
                {"state-dir", required_argument, NULL, ARG_STATE_DIR},
                {"root", required_argument, NULL, ARG_ROOT},
                {"machine-id-file", required_argument, NULL, ARG_MACHINE_ID},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        o->json = true;
                        break;
                case ARG_DRY_RUN:
                        o->dry_run = true;
                        break;
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case ARG_ROOT:
                        o->root = optarg;
                        break;
                case ARG_MACHINE_ID:
                        o->machine_id = optarg;
                        break;
                case 'h':
                        db_help(stdout);
                        *ret_done = true;
                        return 0;
                default:
                        fprintf(stderr, "Try 'firstboot db --help'.\n");
                        return 2;
                }
        }
        return 0;
}

static const char *member_name(const struct member *m) {
        return *m->np->hostname ? m->np->hostname : "(unnamed)";
}

/* The first line of the client's output, without the "ERROR nnnn (xxxxx) at line 1: ". */
static char *client_message(const char *out) {
        const char *s = out ? out : "no answer";
        const char *p = strstr(s, "): ");

        if (startswith(s, "ERROR ") && p)
                s = p + 3;
        return strndup(s, strcspn(s, "\n"));
}

static int query(struct db *db, struct member *m, const char *sql, bool names, char **ret) {
        _cleanup_free_ char *out = NULL;
        int k;

        k = mysql_remote_query(&db->c, db->d, db->admin_cnf, &m->addr, sql, names, &out);
        if (k != 0) {
                free(m->error);
                m->error = client_message(out);
                return k < 0 ? k : -EIO;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* Batch output: "\n" and "\t" inside a value are escaped; split the line in place. */
static size_t split_tabs(char *line, char **fields, size_t max) {
        size_t n = 0;

        while (line && n < max)
                fields[n++] = strsep(&line, "\t");
        return n;
}

static void unescape_newlines(char *s) {
        char *w = s;

        for (char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] == 'n') {
                        r++;
                        continue;
                }
                *w++ = *r;
        }
        *w = 0;
}

#define MAX_COLUMNS 128

/* The value of column name in a two-line (header, row) batch output. */
static char *column(char *const *names, char *const *values, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], name))
                        return strdup(values[i]);
        return NULL;
}

static int probe_member(struct db *db, struct member *m) {
        bool maria = db->d == MYSQL_DIALECT_MARIADB;
        _cleanup_free_ char *out = NULL, *st = NULL;
        char *f[3], *names[MAX_COLUMNS], *values[MAX_COLUMNS], *nl;
        size_t nn, nv;

        m->read_only = -1;
        if (!m->has_addr) {
                m->error = strdup("no address in the committed view");
                return 0;
        }
        if (query(db, m,
                  maria ? "SELECT @@read_only, @@gtid_current_pos"
                        : "SELECT @@read_only, @@gtid_executed",
                  false, &out) < 0)
                return 0;
        m->reachable = true;
        nl = strchr(out, '\n');
        if (nl)
                *nl = 0;
        if (split_tabs(out, f, 2) == 2) {
                m->read_only = streq(f[0], "1");
                unescape_newlines(f[1]);
                m->gtid = strdup(f[1]);
        }
        if (query(db, m, maria ? "SHOW SLAVE STATUS" : "SHOW REPLICA STATUS", true, &st) < 0 ||
            !*st)
                return 0;
        nl = strchr(st, '\n');
        if (!nl)
                return 0;
        *nl = 0;
        nn = split_tabs(st, names, MAX_COLUMNS);
        nl[strcspn(nl + 1, "\n") + 1] = 0;
        nv = split_tabs(nl + 1, values, MAX_COLUMNS);
        if (nv < nn)
                nn = nv;
        m->replica = true;
        m->io_running =
                column(names, values, nn, maria ? "Slave_IO_Running" : "Replica_IO_Running");
        m->sql_running =
                column(names, values, nn, maria ? "Slave_SQL_Running" : "Replica_SQL_Running");
        m->source_host = column(names, values, nn, maria ? "Master_Host" : "Source_Host");
        m->io_error = column(names, values, nn, "Last_IO_Error");
        m->received = column(names, values, nn, maria ? "Gtid_IO_Pos" : "Retrieved_Gtid_Set");
        {
                _cleanup_free_ char *e = column(names, values, nn, "Last_IO_Errno");

                m->io_errno = e ? strtol(e, NULL, 10) : 0;
        }
        if (m->received)
                unescape_newlines(m->received);
        return 0;
}

/* The newest promotion any reachable member's table holds, or ours if newer. */
static void learn(struct db *db) {
        for (size_t i = 0; i < db->n; i++) {
                _cleanup_free_ char *out = NULL;
                struct mysql_promotion p;

                if (!db->m[i].reachable ||
                    mysql_remote_query(&db->c, db->d, db->admin_cnf, &db->m[i].addr,
                                       MYSQL_PROMOTION_SELECT, false, &out) != 0 ||
                    !out)
                        continue;
                if (mysql_promotion_from_row(out, &p) >= 0 && p.generation > db->prom.generation)
                        db->prom = p;
        }
}

static struct member *expected_primary(struct db *db) {
        for (size_t i = 0; i < db->n; i++)
                if (db->m[i].expected_primary)
                        return &db->m[i];
        return NULL;
}

static void mark_primary(struct db *db) {
        for (size_t i = 0; i < db->n; i++) {
                const struct node_plan *np = db->m[i].np;

                db->m[i].expected_primary = db->prom.generation > 0
                                                    ? node_id_cmp(np->id, db->prom.primary) == 0
                                                    : !!(np->flags & PLAN_MYSQL_PRIMARY);
        }
}

static int db_load(const struct ctx *ctx, const struct db_opts *o, struct config **cfg,
                   struct bringup_state *s, struct db *db) {
        uint8_t id[NODE_ID_LEN];
        int r;

        r = ctx_load_config(ctx, NULL, cfg);
        if (r < 0)
                return r;
        if ((*cfg)->ext_mysql)
                return log_error_errno(-EOPNOTSUPP,
                                       "external.mysql is set in %s: the databases are "
                                       "on %s, which rainboot does not manage.",
                                       (*cfg)->path, (*cfg)->ext_mysql->host);
        if ((r = read_machine_id(o->machine_id, id)) < 0 ||
            (r = bringup_state_load(o->state_dir, id, s)) < 0)
                return r;
        step_ctx_init(&db->c, *cfg, s, o->root, o->state_dir);
        db->d = mysql_probe_dialect(&db->c);
        r = mysql_admin_cnf_write(&db->c, db->d, &db->admin_cnf);
        if (r == -ENOENT)
                return log_error_errno(r,
                                       "No ca_seed in %s/" STEP_SECRETS_FILE ": the MySQL admin "
                                       "account's password derives from it. Run discovery again "
                                       "on this node to receive the secrets.",
                                       o->state_dir);
        if (r < 0)
                return r;
        r = mysql_promotion_load(o->state_dir, &db->prom);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Cannot read %s/" MYSQL_PROMOTION_FILE ": %m",
                                       o->state_dir);
        for (size_t i = 0; i < s->plan->n; i++)
                db->n += !!(s->plan->nodes[i].roles & ROLE_MYSQL);
        if (db->n == 0)
                return log_error_errno(-ENOENT, "The plan has no MySQL member.");
        db->m = calloc(db->n, sizeof *db->m);
        if (!db->m)
                return -ENOMEM;
        for (size_t i = 0, k = 0; i < s->plan->n; i++) {
                const struct node_plan *np = &s->plan->nodes[i];

                if (!(np->roles & ROLE_MYSQL))
                        continue;
                db->m[k].np = np;
                db->m[k].has_addr = mysql_member_addr(&db->c, np, &db->m[k].addr) >= 0;
                k++;
        }
        for (size_t i = 0; i < db->n; i++)
                (void)probe_member(db, &db->m[i]);
        learn(db);
        mark_primary(db);
        return 0;
}

static const char *or_dash(const char *s) {
        return s && *s ? s : "-";
}

static int print_json(const struct db *db) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_free_ char *text = NULL;
        struct json_object *a = json_object_new_array();
        int r;

        if (!o || !a) {
                json_object_put(a);
                return -ENOMEM;
        }
        if ((r = json_add(o, "members", a)) < 0 ||
            (r = json_add_u64(o, "promotion_generation", db->prom.generation)) < 0)
                return r;
        for (size_t i = 0; i < db->n; i++) {
                const struct member *m = &db->m[i];
                struct json_object *e = json_object_new_object();
                char addr[INET_ADDRSTRLEN] = "";

                if (!e || (r = json_append(a, e)) < 0)
                        return -ENOMEM;
                if (m->has_addr)
                        inet_ntop(AF_INET, &m->addr, addr, sizeof addr);
                if ((r = json_add(e, "id", json_new_hex(m->np->id, NODE_ID_LEN))) < 0 ||
                    (r = json_add_str(e, "hostname", m->np->hostname)) < 0 ||
                    (r = json_add_str(e, "address", addr)) < 0 ||
                    (r = json_add_str(e, "role", m->expected_primary ? "primary" : "replica")) <
                            0 ||
                    (r = json_add_bool(e, "reachable", m->reachable)) < 0 ||
                    (r = json_add_str_or_null(e, "error", m->reachable ? NULL : m->error)) < 0 ||
                    (r = m->read_only < 0 ? json_add_null(e, "read_only")
                                          : json_add_bool(e, "read_only", m->read_only)) < 0 ||
                    (r = json_add_str_or_null(e, "gtid", m->gtid)) < 0 ||
                    (r = json_add_str_or_null(e, "source", m->source_host)) < 0 ||
                    (r = json_add_str_or_null(e, "io_thread", m->io_running)) < 0 ||
                    (r = json_add_str_or_null(e, "sql_thread", m->sql_running)) < 0 ||
                    (r = json_add_int(e, "io_errno", m->io_errno)) < 0 ||
                    (r = json_add_str_or_null(
                             e, "io_error", m->io_error && *m->io_error ? m->io_error : NULL)) < 0)
                        return r;
        }
        if ((r = json_to_string(o, &text)) < 0)
                return r;
        puts(text);
        return 0;
}

static void print_text(const struct db *db) {
        printf("%-16s %-15s %-8s %-9s %-9s %-28s %s\n", "NODE", "ADDRESS", "ROLE", "REACHABLE",
               "READ_ONLY", "GTID", "REPLICATION");
        for (size_t i = 0; i < db->n; i++) {
                const struct member *m = &db->m[i];
                char addr[INET_ADDRSTRLEN] = "-";

                if (m->has_addr)
                        inet_ntop(AF_INET, &m->addr, addr, sizeof addr);
                printf("%-16s %-15s %-8s %-9s %-9s %-28s ", member_name(m), addr,
                       m->expected_primary ? "primary" : "replica", m->reachable ? "yes" : "no",
                       m->read_only < 0 ? "-"
                       : m->read_only   ? "ON"
                                        : "OFF",
                       or_dash(m->gtid));
                if (!m->reachable)
                        printf("(%s)\n", or_dash(m->error));
                else if (!m->replica)
                        printf("none\n");
                else
                        printf("from %s: io %s, sql %s%s%s\n", or_dash(m->source_host),
                               or_dash(m->io_running), or_dash(m->sql_running),
                               m->io_error && *m->io_error ? "; " : "",
                               m->io_error ? m->io_error : "");
        }
        if (db->prom.generation > 0)
                printf("Promotion %u is in force (firstboot db promote).\n", db->prom.generation);
}

/* ---- GTID positions ---- */

/* MariaDB: "D-S-N,D-S-N": x covers y when, for every domain of y, x has a sequence number
 * at least as high. */
static bool maria_seq(const char *pos, unsigned long domain, unsigned long long *ret) {
        for (const char *p = pos; p && *p;) {
                unsigned long d;
                unsigned long s;
                unsigned long long n;

                if (sscanf(p, "%lu-%lu-%llu", &d, &s, &n) == 3 && d == domain) {
                        *ret = n;
                        return true;
                }
                p = strchr(p, ',');
                if (p)
                        p++;
        }
        return false;
}

static bool maria_covers(const char *x, const char *y) {
        for (const char *p = y; p && *p;) {
                unsigned long d, s;
                unsigned long long n, have;

                p += strspn(p, " ");
                if (sscanf(p, "%lu-%lu-%llu", &d, &s, &n) == 3 &&
                    (!maria_seq(x, d, &have) || have < n))
                        return false;
                p = strchr(p, ',');
                if (p)
                        p++;
        }
        return true;
}

static void sql_quoted(FILE *f, const char *s) {
        fputc('\'', f);
        for (; *s; s++) {
                if (*s == '\'' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('\'', f);
}

static int quoted_sql(char **ret, const char *before, const char *value, const char *middle,
                      const char *value2, const char *after) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fputs(before, f);
        sql_quoted(f, value);
        if (middle) {
                fputs(middle, f);
                sql_quoted(f, value2);
        }
        fputs(after, f);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

/* 1 when x's executed set contains y's (MySQL asks the server: GTID_SUBSET). */
static int covers(struct db *db, struct member *x, const struct member *y) {
        _cleanup_free_ char *sql = NULL, *out = NULL;
        int r;

        if (db->d == MYSQL_DIALECT_MARIADB)
                return maria_covers(x->gtid ?: "", y->gtid ?: "");
        if ((r = quoted_sql(&sql, "SELECT GTID_SUBSET(", y->gtid ?: "", ", ", x->gtid ?: "", ")")) <
            0)
                return r;
        if (query(db, x, sql, false, &out) < 0)
                return -EIO;
        return startswith(out, "1");
}

/* Let each reachable replica apply what it already received, then read its position. */
static void catch_up(struct db *db, struct member *m) {
        _cleanup_free_ char *sql = NULL, *out = NULL;
        bool maria = db->d == MYSQL_DIALECT_MARIADB;

        if (!m->received || !*m->received)
                return;
        if (quoted_sql(&sql,
                       maria ? "SELECT MASTER_GTID_WAIT(" : "SELECT WAIT_FOR_EXECUTED_GTID_SET(",
                       m->received, NULL, NULL, ", " STRINGIFY(CATCH_UP_S) ")") < 0)
                return;
        if (query(db, m, sql, false, &out) < 0)
                return;
        if (!startswith(out, "0"))
                log_warning(
                        "%s did not apply all it received within %d s; comparing what it applied.",
                        member_name(m), CATCH_UP_S);
        free(out);
        out = NULL;
        if (query(db, m, maria ? "SELECT @@gtid_current_pos" : "SELECT @@gtid_executed", false,
                  &out) >= 0) {
                out[strcspn(out, "\n")] = 0;
                unescape_newlines(out);
                free(m->gtid);
                m->gtid = TAKE_PTR(out);
        }
}

/* ---- promote ---- */

static bool reports_source_lost(const struct member *m) {
        return m->reachable && m->replica && m->io_running && !streq(m->io_running, "Yes") &&
               m->io_errno != 0;
}

static int promote(struct db *db, const struct db_opts *o) {
        bool maria = db->d == MYSQL_DIALECT_MARIADB;
        struct member *old = expected_primary(db), *best = NULL;
        size_t need = db->n / 2 + 1, votes = 0;
        _cleanup_free_ char *record_sql = NULL;
        struct mysql_promotion p = {};
        char addr[INET_ADDRSTRLEN];
        int r;

        if (!old)
                return log_error_errno(-ENOENT, "The plan names no MySQL primary.");
        if (old->reachable)
                return log_error_errno(
                        -EBUSY,
                        "Refusing to promote: the MySQL primary %s answers (read_only "
                        "%s). Promotion is for a primary that is gone; check the "
                        "replicas with `firstboot db status`.",
                        member_name(old), old->read_only > 0 ? "ON" : "OFF");
        for (size_t i = 0; i < db->n; i++) {
                struct member *m = &db->m[i];
                bool self = node_id_cmp(m->np->id, db->c.self->id) == 0, agrees;

                if (m == old)
                        continue;
                /* This node's own probe failed (else we stopped above): its vote. */
                agrees = self || reports_source_lost(m);
                log_info("Quorum: %s %s (%s).", member_name(m),
                         agrees ? "agrees" : "does not agree",
                         self            ? "this node cannot reach the primary"
                         : !m->reachable ? "unreachable"
                         : !m->replica   ? "no replication configured"
                         : agrees        ? or_dash(m->io_error)
                         : m->io_running && streq(m->io_running, "Yes")
                                 ? "its replication IO thread is running"
                                 : "its replication is stopped, with no error");
                votes += agrees;
        }
        if (votes < need)
                return log_error_errno(
                        -EHOSTUNREACH,
                        "Refusing to promote: only %zu of the %zu MySQL members agree "
                        "that the primary %s is gone (a majority, %zu, is needed; the "
                        "primary itself counts as not agreeing). This node may be cut "
                        "off from it while others still replicate from it. Check "
                        "`firstboot db status` from another node.",
                        votes, db->n, member_name(old), need);

        for (size_t i = 0; i < db->n; i++)
                if (&db->m[i] != old && db->m[i].reachable && db->m[i].replica)
                        catch_up(db, &db->m[i]);
        for (size_t i = 0; i < db->n; i++) {
                struct member *m = &db->m[i];
                bool all = true;

                if (m == old || !m->reachable || !m->replica)
                        continue;
                for (size_t k = 0; k < db->n && all; k++) {
                        struct member *y = &db->m[k];

                        if (y == old || y == m || !y->reachable || !y->replica)
                                continue;
                        r = covers(db, m, y);
                        all = r > 0;
                }
                if (all) {
                        best = m;
                        break;
                }
        }
        if (!best)
                return log_error_errno(
                        -ESTALE, "Refusing to promote: no reachable replica has every "
                                 "transaction the others have (their GTID positions diverged, "
                                 "or none is reachable). See `firstboot db status`.");
        inet_ntop(AF_INET, &best->addr, addr, sizeof addr);
        log_info("Promoting %s (%s) at GTID position %s.", member_name(best), addr,
                 or_dash(best->gtid));
        if (o->dry_run)
                return 0;

        {
                _cleanup_free_ char *out = NULL;

                r = query(db, best,
                          maria ? "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF; "
                                  "SET GLOBAL rpl_semi_sync_slave_enabled = OFF; "
                                  "SET GLOBAL rpl_semi_sync_master_enabled = ON; "
                                  "SET GLOBAL rpl_semi_sync_master_timeout = " STRINGIFY(
                                          MYSQL_SEMI_SYNC_TIMEOUT_MS)
                                : "STOP REPLICA; RESET REPLICA ALL; SET GLOBAL super_read_only = "
                                  "OFF; "
                                  "SET GLOBAL read_only = OFF",
                          false, &out);
                if (r < 0)
                        return log_error_errno(r, "Cannot promote %s: %s", member_name(best),
                                               or_dash(best->error));
        }
        p.generation = db->prom.generation + 1;
        memcpy(p.primary, best->np->id, NODE_ID_LEN);
        memcpy(p.previous, old->np->id, NODE_ID_LEN);
        snprintf(p.gtid, sizeof p.gtid, "%s", best->gtid ?: "");
        p.time = (uint64_t)time(NULL);
        if ((r = mysql_promotion_sql(&p, &record_sql)) < 0)
                return r;
        {
                _cleanup_free_ char *out = NULL;

                r = query(db, best, record_sql, false, &out);
                if (r < 0)
                        log_warning("%s is the primary now, but recording that in its "
                                    "rainboot.promotion table failed: %s. Other nodes learn of it "
                                    "only from this node's state directory.",
                                    member_name(best), or_dash(best->error));
        }
        r = mysql_promotion_save(db->c.state_dir, &p);
        if (r < 0)
                return log_error_errno(r,
                                       "%s is the primary now, but %s/" MYSQL_PROMOTION_FILE
                                       " cannot be written: %m. Fix that and write it, or a "
                                       "later `firstboot apply` here follows the old primary.",
                                       member_name(best), db->c.state_dir);
        db->prom = p;

        for (size_t i = 0; i < db->n; i++) {
                struct member *m = &db->m[i];
                _cleanup_free_ char *sql = NULL, *out = NULL;

                if (m == old || m == best)
                        continue;
                if (!m->reachable) {
                        log_warning("%s is unreachable: `firstboot apply` there makes it follow %s "
                                    "once it is back.",
                                    member_name(m), member_name(best));
                        continue;
                }
                /* Only the host: user, password and TLS files stay as the node's own step set
                 * them (its paths, its root). */
                r = quoted_sql(
                        &sql,
                        maria ? "STOP SLAVE; CHANGE MASTER TO MASTER_HOST="
                              : "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_HOST=",
                        addr, NULL, NULL,
                        maria ? ", MASTER_PORT=" STRINGIFY(
                                        MYSQL_PORT) ", MASTER_USE_GTID=slave_pos; START SLAVE"
                              : ", SOURCE_PORT=" STRINGIFY(
                                        MYSQL_PORT) ", SOURCE_AUTO_POSITION=1; START REPLICA");
                if (r < 0)
                        return r;
                if (query(db, m, sql, false, &out) < 0)
                        log_warning("Cannot point %s at %s: %s. Run `firstboot apply` there.",
                                    member_name(m), member_name(best), or_dash(m->error));
                else
                        log_info("%s now replicates from %s.", member_name(m), member_name(best));
        }
        log_info(
                "Promotion %u recorded in %s/" MYSQL_PROMOTION_FILE ". The old primary %s must not "
                "be started on its own: `firstboot apply` there makes it a read-only replica of %s "
                "(or keeps it out if it has transactions %s lacks).",
                p.generation, db->c.state_dir, member_name(old), member_name(best),
                member_name(best));
        return 0;
}

int cmd_db(const struct ctx *ctx, int argc, char **argv) {
        struct db_opts o = {
                .state_dir = DEFAULT_STATE_DIR,
                .root = "",
                .machine_id = DEFAULT_MACHINE_ID,
        };
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_(bringup_state_done) struct bringup_state s = {};
        _cleanup_(db_done) struct db db = {};
        const char *verb;
        bool done = false;
        int r;

        if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
                db_help(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        verb = argv[1];
        if (!streq(verb, "status") && !streq(verb, "promote")) {
                log_error("db: unknown verb '%s'. Try 'firstboot db --help'.", verb);
                return 2;
        }
        r = parse_opts(argc - 1, argv + 1, &o, &done);
        if (r != 0 || done)
                return r;
        if (optind < argc - 1) {
                log_error("db: unexpected argument '%s'. Try 'firstboot db --help'.",
                          argv[optind + 1]);
                return 2;
        }
        r = db_load(ctx, &o, &cfg, &s, &db);
        if (r < 0)
                return r;
        if (streq(verb, "status")) {
                if (o.json)
                        return print_json(&db);
                print_text(&db);
                return 0;
        }
        return promote(&db, &o);
}
