/* The one place a core failure becomes a libvirt error: rbdc_status's
 * class picks the virErrorNumber, its message is the error's. */
#pragma once

#include "rbdclone/core.h"

void rbdGlueReport(const rbdc_status *st);
