/* SPDX-License-Identifier: MIT */
/* The bring-up journal: <state_dir>/journal.json, one entry per step, rewritten
 * atomically on every state change so a crash leaves either the old or the new record. */
#include <dirent.h>
#include <json-c/json.h>

#include "json_util.h"
#include "log.h"
#include "steps.h"
#include "util.h"

#define JOURNAL_VERSION 1

static const char *const state_names[] = {
        [STEP_PENDING] = "pending", [STEP_RUNNING] = "running", [STEP_DONE] = "done",
        [STEP_FAILED] = "failed",   [STEP_SKIPPED] = "skipped",
};

const char *step_state_to_string(enum step_state s) {
        return (size_t)s < ELEMENTSOF(state_names) ? state_names[s] : "?";
}

int step_state_from_string(const char *s, enum step_state *ret) {
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                if (streq(s, state_names[i])) {
                        *ret = (enum step_state)i;
                        return 0;
                }
        return -EINVAL;
}

void journal_done(struct journal *j) {
        for (size_t i = 0; i < j->n; i++) {
                free(j->entries[i].note);
                cmd_failure_done(&j->entries[i].failure);
        }
        free(j->entries);
        *j = (struct journal){};
}

struct journal_entry *journal_find(const struct journal *j, const char *name) {
        for (size_t i = 0; i < j->n; i++)
                if (streq(j->entries[i].name, name))
                        return &j->entries[i];
        return NULL;
}

#define JOURNAL_FILE "journal.json"

static int journal_path(const char *state_dir, char **ret) {
        return asprintf_safe(ret, "%s/" JOURNAL_FILE, state_dir);
}

int journal_to_json(const struct journal *j, char **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *steps = json_object_new_array();
        int r;

        if (!o || !steps)
                return -ENOMEM;
        for (size_t i = 0; i < j->n; i++) {
                const struct journal_entry *e = &j->entries[i];
                _cleanup_(json_object_putp) struct json_object *s = json_object_new_object();

                if (!s)
                        return -ENOMEM;
                if ((r = json_add_str(s, "name", e->name)) < 0 ||
                    (r = json_add_str(s, "state", step_state_to_string(e->state))) < 0 ||
                    (r = json_add_u64(s, "attempts", e->attempts)) < 0 ||
                    (r = json_add_str(s, "hash", e->hash)) < 0 ||
                    (r = json_add_u64(s, "updated", e->updated)) < 0 ||
                    (r = json_add_u64(s, "started", e->started)) < 0 ||
                    (r = json_add_str_or_null(s, "note", e->note)) < 0)
                        return r;
                if (e->failure.command) {
                        _cleanup_(json_object_putp) struct json_object *fo =
                                json_object_new_object();

                        if (!fo)
                                return -ENOMEM;
                        if ((r = json_add_str(fo, "command", e->failure.command)) < 0 ||
                            (r = json_add_int(fo, "status", e->failure.status)) < 0 ||
                            (r = json_add_str(fo, "output", e->failure.output ?: "")) < 0 ||
                            (r = json_add(s, "failure", TAKE_PTR(fo))) < 0)
                                return r;
                }
                r = json_append(steps, TAKE_PTR(s));
                if (r < 0)
                        return r;
        }
        if ((r = json_add(o, "version", json_object_new_int(JOURNAL_VERSION))) < 0 ||
            (r = json_add(o, "steps", TAKE_PTR(steps))) < 0)
                return r;
        return json_to_string(o, ret);
}

int journal_save(const struct journal *j, const char *state_dir) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if ((r = journal_path(state_dir, &path)) < 0 || (r = journal_to_json(j, &text)) < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0644);
}

static const char *get_str(struct json_object *o, const char *key) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int parse_entry(struct json_object *s, struct journal_entry *e) {
        const char *name = get_str(s, "name"), *state = get_str(s, "state");
        const char *hash = get_str(s, "hash"), *note = get_str(s, "note");
        struct json_object *v, *fo;

        if (!json_object_is_type(s, json_type_object) || !name || !state ||
            strlen(name) >= STEP_NAME_MAX || step_state_from_string(state, &e->state) < 0)
                return -EBADMSG;
        strcpy(e->name, name);
        if (hash && strlen(hash) < sizeof e->hash)
                strcpy(e->hash, hash);
        if (json_object_object_get_ex(s, "attempts", &v))
                e->attempts = (unsigned)json_object_get_int64(v);
        if (json_object_object_get_ex(s, "updated", &v))
                e->updated = (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(s, "started", &v))
                e->started = (uint64_t)json_object_get_int64(v);
        if (note && !(e->note = strdup(note)))
                return -ENOMEM;
        if (json_object_object_get_ex(s, "failure", &fo) &&
            json_object_is_type(fo, json_type_object)) {
                const char *cmd = get_str(fo, "command"), *out = get_str(fo, "output");

                if (cmd && !(e->failure.command = strdup(cmd)))
                        return -ENOMEM;
                if (out && !(e->failure.output = strdup(out)))
                        return -ENOMEM;
                if (json_object_object_get_ex(fo, "status", &v))
                        e->failure.status = json_object_get_int(v);
        }
        return 0;
}

int journal_load(const char *state_dir, struct journal *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_(journal_done) struct journal j = {};
        struct json_object *steps;
        size_t n;
        int r;

        r = journal_path(state_dir, &path);
        if (r < 0)
                return r;
        /* No clean-up of temporary files here: readers (`firstboot status --watch`, the
         * dashboard) load the journal every second, and unlinking apply's temporary
         * between its creation and its rename failed the journal write, apply exited and
         * redid the running step. write_file_atomic() removes only dead writers' ones. */
        r = read_full_file(path, &text, NULL);
        if (r == -ENOENT) {
                *ret = (struct journal){};
                return 0;
        }
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o || !json_object_object_get_ex(o, "steps", &steps) ||
            !json_object_is_type(steps, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(steps);
        j.entries = calloc(n ? n : 1, sizeof *j.entries);
        if (!j.entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_entry(json_object_array_get_idx(steps, i), &j.entries[j.n]);
                j.n++; /* counted even on failure: journal_done frees what was parsed */
                if (r < 0)
                        return r;
        }
        *ret = j;
        j = (struct journal){};
        return 0;
}
