/* SPDX-License-Identifier: MIT */
/* The step engine: rendering helpers, the default check/apply, dependency order, and the
 * journaled run with bounded retries. */
#include "steps.h"

#include <libgen.h>
#include <sodium.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define MAX_ATTEMPTS_DEFAULT 3

void step_render_done(struct step_render *r) {
        for (size_t i = 0; i < r->n_files; i++) {
                free(r->files[i].path);
                free(r->files[i].content);
        }
        free(r->files);
        for (size_t i = 0; i < r->n_commands; i++)
                strv_free(r->commands[i]);
        free(r->commands);
        for (size_t i = 0; i < r->n_services; i++) {
                free((char *)r->services[i].name);
                free((char *)r->services[i].unit);
                strv_free(r->services[i].argv);
                strv_free(r->services[i].stale_files);
        }
        free(r->services);
        *r = (struct step_render){};
}

int step_render_add_file(struct step_render *r, const char *path, char *content, mode_t mode) {
        _cleanup_free_ char *c = content, *p = strdup(path);
        struct step_file *nf;

        if (!p || !c)
                return -ENOMEM;
        nf = realloc(r->files, (r->n_files + 1) * sizeof *nf);
        if (!nf)
                return -ENOMEM;
        r->files = nf;
        nf[r->n_files++] = (struct step_file){ TAKE_PTR(p), TAKE_PTR(c), mode };
        return 0;
}

int step_render_add_command(struct step_render *r, const char *arg0, ...) {
        _cleanup_strv_free_ char **argv = NULL;
        char ***nc;
        va_list ap;
        int e = 0;

        va_start(ap, arg0);
        for (const char *a = arg0; a && e == 0; a = va_arg(ap, const char *))
                e = strv_push(&argv, a);
        va_end(ap);
        if (e < 0)
                return e;
        if (!argv)
                return -EINVAL;
        nc = realloc(r->commands, (r->n_commands + 1) * sizeof *nc);
        if (!nc)
                return -ENOMEM;
        r->commands = nc;
        nc[r->n_commands++] = TAKE_PTR(argv);
        return 0;
}

int step_render_add_service(struct step_render *r, const char *name, const char *unit,
                            int reload_signal, char **argv) {
        _cleanup_strv_free_ char **a = argv;
        _cleanup_free_ char *n = strdup(name), *u = strdup(unit);
        struct svc_spec *ns;

        if (!n || !u || !a)
                return -ENOMEM;
        ns = realloc(r->services, (r->n_services + 1) * sizeof *ns);
        if (!ns)
                return -ENOMEM;
        r->services = ns;
        ns[r->n_services++] = (struct svc_spec){ TAKE_PTR(n), TAKE_PTR(u), TAKE_PTR(a),
                                                 reload_signal, NULL };
        return 0;
}

int step_path(const struct step_ctx *c, const char *path, char **ret) {
        const char *root = c->root ? c->root : "";
        size_t l = strlen(root);

        /* "/x/" + "/etc" must not become "/x//etc": paths end up in rendered configs. */
        while (l > 0 && root[l - 1] == '/')
                l--;
        return asprintf_safe(ret, "%.*s%s", (int)l, root, path);
}

int step_run_dir(const struct step_ctx *c, char **ret) {
        return asprintf_safe(ret, "%s/run", c->state_dir);
}

int step_log_dir(const struct step_ctx *c, char **ret) {
        return asprintf_safe(ret, "%s/log", c->state_dir);
}

/* ---- default check and apply ---- */

