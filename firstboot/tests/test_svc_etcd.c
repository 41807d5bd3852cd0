/* SPDX-License-Identifier: MIT */
/* etcd step: the rendered config file (TLS with the cluster PKI's files), the systemd
 * drop-in and the service command line checked field by field from fixture views and
 * elected plans. Writes only under a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "elect.h"
#include "steps.h"
#include "util.h"
#include "view_json.h"

static const char *const base_yaml = "kubernetes:\n"
                                     "  distribution: kubeadm\n"
                                     "cluster:\n"
                                     "  name: t\n"
                                     "  token: test-token-0123456789\n"
                                     "  expected_nodes: 3\n"
                                     "vip:\n"
                                     "  address: 192.0.2.100/24\n"
                                     "  router_id: 61\n";

#include "step_fixture.h"

static size_t etcd_members(const struct role_plan *p) {
        size_t n = 0;

        for (size_t i = 0; i < p->n; i++)
                n += !!(p->nodes[i].roles & ROLE_ETCD);
        return n;
}

/* The expected initial-cluster value: every etcd member in plan order. */
static char *want_initial_cluster(const struct fixture *f) {
        char *s = strdup("initial-cluster: '");

        assert_non_null(s);
        for (size_t i = 0, k = 0; i < f->plan->n; i++) {
                const struct node_plan *np = &f->plan->nodes[i];
                const struct node_info *ni;
                char addr[INET_ADDRSTRLEN], *t = NULL;

                if (!(np->roles & ROLE_ETCD))
                        continue;
                ni = step_node_info(&(struct step_ctx){ .view = &f->view }, np->id);
                assert_non_null(ni);
                inet_ntop(AF_INET, &ni->addrs[0], addr, sizeof addr);
                assert_int_equal(asprintf_safe(&t, "%s%s%s=https://%s:2380", s, k++ ? "," : "",
                                               np->hostname, addr), 0);
                free(s);
                s = t;
        }
        {
                char *t = NULL;

                assert_int_equal(asprintf_safe(&t, "%s'", s), 0);
                free(s);
                s = t;
        }
        return s;
}

/* The four lines after the section key: the pki step's etcd pair and CA, client certs
 * required. */
static void assert_tls_section(const char *conf, const char *section, const char *root) {
        const char *s = line_with(conf, section);
        _cleanup_free_ char *want = NULL;

        assert_non_null(s);
        assert_int_equal(asprintf_safe(&want,
                                       "%s\n"
                                       "  cert-file: '%s/etc/rainboot/pki/etcd.crt'\n"
                                       "  key-file: '%s/etc/rainboot/pki/etcd.key'\n"
                                       "  trusted-ca-file: '%s/etc/rainboot/pki/ca.crt'\n"
                                       "  client-cert-auth: true\n",
                                       section, root, root, root),
                         0);
        if (!startswith(s, want))
                fail_msg("no section\n%s in:\n%s", want, conf);
}

/* A state directory with sealed secrets: without them etcd skips (no certificates). */
static void ctx_with_secrets(const struct fixture *f, size_t node, struct step_ctx *c) {
        static char state[128];
        _cleanup_free_ char *dir = NULL, *env = NULL;

        snprintf(state, sizeof state, "%s/state", f->root);
        assert_int_equal(asprintf_safe(&dir, "%s/secrets", state), 0);
        assert_int_equal(mkdir_parents(dir, 0700), 0);
        assert_int_equal(asprintf_safe(&env, "%s/cluster.env", dir), 0);
        assert_int_equal(write_file_atomic(env, "ca_seed=00\n", 11, 0600), 0);
        ctx_for(f, node, c);
        c->state_dir = state;
}

static void render_ok(const struct fixture *f, size_t node, struct step_render *r) {
        struct step_ctx c;

        ctx_with_secrets(f, node, &c);
        assert_null(step_etcd.skip_reason(&c));
        assert_int_equal(step_etcd.render(&c, r), 0);
}

