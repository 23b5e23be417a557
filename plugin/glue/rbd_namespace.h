/* The pool XML namespace of the rbd backend:
 *   xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'
 *   <rbd:config_opts><rbd:option name='N' value='V'/>...</rbd:config_opts>
 * Same syntax and error messages as the stock backend. */
#pragma once

#include "internal.h"
#include "virxml.h"

typedef struct {
    size_t noptions;
    char **names;
    char **values;
} rbdGlueConfigOptions;

extern virXMLNamespace rbdGlueXMLNamespace;
