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

static int
rbdGlueNamespaceParse(xmlXPathContextPtr ctxt, void **data)
{
    g_autofree xmlNodePtr *nodes = NULL;
    rbdGlueConfigOptions *opts;
    int n;
    size_t i;

    if ((n = virXPathNodeSet("./rbd:config_opts/rbd:option", ctxt, &nodes)) <= 0)
        return n;

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
    virBufferAddLit(buf, "<rbd:config_opts>\n");
    virBufferAdjustIndent(buf, 2);
    for (i = 0; i < opts->noptions; i++) {
        virBufferEscapeString(buf, "<rbd:option name='%s' ", opts->names[i]);
        virBufferEscapeString(buf, "value='%s'/>\n", opts->values[i]);
    }
    virBufferAdjustIndent(buf, -2);
    virBufferAddLit(buf, "</rbd:config_opts>\n");
    return 0;
}

virXMLNamespace rbdGlueXMLNamespace = {
    .parse = rbdGlueNamespaceParse,
    .free = rbdGlueConfigOptionsFree,
    .format = rbdGlueNamespaceFormat,
    .prefix = "rbd",
    .uri = "http://libvirt.org/schemas/storagepool/rbd/1.0",
};