static void test_etcd_fields(void **state _unused_) {
        struct fixture f = {};
        _cleanup_free_ char *cluster = NULL, *token = NULL;
        char digest[2 * DIGEST_LEN + 1];

        fixture_load(&f, "three-nodes.json", NULL);
        assert_int_equal(etcd_members(f.plan), 3);
        cluster = want_initial_cluster(&f);
        assert_non_null(strstr(cluster, "node-1=https://192.0.2.11:2380"));
        assert_non_null(strstr(cluster, "node-2=https://192.0.2.12:2380"));
        assert_non_null(strstr(cluster, "node-3=https://192.0.2.13:2380"));
        hex_encode(f.plan->digest, DIGEST_LEN, digest);
        assert_int_equal(asprintf_safe(&token, "initial-cluster-token: 'rainboot-%.32s'", digest), 0);

        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_(step_render_done) struct step_render r = {};
                _cleanup_free_ char *want = NULL, *conf_path = NULL;
                const struct node_plan *np = &f.plan->nodes[i];
                const struct node_info *ni =
                        step_node_info(&(struct step_ctx){ .view = &f.view }, np->id);
                const struct step_file *conf, *def;
                char addr[INET_ADDRSTRLEN];

                inet_ntop(AF_INET, &ni->addrs[0], addr, sizeof addr);
                render_ok(&f, i, &r);
                conf = find_file(&r, "/etc/rainboot/etcd.conf.yml");
                def = find_file(&r, "/etc/systemd/system/etcd.service.d/rainboot.conf");
                assert_non_null(conf);
                assert_non_null(def);
                assert_int_equal(asprintf_safe(&conf_path, "%s/etc/rainboot/etcd.conf.yml", f.root), 0);
                assert_string_equal(conf->path, conf_path);
                assert_int_equal(conf->mode, 0644);

#define LINE(...) do { \
                free(want); \
                want = NULL; \
                assert_int_equal(asprintf_safe(&want, __VA_ARGS__), 0); \
                assert_line(conf->content, want); \
        } while (0)
                LINE("name: '%s'", np->hostname);
                LINE("data-dir: '%s/var/lib/rainboot/data/etcd'", f.root);
                LINE("listen-client-urls: 'https://%s:2379,https://127.0.0.1:2379'", addr);
                LINE("advertise-client-urls: 'https://%s:2379'", addr);
                LINE("listen-peer-urls: 'https://%s:2380'", addr);
                LINE("initial-advertise-peer-urls: 'https://%s:2380'", addr);
#undef LINE
                assert_line(conf->content, "initial-cluster-state: 'new'");
                assert_line(conf->content, token);
                assert_line(conf->content, cluster);
                /* Both sides TLS with client certificates, from the pki step's files. */
                assert_null(strstr(conf->content, "http:"));
                assert_tls_section(conf->content, "client-transport-security:", f.root);
                assert_tls_section(conf->content, "peer-transport-security:", f.root);

                free(want);
                want = NULL;
                assert_int_equal(asprintf_safe(&want, "ExecStart=/usr/bin/etcd --config-file %s",
                                               conf_path), 0);
                assert_line(def->content, want);
                assert_line(def->content, "ExecStart=");
                assert_line(def->content, "User=root");
                assert_int_equal(def->mode, 0644);
                /* systemd (the default): the drop-in is read only after a daemon-reload. */
                assert_int_equal(r.n_commands, 1);
                assert_string_equal(r.commands[0][0], "systemctl");
                assert_string_equal(r.commands[0][1], "daemon-reload");
                assert_null(r.commands[0][2]);

                assert_int_equal(r.n_services, 1);
                assert_string_equal(r.services[0].name, "etcd");
                assert_string_equal(r.services[0].unit, "etcd.service");
                assert_int_equal(r.services[0].reload_signal, 0);
                assert_string_equal(r.services[0].argv[0], "/usr/bin/etcd");
                assert_string_equal(r.services[0].argv[1], "--config-file");
                assert_string_equal(r.services[0].argv[2], conf_path);
                assert_null(r.services[0].argv[3]);
        }
        fixture_done(&f);
}

static void test_services_mount(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *want = NULL;
        struct fixture f = {};

        fixture_load(&f, "three-nodes.json", "disks:\n  services_mount: /srv/svc\n");
        render_ok(&f, 1, &r);
        assert_int_equal(asprintf_safe(&want, "data-dir: '%s/srv/svc/etcd'", f.root), 0);
        assert_line(find_file(&r, "etcd.conf.yml")->content, want);
        fixture_done(&f);
}

