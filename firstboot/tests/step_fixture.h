/* SPDX-License-Identifier: MIT */
/* Shared fixture of the step-module tests: a config (the test's base_yaml, defined before
 * including this file, plus extra YAML), a view from data/views/, the elected plan, and a
 * temporary root; and helpers to look into rendered files. */
#pragma once

struct fixture {
        struct config *cfg;
        struct view view;
        struct role_plan *plan;
        char root[64];
};

static inline void fixture_load(struct fixture *f, const char *view_file, const char *extra_yaml) {
        _cleanup_free_ char *yaml = NULL, *err = NULL, *path = NULL;
        struct diag d = {};

        assert_int_equal(asprintf_safe(&yaml, "%s%s", base_yaml, extra_yaml ?: ""), 0);
        assert_int_equal(config_parse_string(yaml, strlen(yaml), "test.yaml", &f->cfg, &d), 0);
        diag_clear(&d);
        assert_int_equal(asprintf_safe(&path, "data/views/%s", view_file), 0);
        assert_int_equal(view_from_json_file(path, &f->view, &err), 0);
        assert_int_equal(elect(&f->view, f->cfg, &f->plan), 0);
        strcpy(f->root, "/tmp/test-svc.XXXXXX");
        assert_non_null(mkdtemp(f->root));
}

static inline void fixture_done(struct fixture *f) {
        _cleanup_free_ char *cmd = NULL;

        assert_int_equal(asprintf_safe(&cmd, "rm -rf '%s'", f->root), 0);
        assert_int_equal(system(cmd), 0);
        config_free(f->cfg);
        view_done(&f->view);
        role_plan_free(f->plan);
}

static inline void ctx_for(const struct fixture *f, size_t node, struct step_ctx *c) {
        struct bringup_state s = { .plan = f->plan, .view = f->view, .self = &f->plan->nodes[node] };

        s.self_info = step_node_info(&(struct step_ctx){ .view = &f->view }, s.self->id);
        step_ctx_init(c, f->cfg, &s, f->root, "/var/lib/rainboot");
        c->view = &f->view; /* s is a local copy: point at the fixture's view */
        c->vip_iface = "eth0";
}

static inline const struct step_file *find_file(const struct step_render *r, const char *suffix) {
        for (size_t i = 0; i < r->n_files; i++)
                if (endswith(r->files[i].path, suffix))
                        return &r->files[i];
        return NULL;
}

/* The line of text whose first non-blank characters are key, or NULL. */
static inline const char *line_with(const char *text, const char *key) {
        for (const char *p = text; p && *p;) {
                const char *s = p + strspn(p, " ");

                if (startswith(s, key) && (s[strlen(key)] == ' ' || s[strlen(key)] == '\n'))
                        return s;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return NULL;
}

static inline void assert_line(const char *text, const char *line) {
        const char *s = line_with(text, line);
        size_t l = strlen(line);

        if (!s || (s[l] != '\n' && s[l] != 0))
                fail_msg("no line '%s' in:\n%s", line, text);
}