/* 1 when path holds exactly content with mode. */
static int file_is_current(const struct step_file *sf) {
        _cleanup_free_ char *have = NULL;
        struct stat st;
        size_t size;
        int r;

        if (stat(sf->path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if ((st.st_mode & 07777) != sf->mode)
                return 0;
        r = read_full_file(sf->path, &have, &size);
        if (r < 0)
                return r;
        return size == strlen(sf->content) && memcmp(have, sf->content, size) == 0;
}

int step_check_default(const struct step_ctx *c, const struct step_render *r) {
        int k;

        for (size_t i = 0; i < r->n_files; i++) {
                k = file_is_current(&r->files[i]);
                if (k <= 0)
                        return k;
        }
        for (size_t i = 0; i < r->n_services; i++) {
                if (!c->svc)
                        return -EINVAL;
                k = svcmgr_is_running(c->svc, &r->services[i], NULL);
                if (k <= 0)
                        return k;
        }
        return 1;
}

static int write_rendered(const struct step_file *sf) {
        _cleanup_free_ char *dir = strdup(sf->path);
        int r;

        if (!dir)
                return -ENOMEM;
        r = mkdir_parents(dirname(dir), 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the directory of %s: %m", sf->path);
        r = write_file_atomic(sf->path, sf->content, strlen(sf->content), sf->mode);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", sf->path);
        log_info("Wrote %s", sf->path);
        return 0;
}

int step_apply_default(const struct step_ctx *c, const struct step_render *r, bool resumed,
                       struct cmd_failure *f) {
        bool changed = resumed;
        int k;

        for (size_t i = 0; i < r->n_files; i++) {
                k = file_is_current(&r->files[i]);
                if (k < 0)
                        return log_error_errno(k, "Cannot read %s: %m", r->files[i].path);
                if (k > 0) {
                        /* A resumed step may find its file current and a killed write's
                         * temporary beside it. */
                        if (resumed)
                                write_file_atomic_cleanup(r->files[i].path);
                        continue;
                }
                k = write_rendered(&r->files[i]);
                if (k < 0)
                        return k;
                changed = true;
        }
        for (size_t i = 0; i < r->n_commands; i++) {
                _cleanup_free_ char *out = NULL;

                k = (c->run ? c->run : cmd_runner_default)(c->run_userdata, r->commands[i], &out);
                if (k != 0) {
                        cmd_failure_set(f, r->commands[i], k, out);
                        return k < 0 ? k : -EIO;
                }
        }
        for (size_t i = 0; i < r->n_services; i++) {
                if (!c->svc)
                        return -EINVAL;
                k = changed ? svcmgr_reload(c->svc, &r->services[i], f)
                            : svcmgr_start(c->svc, &r->services[i], f);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* ---- order ---- */

static ssize_t step_index(const struct step *const *steps, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(steps[i]->name, name))
                        return (ssize_t)i;
        return -1;
}

int steps_order(const struct step *const *steps, size_t n, const struct step ***ret) {
        _cleanup_free_ const struct step **out = calloc(n ? n : 1, sizeof *out);
        _cleanup_free_ bool *placed = calloc(n ? n : 1, sizeof *placed);
        size_t k = 0;

        if (!out || !placed)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                for (const char *const *a = steps[i]->after; a && *a; a++)
                        if (step_index(steps, n, *a) < 0)
                                return -ENOENT;
        /* Repeatedly take the first step whose dependencies are all placed: O(n^2) for a
         * handful of steps, and stable. */
        while (k < n) {
                bool progress = false;

                for (size_t i = 0; i < n; i++) {
                        bool ready = !placed[i];

                        for (const char *const *a = steps[i]->after; ready && a && *a; a++)
                                ready = placed[step_index(steps, n, *a)];
                        if (!ready)
                                continue;
                        placed[i] = true;
                        out[k++] = steps[i];
                        progress = true;
                        break;
                }
                if (!progress)
                        return -ELOOP;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- run ---- */

static void render_hash(const struct step_render *r, char out[33]) {
        crypto_generichash_state st;
        uint8_t h[16];

        crypto_generichash_init(&st, NULL, 0, sizeof h);
        for (size_t i = 0; i < r->n_files; i++) {
                uint32_t mode = r->files[i].mode;

                crypto_generichash_update(&st, (const uint8_t *)r->files[i].path,
                                          strlen(r->files[i].path) + 1);
                crypto_generichash_update(&st, (const uint8_t *)&mode, sizeof mode);
                crypto_generichash_update(&st, (const uint8_t *)r->files[i].content,
                                          strlen(r->files[i].content) + 1);
        }
        for (size_t i = 0; i < r->n_commands; i++)
                for (char **a = r->commands[i]; *a; a++)
                        crypto_generichash_update(&st, (const uint8_t *)*a, strlen(*a) + 1);
        for (size_t i = 0; i < r->n_services; i++)
                for (char **a = r->services[i].argv; *a; a++)
                        crypto_generichash_update(&st, (const uint8_t *)*a, strlen(*a) + 1);
        crypto_generichash_final(&st, h, sizeof h);
        hex_encode(h, sizeof h, out);
}

static int journal_get(struct journal *j, const char *name, struct journal_entry **ret) {
        struct journal_entry *e = journal_find(j, name), *ne;

        if (!e) {
                if (strlen(name) >= STEP_NAME_MAX)
                        return -ENAMETOOLONG;
                ne = realloc(j->entries, (j->n + 1) * sizeof *ne);
                if (!ne)
                        return -ENOMEM;
                j->entries = ne;
                e = &ne[j->n++];
                *e = (struct journal_entry){ .state = STEP_PENDING };
                strcpy(e->name, name);
        }
        *ret = e;
        return 0;
}

static int journal_mark(struct journal *j, struct journal_entry *e, enum step_state state,
                        const char *note, const char *state_dir) {
        char *n = NULL;
        int r;

        if (note && !(n = strdup(note)))
                return -ENOMEM;
        free(e->note);
        e->note = n;
        e->updated = (uint64_t)time(NULL);
        /* Retries and a resumed step keep the start of their first attempt. */
        if (e->state != STEP_RUNNING)
                e->started = e->updated;
        e->state = state;
        if (state != STEP_FAILED)
                cmd_failure_done(&e->failure);
        r = journal_save(j, state_dir);
        if (r < 0)
                return log_error_errno(r, "Cannot write the journal in %s: %m", state_dir);
        return 0;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int run_one(const struct step *s, const struct step_ctx *c, const struct step_opts *o,
                   struct journal *j, struct journal_entry *e) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_(cmd_failure_done) struct cmd_failure f = {};
        int (*check)(const struct step_ctx *, const struct step_render *) =
                s->check ? s->check : step_check_default;
        unsigned max = o->max_attempts ? o->max_attempts : MAX_ATTEMPTS_DEFAULT;
        unsigned delay = o->backoff_ms;
        bool resumed = e->state == STEP_RUNNING;
        const char *reason = s->skip_reason ? s->skip_reason(c) : NULL;
        char hash[33];
        int r;

        if (reason) {
                log_info("Step %s: skipped: %s", s->name, reason);
                return journal_mark(j, e, STEP_SKIPPED, reason, c->state_dir);
        }
        r = s->render(c, &rd);
        if (r < 0) {
                log_error_errno(r, "Step %s: cannot render its files: %m", s->name);
                (void)journal_mark(j, e, STEP_FAILED, "render failed", c->state_dir);
                return r;
        }
        render_hash(&rd, hash);

        if (e->state == STEP_DONE && streq(e->hash, hash) && !o->recheck) {
                log_info("Step %s: done (journal)", s->name);
                return 0;
        }
        /* After a crash inside the step, check() may pass on half-applied state (new file,
         * service still on the old one): apply again, it is idempotent. */
        if (!resumed) {
                r = check(c, &rd);
                if (r < 0)
                        return log_error_errno(r, "Step %s: check failed: %m", s->name);
                if (r > 0) {
                        log_info("Step %s: already in place", s->name);
                        strcpy(e->hash, hash);
                        return journal_mark(j, e, STEP_DONE, NULL, c->state_dir);
                }
        }
        for (unsigned attempt = 1; attempt <= max; attempt++) {
                log_info("Step %s: applying%s (attempt %u of %u)", s->name,
                         resumed ? " again after an interruption" : "", attempt, max);
                /* Recorded before the attempt: a crash inside it still counts. */
                e->attempts++;
                r = journal_mark(j, e, STEP_RUNNING, NULL, c->state_dir);
                if (r < 0)
                        return r;
                r = s->apply ? s->apply(c, &rd, resumed || attempt > 1, &f)
                             : step_apply_default(c, &rd, resumed || attempt > 1, &f);
                if (r >= 0) {
                        r = check(c, &rd);
                        if (r > 0)
                                break;
                        if (r == 0) {
                                r = -EPROTO;
                                cmd_failure_done(&f);
                                f.command = strdup("(check after apply)");
                                f.output = strdup("applied, but the check still fails");
                        }
                }
                if (f.command)
                        log_warning("Step %s: attempt %u failed: `%s` exited with status %d%s%s",
                                    s->name, attempt, f.command, f.status,
                                    f.output && *f.output ? ":\n" : "", f.output ? f.output : "");
                else
                        log_warning_errno(r, "Step %s: attempt %u failed: %m", s->name, attempt);
                if (attempt < max && delay) {
                        sleep_ms(delay);
                        delay *= 2;
                }
        }
        if (r <= 0) {
                int e2 = r < 0 ? r : -EPROTO;
                char note[160];

                snprintf(note, sizeof note, "failed after %u attempts: %s", max, strerror(-e2));
                cmd_failure_done(&e->failure);
                e->failure = f;
                f = (struct cmd_failure){};
                (void)journal_mark(j, e, STEP_FAILED, note, c->state_dir);
                if (e->failure.command)
                        return log_error_errno(e2, "Step %s %s; the command was `%s` (status %d)",
                                               s->name, note, e->failure.command,
                                               e->failure.status);
                return log_error_errno(e2, "Step %s %s", s->name, note);
        }
        strcpy(e->hash, hash);
        log_info("Step %s: done", s->name);
        return journal_mark(j, e, STEP_DONE, NULL, c->state_dir);
}

int steps_run(const struct step *const *steps, size_t n, const struct step_ctx *c,
              const struct step_opts *o) {
        _cleanup_free_ const struct step **order = NULL;
        _cleanup_(journal_done) struct journal j = {};
        int r;

        r = steps_order(steps, n, &order);
        if (r < 0)
                return log_error_errno(r, "The bring-up steps have no valid order: %m");
        r = mkdir_parents(c->state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the state directory %s: %m", c->state_dir);
        r = journal_load(c->state_dir, &j);
        if (r < 0)
                return log_error_errno(r, "Cannot read the journal in %s: %m (move it away to "
                                          "start the bring-up over)", c->state_dir);
        for (size_t i = 0; i < n; i++) {
                struct journal_entry *e;

                if (o->only && !streq(order[i]->name, o->only))
                        continue;
                r = journal_get(&j, order[i]->name, &e);
                if (r < 0)
                        return log_error_errno(r, "Step %s: cannot record it: %m", order[i]->name);
                r = run_one(order[i], c, o, &j, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- plan listing ---- */

static void print_indented(FILE *f, const char *text, const char *indent) {
        for (const char *p = text; *p;) {
                size_t l = strcspn(p, "\n");

                fprintf(f, "%s%.*s\n", indent, (int)l, p);
                p += l;
                if (*p)
                        p++;
        }
}

int steps_print_plan(const struct step *const *steps, size_t n, const struct step_ctx *c,
                     bool with_content, FILE *f) {
        _cleanup_free_ const struct step **order = NULL;
        _cleanup_free_ char *run_dir = NULL, *log_dir = NULL;
        int r;

        r = steps_order(steps, n, &order);
        if (r < 0)
                return r;
        if ((r = step_run_dir(c, &run_dir)) < 0 || (r = step_log_dir(c, &log_dir)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(step_render_done) struct step_render rd = {};
                const char *reason = order[i]->skip_reason ? order[i]->skip_reason(c) : NULL;

                if (reason) {
                        fprintf(f, "  step %s: skipped: %s\n", order[i]->name, reason);
                        continue;
                }
                r = order[i]->render(c, &rd);
                if (r < 0)
                        return r;
                fprintf(f, "  step %s\n", order[i]->name);
                for (size_t k = 0; k < rd.n_files; k++) {
                        fprintf(f, "    write %s (mode %04o)\n", rd.files[k].path,
                                (unsigned)rd.files[k].mode);
                        if (with_content)
                                print_indented(f, rd.files[k].content, "      | ");
                }
                for (size_t k = 0; k < rd.n_commands; k++) {
                        _cleanup_free_ char *s = NULL;

                        r = argv_to_string(rd.commands[k], &s);
                        if (r < 0)
                                return r;
                        fprintf(f, "    run %s\n", s);
                }
                for (size_t k = 0; k < rd.n_services; k++) {
                        _cleanup_free_ char *s = NULL;

                        r = svcmgr_describe(c->supervisor, run_dir, log_dir, &rd.services[k],
                                            SVC_START, &s);
                        if (r < 0)
                                return r;
                        fprintf(f, "    service %s: %s (reload when a file changed)\n",
                                rd.services[k].name, s);
                }
        }
        return 0;
}

int step_secret(const struct step_ctx *c, const char *key, char **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t l = strlen(key), size = 0;
        char *v = NULL;
        int r;

        if ((r = asprintf_safe(&path, "%s/" STEP_SECRETS_FILE, c->state_dir)) < 0)
                return r;
        r = read_full_file(path, &text, &size);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %m", path);
        r = -ENOENT;
        for (char *line = text; line && *line;) {
                char *nl = strchr(line, '\n');

                if (nl)
                        *nl = 0;
                if (strncmp(line, key, l) == 0 && line[l] == '=' && line[l + 1]) {
                        v = strdup(line + l + 1);
                        r = v ? 0 : -ENOMEM;
                        break;
                }
                line = nl ? nl + 1 : NULL;
        }
        explicit_bzero(text, size);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}