static void test_bundle_binary(void **state _unused_) {
        static const char manifest[] =
                "{\"version\":1,\"artifacts\":[{\"name\":\"etcd\",\"kind\":\"binary\","
                "\"file\":\"bin/etcd-v3.5.16\",\"size\":0,\"sha256\":\"00\"}]}";
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *dir = NULL, *bin = NULL, *mpath = NULL;
        struct fixture f = {};
        int fd;

        fixture_load(&f, "three-nodes.json", NULL);
        assert_int_equal(asprintf_safe(&dir, "%s/usr/share/rainboot/bundle/bin", f.root), 0);
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        /* Found by its name in the manifest, whatever the file is called. */
        assert_int_equal(asprintf_safe(&mpath, "%s/usr/share/rainboot/bundle.json", f.root), 0);
        assert_int_equal(write_file_atomic(mpath, manifest, strlen(manifest), 0644), 0);
        assert_int_equal(asprintf_safe(&bin, "%s/etcd-v3.5.16", dir), 0);
        /* Not executable: not taken. */
        fd = open(bin, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        {
                _cleanup_(step_render_done) struct step_render r0 = {};

                render_ok(&f, 0, &r0);
                assert_string_equal(r0.services[0].argv[0], "/usr/bin/etcd");
        }
        assert_int_equal(chmod(bin, 0755), 0);
        render_ok(&f, 0, &r);
        assert_string_equal(r.services[0].argv[0], bin);
        assert_non_null(strstr(find_file(&r, "rainboot.conf")->content, bin));
        fixture_done(&f);
}

static const char *token_of(const struct step_render *r, char *buf, size_t size) {
        const char *l = line_with(find_file(r, "etcd.conf.yml")->content, "initial-cluster-token:");

        assert_non_null(l);
        snprintf(buf, size, "%.*s", (int)strcspn(l, "\n"), l);
        return buf;
}

static void test_token_per_cluster(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render a = {}, b = {}, o = {};
        struct fixture f = {}, g = {};
        char ta[128], tb[128], to[128];

        fixture_load(&f, "three-nodes.json", NULL);
        fixture_load(&g, "five-nodes.json", NULL);
        render_ok(&f, 0, &a);
        render_ok(&f, 2, &b);
        for (size_t i = 0; i < g.plan->n; i++)
                if (g.plan->nodes[i].roles & ROLE_ETCD) {
                        render_ok(&g, i, &o);
                        break;
                }
        assert_non_null(o.files);
        /* Same cluster: the same token on every member; another cluster: another one. */
        assert_string_equal(token_of(&a, ta, sizeof ta), token_of(&b, tb, sizeof tb));
        assert_string_not_equal(ta, token_of(&o, to, sizeof to));
        fixture_done(&f);
        fixture_done(&g);
}

static void test_skips_and_members(void **state _unused_) {
        struct fixture f = {};
        size_t skipped = 0, rendered = 0;

        fixture_load(&f, "five-nodes.json", NULL);
        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_(step_render_done) struct step_render r = {};
                _cleanup_free_ char *cluster = NULL;
                struct step_ctx c;

                ctx_with_secrets(&f, i, &c);
                if (!(f.plan->nodes[i].roles & ROLE_ETCD)) {
                        assert_non_null(strstr(step_etcd.skip_reason(&c), "not an etcd member"));
                        skipped++;
                        continue;
                }
                assert_int_equal(step_etcd.render(&c, &r), 0);
                cluster = want_initial_cluster(&f);
                assert_line(find_file(&r, "etcd.conf.yml")->content, cluster);
                rendered++;
        }
        assert_true(skipped > 0);
        assert_int_equal(rendered, etcd_members(f.plan));
        fixture_done(&f);
}

static void test_member_without_address(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct fixture f = {};
        struct step_ctx c;

        fixture_load(&f, "three-nodes.json", NULL);
        /* Another member lost its address in the view: no initial-cluster can name it. */
        for (size_t i = 0; i < f.view.n; i++)
                if (node_id_cmp(f.view.nodes[i].id, f.plan->nodes[1].id) == 0)
                        f.view.nodes[i].n_addrs = 0;
        ctx_with_secrets(&f, 0, &c);
        assert_int_equal(step_etcd.render(&c, &r), -EADDRNOTAVAIL);
        fixture_done(&f);
}

static void test_direct_supervisor(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct fixture f = {};
        struct step_ctx c;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_with_secrets(&f, 0, &c);
        c.supervisor = SVCMGR_DIRECT;
        assert_int_equal(step_etcd.render(&c, &r), 0);
        /* No systemd in the namespace harness: nothing to reload. */
        assert_int_equal(r.n_commands, 0);
        assert_int_equal(r.n_services, 1);
        fixture_done(&f);
}

static void test_needs_secrets_and_pki(void **state _unused_) {
        struct fixture f = {};
        struct step_ctx c;
        char dir[128];

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, 0, &c);
        snprintf(dir, sizeof dir, "%s/no-state", f.root);
        c.state_dir = dir;
        assert_non_null(strstr(step_etcd.skip_reason(&c), "no sealed secrets"));
        assert_non_null(step_etcd.after);
        assert_string_equal(step_etcd.after[0], "pki");
        assert_null(step_etcd.after[1]);
        fixture_done(&f);
}

static void test_rke2_embeds_etcd(void **state _unused_) {
        _cleanup_free_ char *yaml = NULL;
        struct fixture f = {};
        struct diag d = {};
        size_t members = 0;

        fixture_load(&f, "three-nodes.json", NULL);
        config_free(f.cfg);
        /* The default distribution. */
        assert_non_null(yaml = strdup(strstr(base_yaml, "cluster:\n")));
        assert_int_equal(config_parse_string(yaml, strlen(yaml), "rke2.yaml", &f.cfg, &d), 0);
        diag_clear(&d);
        for (size_t i = 0; i < f.plan->n; i++) {
                struct step_ctx c;

                members += !!(f.plan->nodes[i].roles & ROLE_ETCD);
                ctx_for(&f, i, &c);
                assert_non_null(strstr(step_etcd.skip_reason(&c), "embedded etcd"));
        }
        assert_int_equal(members, 3);
        fixture_done(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_etcd_fields),
                cmocka_unit_test(test_services_mount),
                cmocka_unit_test(test_bundle_binary),
                cmocka_unit_test(test_token_per_cluster),
                cmocka_unit_test(test_skips_and_members),
                cmocka_unit_test(test_member_without_address),
                cmocka_unit_test(test_direct_supervisor),
                cmocka_unit_test(test_needs_secrets_and_pki),
                cmocka_unit_test(test_rke2_embeds_etcd),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
