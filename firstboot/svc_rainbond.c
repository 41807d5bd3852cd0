/* SPDX-License-Identifier: MIT */
/* Rainbond on the cluster (issue 4 item 8), from the bootstrap master once Kubernetes is
 * up: the Helm values of Rainbond's chart (Cluster.* as its documentation names them),
 * then `helm upgrade --install` when the offline bundle has helm and the chart. The values
 * are written in any case, so an operator can install by hand where the bundle has no
 * helm; they hold the registry and database passwords, hence 0600. */
#include <arpa/inet.h>

#include "log.h"
#include "svc_kube.h"
#include "util.h"

#define RAINBOND_VALUES "/etc/rainboot/rainbond/values.yaml"
#define RAINBOND_RELEASE "rainbond"
#define RAINBOND_NAMESPACE "rbd-system"
#define RAINBOND_DB_USER "rainbond"
#define MYSQL_PORT 3306

static const char *rainbond_skip(const struct step_ctx *c) {
        if (!(c->self->flags & PLAN_BOOTSTRAP))
                return "not the bootstrap master (Rainbond is installed once, from there)";
        return kube_secrets_missing(c);
}

/* Why helm does not run here (static text), or NULL when it does. */
static const char *helm_skip(const struct step_ctx *c, char **ret_helm, char **ret_chart) {
        int r;

        if (kube_bundle_missing(c))
                return "no Kubernetes here: the kubernetes step was skipped";
        r = kube_bundle_find(c, "binary", "helm", ret_helm);
        if (r <= 0)
                return "no helm binary in the offline bundle (" KUBE_BUNDLE_MANIFEST ")";
        r = kube_bundle_find(c, "chart", "rainbond", ret_chart);
        if (r <= 0)
                return "no rainbond chart in the offline bundle (" KUBE_BUNDLE_MANIFEST ")";
        return NULL;
}

