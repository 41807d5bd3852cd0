/* SPDX-License-Identifier: MIT */
/* Registry steps: docker-registry's config.yml, the htpasswd line (checked with crypt_rn),
 * containerd's hosts.toml, the /etc/hosts rewrite, image names from bundle names, the
 * haproxy frontend on VIP:5000, the OCI archive's manifest digest and the images step's
 * commands (no password on them). Writes only under a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <sys/stat.h>

#include "config.h"
#include "elect.h"
#include "registry.h"
#include "steps.h"
#include "util.h"
#include "view_json.h"

static const char *const base_yaml = "cluster:\n"
                                     "  name: t\n"
                                     "  token: test-token-0123456789\n"
                                     "  expected_nodes: 3\n"
                                     "vip:\n"
                                     "  address: 192.0.2.100/24\n"
                                     "  router_id: 61\n";

#include "step_fixture.h"

#define PW "Sealed-Registry-Pw-0123456789abc"

static size_t registry_node(const struct fixture *f) {
        for (size_t i = 0; i < f->plan->n; i++)
                if (f->plan->nodes[i].roles & ROLE_REGISTRY)
                        return i;
        fail_msg("the plan has no registry node");
        return 0;
}

static size_t other_node(const struct fixture *f) {
        for (size_t i = 0; i < f->plan->n; i++)
                if (!(f->plan->nodes[i].roles & ROLE_REGISTRY))
                        return i;
        fail_msg("every node is a registry node");
        return 0;
}

static void write_file(const char *root, const char *rel, const char *content, mode_t mode) {
        _cleanup_free_ char *p = NULL, *dir = NULL;

        assert_int_equal(asprintf_safe(&p, "%s%s", root, rel), 0);
        dir = strdup(p);
        assert_non_null(dir);
        *strrchr(dir, '/') = 0;
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        assert_int_equal(write_file_atomic(p, content, strlen(content), mode), 0);
}

/* A state directory under the fixture's root, with sealed secrets. */
static void with_secrets(struct fixture *f, struct step_ctx *c, char state[static 128]) {
        snprintf(state, 128, "%s/state", f->root);
        write_file(f->root, "/state/secrets/cluster.env",
                   "join_token=abcdef.0123456789abcdef\nregistry_password=" PW "\n", 0600);
        c->state_dir = state;
}

static void test_config_yml(void **state) {
        struct fixture f = {};
        struct step_ctx c;
        _cleanup_free_ char *yml = NULL, *want = NULL;
        char addr[INET_ADDRSTRLEN];
        (void)state;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, registry_node(&f), &c);
        assert_int_equal(registry_render_config(&c, "s3cr3t", &yml), 0);
        inet_ntop(AF_INET, &c.self_info->addrs[0], addr, sizeof addr);
        assert_int_equal(asprintf_safe(&want, "addr: '%s:5000'", addr), 0);
        assert_line(yml, want);
        free(want);
        assert_int_equal(asprintf_safe(&want, "certificate: '%s/etc/rainboot/pki/registry.crt'",
                                       f.root), 0);
        assert_line(yml, want);
        free(want);
        assert_int_equal(asprintf_safe(&want, "key: '%s/etc/rainboot/pki/registry.key'", f.root), 0);
        assert_line(yml, want);
        free(want);
        assert_int_equal(asprintf_safe(&want, "rootdirectory: '%s%s/registry'", f.root,
                                       f.cfg->services_mount), 0);
        assert_line(yml, want);
        free(want);
        assert_int_equal(asprintf_safe(&want, "path: '%s/etc/docker/registry/htpasswd'", f.root), 0);
        assert_line(yml, want);
        assert_line(yml, "secret: 's3cr3t'");
        /* delete stays off */
        assert_non_null(strstr(yml, "  delete:\n    enabled: false\n"));
        fixture_done(&f);
}

