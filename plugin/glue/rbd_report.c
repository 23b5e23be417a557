#include <config.h>

#include "internal.h"
#include "virerror.h"

#include "rbd_report.h"

#define VIR_FROM_THIS VIR_FROM_STORAGE

/* Reports a core failure as a libvirt error, once. */
void
rbdGlueReport(const rbdc_status *st)
{
    int code = VIR_ERR_INTERNAL_ERROR;

    switch (st->kind) {
    case RBDC_OK:
    case RBDC_ERR_INTERNAL:
        code = VIR_ERR_INTERNAL_ERROR;
        break;
    case RBDC_ERR_SYSTEM:
        code = VIR_ERR_SYSTEM_ERROR;
        break;
    case RBDC_ERR_NO_VOLUME:
        code = VIR_ERR_NO_STORAGE_VOL;
        break;
    case RBDC_ERR_NO_POOL:
        code = VIR_ERR_NO_STORAGE_POOL;
        break;
    case RBDC_ERR_INVALID_ARG:
        code = VIR_ERR_INVALID_ARG;
        break;
    case RBDC_ERR_OPERATION_INVALID:
        code = VIR_ERR_OPERATION_INVALID;
        break;
    case RBDC_ERR_UNSUPPORTED:
        code = VIR_ERR_OPERATION_UNSUPPORTED;
        break;
    case RBDC_ERR_AUTH:
        code = VIR_ERR_AUTH_FAILED;
        break;
    case RBDC_ERR_TIMEOUT:
        code = VIR_ERR_OPERATION_TIMEOUT;
        break;
    case RBDC_ERR_EXISTS:
        code = VIR_ERR_STORAGE_VOL_EXIST;
        break;
    }
    virReportError(code, "%s", st->message);
}

/* The end of most glue callbacks: a failed core call (rc < 0) reported,
 * -1; else 0. */
int
rbdGlueCheck(int rc, const rbdc_status *st)
{
    if (rc >= 0)
        return 0;
    rbdGlueReport(st);
    return -1;
}
