/* The pool XML namespace of the rbd backend:
 *   xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'
 *   <rbd:config_opts><rbd:option name='N' value='V'/>...</rbd:config_opts>
 *     same syntax and error messages as the stock backend;
 *   <rbd:clone format=... max_depth=... flatten=... delete=.../>
 *     our policy elements: every other element of the namespace, with its
 *     attributes, validated by the core (rbdc_policy_check) and written
 *     back as given. */
#pragma once

#include "internal.h"
#include "virxml.h"

#include "rbdclone/core.h"

typedef struct {
    size_t noptions;
    char **names;
    char **values;
    size_t npolicy;
    rbdc_policy_attr *policy; /* strings owned here */
} rbdGlueConfigOptions;

extern virXMLNamespace rbdGlueXMLNamespace;