static void test_htpasswd(void **state) {
        _cleanup_free_ char *line = NULL, *again = NULL, *other = NULL, *hash = NULL;
        _cleanup_free_ struct crypt_data *cd = calloc(1, sizeof *cd);
        const char *h;
        (void)state;

        assert_non_null(cd);
        assert_int_equal(registry_htpasswd_line("admin", PW, NULL, &line), 0);
        assert_true(startswith(line, "admin:$2y$05$"));
        assert_true(endswith(line, "\n"));
        hash = strndup(line + 6, strlen(line) - 7);
        assert_non_null(hash);
        /* The hash verifies the password, and only it. */
        h = crypt_rn(PW, hash, cd, sizeof *cd);
        assert_non_null(h);
        assert_string_equal(h, hash);
        h = crypt_rn("wrong", hash, cd, sizeof *cd);
        assert_true(!h || strcmp(h, hash) != 0);
        /* A file whose line still matches is kept byte for byte (stable rendering)... */
        assert_int_equal(registry_htpasswd_line("admin", PW, line, &again), 0);
        assert_string_equal(again, line);
        /* ... and one for another password gets a new hash. */
        assert_int_equal(registry_htpasswd_line("admin", "another-password", line, &other), 0);
        assert_string_not_equal(other, line);
        assert_true(startswith(other, "admin:$2y$05$"));
}

static void test_hosts_toml(void **state) {
        _cleanup_free_ char *t = NULL;
        (void)state;

        assert_int_equal(registry_render_hosts_toml("/etc/rainboot/pki/ca.crt", &t), 0);
        assert_line(t, "server = \"https://goodrain.me:5000\"");
        assert_line(t, "[host.\"https://goodrain.me:5000\"]");
        assert_line(t, "capabilities = [\"pull\", \"resolve\", \"push\"]");
        assert_line(t, "ca = \"/etc/rainboot/pki/ca.crt\"");
}

static void test_hosts_rewrite(void **state) {
        static const char current[] =
                "127.0.0.1\tlocalhost\n"
                "# a comment naming goodrain.me stays\n"
                "\n"
                "10.0.0.5 node1 goodrain.me node1.lan # Rainbond's installer\n"
                "10.0.0.6 GoodRain.Me\n"
                "::1 localhost ip6-localhost\n";
        _cleanup_free_ char *out = NULL, *again = NULL, *moved = NULL, *empty = NULL;
        (void)state;

        assert_int_equal(registry_hosts_rewrite(current, "192.0.2.100", &out), 0);
        assert_string_equal(out,
                            "127.0.0.1\tlocalhost\n"
                            "# a comment naming goodrain.me stays\n"
                            "\n"
                            "10.0.0.5 node1 node1.lan # Rainbond's installer\n"
                            "::1 localhost ip6-localhost\n"
                            "192.0.2.100 goodrain.me " REGISTRY_HOSTS_MARK "\n");
        /* Idempotent. */
        assert_int_equal(registry_hosts_rewrite(out, "192.0.2.100", &again), 0);
        assert_string_equal(again, out);
        /* The managed line stays where it is, with the new address; duplicates go. */
        assert_int_equal(registry_hosts_rewrite("192.0.2.1 goodrain.me " REGISTRY_HOSTS_MARK "\n"
                                                "127.0.0.1 localhost\n"
                                                "192.0.2.2 goodrain.me " REGISTRY_HOSTS_MARK "\n",
                                                "192.0.2.100", &moved), 0);
        assert_string_equal(moved, "192.0.2.100 goodrain.me " REGISTRY_HOSTS_MARK "\n"
                                   "127.0.0.1 localhost\n");
        assert_int_equal(registry_hosts_rewrite(NULL, "192.0.2.100", &empty), 0);
        assert_string_equal(empty, "192.0.2.100 goodrain.me " REGISTRY_HOSTS_MARK "\n");
}

