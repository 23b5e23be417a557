/* The one place a core failure becomes a libvirt error: rbdc_status's
 * class picks the virErrorNumber, its message is the error's. */
#pragma once

#include "rbdclone/core.h"

void rbdGlueReport(const rbdc_status *st);

/* rc < 0: reports st and returns -1; else returns 0. */
int rbdGlueCheck(int rc, const rbdc_status *st);