static int db_section(FILE *f, const char *key, const char *host, unsigned port, const char *name,
                      const char *user, const char *password) {
        int r;

        fprintf(f, "  %s:\n    enable: true\n    host: ", key);
        r = kube_yaml_quote(f, host);
        fprintf(f, "\n    port: %u\n    name: ", port);
        if (r >= 0)
                r = kube_yaml_quote(f, name);
        fputs("\n    username: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, user);
        fputs("\n    password: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, password);
        fputc('\n', f);
        return r;
}

static int mysql_primary(const struct step_ctx *c, char buf[static INET_ADDRSTRLEN]) {
        for (size_t i = 0; i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];

                if ((np->roles & ROLE_MYSQL) && (np->flags & PLAN_MYSQL_PRIMARY))
                        return kube_node_address(c, np, buf);
        }
        return log_error_errno(-ENOENT, "The plan has no MySQL primary for Rainbond's databases: "
                                        "set external.mysql in the config, or add a node.");
}

static int render_values(const struct step_ctx *c, const char *registry_password,
                         const char *db_password, const char *helm_note, char **ret) {
        const struct external_registry *xr = c->cfg->ext_registry;
        const struct external_mysql *xm = c->cfg->ext_mysql;
        char front[INET_ADDRSTRLEN], db_host[INET_ADDRSTRLEN];
        _cleanup_free_ char *endpoint = NULL, *repo = NULL, *operator_image = NULL;
        char *buf = NULL;
        size_t size = 0, n_gw = 0, n_chaos = 0;
        FILE *f;
        int r;

        /* The address clients reach the gateway at: the VIP, or the external LB. */
        if ((r = kube_api_endpoint(c, &endpoint)) < 0)
                return r;
        *strrchr(endpoint, ':') = 0;
        snprintf(front, sizeof front, "%s", endpoint);
        if (!xm && (r = mysql_primary(c, db_host)) < 0)
                return r;
        /* Offline, every Rainbond image comes from the registry the images step filled, the
         * operator's too: the chart's defaults point at a public registry. */
        if (xr)
                r = asprintf_safe(&repo, "%s%s%s", xr->domain, xr->namespace ? "/" : "",
                                  xr->namespace ? xr->namespace : "");
        else
                r = asprintf_safe(&repo, "%s/%s", REGISTRY_HOST, KUBE_REGISTRY_NAMESPACE);
        if (r < 0)
                return r;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# Rendered by firstboot: values of Rainbond's Helm chart; `firstboot apply`\n"
                "# rewrites it. helm: %s.\n"
                "operator:\n"
                "  image:\n"
                "    name: ",
                helm_note);
        if ((r = asprintf_safe(&operator_image, "%s/rainbond-operator", repo)) >= 0)
                r = kube_yaml_quote(f, operator_image);
        fputs("\nCluster:\n  rainbondImageRepository: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, repo);
        fprintf(f, "\n  gatewayIngressIPs: '%s'\n", front);
        for (size_t i = 0; i < c->plan->n; i++) {
                n_gw += !!(c->plan->nodes[i].roles & ROLE_GATEWAY);
                n_chaos += !!(c->plan->nodes[i].roles & ROLE_BUILDER);
        }
        fprintf(f, "  nodesForGateway:%s\n", n_gw ? "" : " []");
        for (size_t i = 0; r >= 0 && i < c->plan->n; i++) {
                const struct node_plan *np = &c->plan->nodes[i];
                char name[KUBE_NODE_NAME_MAX], addr[INET_ADDRSTRLEN];

                if (!(np->roles & ROLE_GATEWAY))
                        continue;
                kube_node_name(np, name);
                if ((r = kube_node_address(c, np, addr)) < 0)
                        break;
                /* One address per node is known: the cluster interface's, which is also
                 * where the VIP lands. */
                fputs("    - name: ", f);
                r = kube_yaml_quote(f, name);
                fprintf(f, "\n      internalIP: '%s'\n      externalIP: '%s'\n", addr, addr);
        }
        fprintf(f, "  nodesForChaos:%s\n", n_chaos ? "" : " []");
        for (size_t i = 0; r >= 0 && i < c->plan->n; i++) {
                char name[KUBE_NODE_NAME_MAX];

                if (!(c->plan->nodes[i].roles & ROLE_BUILDER))
                        continue;
                kube_node_name(&c->plan->nodes[i], name);
                fputs("    - name: ", f);
                r = kube_yaml_quote(f, name);
                fputc('\n', f);
        }
        fprintf(f, "  containerdRuntimePath: '%s'\n",
                c->cfg->k8s == K8S_RKE2 ? "/var/run/k3s/containerd" : "/run/containerd");
        fputs("  imageHub:\n    enable: true\n    domain: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, xr ? xr->domain : REGISTRY_HOST);
        fputs("\n    namespace: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, xr ? (xr->namespace ? xr->namespace : "") : KUBE_REGISTRY_NAMESPACE);
        fputs("\n    username: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, xr ? (xr->username ? xr->username : "") : REGISTRY_USER);
        fputs("\n    password: ", f);
        if (r >= 0)
                r = kube_yaml_quote(f, xr ? (xr->password ? xr->password : "") : registry_password);
        fputc('\n', f);
        if (r >= 0 && xm) {
                r = db_section(f, "regionDatabase", xm->host, xm->port, xm->region_database,
                               xm->username, xm->password ? xm->password : "");
                if (r >= 0)
                        r = db_section(f, "uiDatabase", xm->host, xm->port, xm->console_database,
                                       xm->username, xm->password ? xm->password : "");
        } else if (r >= 0) {
                r = db_section(f, "regionDatabase", db_host, MYSQL_PORT, "region", RAINBOND_DB_USER,
                               db_password);
                if (r >= 0)
                        r = db_section(f, "uiDatabase", db_host, MYSQL_PORT, "console",
                                       RAINBOND_DB_USER, db_password);
        }
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                if (buf)
                        explicit_bzero(buf, strlen(buf));
                free(buf);
                if (r == -EINVAL)
                        log_error("A registry or database credential holds control characters: it "
                                  "cannot go into %s; fix external.* in the config.", RAINBOND_VALUES);
                return r;
        }
        *ret = buf;
        return 0;
}

static void secret_freep(char **s) {
        if (*s) {
                explicit_bzero(*s, strlen(*s));
                free(*s);
        }
}

/* A secret the in-cluster services need; "" when an external service replaces them. */
static int secret_for(const struct step_ctx *c, const char *key, bool needed, char **ret) {
        int r;

        if (!needed) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        r = step_secret(c, key, ret);
        if (r == -ENOENT)
                return log_error_errno(r, "The cluster secrets lack %s: rerun discovery so the "
                                          "bootstrap node hands them out again.", key);
        return r;
}

static int rainbond_render(const struct step_ctx *c, struct step_render *ret) {
        _cleanup_(step_render_done) struct step_render rd = {};
        _cleanup_(secret_freep) char *reg_pw = NULL, *db_pw = NULL, *values = NULL;
        _cleanup_free_ char *path = NULL, *helm = NULL, *chart = NULL, *dest = NULL;
        _cleanup_free_ char *kubeconfig = NULL;
        const char *why = helm_skip(c, &helm, &chart);
        int r;

        if ((r = secret_for(c, "registry_password", !c->cfg->ext_registry, &reg_pw)) < 0 ||
            (r = secret_for(c, "mysql_rainbond_password", !c->cfg->ext_mysql, &db_pw)) < 0 ||
            (r = render_values(c, reg_pw, db_pw, why ? why : "installed by `firstboot apply`",
                               &values)) < 0 ||
            (r = step_path(c, RAINBOND_VALUES, &path)) < 0 ||
            (r = step_render_add_file(&rd, path, TAKE_PTR(values), 0600)) < 0)
                return r;
        if (!why) {
                if ((r = step_path(c, KUBE_BIN_DIR "/helm", &dest)) < 0 ||
                    (r = kube_kubeconfig(c, &kubeconfig)) < 0 ||
                    (r = step_render_add_command(&rd, "install", "-D", "-m", "0755", helm, dest,
                                                 NULL)) < 0 ||
                    /* upgrade --install: a rerun after a changed value updates the release. */
                    (r = step_render_add_command(&rd, dest, "upgrade", "--install", RAINBOND_RELEASE,
                                                 chart, "--namespace", RAINBOND_NAMESPACE,
                                                 "--create-namespace", "--kubeconfig", kubeconfig,
                                                 "--values", path, NULL)) < 0)
                        return r;
        }
        *ret = rd;
        rd = (struct step_render){};
        return 0;
}

static int rainbond_apply(const struct step_ctx *c, const struct step_render *r, bool resumed,
                          struct cmd_failure *f) {
        _cleanup_free_ char *helm = NULL, *chart = NULL;
        const char *why = helm_skip(c, &helm, &chart);

        if (why)
                log_info("Step rainbond: helm install skipped: %s; the values are in %s for a "
                         "manual `helm install`.", why, RAINBOND_VALUES);
        return step_apply_default(c, r, resumed, f);
}

const struct step step_rainbond = {
        .name = "rainbond",
        .after = (const char *const[]){ "kubernetes", "mysql", "mysql-external", "images", NULL },
        .skip_reason = rainbond_skip,
        .render = rainbond_render,
        .apply = rainbond_apply,
};