static void test_image_ref(void **state) {
        static const struct {
                const char *name, *want;
        } cases[] = {
                { "rainbond/rbd-chaos:v6", "rainbond/rbd-chaos:v6" },
                { "rainbond/rbd-chaos", "rainbond/rbd-chaos:latest" },
                { "busybox", "busybox:latest" },
                { "docker.io/rainbond/rbd-api:v6.1.0-release", "rainbond/rbd-api:v6.1.0-release" },
                { "registry.cn-hangzhou.aliyuncs.com/goodrain/rbd-mq:v6", "goodrain/rbd-mq:v6" },
                { "localhost/a/b:t", "a/b:t" },
                { "localhost:5000/a__b.c-d/e:T_1", "a__b.c-d/e:T_1" },
                { "Rainbond/x:v1", NULL },
                { "rainbond/x@sha256:0123", NULL },
                { "rainbond//x:v1", NULL },
                { "rainbond/x:", NULL },
                { "rainbond/-x:v1", NULL },
                { "rainbond/x:.v1", NULL },
                { "rainbond/x y:v1", NULL },
        };
        (void)state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *ref = NULL;
                int r = registry_image_ref(cases[i].name, &ref);

                if (!cases[i].want) {
                        if (r != -EINVAL)
                                fail_msg("'%s' should be refused, got %d (%s)", cases[i].name, r,
                                         ref ?: "");
                        continue;
                }
                if (r != 0)
                        fail_msg("'%s' refused: %d", cases[i].name, r);
                assert_string_equal(ref, cases[i].want);
        }
}

static void test_skips(void **state) {
        struct fixture f = {};
        struct step_ctx c;
        char st[128];
        (void)state;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, registry_node(&f), &c);
        snprintf(st, sizeof st, "%s/no-state", f.root);
        c.state_dir = st;
        assert_non_null(strstr(step_registry.skip_reason(&c), "no sealed secrets"));
        assert_non_null(strstr(step_registry_trust.skip_reason(&c), "no sealed secrets"));
        /* Secrets from a test or an older firstboot, without the registry's password. */
        write_file(f.root, "/no-state/secrets/cluster.env", "join_token=abcdef.0123456789abcdef\n",
                   0600);
        assert_string_equal(step_registry.skip_reason(&c),
                            "the sealed secrets carry no registry_password");
        assert_null(step_registry_trust.skip_reason(&c));
        with_secrets(&f, &c, st);
        assert_null(step_registry.skip_reason(&c));
        assert_null(step_registry_trust.skip_reason(&c));
        /* No bundle in the image: nothing to push. */
        assert_non_null(strstr(step_images.skip_reason(&c), "no offline bundle"));
        ctx_for(&f, other_node(&f), &c);
        with_secrets(&f, &c, st);
        assert_string_equal(step_registry.skip_reason(&c), "not a registry node");
        assert_string_equal(step_images.skip_reason(&c), "not a registry node");
        assert_null(step_registry_trust.skip_reason(&c));
        fixture_done(&f);

        fixture_load(&f, "three-nodes.json",
                     "external:\n  registry: {domain: \"reg.example.org:5000\"}\n");
        ctx_for(&f, 0, &c);
        with_secrets(&f, &c, st);
        assert_non_null(strstr(step_registry.skip_reason(&c), "external.registry"));
        assert_non_null(strstr(step_registry_trust.skip_reason(&c), "external.registry"));
        assert_non_null(strstr(step_images.skip_reason(&c), "external.registry"));
        fixture_done(&f);
}

static void test_registry_step(void **state) {
        struct fixture f = {};
        struct step_ctx c;
        _cleanup_(step_render_done) struct step_render rd = {}, rd2 = {};
        const struct step_file *ht, *conf;
        char st[128];
        (void)state;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, registry_node(&f), &c);
        with_secrets(&f, &c, st);
        c.supervisor = SVCMGR_DIRECT;
        assert_int_equal(step_registry.render(&c, &rd), 0);
        ht = find_file(&rd, "/etc/docker/registry/htpasswd");
        conf = find_file(&rd, "/etc/docker/registry/config.yml");
        assert_non_null(ht);
        assert_non_null(conf);
        assert_int_equal(ht->mode, 0600);
        assert_int_equal(conf->mode, 0600);
        assert_null(strstr(conf->content, PW));
        assert_int_equal(rd.n_commands, 0);
        assert_int_equal(rd.n_services, 1);
        assert_string_equal(rd.services[0].unit, "docker-registry.service");
        assert_string_equal(rd.services[0].argv[0], "docker-registry");
        assert_string_equal(rd.services[0].argv[1], "serve");
        assert_string_equal(rd.services[0].argv[2], conf->path);
        /* Once written, the htpasswd line is reused: the render is the same again. */
        write_file(f.root, "/etc/docker/registry/htpasswd", ht->content, 0600);
        assert_int_equal(step_registry.render(&c, &rd2), 0);
        assert_string_equal(find_file(&rd2, "/etc/docker/registry/htpasswd")->content, ht->content);
        assert_string_equal(find_file(&rd2, "/etc/docker/registry/config.yml")->content,
                            conf->content);
        fixture_done(&f);
}

