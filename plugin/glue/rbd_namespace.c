#include <config.h>

#include "rbd_namespace.h"

#include "virbuffer.h"
#include "virerror.h"

#define VIR_FROM_THIS VIR_FROM_STORAGE

static void
rbdGlueConfigOptionsFree(void *data)
{
    rbdGlueConfigOptions *opts = data;
    size_t i;

    if (!opts)
        return;
    for (i = 0; i < opts->noptions; i++) {
        g_free(opts->names[i]);
        g_free(opts->values[i]);
    }
    g_free(opts->names);
    g_free(opts->values);
    for (i = 0; i < opts->npolicy; i++) {
        g_free((char *)opts->policy[i].element);
        g_free((char *)opts->policy[i].name);
        g_free((char *)opts->policy[i].value);
    }
    g_free(opts->policy);
    g_free(opts);
}

/* Reads one <rbd:option name= value=/>; reports and fails on a missing or
 * empty attribute. */
static int
rbdGlueParseOption(xmlNodePtr node, char **name, char **value)
{
    g_autofree char *n = virXMLPropString(node, "name");
    g_autofree char *v = NULL;

    if (!n) {
        virReportError(VIR_ERR_XML_ERROR, "%s", _("no rbd option name specified"));
        return -1;
    }
    if (!*n) {
        virReportError(VIR_ERR_XML_ERROR, "%s", _("empty rbd option name specified"));
        return -1;
    }
    if (!(v = virXMLPropString(node, "value"))) {
        virReportError(VIR_ERR_XML_ERROR,
                       _("no rbd option value specified for name '%s'"), n);
        return -1;
    }
    if (!*v) {
        virReportError(VIR_ERR_XML_ERROR,
                       _("empty rbd option value specified for name '%s'"), n);
        return -1;
    }
    *name = g_steal_pointer(&n);
    *value = g_steal_pointer(&v);
    return 0;
}

/* Collects the attributes of every element of the namespace but
 * config_opts (our policy elements) and has the core validate them. */
static int
rbdGlueParsePolicy(xmlXPathContextPtr ctxt, rbdGlueConfigOptions *opts)
{
    g_autofree xmlNodePtr *nodes = NULL;
    rbdc_status st;
    int n;
    size_t i;

    if ((n = virXPathNodeSet("./rbd:*[local-name() != 'config_opts']", ctxt, &nodes)) <= 0)
        return n;
    for (i = 0; i < (size_t)n; i++) {
        xmlAttrPtr attr;
        size_t before = opts->npolicy;
        size_t j;

        for (j = 0; j < i; j++) {
            if (xmlStrEqual(nodes[j]->name, nodes[i]->name)) {
                virReportError(VIR_ERR_XML_ERROR,
                               _("element <rbd:%s> is given twice"), nodes[i]->name);
                return -1;
            }
        }

        for (attr = nodes[i]->properties; attr; attr = attr->next) {
            rbdc_policy_attr *a;

            opts->policy = g_renew(rbdc_policy_attr, opts->policy, opts->npolicy + 1);
            a = &opts->policy[opts->npolicy++];
            a->element = g_strdup((const char *)nodes[i]->name);
            a->name = g_strdup((const char *)attr->name);
            a->value = virXMLPropString(nodes[i], (const char *)attr->name);
            if (!a->value)
                a->value = g_strdup("");
        }
        if (opts->npolicy == before) {
            virReportError(VIR_ERR_XML_ERROR,
                           _("element <rbd:%s> has no attributes"), nodes[i]->name);
            return -1;
        }
    }
    if (rbdc_policy_check(opts->policy, opts->npolicy, &st) < 0) {
        virReportError(VIR_ERR_XML_ERROR, "%s", st.message);
        return -1;
    }
    return 0;
}

static int
rbdGlueNamespaceParse(xmlXPathContextPtr ctxt, void **data)
{
    g_autofree xmlNodePtr *nodes = NULL;
    rbdGlueConfigOptions *opts;
    int n;
    size_t i;

    if ((n = virXPathNodeSet("./rbd:config_opts/rbd:option", ctxt, &nodes)) < 0)
        return -1;

    opts = g_new0(rbdGlueConfigOptions, 1);
    opts->names = g_new0(char *, n);
    opts->values = g_new0(char *, n);
    for (i = 0; i < (size_t)n; i++) {
        if (rbdGlueParseOption(nodes[i], &opts->names[i], &opts->values[i]) < 0) {
            rbdGlueConfigOptionsFree(opts);
            return -1;
        }
        opts->noptions++;
    }
    if (rbdGlueParsePolicy(ctxt, opts) < 0) {
        rbdGlueConfigOptionsFree(opts);
        return -1;
    }
    if (opts->noptions == 0 && opts->npolicy == 0) {
        rbdGlueConfigOptionsFree(opts);
        return 0;
    }
    *data = opts;
    return 0;
}

static int
rbdGlueNamespaceFormat(virBuffer *buf, void *data)
{
    rbdGlueConfigOptions *opts = data;
    size_t i;

    if (!opts)
        return 0;
    if (opts->noptions > 0) {
        virBufferAddLit(buf, "<rbd:config_opts>\n");
        virBufferAdjustIndent(buf, 2);
        for (i = 0; i < opts->noptions; i++) {
            virBufferEscapeString(buf, "<rbd:option name='%s' ", opts->names[i]);
            virBufferEscapeString(buf, "value='%s'/>\n", opts->values[i]);
        }
        virBufferAdjustIndent(buf, -2);
        virBufferAddLit(buf, "</rbd:config_opts>\n");
    }
    /* Policy attributes are kept grouped by element, in document order. */
    for (i = 0; i < opts->npolicy; i++) {
        const rbdc_policy_attr *a = &opts->policy[i];
        bool first = i == 0 || STRNEQ(opts->policy[i - 1].element, a->element);
        bool last = i + 1 == opts->npolicy || STRNEQ(opts->policy[i + 1].element, a->element);

        if (first)
            virBufferAsprintf(buf, "<rbd:%s", a->element);
        virBufferAsprintf(buf, " %s=", a->name);
        virBufferEscapeString(buf, "'%s'", a->value);
        if (last)
            virBufferAddLit(buf, "/>\n");
    }
    return 0;
}

virXMLNamespace rbdGlueXMLNamespace = {
    .parse = rbdGlueNamespaceParse,
    .free = rbdGlueConfigOptionsFree,
    .format = rbdGlueNamespaceFormat,
    .prefix = "rbd",
    .uri = "http://libvirt.org/schemas/storagepool/rbd/1.0",
};