static void test_trust_step(void **state) {
        struct fixture f = {};
        struct step_ctx c;
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_free_ char *want = NULL;
        const struct step_file *hosts, *toml;
        char st[128];
        (void)state;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, other_node(&f), &c);
        with_secrets(&f, &c, st);
        write_file(f.root, "/etc/hosts", "127.0.0.1 localhost\n", 0644);
        assert_int_equal(step_registry_trust.render(&c, &rd), 0);
        hosts = find_file(&rd, "/etc/hosts");
        toml = find_file(&rd, "/etc/containerd/certs.d/goodrain.me:5000/hosts.toml");
        assert_non_null(hosts);
        assert_non_null(toml);
        /* The VIP, never a node's address. */
        assert_string_equal(hosts->content,
                            "127.0.0.1 localhost\n192.0.2.100 goodrain.me " REGISTRY_HOSTS_MARK "\n");
        assert_int_equal(asprintf_safe(&want, "ca = \"%s/etc/rainboot/pki/ca.crt\"", f.root), 0);
        assert_line(toml->content, want);
        fixture_done(&f);
}

static void test_haproxy_frontend(void **state) {
        struct fixture f = {};
        struct step_ctx c;
        _cleanup_(step_render_done) struct step_render rd = {}, rd2 = {};
        _cleanup_free_ char *want = NULL;
        const struct step_file *cfg;
        const struct node_info *ni;
        char addr[INET_ADDRSTRLEN];
        size_t reg;
        (void)state;

        fixture_load(&f, "three-nodes.json", NULL);
        reg = registry_node(&f);
        ctx_for(&f, other_node(&f), &c);
        assert_int_equal(step_haproxy.render(&c, &rd), 0);
        cfg = find_file(&rd, "/etc/haproxy/haproxy.cfg");
        assert_non_null(cfg);
        assert_line(cfg->content, "frontend registry");
        assert_line(cfg->content, "bind 192.0.2.100:5000");
        assert_line(cfg->content, "option httpchk GET /v2/");
        ni = step_node_info(&c, f.plan->nodes[reg].id);
        inet_ntop(AF_INET, &ni->addrs[0], addr, sizeof addr);
        assert_int_equal(asprintf_safe(&want, "%s:5000 check", addr), 0);
        assert_non_null(strstr(cfg->content, want));
        /* One server: only the registry node. */
        assert_null(strstr(strstr(cfg->content, want) + strlen(want), ":5000 check"));
        fixture_done(&f);

        fixture_load(&f, "three-nodes.json",
                     "external:\n  registry: {domain: \"reg.example.org:5000\"}\n");
        ctx_for(&f, 0, &c);
        assert_int_equal(step_haproxy.render(&c, &rd2), 0);
        assert_null(strstr(find_file(&rd2, "/etc/haproxy/haproxy.cfg")->content, "registry"));
        fixture_done(&f);
}

/* A tar holding index.json (and a blob before it), as an oci-archive. */
static void make_archive(const char *root, const char *name, const char *index) {
        _cleanup_free_ char *cmd = NULL;

        write_file(root, "/oci/blobs/sha256/aa", "blob", 0644);
        write_file(root, "/oci/index.json", index, 0644);
        write_file(root, "/oci/oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}", 0644);
        assert_int_equal(asprintf_safe(&cmd, "tar -C '%s/oci' -cf '%s/%s' oci-layout blobs index.json",
                                       root, root, name), 0);
        assert_int_equal(system(cmd), 0);
}

static void test_oci_digest(void **state) {
        struct fixture f = {};
        _cleanup_free_ char *p = NULL, *q = NULL;
        char d[72];
        (void)state;

        fixture_load(&f, "single-node.json", NULL);
        make_archive(f.root, "one.tar",
                     "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci."
                     "image.manifest.v1+json\",\"digest\":\"sha256:"
                     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                     "\"size\":1}]}");
        assert_int_equal(asprintf_safe(&p, "%s/one.tar", f.root), 0);
        assert_int_equal(oci_archive_digest(p, d), 0);
        assert_string_equal(d, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        make_archive(f.root, "two.tar",
                     "{\"manifests\":[{\"digest\":\"sha256:00\"},{\"digest\":\"sha256:11\"}]}");
        assert_int_equal(asprintf_safe(&q, "%s/two.tar", f.root), 0);
        assert_int_equal(oci_archive_digest(q, d), -EBADMSG);
        write_file(f.root, "/junk.tar", "not a tar at all", 0644);
        free(q);
        assert_int_equal(asprintf_safe(&q, "%s/junk.tar", f.root), 0);
        assert_int_equal(oci_archive_digest(q, d), -EBADMSG);
        fixture_done(&f);
}

static void test_images_step(void **state) {
        struct fixture f = {};
        struct step_ctx c;
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_free_ char *manifest = NULL, *dest = NULL;
        const struct step_file *auth;
        char st[128], addr[INET_ADDRSTRLEN];
        (void)state;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, registry_node(&f), &c);
        with_secrets(&f, &c, st);
        assert_int_equal(asprintf_safe(&manifest,
                                       "{\"version\": 1, \"artifacts\": ["
                                       "{\"name\": \"rke2\", \"kind\": \"binary\", \"file\": \"bin/rke2\", "
                                       "\"size\": 1, \"sha256\": \"%064d\"},"
                                       "{\"name\": \"rainbond/rbd-chaos:v6\", \"kind\": \"oci-archive\", "
                                       "\"file\": \"images/chaos.tar\", \"size\": 1, \"sha256\": \"%064d\"}]}",
                                       0, 0), 0);
        write_file(f.root, "/usr/share/rainboot/bundle.json", manifest, 0644);
        assert_null(step_images.skip_reason(&c));
        assert_int_equal(step_images.render(&c, &rd), 0);
        auth = find_file(&rd, "secrets/registry-auth.json");
        assert_non_null(auth);
        assert_int_equal(auth->mode, 0600);
        /* base64("admin:" PW) */
        assert_non_null(strstr(auth->content, "YWRtaW46U2VhbGVkLVJlZ2lzdHJ5LVB3LTAxMjM0NTY3ODlhYmM="));
        assert_int_equal(rd.n_commands, 1);
        inet_ntop(AF_INET, &c.self_info->addrs[0], addr, sizeof addr);
        assert_int_equal(asprintf_safe(&dest, "docker://%s:5000/rainbond/rbd-chaos:v6", addr), 0);
        assert_string_equal(rd.commands[0][0], "skopeo");
        assert_true(strv_contains(rd.commands[0], dest));
        assert_true(strv_contains(rd.commands[0], "--preserve-digests"));
        assert_true(strv_contains(rd.commands[0], auth->path));
        for (char **a = rd.commands[0]; *a; a++)
                assert_null(strstr(*a, PW));
        fixture_done(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_yml),
                cmocka_unit_test(test_htpasswd),
                cmocka_unit_test(test_hosts_toml),
                cmocka_unit_test(test_hosts_rewrite),
                cmocka_unit_test(test_image_ref),
                cmocka_unit_test(test_skips),
                cmocka_unit_test(test_registry_step),
                cmocka_unit_test(test_trust_step),
                cmocka_unit_test(test_haproxy_frontend),
                cmocka_unit_test(test_oci_digest),
                cmocka_unit_test(test_images_step),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
